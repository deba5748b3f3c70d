"""Intacct error records and the exceptions that carry them to the response builder."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IntacctError:
    """One `<error>` of an `<errormessage>`, as Intacct writes it."""

    errorno: str
    description: str = ""
    description2: str = ""
    correction: str = ""


GENERIC_BUSINESS_ERROR = "BL01001973"
SCHEMA_ERROR = "XL03000003"
SIGN_IN_ERROR = "XL03000006"
TRANSACTION_ROLLED_BACK = "XL03000009"
QUERY_FAILED = "Query Failed"

ROLLED_BACK = IntacctError(
    TRANSACTION_ROLLED_BACK,
    "The entire transaction in this operation has been rolled back due to an error.",
)


class FunctionFailure(Exception):
    """A function failed: its result gets status failure and these errors."""

    def __init__(self, *errors: IntacctError) -> None:
        super().__init__("; ".join(error.description2 or error.description for error in errors))
        self.errors = list(errors)


def business_error(description2: str, description: str = "", correction: str = "") -> IntacctError:
    """A BL01001973 error, the code Intacct uses for most business-rule failures."""
    return IntacctError(GENERIC_BUSINESS_ERROR, description, description2, correction)


def query_error(description2: str) -> FunctionFailure:
    """A failure of a read/query function (unknown object or field, query not understood)."""
    return FunctionFailure(IntacctError(QUERY_FAILED, "Query failed", description2))
