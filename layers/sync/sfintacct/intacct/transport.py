"""HTTP to the XML gateway with httpx: TLS verified (optionally against an extra CA), one POST per call.

Network failures are sorted by whether the request can have reached Intacct:

- not sent (connect error, connect or pool timeout): IntacctNetworkError, safe to retry;
- maybe processed (read timeout, connection lost after sending): IntacctNetworkError for reads,
  OutcomeUnknown for writes, which must never be resent blindly.
"""

from __future__ import annotations

import logging
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from sfintacct.intacct.errors import (
    IntacctNetworkError,
    IntacctProtocolError,
    IntacctSettingsError,
    OutcomeUnknown,
)
from sfintacct.intacct.settings import IntacctSettings

logger = logging.getLogger(__name__)

USER_AGENT = "sfintacct-intacct-client/0.1"
MAX_CONNECT_SECONDS = 10.0


@dataclass(frozen=True)
class HttpAnswer:
    """The parts of an HTTP response the client looks at."""

    status: int
    content_type: str
    body: bytes
    retry_after: float | None = None

    @property
    def has_xml_body(self) -> bool:
        """True when the body is XML (by content type, or by its first bytes when the type is missing)."""
        if "xml" in self.content_type.lower():
            return True
        start = self.body.lstrip()[:64].lower()
        return start.startswith((b"<?xml", b"<response"))


def ssl_context_for(ca_file: str | None) -> ssl.SSLContext:
    """System trust plus the extra CA bundle, if any. Verification is never turned off."""
    context = ssl.create_default_context()
    if ca_file:
        try:
            context.load_verify_locations(cafile=ca_file)
        except (OSError, ssl.SSLError) as error:
            raise IntacctSettingsError(
                f"The Intacct CA file cannot be loaded ({type(error).__name__})"
            ) from None
    return context


def default_http_client(settings: IntacctSettings) -> httpx.Client:
    """An httpx client with the settings' timeouts and trust; environment proxies are not used."""
    timeout = httpx.Timeout(
        settings.timeout_seconds, connect=min(MAX_CONNECT_SECONDS, settings.timeout_seconds)
    )
    return httpx.Client(
        verify=ssl_context_for(settings.ca_file),
        timeout=timeout,
        trust_env=False,
        headers={"User-Agent": USER_AGENT},
    )


class HttpTransport:
    """Posts request documents to a gateway URL and returns the answer, or raises a typed network error."""

    def __init__(self, http_client: httpx.Client) -> None:
        self.http_client = http_client

    def post(self, url: str, body: bytes, *, writes: bool, control_ids: Sequence[str]) -> HttpAnswer:
        started = time.monotonic()
        try:
            response = self.http_client.post(
                url, content=body, headers={"Content-Type": "application/xml; charset=utf-8"}
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as error:
            if _certificate_rejected(error):
                raise IntacctProtocolError(
                    "The Intacct gateway's TLS certificate was not trusted; nothing was sent"
                ) from error
            raise IntacctNetworkError(
                f"Could not connect to the Intacct gateway ({type(error).__name__}); nothing was sent"
            ) from error
        except httpx.TransportError as error:
            elapsed = time.monotonic() - started
            if writes:
                raise OutcomeUnknown(
                    f"The connection to Intacct failed after the write was sent ({type(error).__name__} "
                    f"after {elapsed:.1f}s); the outcome is unknown",
                    control_ids=control_ids,
                ) from error
            raise IntacctNetworkError(
                f"The connection to Intacct failed during a read "
                f"({type(error).__name__} after {elapsed:.1f}s)"
            ) from error
        return HttpAnswer(
            status=response.status_code,
            content_type=response.headers.get("content-type", ""),
            body=response.content,
            retry_after=parse_retry_after(response.headers.get("retry-after")),
        )

    def close(self) -> None:
        self.http_client.close()


def _certificate_rejected(error: BaseException) -> bool:
    """True when the connection failed because the server certificate did not verify."""
    seen: BaseException | None = error
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return "CERTIFICATE_VERIFY_FAILED" in str(error)


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or invalid."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(text)
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = (moment - (now or datetime.now(UTC))).total_seconds()
    return max(0.0, seconds)
