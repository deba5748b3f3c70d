"""Where the client decides, once, what each failure means: transient, permanent, unknown or done.

- HTTP: 429 -> rate limited; 524 -> outcome unknown for writes (transient for reads); other 5xx ->
  unavailable (transient, nothing assumed applied); other non-2xx without an XML body -> protocol error.
- Control and authentication failures are permanent unless their text says "Temporarily Off-line" or
  "rate limit exceeded" (or errorno GW-0010), which are transient wherever they appear; a refused
  sender (XL03000006, XMLGW_JPP0002) or sign-in is also a fault of the set-up (sfintacct.faults).
- Result failures: "already been recorded with the control id", or any error that quotes the function's
  own control id (how Intacct words the refusal of a repeated control id is not documented) ->
  AlreadyApplied; BL34000061 -> DuplicateRecord; "non-existing"/"not found" -> RecordNotFound;
  "permission" -> PermissionDenied; anything else -> FunctionFailed. Under transaction=true the
  failing result's error wins over the `aborted` results that carry only XL03000009.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sfintacct.intacct.errors import (
    ROLLED_BACK_ERRORNO,
    AlreadyApplied,
    AuthenticationFailed,
    ControlFailure,
    DuplicateRecord,
    ErrorDetail,
    FunctionFailed,
    IntacctError,
    IntacctProtocolError,
    IntacctRateLimited,
    IntacctUnavailable,
    OutcomeUnknown,
    PermissionDenied,
    RecordNotFound,
    SenderRejected,
    TransientIntacctError,
)
from sfintacct.intacct.response import ABORTED, FAILURE, FunctionResult

RATE_LIMIT_ERRORNO = "GW-0010"
# Control failures that refuse the sender, not the request: a fault of the set-up (the reference's
# error table: XL03000006 bad sender id/password or sender not authorised; XMLGW_JPP0002 sign-in refused).
SENDER_REJECTED_ERRORNOS = frozenset({"XL03000006", "XMLGW_JPP0002"})
DUPLICATE_ERRORNO = "BL34000061"
TIMEOUT_STATUS = 524
OFFLINE_TEXT = "temporarily off-line"
RATE_LIMIT_TEXT = "rate limit exceeded"
ALREADY_APPLIED_TEXT = "already been recorded with the control id"
NOT_FOUND_TEXTS = ("non-existing", "cannot find", "does not exist", "no such record")
PERMISSION_TEXT = "permission"
DUPLICATE_CATEGORY = "duplication prevention"
# A control id this long, quoted as a word of its own in an error, names the function's control id and
# nothing else by chance.
QUOTED_CONTROL_ID_MIN_LENGTH = 8


def summarize(errors: Sequence[ErrorDetail]) -> str:
    """Every error in one line, the rolled-back companion last."""
    ordered = sorted(errors, key=lambda error: error.errorno == ROLLED_BACK_ERRORNO)
    return "; ".join(error.text() for error in ordered)


def _texts(errors: Sequence[ErrorDetail]) -> list[str]:
    return [
        " ".join((error.errorno, error.description, error.description2, error.correction)).lower()
        for error in errors
    ]


def transient_error_for(
    errors: Sequence[ErrorDetail],
    *,
    http_status: int | None = None,
    retry_after: float | None = None,
    function: str | None = None,
    control_id: str | None = None,
    where: str = "The request",
) -> TransientIntacctError | None:
    """A transient error when the errors say rate limited or off-line, else None."""
    texts = _texts(errors)
    detail = f": {summarize(errors)}" if errors else ""
    if any(error.errorno == RATE_LIMIT_ERRORNO for error in errors) or any(
        RATE_LIMIT_TEXT in text for text in texts
    ):
        return IntacctRateLimited(
            f"{where} was rate limited{detail}",
            errors=errors,
            http_status=http_status,
            retry_after=retry_after,
            function=function,
            control_id=control_id,
        )
    if any(OFFLINE_TEXT in text for text in texts):
        return IntacctUnavailable(
            f"{where} failed because Intacct is temporarily off-line{detail}",
            errors=errors,
            http_status=http_status,
            retry_after=retry_after,
            function=function,
            control_id=control_id,
        )
    return None


def error_for_http_status(
    status: int,
    *,
    writes: bool,
    control_ids: Sequence[str],
    has_xml_body: bool,
    retry_after: float | None = None,
    errors: Sequence[ErrorDetail] = (),
) -> IntacctError | None:
    """The error an HTTP status means by itself; None when the XML body decides (2xx, 4xx with XML)."""
    detail = f": {summarize(errors)}" if errors else ""
    if status == 429:
        return IntacctRateLimited(
            f"Intacct answered HTTP 429 (rate limited){detail}",
            errors=errors,
            http_status=status,
            retry_after=retry_after,
        )
    if status == TIMEOUT_STATUS and writes:
        return OutcomeUnknown(
            "Intacct answered HTTP 524: the gateway timed out while the request may still have been "
            "processed; the outcome of the write is unknown",
            control_ids=control_ids,
            http_status=status,
        )
    if status >= 500:
        return IntacctUnavailable(
            f"Intacct answered HTTP {status}{detail}",
            errors=errors,
            http_status=status,
            retry_after=retry_after,
        )
    if 200 <= status < 300 or (400 <= status < 500 and has_xml_body):
        return None
    if status == 408:
        return IntacctUnavailable("Intacct answered HTTP 408 (request timeout)", http_status=status)
    return IntacctProtocolError(f"Intacct answered HTTP {status} without an XML body", http_status=status)


def error_for_control_failure(errors: Sequence[ErrorDetail], http_status: int | None) -> IntacctError:
    transient = transient_error_for(errors, http_status=http_status)
    if transient is not None:
        return transient
    detail = summarize(errors) or "no error details"
    if any(error.errorno in SENDER_REJECTED_ERRORNOS for error in errors):
        return SenderRejected(
            f"Intacct refused the Web Services sender (control failure): {detail}",
            errors=errors,
            http_status=http_status,
        )
    return ControlFailure(
        f"Intacct refused the request (control failure): {detail}", errors=errors, http_status=http_status
    )


def error_for_authentication_failure(errors: Sequence[ErrorDetail], http_status: int | None) -> IntacctError:
    transient = transient_error_for(errors, http_status=http_status)
    if transient is not None:
        return transient
    detail = summarize(errors) or "no error details"
    return AuthenticationFailed(
        f"Intacct refused the company sign-in: {detail}", errors=errors, http_status=http_status
    )


def error_for_result(result: FunctionResult) -> IntacctError | None:
    """The error a function result stands for; None when it succeeded."""
    if result.succeeded:
        return None
    where = f"{result.function or 'The function'} (controlid {result.control_id})"
    errors = result.errors
    texts = _texts(errors)
    if any(ALREADY_APPLIED_TEXT in text for text in texts) or _quotes_control_id(texts, result.control_id):
        return AlreadyApplied(
            f"{where} was already applied: {summarize(errors)}",
            control_id=result.control_id,
            errors=errors,
            function=result.function,
        )
    transient = transient_error_for(
        errors, function=result.function, control_id=result.control_id, where=where
    )
    if transient is not None:
        return transient
    return _function_error(_failure_kind(result), result)


def _quotes_control_id(texts: Sequence[str], control_id: str) -> bool:
    """Whether an error quotes this control id as a word of its own (a refusal of the repeated id)."""
    if len(control_id) < QUOTED_CONTROL_ID_MIN_LENGTH:
        return False
    quoted = re.compile(rf"(?<![\w-]){re.escape(control_id.lower())}(?![\w-])")
    return any(quoted.search(text) for text in texts)


def _failure_kind(result: FunctionResult) -> type[FunctionFailed]:
    errors = result.errors
    texts = _texts(errors)
    if result.status == ABORTED:
        return FunctionFailed
    if any(
        error.errorno == DUPLICATE_ERRORNO or error.category.lower() == DUPLICATE_CATEGORY for error in errors
    ):
        return DuplicateRecord
    if any(text in error_text for error_text in texts for text in NOT_FOUND_TEXTS):
        return RecordNotFound
    if any(PERMISSION_TEXT in text for text in texts):
        return PermissionDenied
    return FunctionFailed


def _function_error(kind: type[FunctionFailed], result: FunctionResult) -> FunctionFailed:
    where = f"{result.function or 'The function'} (controlid {result.control_id})"
    verb = "was aborted" if result.status == ABORTED else "failed"
    return kind(
        f"{where} {verb}: {summarize(result.errors) or 'no error details'}",
        errors=result.errors,
        function=result.function,
        control_id=result.control_id,
    )


def first_failure(results: Sequence[FunctionResult]) -> IntacctError | None:
    """The error to raise for a set of results: a `failure` result first, an `aborted` one only if alone."""
    for wanted in (FAILURE, ABORTED):
        for result in results:
            if result.status == wanted:
                return error_for_result(result)
    return None
