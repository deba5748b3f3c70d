"""`sfintacct status ID...`: a record's whole story, from every place that keeps part of it.

- the sync log: every outcome, oldest first;
- the crosswalk: the record's entries (an Opportunity's ORDER and its Account's CUSTOMER, locks too);
- Intacct: the customer, or the orders under PONUMBER = the Opportunity id with their lines and state;
- Salesforce: the Intacct_* fields the workers write (and StageName, IsWon, Amount of an Opportunity).

Each part is read on its own: one that cannot be read is reported with its error and the others are
still shown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sfintacct.crosswalk import CrosswalkEntry, CrosswalkKind
from sfintacct.mapping import load_mapping
from sfintacct.salesforce_fields import written_fields
from sfintacct.sync_request import SyncObjectType
from sfintacct_ops.deployment import Deployment
from sfintacct_ops.records import object_type_of

OPPORTUNITY_FIELDS = ("Id", "Name", "AccountId", "StageName", "IsWon", "Amount", "LastModifiedDate")
ACCOUNT_FIELDS = ("Id", "Name", "Type", "LastModifiedDate")
CROSSWALK_KINDS: dict[SyncObjectType, tuple[CrosswalkKind, ...]] = {
    "Account": (CrosswalkKind.CUSTOMER, CrosswalkKind.CUSTOMER_WRITE),
    "Opportunity": (CrosswalkKind.ORDER, CrosswalkKind.ORDER_WRITE),
}


@dataclass
class RecordStatus:
    """What every source says about one record; `errors` names the parts that could not be read."""

    record_id: str
    object_type: SyncObjectType
    salesforce: dict[str, Any] | None = None
    sync_log: list[dict[str, Any]] = field(default_factory=list)
    crosswalk: list[dict[str, Any]] = field(default_factory=list)
    intacct: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = plain(asdict(self))
        return data


def record_status(deployment: Deployment, record_id: str) -> RecordStatus:
    """Read the record's story from Salesforce, the sync log, the crosswalk and Intacct."""
    object_type = object_type_of(record_id)
    status = RecordStatus(record_id=record_id, object_type=object_type)

    def part(name: str, read: Callable[[], None]) -> None:
        try:
            read()
        except Exception as error:  # one unreadable part must not hide the others
            status.errors.append(f"{name}: {type(error).__name__}: {error}")

    part("salesforce", lambda: _read_salesforce(deployment, status))
    part("sync log", lambda: _read_sync_log(deployment, status))
    part("crosswalk", lambda: _read_crosswalk(deployment, status))
    part("intacct", lambda: _read_intacct(deployment, status))
    return status


def intacct_field_names(object_type: str) -> tuple[str, ...]:
    """The Intacct_* fields the workers write on this object (sfintacct.salesforce_fields)."""
    return tuple(written.name for written in written_fields() if written.object_type == object_type)


def _read_salesforce(deployment: Deployment, status: RecordStatus) -> None:
    fields = OPPORTUNITY_FIELDS if status.object_type == "Opportunity" else ACCOUNT_FIELDS
    names = ", ".join((*fields, *intacct_field_names(status.object_type)))
    rows = deployment.salesforce_client().query(
        f"SELECT {names} FROM {status.object_type} WHERE Id = '{status.record_id}'"  # noqa: S608 - a checked id
    )
    if not rows:
        status.errors.append(f"salesforce: no {status.object_type} {status.record_id}")
        return
    status.salesforce = rows[0]


def _account_id(status: RecordStatus) -> str | None:
    """The Opportunity's Account: from Salesforce, else from the sync log."""
    if status.salesforce and status.salesforce.get("AccountId"):
        return str(status.salesforce["AccountId"])
    for entry in reversed(status.sync_log):
        if entry.get("account_id"):
            return str(entry["account_id"])
    return None


def _read_sync_log(deployment: Deployment, status: RecordStatus) -> None:
    status.sync_log = [asdict(entry) for entry in deployment.sync_log().history(status.record_id)]


def _read_crosswalk(deployment: Deployment, status: RecordStatus) -> None:
    crosswalk = deployment.crosswalk()
    wanted: list[tuple[str, CrosswalkKind]] = [
        (status.record_id, kind) for kind in CROSSWALK_KINDS[status.object_type]
    ]
    account_id = _account_id(status) if status.object_type == "Opportunity" else None
    if account_id:
        wanted.append((account_id, CrosswalkKind.CUSTOMER))
    for sf_id, kind in wanted:
        entry = crosswalk.get(sf_id, kind)
        if entry is not None:
            status.crosswalk.append(_crosswalk_dict(entry))


def _crosswalk_dict(entry: CrosswalkEntry) -> dict[str, Any]:
    return {
        "sf_id": entry.sf_id,
        "kind": entry.kind.value,
        "status": entry.status.value,
        "intacct_id": entry.intacct_id,
        "attempt": entry.attempt,
        "source_modified_at": entry.source_modified_at,
        "refused_source_modified_at": entry.refused_source_modified_at,
        "claim_owner": entry.claim_owner,
        "lease_expires_at": entry.lease_expires_at,
        "updated_at": entry.updated_at,
        "attributes": dict(entry.attributes),
    }


def _read_intacct(deployment: Deployment, status: RecordStatus) -> None:
    intacct = deployment.intacct_client()
    if status.object_type == "Opportunity":
        documents = [  # under every transaction type the mapping makes, as the workers look
            document
            for transaction_type in load_mapping().transaction_types(deployment.transaction_type)
            for document in intacct.find_sales_documents(
                reference_no=status.record_id, transaction_type=transaction_type
            )
        ]
        status.intacct["orders"] = [
            {
                "doc_id": document.doc_id,
                "doc_no": document.doc_no,
                "transaction_type": document.transaction_type or deployment.transaction_type,
                "state": document.state_name,
                "customer_id": document.customer_id,
                "reference_no": document.reference_no,
                "date_created": document.date_created,
                "total": document.total,
                "lines": [
                    {
                        "line_no": line.line_no,
                        "item_id": line.item_id,
                        "quantity": line.quantity,
                        "price": line.price,
                        "total": line.total,
                        "memo": line.memo,
                    }
                    for line in intacct.get_sales_document_lines(
                        document.doc_id,
                        transaction_type=document.transaction_type or deployment.transaction_type,
                    )
                ],
            }
            for document in documents
        ]
        return
    customer_ids = [
        entry["intacct_id"]
        for entry in status.crosswalk
        if entry["kind"] == CrosswalkKind.CUSTOMER.value and entry["intacct_id"]
    ]
    customers = (
        [found for found in (intacct.get_customer(customer_ids[0]),) if found is not None]
        if customer_ids
        else intacct.find_customers("SALESFORCE_ID", status.record_id)
    )
    status.intacct["customers"] = [
        {
            "customer_id": customer.customer_id,
            "name": customer.name,
            "status": customer.status,
            "record_no": customer.record_no,
        }
        for customer in customers
    ]


def plain(value: Any) -> Any:
    """JSON-ready: datetimes as ISO text, Decimals as text (no float rounding), recursively."""
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


# ---------------------------------------------------------------------------- human output


def render(status: RecordStatus) -> str:
    data = status.as_dict()
    salesforce = data["salesforce"] or {}
    title = f" {salesforce['Name']!r}" if salesforce.get("Name") else ""
    lines = [f"{status.object_type} {status.record_id}{title}"]
    lines += _render_salesforce(salesforce)
    lines += _render_sync_log(data["sync_log"])
    lines += _render_crosswalk(data["crosswalk"], status.record_id)
    lines += _render_intacct(data["intacct"], status.record_id)
    if status.errors:
        lines.append("  Problems")
        lines.extend(f"    {error}" for error in status.errors)
    return "\n".join(lines)


def _render_salesforce(salesforce: dict[str, Any]) -> list[str]:
    lines = ["  Salesforce"]
    if not salesforce:
        return [*lines, "    (not read)"]
    shown = [name for name in salesforce if name not in ("Id", "Name")]
    return lines + [f"    {name:<26} {_text(salesforce[name])}" for name in shown]


def _render_sync_log(entries: list[dict[str, Any]]) -> list[str]:
    lines = ["  Sync log (oldest first)"]
    if not entries:
        lines.append("    (nothing logged)")
    for entry in entries:
        ids = " ".join(
            f"{label}={entry[key]}"
            for label, key in (("customer", "intacct_customer_id"), ("order", "intacct_order_id"))
            if entry.get(key)
        )
        lines.append(
            f"    {entry['at']}  {entry['status']}/{entry['reason']}  {entry['source']} "
            f"{entry['producer_id']}  {ids}".rstrip()
        )
        if entry.get("message"):
            lines.append(f"        {entry['message']}")
    return lines


def _render_crosswalk(entries: list[dict[str, Any]], record_id: str) -> list[str]:
    lines = ["  Crosswalk"]
    if not entries:
        lines.append("    (no entry)")
    for entry in entries:
        owner = "" if entry["sf_id"] == record_id else f" (of {entry['sf_id']})"
        lines.append(
            f"    {entry['kind']}{owner}  {entry['status']}  intacct_id={entry['intacct_id']}  "
            f"attempt={entry['attempt']}  source_modified_at={entry['source_modified_at']}  "
            f"updated_at={entry['updated_at']}"
        )
        if entry["status"] == "CLAIMED":  # a claim or a write lock: whose, and until when
            lines.append(f"        claimed by {entry['claim_owner']} until {entry['lease_expires_at']}")
        lines.extend(f"        {name} = {value}" for name, value in sorted(entry["attributes"].items()))
    return lines


def _render_intacct(intacct: dict[str, Any], record_id: str) -> list[str]:
    lines = ["  Intacct"]
    if "orders" in intacct:
        if not intacct["orders"]:
            lines.append(f"    no order with PONUMBER {record_id}")
        for order in intacct["orders"]:
            lines.append(
                f"    {order['doc_id']}  state={order['state']}  customer={order['customer_id']}  "
                f"total={order['total']}"
            )
            lines.extend(
                f"      line {line['line_no']}: {line['item_id']}  quantity {line['quantity']}  "
                f"price {line['price']}  total {line['total']}"
                for line in order["lines"]
            )
    elif "customers" in intacct:
        if not intacct["customers"]:
            lines.append("    no customer")
        lines.extend(
            f"    customer {customer['customer_id']}  {customer['name']!r}  {customer['status']}"
            for customer in intacct["customers"]
        )
    else:
        lines.append("    (not read)")
    return lines


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
