"""Intacct error types: every failure of the client is one of these.

Callers decide by type, never by parsing messages:

- `TransientIntacctError`: nothing was applied; the same call may succeed later (5xx, 429/GW-0010,
  off-line, connection not made). The client already retried it inside its time budget.
- `PermanentIntacctError`: retrying will not help until data or configuration changes (validation,
  duplicates, not found, permissions, sign-in, malformed answers).
- `OutcomeUnknown`: a write was sent and may or may not have been applied (524, read timeout, lost
  connection). Look the record up by its business key, or resend with the same control ids.
- `AlreadyApplied`: Intacct refused a function because a function with the same control id already
  completed (uniqueid=true). The earlier call succeeded; look the record up by its business key.

Messages carry Intacct's error numbers and texts, never credentials or request bodies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from sfintacct.faults import ConfigurationFault

ROLLED_BACK_ERRORNO = "XL03000009"


@dataclass(frozen=True)
class ErrorDetail:
    """One `<error>` of an `<errormessage>`, with its `<additionalinfo>` when Intacct sent one."""

    errorno: str
    description: str = ""
    description2: str = ""
    correction: str = ""
    error_id: str = ""
    category: str = ""
    message_id: str = ""

    def text(self) -> str:
        """A one-line summary: errorno, descriptions and correction."""
        parts = [part for part in (self.description, self.description2) if part]
        summary = f"{self.errorno}: {' '.join(parts)}" if parts else self.errorno
        if self.correction:
            summary += f" (correction: {self.correction})"
        return summary


class IntacctError(Exception):
    """Base of every error the Intacct client raises."""

    transient: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[ErrorDetail] = (),
        http_status: int | None = None,
        function: str | None = None,
        control_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors: tuple[ErrorDetail, ...] = tuple(errors)
        self.http_status = http_status
        self.function = function
        self.control_id = control_id

    @property
    def primary_error(self) -> ErrorDetail | None:
        """The error that says what went wrong (not the companion "transaction rolled back" one)."""
        for error in self.errors:
            if error.errorno != ROLLED_BACK_ERRORNO:
                return error
        return self.errors[0] if self.errors else None

    @property
    def errorno(self) -> str:
        primary = self.primary_error
        return primary.errorno if primary else ""

    @property
    def description(self) -> str:
        primary = self.primary_error
        return primary.description if primary else ""

    @property
    def description2(self) -> str:
        primary = self.primary_error
        return primary.description2 if primary else ""

    @property
    def correction(self) -> str:
        primary = self.primary_error
        return primary.correction if primary else ""


class TransientIntacctError(IntacctError):
    """Nothing was applied and the same call may succeed later."""

    transient = True

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        errors: Sequence[ErrorDetail] = (),
        http_status: int | None = None,
        function: str | None = None,
        control_id: str | None = None,
    ) -> None:
        super().__init__(
            message, errors=errors, http_status=http_status, function=function, control_id=control_id
        )
        self.retry_after = retry_after


class IntacctUnavailable(TransientIntacctError):
    """HTTP 5xx or "The Service is Temporarily Off-line"."""


class IntacctRateLimited(TransientIntacctError):
    """HTTP 429 / GW-0010 or "rate limit exceeded"."""


class IntacctNetworkError(TransientIntacctError):
    """The connection failed before the request was sent, or a read failed (reads only)."""


class PermanentIntacctError(IntacctError):
    """Retrying the same call will not help."""


class IntacctSettingsError(PermanentIntacctError, ConfigurationFault):
    """The client settings are missing or invalid (values are never included)."""

    kind = "intacct_settings"
    reads_secrets_again = True
    what_to_do = "complete the Intacct secret"


class IntacctRequestError(PermanentIntacctError, ValueError):
    """The request cannot be built from the given input (e.g. characters XML cannot carry)."""


class IntacctProtocolError(PermanentIntacctError):
    """The answer is not a well-formed gateway response: bad XML, missing blocks, unexpected HTTP."""


class HostileXmlError(IntacctProtocolError):
    """The answer uses XML features that are refused outright: DTDs, entities, external references."""


class ControlFailure(PermanentIntacctError):
    """The request was refused as a whole (control status failure): nothing was executed."""


class SenderRejected(ControlFailure, ConfigurationFault):
    """The Web Services sender was refused (wrong sender id or password, not authorised for the company,
    a sign-in the gateway refuses): XL03000006 or XMLGW_JPP0002 at control level."""

    kind = "intacct_sender"
    reads_secrets_again = True
    what_to_do = (
        "correct the sender id or password in the Intacct secret, or authorise the sender in the company"
    )


class AuthenticationFailed(PermanentIntacctError, ConfigurationFault):
    """Company sign-in failed (authentication status failure): nothing was executed."""

    kind = "intacct_credentials"
    reads_secrets_again = True
    what_to_do = "correct the sender or user credentials in the Intacct secret"


class FunctionFailed(PermanentIntacctError):
    """A function's result has status failure (or aborted)."""


class DuplicateRecord(FunctionFailed):
    """The record already exists (BL34000061 "Another ... with the given value(s) ... already exists")."""


class RecordNotFound(FunctionFailed):
    """The record to change or read does not exist."""


class PermissionDenied(FunctionFailed, ConfigurationFault):
    """The Web Services user lacks a permission."""

    kind = "intacct_permissions"
    reads_secrets_again = False
    what_to_do = "give the Intacct API user the permission named"


class OutcomeUnknown(IntacctError):
    """A write was sent but no reliable answer came back; it may or may not have been applied.

    Never resend blindly: look the record up first, or resend the same functions (same control ids)
    with uniqueid=true, which answers `AlreadyApplied` if the first attempt went through.
    """

    def __init__(
        self,
        message: str,
        *,
        control_ids: Sequence[str] = (),
        http_status: int | None = None,
        function: str | None = None,
    ) -> None:
        super().__init__(message, http_status=http_status, function=function)
        self.control_ids: tuple[str, ...] = tuple(control_ids)


class AlreadyApplied(IntacctError):
    """A function with this control id already completed successfully (uniqueid=true); nothing ran now."""

    def __init__(
        self,
        message: str,
        *,
        control_id: str,
        errors: Sequence[ErrorDetail] = (),
        function: str | None = None,
    ) -> None:
        super().__init__(message, errors=errors, function=function, control_id=control_id)
