"""What became of one sync request: the outcome the workers log, count and answer with."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any


class OutcomeStatus(StrEnum):
    SYNCED = "synced"  # the Intacct object was created or updated now
    ALREADY_SYNCED = "already_synced"  # nothing to do: it exists and is up to date
    SKIPPED = "skipped"  # deliberately not synced (not won, older change, record gone)
    FAILED = "failed"  # a permanent failure: recorded, written back, not retried
    RETRYING = "retrying"  # a transient failure: the message goes back to the queue
    DEAD_LETTERED = "dead_lettered"  # a transient failure on the last receive: the message goes to the DLQ
    # The deal changed after its order was converted (or closed) in Intacct: nothing is changed there, the
    # Opportunity says what differs, and a metric with an alarm counts it.
    CHANGED_AFTER_SYNC = "changed_after_sync"
    # A fault of the set-up, not of the record (credentials, API allowance, mapping): the message is held
    # on its queue with a growing delay and syncs by itself once the set-up is fixed.
    WAITING = "waiting"


# The outcomes somebody must look at: each is also counted without its reason, and alarmed on.
NEEDS_ATTENTION = frozenset(
    {
        OutcomeStatus.FAILED,
        OutcomeStatus.DEAD_LETTERED,
        OutcomeStatus.CHANGED_AFTER_SYNC,
        OutcomeStatus.WAITING,
    }
)


class Reason(StrEnum):
    """Why, in a word that metrics can carry as a dimension."""

    CREATED = "created"
    UPDATED = "updated"
    ADOPTED = "adopted"
    UP_TO_DATE = "up_to_date"
    ORDER_EXISTS = "order_exists"
    RECOVERED = "recovered"
    ORDER_UPDATED = "order_updated"  # the open order now holds the deal's new header and lines
    ORDER_REPLACED = (
        "order_replaced"  # the open order was retired and a new one made (new Account, fewer lines)
    )
    ORDER_RETIRED = "order_retired"  # the deal left Closed Won: its open order was closed or deleted
    ORDER_NOT_OPEN = "order_not_open"  # changed after sync: the order is converted, closed or gone
    PROSPECT = "prospect"  # an Account without a won deal (and not matching create_when): no customer yet
    ACCOUNT_DELETED = "account_deleted"  # the Account was deleted; its customer is left as it is
    ACCOUNT_MERGED = "account_merged"  # merged into another Account, which now owns the customer
    FINANCE_UPDATED = "finance_updated"  # invoice, payment or AR fields written by the finance run
    NOT_WON = "not_won"
    OLDER_CHANGE = "older_change"
    UNCHANGED_SINCE_REFUSAL = "unchanged_since_refusal"
    NOT_FOUND = "not_found"
    INTACCT_REJECTED = "intacct_rejected"
    BAD_RECORD = "bad_record"
    SALESFORCE_REJECTED = "salesforce_rejected"
    TRANSIENT = "transient"
    # Faults of the set-up (sfintacct.faults): the `kind` of the fault.
    INTACCT_SENDER = "intacct_sender"
    INTACCT_CREDENTIALS = "intacct_credentials"
    INTACCT_SETTINGS = "intacct_settings"
    INTACCT_PERMISSIONS = "intacct_permissions"
    SALESFORCE_CREDENTIALS = "salesforce_credentials"
    SALESFORCE_SETTINGS = "salesforce_settings"
    SALESFORCE_API_LIMIT = "salesforce_api_limit"
    MAPPING = "mapping"
    CONFIGURATION = "configuration"


@dataclass(frozen=True)
class SyncOutcome:
    """One request's result, with the ids on both sides so the sync log can be read by either."""

    status: OutcomeStatus
    reason: Reason
    object_type: str
    salesforce_id: str
    message: str = ""
    intacct_customer_id: str | None = None
    intacct_order_id: str | None = None
    account_id: str | None = None

    @property
    def retried(self) -> bool:
        """True when the message must go back to the queue (the worker raises)."""
        return self.status in (OutcomeStatus.RETRYING, OutcomeStatus.DEAD_LETTERED, OutcomeStatus.WAITING)

    def as_dict(self) -> dict[str, Any]:
        return {
            key: str(value) if isinstance(value, StrEnum) else value for key, value in asdict(self).items()
        }
