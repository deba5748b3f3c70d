"""The requests session every Salesforce call goes through: timeouts, safe retries, trusted CAs."""

from __future__ import annotations

from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from sfintacct.salesforce.settings import SalesforceSettings

# Statuses worth repeating a read for; Salesforce answers 503 when an instance is unavailable.
RETRY_STATUSES = frozenset({500, 502, 503, 504})
# Only reads are repeated: a repeated POST/PATCH could apply a write twice.
RETRY_METHODS = frozenset({"GET"})
_BACKOFF_SECONDS = 0.25
_BACKOFF_MAX_SECONDS = 2.0


class SalesforceSession(requests.Session):
    """A requests session that never waits forever and always verifies TLS with the configured CAs."""

    def __init__(self, *, timeout_seconds: float, ca_file: str | None) -> None:
        super().__init__()
        self.timeout_seconds = timeout_seconds
        self.ca_file = ca_file
        self.verify = ca_file if ca_file else True

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        """Send with the default timeout unless the caller chose one, and with the configured CA bundle."""
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_seconds
        if self.ca_file:
            # REQUESTS_CA_BUNDLE in the environment must not replace the configured bundle.
            kwargs["verify"] = self.ca_file
        return super().send(request, **kwargs)


def read_retry_policy(retries: int) -> Retry:
    """Retry policy: connection errors on any call (nothing was sent), read errors and 5xx on GETs only.

    After the last attempt the 5xx response itself is returned, so it is reported like any other error.
    """
    return Retry(
        total=retries,
        connect=retries,
        read=retries,
        status=retries,
        other=0,
        redirect=0,
        allowed_methods=RETRY_METHODS,
        status_forcelist=RETRY_STATUSES,
        backoff_factor=_BACKOFF_SECONDS,
        backoff_max=_BACKOFF_MAX_SECONDS,
        raise_on_status=False,
        raise_on_redirect=False,
        respect_retry_after_header=False,  # a long Retry-After would outlast the Lambda timeout
    )


def build_session(settings: SalesforceSettings) -> SalesforceSession:
    """A session for one Salesforce org, configured from the settings."""
    session = SalesforceSession(timeout_seconds=settings.timeout_seconds, ca_file=settings.ca_file)
    adapter = HTTPAdapter(max_retries=read_retry_policy(settings.read_retries))
    session.mount("https://", adapter)
    return session
