"""What an order holds, remembered in the crosswalk so that a change of the deal can be told apart.

The crosswalk's ORDER entry keeps, next to the order's DOCID, a digest of the order as sent (header,
lines, and the Account it is for) and of each part, so that a notification of an unchanged deal costs no
Intacct call, and a changed one can be named ("products", "Account") when the order can no longer follow.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from sfintacct.intacct.models import SalesTransaction

DIGEST = "digest"
ACCOUNT = "account_id"
HEADER = "header_digest"
LINES = "lines_digest"
CUSTOMER = "customer_id"
STATE = "state"  # "open", or "closed" / "deleted" once the deal left Closed Won and the order was retired
TRANSACTION_TYPE = "transaction_type"  # the document's definition (absent: the stack's transaction type)

PART_NAMES = {ACCOUNT: "Account", HEADER: "order details (date, terms, message)", LINES: "products"}


@dataclass(frozen=True)
class OrderFingerprint:
    account_id: str
    header: str
    lines: str

    @property
    def digest(self) -> str:
        return _digest(f"{self.account_id}|{self.header}|{self.lines}")

    def attributes(self, customer_id: str, transaction_type: str, state: str = "open") -> dict[str, str]:
        return {
            DIGEST: self.digest,
            ACCOUNT: self.account_id,
            HEADER: self.header,
            LINES: self.lines,
            CUSTOMER: customer_id,
            STATE: state,
            TRANSACTION_TYPE: transaction_type,
        }

    def differences(self, stored: Mapping[str, str]) -> list[str]:
        """The parts (in words) that differ from what the stored attributes say was sent."""
        mine = {ACCOUNT: self.account_id, HEADER: self.header, LINES: self.lines}
        return [PART_NAMES[part] for part, value in mine.items() if stored.get(part) != value]


def fingerprint(order: SalesTransaction, account_id: str) -> OrderFingerprint:
    """The fingerprint of an order for an Account (the customer id is left out: Intacct may number it)."""
    header = order.model_dump_json(exclude={"lines", "customer_id"})
    lines = "\n".join(line.model_dump_json() for line in order.lines)
    return OrderFingerprint(account_id=account_id, header=_digest(header), lines=_digest(lines))


def is_up_to_date(stored: Mapping[str, str], current: OrderFingerprint) -> bool:
    return stored.get(DIGEST) == current.digest and stored.get(STATE, "open") == "open"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]
