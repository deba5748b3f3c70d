"""Salesforce error types: every failure of the client is one of these.

Callers decide on retries by type: `TransientSalesforceError` may succeed if tried again later,
`PermanentSalesforceError` will not until someone changes data or configuration. Messages carry
Salesforce's error codes and messages, never credentials or tokens.

This module does not import simple-salesforce, so any code can catch these types cheaply.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sfintacct.faults import ConfigurationFault

# Error codes Salesforce returns for conditions that clear up by themselves.
TRANSIENT_ERROR_CODES = frozenset(
    {
        "UNABLE_TO_LOCK_ROW",
        "SERVER_UNAVAILABLE",
        "QUERY_TIMEOUT",
        "REQUEST_RUNNING_TOO_LONG",
        "TXN_SECURITY_METERING_ERROR",
    }
)

# Error code Salesforce puts on the subrequests it rolled back because another one failed.
PROCESSING_HALTED = "PROCESSING_HALTED"


@dataclass(frozen=True)
class SalesforceErrorDetail:
    """One error entry as Salesforce reports it (`errorCode`, `message`, `fields`)."""

    error_code: str
    message: str
    fields: tuple[str, ...] = ()
    reference: str | None = None  # what the entry is about, e.g. "Opportunity 006..." in a write-back

    def describe(self) -> str:
        """A one-line human readable form: `[reference: ]CODE: message (fields: a, b)`."""
        text = f"{self.error_code}: {self.message}" if self.message else self.error_code
        if self.fields:
            text += f" (fields: {', '.join(self.fields)})"
        if self.reference:
            text = f"{self.reference}: {text}"
        return text


class SalesforceError(Exception):
    """Base of every error raised by the Salesforce client."""

    transient: bool = False

    def __init__(
        self, message: str, *, status: int | None = None, details: Sequence[SalesforceErrorDetail] = ()
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.details = tuple(details)

    @property
    def error_codes(self) -> tuple[str, ...]:
        """The Salesforce error codes of this failure, in the order reported."""
        return tuple(detail.error_code for detail in self.details)

    def __str__(self) -> str:
        return self.message


class TransientSalesforceError(SalesforceError):
    """May succeed later: 5xx, network errors, timeouts, API limits, row locks."""

    transient = True


class PermanentSalesforceError(SalesforceError):
    """Will fail again until data or configuration changes: bad query, bad field, validation rule, ..."""


class RecordNotFound(PermanentSalesforceError):
    """The record does not exist (or is deleted, or the integration user cannot see it)."""


class SalesforceAuthenticationError(PermanentSalesforceError, ConfigurationFault):
    """Salesforce refused the credentials (invalid_client, invalid_grant, ...): fix the configuration."""

    kind = "salesforce_credentials"
    reads_secrets_again = True
    what_to_do = "correct the consumer key, key or user in the Salesforce secret"


class SalesforceSettingsError(PermanentSalesforceError, ConfigurationFault):
    """The client configuration is incomplete or invalid."""

    kind = "salesforce_settings"
    reads_secrets_again = True
    what_to_do = "complete the Salesforce secret"


class SalesforceApiLimitExceeded(SalesforceError, ConfigurationFault):
    """The org's API allowance is spent (REQUEST_LIMIT_EXCEEDED); it comes back within 24 hours."""

    kind = "salesforce_api_limit"
    what_to_do = "wait for the org's API allowance to come back, or raise it"


class SalesforceFieldMismatch(PermanentSalesforceError, ConfigurationFault):
    """A query names a field or object the org does not have (INVALID_FIELD, INVALID_TYPE): the mapping
    or the query-field settings do not match the org, or the integration user cannot see the field."""

    kind = "mapping"
    what_to_do = "correct the mapping, or grant the integration user the field"


API_LIMIT_ERROR_CODE = "REQUEST_LIMIT_EXCEEDED"
FIELD_MISMATCH_ERROR_CODES = frozenset({"INVALID_FIELD", "INVALID_TYPE"})


def is_transient_failure(status: int | None, error_codes: Iterable[str]) -> bool:
    """Whether a failure with this HTTP status and these error codes is worth retrying later."""
    if any(code in TRANSIENT_ERROR_CODES for code in error_codes):
        return True
    return status is not None and (status >= 500 or status == 429)


def error_for(
    message: str, *, status: int | None, details: Sequence[SalesforceErrorDetail] = ()
) -> SalesforceError:
    """The transient or permanent error for a failure, classified by status and error codes; a spent
    API allowance is a configuration fault (it comes back, but not within a retry)."""
    codes = {detail.error_code for detail in details}
    if API_LIMIT_ERROR_CODE in codes:
        return SalesforceApiLimitExceeded(message, status=status, details=details)
    if codes & FIELD_MISMATCH_ERROR_CODES:
        return SalesforceFieldMismatch(message, status=status, details=details)
    if is_transient_failure(status, codes):
        return TransientSalesforceError(message, status=status, details=details)
    return PermanentSalesforceError(message, status=status, details=details)
