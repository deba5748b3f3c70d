"""Turn simple-salesforce and requests exceptions into the client's error types (see errors.py)."""

from __future__ import annotations

from typing import Any

import requests
from simple_salesforce.exceptions import SalesforceAuthenticationFailed, SalesforceExpiredSession
from simple_salesforce.exceptions import SalesforceError as LibrarySalesforceError

from sfintacct.salesforce.errors import (
    PermanentSalesforceError,
    SalesforceAuthenticationError,
    SalesforceError,
    SalesforceErrorDetail,
    TransientSalesforceError,
    error_for,
)

# Salesforce's own messages are kept whole (what is wrong is often at the end: "No such column 'X' on
# entity 'Opportunity'" follows the whole query); a raw body (an HTML error page) is kept to its head
# and tail.
_MAX_MESSAGE_LENGTH = 16000
_MAX_TEXT_LENGTH = 2000
# requests errors that come from a wrong URL or header, not from the network.
_PERMANENT_REQUEST_ERRORS = (
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
)


def error_details(content: Any, status: int | None) -> list[SalesforceErrorDetail]:
    """Salesforce's error entries from a decoded response body (list of {errorCode, message, fields})."""
    entries = content if isinstance(content, list) else [content]
    details = [detail for detail in (_detail_from_entry(entry) for entry in entries) if detail is not None]
    if details:
        return details
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content or "")
    return [SalesforceErrorDetail(error_code=f"HTTP_{status}", message=_shorten(text))]


def error_from_library_exception(exc: LibrarySalesforceError, action: str) -> SalesforceError:
    """The client error for a simple-salesforce exception raised while doing `action`."""
    details = error_details(exc.content, exc.status)
    message = f"{action} failed (HTTP {exc.status}): " + "; ".join(detail.describe() for detail in details)
    if isinstance(exc, SalesforceExpiredSession | SalesforceAuthenticationFailed):
        return SalesforceAuthenticationError(message, status=exc.status, details=details)
    return error_for(message, status=exc.status, details=details)


def error_from_request_exception(exc: requests.RequestException, action: str) -> SalesforceError:
    """The client error for a network-level failure while doing `action`."""
    reason = f"{type(exc).__name__}: {_shorten(str(exc))}"
    if isinstance(exc, requests.exceptions.SSLError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return PermanentSalesforceError(
            f"{action} failed: the Salesforce TLS certificate could not be verified "
            f"(check the CA bundle setting) ({reason})"
        )
    if isinstance(exc, _PERMANENT_REQUEST_ERRORS):
        return PermanentSalesforceError(f"{action} failed: {reason}")
    if isinstance(exc, requests.Timeout):
        return TransientSalesforceError(f"{action} timed out ({reason})")
    return TransientSalesforceError(f"{action} failed: {reason}")


def _detail_from_entry(entry: Any) -> SalesforceErrorDetail | None:
    if not isinstance(entry, dict):
        return None
    code = entry.get("errorCode") or entry.get("error")
    if not isinstance(code, str) or not code:
        return None
    message = entry.get("message") or entry.get("error_description") or ""
    fields = entry.get("fields") or []
    return SalesforceErrorDetail(
        error_code=code,
        message=_shorten(str(message), _MAX_MESSAGE_LENGTH),
        fields=tuple(str(name) for name in fields) if isinstance(fields, list) else (),
    )


def _shorten(text: str, limit: int = _MAX_TEXT_LENGTH) -> str:
    """The text on one line; a longer one keeps its beginning and its end, where the cause usually is."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    half = (limit - 3) // 2
    return f"{text[:half]} … {text[-half:]}"
