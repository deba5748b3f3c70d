"""`sfintacct reconcile`: does every won deal have exactly one order, as Salesforce holds the deal now?

Won Opportunities (IsWon = true; --since narrows by CloseDate) are compared with the Intacct orders
whose reference (PONUMBER) is the Opportunity id, and with the crosswalk. What is found:

- missing_order      a won deal without an order that is still in business (none, or only Closed ones);
- duplicate_orders   more than one order in business for one deal;
- amount_differs     the order's total is not the Opportunity's Amount;
- customer_behind    the Account's mapped data is not what was last sent to its customer, or the
                     customer the crosswalk names is gone from Intacct;
- customer_edited    the customer's name in Intacct is not the one the mapping makes of the Account
                     (an edit made in Intacct; the Account's data was sent as it is).

Reads are batched: Salesforce by SOQL `IN` lists of 200 ids, Intacct by `query` with `in` lists of
100 references (paged), the crosswalk by GetItem per record. `--fix` sends a retry for each missing
order, differing amount and customer behind (an order deleted in Intacct is first marked deleted in the
crosswalk, so the worker makes a new one instead of answering "already synced"). Duplicate orders and
edits made in Intacct are never changed by the command: which order or which name is right is
finance's call.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from simple_salesforce.format import format_soql

from sfintacct.crosswalk import CrosswalkEntry, CrosswalkKind, CrosswalkStore
from sfintacct.intacct.client import SALES_DOCUMENT_FIELDS
from sfintacct.intacct.models import Customer, SalesDocument
from sfintacct.intacct.query import in_list
from sfintacct.mapping import load_mapping
from sfintacct.sync import order_fingerprint
from sfintacct.sync.customers import DIGEST_ATTRIBUTE, customer_digest
from sfintacct_ops.deployment import Deployment
from sfintacct_ops.queues import retry

FindingKind = Literal[
    "missing_order", "duplicate_orders", "amount_differs", "customer_behind", "customer_edited"
]
FIXED_BY_RETRY: frozenset[str] = frozenset({"missing_order", "amount_differs", "customer_behind"})
SALESFORCE_IDS_PER_QUERY = 200
INTACCT_REFERENCES_PER_QUERY = 100
OPPORTUNITY_FIELDS = ("Id", "Name", "AccountId", "Amount", "CloseDate")
RETIRED_STATE = "Closed"


class ReconcileError(Exception):
    """The reconciliation cannot run (a bad option)."""


@dataclass(frozen=True)
class Finding:
    """One difference: which record, what kind, what each side holds, and what was done about it."""

    kind: FindingKind
    record_id: str
    name: str
    detail: str
    salesforce: str = ""
    intacct: str = ""
    last_sync: str = ""
    fixed: str = ""

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass
class Reconciliation:
    since: date | None
    deals: int = 0
    orders: int = 0
    accounts: int = 0
    findings: list[Finding] = field(default_factory=list)
    fixed: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "since": self.since.isoformat() if self.since else None,
            "deals": self.deals,
            "orders": self.orders,
            "accounts": self.accounts,
            "findings": [finding.as_dict() for finding in self.findings],
            "fixed": self.fixed,
        }


def parse_since(text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ReconcileError(f"--since {text!r} is not a date (YYYY-MM-DD)") from None


def reconcile(
    deployment: Deployment, *, since: date | None = None, where: str | None = None, fix: bool = False
) -> Reconciliation:
    """Compare the won deals (closed on or after `since`, matching the SOQL condition `where`) with Intacct
    and the crosswalk; with `fix`, send a retry for each finding a retry repairs."""
    result = Reconciliation(since=since)
    deals = _won_deals(deployment, since, where)
    result.deals = len(deals)
    orders = _orders_by_reference(deployment, [deal["Id"] for deal in deals])
    result.orders = sum(len(found) for found in orders.values())
    crosswalk = deployment.crosswalk()
    for deal in deals:
        result.findings.extend(
            _deal_findings(deal, orders.get(deal["Id"], []), crosswalk.get(deal["Id"], CrosswalkKind.ORDER))
        )
    account_ids = sorted({str(deal["AccountId"]) for deal in deals if deal.get("AccountId")})
    result.accounts = len(account_ids)
    result.findings.extend(_customer_findings(deployment, account_ids))
    result.findings = [_with_last_sync(deployment, finding) for finding in result.findings]
    if fix:
        result.findings = _fix(deployment, result.findings)
        result.fixed = sum(1 for finding in result.findings if finding.fixed)
    return result


# ---------------------------------------------------------------------------- deals and orders


def _won_deals(deployment: Deployment, since: date | None, where: str | None) -> list[dict[str, Any]]:
    soql = f"SELECT {', '.join(OPPORTUNITY_FIELDS)} FROM Opportunity WHERE IsWon = true"  # noqa: S608 - constants
    if since is not None:
        soql += format_soql(" AND CloseDate >= {since}", since=since)
    if where and where.strip():
        soql += f" AND ({where.strip()})"  # the operator's own SOQL condition
    return deployment.salesforce_client().query(soql + " ORDER BY CloseDate, Id")


def _orders_by_reference(deployment: Deployment, references: Sequence[str]) -> dict[str, list[SalesDocument]]:
    """The documents whose PONUMBER is one of `references`, of every transaction type the mapping makes
    (the stack's, and e.g. Sales Invoice for deals approved straight to an invoice), as the workers look."""
    intacct = deployment.intacct_client()
    found: dict[str, list[SalesDocument]] = defaultdict(list)
    for transaction_type in load_mapping().transaction_types(deployment.transaction_type):
        for chunk in _chunks(references, INTACCT_REFERENCES_PER_QUERY):
            records = intacct.query(
                "SODOCUMENT",
                SALES_DOCUMENT_FIELDS,
                query_filter=in_list("PONUMBER", chunk),
                docparid=transaction_type,
            )
            for record in records:
                document = SalesDocument.from_record(record)
                found[document.reference_no].append(document)
    return found


def _deal_findings(
    deal: dict[str, Any], documents: list[SalesDocument], known: CrosswalkEntry | None
) -> list[Finding]:
    deal_id, name = str(deal["Id"]), str(deal.get("Name") or "")
    in_business = [document for document in documents if document.state_name != RETIRED_STATE]
    amount = _money(deal.get("Amount"))
    if not in_business:
        retired = ", ".join(f"{document.doc_id} (Closed)" for document in documents)
        remembered = f"; the crosswalk names {known.intacct_id}" if known and known.intacct_id else ""
        return [
            Finding(
                "missing_order",
                deal_id,
                name,
                f"won, but Intacct has no order in business for it{remembered}",
                salesforce=f"Amount {amount}",
                intacct=retired or "no order",
            )
        ]
    if len(in_business) > 1:
        listed = ", ".join(
            f"{document.doc_id} ({document.state_name}, {document.total})" for document in in_business
        )
        return [
            Finding(
                "duplicate_orders",
                deal_id,
                name,
                f"{len(in_business)} orders in business for one deal: keep one, close or delete the "
                "others in Intacct",
                salesforce=f"Amount {amount}",
                intacct=listed,
            )
        ]
    order = in_business[0]
    if amount is not None and order.total is not None and _money(order.total) != amount:
        return [
            Finding(
                "amount_differs",
                deal_id,
                name,
                f"the order's total is {_money(order.total)}, the Opportunity's Amount {amount}",
                salesforce=f"Amount {amount}",
                intacct=f"{order.doc_id} total {_money(order.total)}",
            )
        ]
    return []


def _money(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    return Decimal(str(value)).quantize(Decimal("0.01"))


# ---------------------------------------------------------------------------- customers


def _customer_findings(deployment: Deployment, account_ids: Sequence[str]) -> list[Finding]:
    if not account_ids:
        return []
    mapping = load_mapping()
    client = deployment.salesforce_client()
    fields = ", ".join(dict.fromkeys(("Id", *client.query_fields.account_fields)))
    accounts: list[dict[str, Any]] = []
    for chunk in _chunks(account_ids, SALESFORCE_IDS_PER_QUERY):
        accounts += client.query(format_soql(f"SELECT {fields} FROM Account WHERE Id IN {{ids}}", ids=chunk))  # noqa: S608 - field names from the mapping's checked settings
    crosswalk = deployment.crosswalk()
    known = {
        str(account["Id"]): entry
        for account in accounts
        if (entry := crosswalk.get(str(account["Id"]), CrosswalkKind.CUSTOMER)) is not None
        and entry.intacct_id
    }
    customers = _customers(deployment, [entry.intacct_id for entry in known.values() if entry.intacct_id])
    findings: list[Finding] = []
    for account in accounts:
        account_id = str(account["Id"])
        entry = known.get(account_id)
        if entry is None or not entry.intacct_id:
            continue  # never synced: its won deals show as missing orders
        name = str(account.get("Name") or "")
        customer = customers.get(entry.intacct_id)
        if customer is None:
            findings.append(
                Finding(
                    "customer_behind",
                    account_id,
                    name,
                    f"the crosswalk names customer {entry.intacct_id}, which Intacct does not have",
                    intacct="no customer",
                )
            )
        elif entry.attributes.get(DIGEST_ATTRIBUTE) != customer_digest(account, mapping):
            findings.append(
                Finding(
                    "customer_behind",
                    account_id,
                    name,
                    "the Account changed since its data was last sent to the customer",
                    intacct=f"customer {customer.customer_id} {customer.name!r}",
                )
            )
        elif customer.name != (wanted := mapping.new_customer(account, None).name):
            findings.append(
                Finding(
                    "customer_edited",
                    account_id,
                    name,
                    "the customer's name was changed in Intacct; change it back there, or change the Account "
                    "so the next sync sends it",
                    salesforce=wanted,
                    intacct=f"customer {customer.customer_id} {customer.name!r}",
                )
            )
    return findings


def _customers(deployment: Deployment, customer_ids: Sequence[str]) -> dict[str, Customer]:
    intacct = deployment.intacct_client()
    found: dict[str, Customer] = {}
    for chunk in _chunks(customer_ids, INTACCT_REFERENCES_PER_QUERY):
        for record in intacct.query(
            "CUSTOMER",
            ("RECORDNO", "CUSTOMERID", "NAME", "STATUS"),
            query_filter=in_list("CUSTOMERID", chunk),
        ):
            customer = Customer.from_record(record)
            found[customer.customer_id] = customer
    return found


# ---------------------------------------------------------------------------- context and fixes


def _with_last_sync(deployment: Deployment, finding: Finding) -> Finding:
    history = deployment.sync_log().history(finding.record_id)
    if not history:
        return replace(finding, last_sync="never synced")
    last = history[-1]
    return replace(
        finding, last_sync=f"{last.status}/{last.reason} at {last.at.isoformat(timespec='seconds')}"
    )


def _fix(deployment: Deployment, findings: list[Finding]) -> list[Finding]:
    fixable = [finding for finding in findings if finding.kind in FIXED_BY_RETRY]
    if not fixable:
        return findings
    crosswalk = deployment.crosswalk()
    for finding in fixable:
        if finding.kind == "missing_order":
            _forget_vanished_order(crosswalk, finding.record_id)
    sent = {
        request.record_id: request.producer_id
        for request in retry(deployment, _unique(f.record_id for f in fixable))
    }
    return [
        replace(finding, fixed=f"retry sent ({sent[finding.record_id]})")
        if finding.record_id in sent
        else finding
        for finding in findings
    ]


def _forget_vanished_order(crosswalk: CrosswalkStore, opportunity_id: str) -> None:
    """The crosswalk names an order that is no longer in business: mark it deleted, so the worker makes a
    new one (as for a deal won again after its order was retired) instead of answering already synced."""
    entry = crosswalk.get(opportunity_id, CrosswalkKind.ORDER)
    if entry is None or not entry.is_complete or not entry.intacct_id:
        return
    if entry.attributes.get(order_fingerprint.STATE) in ("closed", "deleted"):
        return
    crosswalk.put_mapping(
        opportunity_id,
        CrosswalkKind.ORDER,
        entry.intacct_id,
        entry.source_modified_at,
        attributes={**entry.attributes, order_fingerprint.STATE: "deleted"},
    )


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _chunks(values: Sequence[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield list(values[start : start + size])
