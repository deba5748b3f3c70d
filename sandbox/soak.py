"""`make soak`: many closed-won deals through the local stack under chaos, then a check of what holds.

It starts a fresh local stack (like `make demo` and `make bench`) and pushes `--deals N` closed-won
Opportunities through the real flow while it injects chaos, then clears every fault, waits until the
stack has settled and checks the sandboxes' OWN state against the deals:

  lost                 a closed-won Opportunity without an Intacct order whose PONUMBER is its id, or an
                       Account of such a deal without a customer whose SALESFORCE_ID is its id
  duplicated           more than one order per Opportunity or more than one customer per Account
  stray                an order or customer the soak made that belongs to none of its deals
  wrong                an order whose lines differ from the Opportunity's line items (item, quantity,
                       price, discount), or that is on another customer than the deal's Account's
  missing write-backs  Opportunity Intacct_Order_Id__c != the order's DOCID or Intacct_Sync_Status__c !=
                       Synced; Account Intacct_Customer_Id__c != the customer's CUSTOMERID
  stale customers      a customer whose NAME is not its Account's current Name (the rep renames some)
  dead letters         a message left in a dead-letter queue that the soak did not cause on purpose (it
                       causes none: every fault it injects is transient)

The chaos, drawn from `--seed` (the plan is the same for a seed; timings are not):

  faults         Intacct: latency, 5xx, 429, 524 after commit, dropped connection after commit,
                 off-line for a moment, expired sessions. Salesforce: latency, 500/503 (all requests, or
                 only the composite write-backs, the queries or the token requests), expired tokens.
  duplicates     the same notification again: a copy of the Outbound Message Salesforce sent (at once,
                 racing the original, or a few deals later), a signed Platform Event for the same
                 change, a repeated event, and a late wave after the stack first settled.
  collisions     one notification id for two deals: an Outbound Message for deal B reusing deal A's
                 notification Id, a signed event reusing another deal's EventUuid, and one request whose
                 two events share an EventUuid. Deal B is closed by a user whose changes Salesforce does
                 not notify (the Opportunity Outbound Message leaves that user out for the soak, like a
                 Flow entry condition on the running user), so the colliding notification is its ONLY
                 one: work deduplicated on the envelope's id alone would lose it.
  edits          the rep edits the Opportunity right after closing it, and renames Accounts right after
                 a close or a while later (as their deals' retries may be under way).
  kills          worker processes killed with SIGKILL at random sync checkpoints through the local
                 stack's crash plan (`stack.workers.crash_at`), when the stack has one (see WorkerKills).

Accounts: most deals are on Accounts synced before (customers in Intacct), some on Accounts Intacct has
never heard of (made by the integration user, so no Account Outbound Message; the customer is created
with the order), some on Accounts the rep creates right before closing the deal (the Account's own
sync races the order's). Lines: the demo's three lines (one free at price 0) or random ones.

Output: a table, the problems found (each with what the sandboxes and the sync log held), and one JSON
line with every figure (`--json`: that line only). Exit 0 when every check passes, 1 when one fails, 2
when the stack did not settle.

    PYTHONPATH=layers/sync:. .venv/bin/python -m sandbox.soak --deals 30 --seed 7
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import logging
import os
import random
import ssl
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar
from urllib.parse import urlsplit

import httpx

from sandbox.aws_local import dynamodb_client, secretsmanager_client, sqs_client
from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.sales_rep import PRODUCTS, THREE_LINES, Line, SalesRep
from sandbox.salesforce.admin_client import SalesforceAdminClient
from sandbox.salesforce.ids import IdGenerator
from sandbox.salesforce.outbound import (
    MessageContext,
    OutboundMessageDefinition,
    build_notifications_envelope,
    definition_from_json,
)
from sandbox.stack import LocalStack, start_local_stack
from sfintacct.sync.service import CHECKPOINTS
from sfintacct.sync.sync_log import SyncLog

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

DEFAULT_DEALS = 300
DEFAULT_SEED = 1
VISIBILITY_SECONDS = 10  # the local queues' visibility timeout, as the demo, bench and tests use
SETTLE_SECONDS = 300.0
FAULTS_LINGER_SECONDS = 30.0  # after the last deal, how long the workers may meet the faults still pending
ORDER_FUNCTION = "OpportunityToOrderFunction"
CUSTOMER_FUNCTION = "CustomerUpsertFunction"
OPPORTUNITY_MESSAGE = "Opportunity_Closed_Won"
SYNCED = "Synced"
EXIT_PASSED, EXIT_FOUND, EXIT_NOT_SETTLED = 0, 1, 2
CHECK_NAMES = (
    "lost",
    "duplicated",
    "stray",
    "wrong",
    "missing_write_backs",
    "stale_customers",
    "unexplained_dead_letters",
)
REP_ATTEMPTS = 12
INTAKE_ATTEMPTS = 6
SHOWN_PROBLEMS = 40

AccountKind = Literal["synced", "new", "racing"]
# How Salesforce hears of the close: "outbound" = the rep closes it and Salesforce sends its Outbound
# Message; every other notice = a quiet close (no Outbound Message) and the soak's own notification.
Notice = Literal[
    "outbound", "event", "own_outbound", "collision_outbound", "collision_event", "collision_batch"
]
COLLISIONS: tuple[Notice, ...] = ("collision_outbound", "collision_event", "collision_batch")
FAULT_KINDS = (
    "intacct_latency",
    "intacct_5xx",
    "intacct_429",
    "intacct_524_after_commit",
    "intacct_drop_after_commit",
    "intacct_offline",
    "intacct_expire_sessions",
    "salesforce_latency",
    "salesforce_5xx",
    "salesforce_expire_tokens",
)


_T = TypeVar("_T")


class SoakError(Exception):
    """The soak could not set up or drive the flow (not a finding about the product)."""


# ---------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Fault:
    kind: str  # one of FAULT_KINDS
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Kill:
    """Kill `function`'s worker process when it reaches `step` for this deal (else: for the next record)."""

    function: str
    step: str  # one of sfintacct.sync.service.CHECKPOINTS
    this_deal: bool = True


@dataclass(frozen=True)
class DealPlan:
    """What happens to deal `index`: drawn from the seed before anything runs."""

    index: int
    account_kind: AccountKind
    account_slot: int  # which synced or new Account (racing: one of its own)
    lines: tuple[Line, ...]
    notice: Notice
    duplicates: tuple[str, ...] = ()  # "copy_now", "copy_later", "event_same_change", "event_repeat"
    late_duplicate: bool = False  # notified once more after the stack first settled
    edit: bool = False
    # The rep renames the deal's Account this many deals after the close (0: right after it; later,
    # its deals' retries may be under way), or never (None).
    account_edit: int | None = None
    faults: tuple[Fault, ...] = ()  # injected right before this deal is closed
    kill: Kill | None = None  # planned right before this deal is closed


@dataclass(frozen=True)
class SoakPlan:
    seed: int
    synced_accounts: int
    new_accounts: int
    deals: tuple[DealPlan, ...]


def make_plan(deals: int, seed: int, *, kills: bool = True) -> SoakPlan:
    """The deals and the chaos for `seed`; with 8 deals or more every kind of chaos occurs at least once."""
    rng = random.Random(seed)
    synced_accounts = max(2, deals // 15)
    new_slot = -1
    plans: list[DealPlan] = []
    for index in range(deals):
        kind: AccountKind = _weighted(rng, {"synced": 60, "new": 25, "racing": 15})
        if kind == "synced":
            slot = rng.randrange(synced_accounts)
        elif kind == "new":
            # Two deals in a row on one new Account now and then: both race to create its customer.
            slot = new_slot if new_slot >= 0 and rng.random() < 0.3 else new_slot + 1
            new_slot = slot
        else:
            slot = index
        notice: Notice = _weighted(
            rng,
            {
                "outbound": 55,
                "event": 12,
                "own_outbound": 8,
                "collision_outbound": 10,
                "collision_event": 8,
                "collision_batch": 7,
            },
        )
        if index == 0:
            notice = "outbound"  # the first collision needs a real notification id to reuse
        plans.append(
            DealPlan(
                index=index,
                account_kind=kind,
                account_slot=slot,
                lines=_lines(rng),
                notice=notice,
                duplicates=_duplicates(rng, notice),
                late_duplicate=rng.random() < 0.08,
                edit=rng.random() < 0.3,
                account_edit=rng.choice([0, rng.randint(5, 60)])
                if kind != "racing" and rng.random() < 0.1
                else None,
                faults=_faults(rng),
                kill=_kill(rng) if kills and rng.random() < 0.1 else None,
            )
        )
    if deals >= 8:
        _ensure_coverage(plans, rng, kills=kills)
    new_accounts = 1 + max((plan.account_slot for plan in plans if plan.account_kind == "new"), default=-1)
    return SoakPlan(seed=seed, synced_accounts=synced_accounts, new_accounts=new_accounts, deals=tuple(plans))


def _weighted(rng: random.Random, weights: Mapping[_T, int]) -> _T:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def _lines(rng: random.Random) -> tuple[Line, ...]:
    if rng.random() < 0.5:
        return THREE_LINES
    lines = []
    for code, _, list_price in rng.sample(PRODUCTS, rng.randint(1, len(PRODUCTS))):
        price = list_price if rng.random() < 0.5 else Decimal(rng.randint(100, 2_000_000)) / 100
        discount = rng.choice([None, None, Decimal(0), Decimal(5), Decimal("12.5")])
        lines.append(Line(code, Decimal(rng.randint(1, 5)), price, discount=discount))
    if rng.random() < 0.3:
        free = lines[-1]
        lines[-1] = Line(free.product_code, free.quantity, Decimal(0), description="Free in the soak")
    return tuple(lines)


def _duplicates(rng: random.Random, notice: Notice) -> tuple[str, ...]:
    duplicates = []
    if notice in ("outbound", "own_outbound"):
        if rng.random() < 0.3:
            duplicates.append("copy_now")
        if rng.random() < 0.2:
            duplicates.append("copy_later")
    if notice == "outbound" and rng.random() < 0.15:
        duplicates.append("event_same_change")
    if notice == "event" and rng.random() < 0.3:
        duplicates.append("event_repeat")
    return tuple(duplicates)


def _faults(rng: random.Random) -> tuple[Fault, ...]:
    roll = rng.random()
    count = 2 if roll < 0.1 else 1 if roll < 0.45 else 0
    return tuple(_fault(rng) for _ in range(count))


def _fault(rng: random.Random) -> Fault:
    kind = _weighted(
        rng,
        {
            "intacct_latency": 6,
            "intacct_5xx": 12,
            "intacct_429": 8,
            "intacct_524_after_commit": 10,
            "intacct_drop_after_commit": 8,
            "intacct_offline": 4,
            "intacct_expire_sessions": 4,
            "salesforce_latency": 5,
            "salesforce_5xx": 12,
            "salesforce_expire_tokens": 4,
        },
    )
    # An after-commit fault on any request, or only on the writes that matter.
    target = rng.choice([None, "create_sotransaction", "create_sotransaction", "create"])
    options: dict[str, dict[str, Any]] = {
        "intacct_latency": {"latency_ms": rng.randint(50, 400), "deals": rng.randint(2, 6)},
        "intacct_5xx": {"count": rng.randint(1, 3), "status": rng.choice([500, 502, 503])},
        "intacct_429": {"count": rng.randint(1, 3)},
        "intacct_524_after_commit": {"count": 1, "function": target},
        "intacct_drop_after_commit": {"count": 1, "function": target},
        "intacct_offline": {"seconds": rng.choice([0.3, 0.6, 1.0, 1.5])},
        "intacct_expire_sessions": {},
        "salesforce_latency": {"latency_ms": rng.randint(20, 150), "deals": rng.randint(2, 6)},
        "salesforce_5xx": {
            "count": rng.randint(1, 3),
            "status": rng.choice([500, 503]),
            "path": rng.choice(["", "/composite", "/query", "/oauth2/token"]),
        },
        "salesforce_expire_tokens": {},
    }
    return Fault(kind, options[kind])


def _kill(rng: random.Random) -> Kill:
    if rng.random() < 0.15:  # the customer worker, at the next Account it syncs
        return Kill(CUSTOMER_FUNCTION, rng.choice(CHECKPOINTS), this_deal=False)
    return Kill(ORDER_FUNCTION, rng.choice(CHECKPOINTS))


def _ensure_coverage(plans: list[DealPlan], rng: random.Random, *, kills: bool) -> None:
    """At least one of every kind of chaos, on deals chosen from the seed (for small N).

    A deal's account kind and notice are changed only on a deal that is not the last one with its own.
    """
    exclusive: list[tuple[Callable[[DealPlan], bool], Callable[[DealPlan], DealPlan]]] = [
        (lambda p: p.account_kind == "new", lambda p: replace(p, account_kind="new", account_slot=0)),
        (
            lambda p: p.account_kind == "racing",
            lambda p: replace(p, account_kind="racing", account_slot=p.index, account_edit=None),
        ),
        (
            lambda p: p.notice == "collision_outbound",
            lambda p: replace(p, notice="collision_outbound", duplicates=()),
        ),
        (
            lambda p: p.notice == "collision_event",
            lambda p: replace(p, notice="collision_event", duplicates=()),
        ),
        (
            lambda p: bool(p.duplicates),
            lambda p: replace(p, notice="outbound", duplicates=("copy_now", "event_same_change")),
        ),
    ]
    changed: set[int] = {0}  # deal 0 stays a plain Outbound Message (see make_plan)
    for has, change in exclusive:
        if any(has(plan) for plan in plans):
            continue
        candidates = [
            plan.index
            for plan in plans
            if plan.index not in changed
            and not any(holds(plan) and sum(map(holds, plans)) == 1 for holds, _ in exclusive)
        ]
        if candidates:
            index = rng.choice(candidates)
            changed.add(index)
            plans[index] = change(plans[index])
    additive: list[tuple[Callable[[DealPlan], bool], Callable[[DealPlan], DealPlan]]] = [
        (lambda p: p.edit, lambda p: replace(p, edit=True)),
        (
            lambda p: any(f.kind == "intacct_524_after_commit" for f in p.faults),
            lambda p: replace(
                p,
                faults=(
                    *p.faults,
                    Fault("intacct_524_after_commit", {"count": 1, "function": "create_sotransaction"}),
                ),
            ),
        ),
        (
            lambda p: any(f.kind == "salesforce_5xx" for f in p.faults),
            lambda p: replace(
                p,
                faults=(
                    *p.faults,
                    Fault("salesforce_5xx", {"count": 1, "status": 503, "path": "/composite"}),
                ),
            ),
        ),
    ]
    if kills:
        additive.append(
            (
                lambda p: p.kill is not None,
                # A step every Opportunity reaches on its first attempt (or, failing before it, the next).
                lambda p: replace(p, kill=Kill(ORDER_FUNCTION, "before_intacct_write", this_deal=False)),
            )
        )
    for has, change in additive:
        if not any(has(plan) for plan in plans):
            index = rng.randrange(len(plans))
            plans[index] = change(plans[index])


# ---------------------------------------------------------------------------- the checks


@dataclass(frozen=True)
class SandboxState:
    """What the sandboxes hold at the end, as their admin APIs and the dead-letter queues give it."""

    customers: Sequence[Mapping[str, Any]]  # Intacct CUSTOMER records
    orders: Sequence[Mapping[str, Any]]  # Intacct SODOCUMENT records
    order_lines: Sequence[Mapping[str, Any]]  # Intacct SODOCUMENTENTRY records
    opportunities: Sequence[Mapping[str, Any]]  # Salesforce Opportunity records
    accounts: Sequence[Mapping[str, Any]]  # Salesforce Account records
    line_items: Sequence[Mapping[str, Any]]  # Salesforce OpportunityLineItem records
    dead_letters: Sequence[
        Mapping[str, Any]
    ]  # {"function", "message_id", "object_type", "record_id", "body"}


@dataclass(frozen=True)
class Expectation:
    """The soak's deals and what to leave out of the checks."""

    opportunities: Mapping[str, str]  # closed-won Opportunity id -> its Account id
    accounts: Collection[str]  # every Account the soak made or used
    explained_dead_letters: Mapping[str, str] = field(default_factory=dict)  # record id -> why
    # Records that were there before the soak (a shared stack): Intacct RECORDNOs, SQS message ids.
    earlier_customers: Collection[str] = ()
    earlier_orders: Collection[str] = ()
    earlier_dead_letters: Collection[str] = ()


@dataclass(frozen=True)
class Problem:
    check: str  # one of CHECK_NAMES
    record_id: str  # the Salesforce id it is about (or an Intacct id for a stray record)
    what: str
    held: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.check, "record_id": self.record_id, "what": self.what, "held": dict(self.held)}


@dataclass
class Findings:
    problems: list[Problem] = field(default_factory=list)
    explained_dead_letters: int = 0

    def add(self, check: str, record_id: str, what: str, **held: Any) -> None:
        self.problems.append(Problem(check, record_id, what, held))

    def counts(self) -> dict[str, int]:
        found = Counter(problem.check for problem in self.problems)
        return {name: found.get(name, 0) for name in CHECK_NAMES}

    @property
    def passed(self) -> bool:
        return not self.problems


def check(expected: Expectation, state: SandboxState) -> Findings:
    """Every check of the module doc, on the sandboxes' own records; each problem says what was held."""
    findings = Findings()
    opportunities = {str(record["Id"]): record for record in state.opportunities}
    accounts = {str(record["Id"]): record for record in state.accounts}
    earlier_customers, earlier_orders = set(expected.earlier_customers), set(expected.earlier_orders)
    customers_by_account: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for customer in state.customers:
        if str(customer.get("RECORDNO")) in earlier_customers:
            continue
        account_id = str(customer.get("SALESFORCE_ID") or "")
        if account_id in expected.accounts:
            customers_by_account[account_id].append(customer)
        else:
            findings.add(
                "stray",
                str(customer.get("CUSTOMERID")),
                "an Intacct customer of none of the soak's Accounts",
                customer=_brief(customer, "CUSTOMERID", "NAME", "SALESFORCE_ID"),
            )
    orders_by_opportunity: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for order in state.orders:
        if str(order.get("DOCID")) in earlier_orders:
            continue
        opportunity_id = str(order.get("PONUMBER") or "")
        if opportunity_id in expected.opportunities:
            orders_by_opportunity[opportunity_id].append(order)
        else:
            findings.add(
                "stray",
                str(order.get("DOCID")),
                "an Intacct order of none of the soak's Opportunities",
                order=_brief(order, "DOCID", "PONUMBER", "CUSTVENDID"),
            )
    lines_by_order: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for line in state.order_lines:
        lines_by_order[str(line.get("DOCHDRID"))].append(line)
    items_by_opportunity: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for item in state.line_items:
        if not item.get("IsDeleted"):
            items_by_opportunity[str(item.get("OpportunityId"))].append(item)

    deal_accounts = set(expected.opportunities.values())
    customer_of: dict[str, Mapping[str, Any]] = {}
    for account_id in sorted(expected.accounts):
        found = customers_by_account.get(account_id, [])
        account = accounts.get(account_id, {})
        if len(found) > 1:
            findings.add(
                "duplicated",
                account_id,
                f"{len(found)} Intacct customers for one Account",
                customers=[_brief(c, "CUSTOMERID", "NAME", "WHENCREATED") for c in found],
            )
        if not found:
            if account_id in deal_accounts:
                findings.add("lost", account_id, "no Intacct customer for the Account of a closed-won deal")
            continue
        customer = found[0]
        customer_of[account_id] = customer
        if account.get("Intacct_Customer_Id__c") != customer.get("CUSTOMERID"):
            findings.add(
                "missing_write_backs",
                account_id,
                "the Account's Intacct_Customer_Id__c is not its customer's CUSTOMERID",
                account=_brief(
                    account, "Intacct_Customer_Id__c", "Intacct_Sync_Status__c", "Intacct_Sync_Error__c"
                ),
                customer_id=customer.get("CUSTOMERID"),
            )
        if account and customer.get("NAME") != account.get("Name"):
            findings.add(
                "stale_customers",
                account_id,
                "the customer's NAME is not the Account's current Name",
                customer={
                    **_brief(customer, "NAME", "WHENMODIFIED"),
                    "PHONE1": (customer.get("DISPLAYCONTACT") or {}).get("PHONE1"),
                },
                account=_brief(account, "Name", "Phone", "LastModifiedDate", "Intacct_Last_Synced__c"),
            )

    for opportunity_id, planned_account_id in sorted(expected.opportunities.items()):
        opportunity = opportunities.get(opportunity_id, {})
        orders = orders_by_opportunity.get(opportunity_id, [])
        if not orders:
            findings.add(
                "lost",
                opportunity_id,
                "no Intacct order with PONUMBER = the closed-won Opportunity's id",
                opportunity=_brief(
                    opportunity,
                    "StageName",
                    "Intacct_Order_Id__c",
                    "Intacct_Sync_Status__c",
                    "Intacct_Sync_Error__c",
                ),
            )
            continue
        if len(orders) > 1:
            findings.add(
                "duplicated",
                opportunity_id,
                f"{len(orders)} Intacct orders for one Opportunity",
                orders=[_brief(o, "DOCID", "CUSTVENDID", "WHENMODIFIED") for o in orders],
                write_back=opportunity.get("Intacct_Order_Id__c"),
            )
        order = orders[0]
        doc_id = str(order.get("DOCID"))
        want = sorted(_salesforce_line(item) for item in items_by_opportunity.get(opportunity_id, []))
        got = sorted(_intacct_line(line) for line in lines_by_order.get(doc_id, []))
        if want != got:
            findings.add(
                "wrong",
                opportunity_id,
                "the order's lines are not the Opportunity's line items (item, quantity, price, discount)",
                order=doc_id,
                salesforce=[list(line) for line in want],
                intacct=[list(line) for line in got],
            )
        account_customer = customer_of.get(str(opportunity.get("AccountId") or planned_account_id))
        if account_customer is not None and order.get("CUSTVENDID") != account_customer.get("CUSTOMERID"):
            findings.add(
                "wrong",
                opportunity_id,
                "the order is on another customer than the Opportunity's Account's",
                order=doc_id,
                order_customer=order.get("CUSTVENDID"),
                account_customer=account_customer.get("CUSTOMERID"),
            )
        if len(orders) == 1 and (
            opportunity.get("Intacct_Order_Id__c") != doc_id
            or opportunity.get("Intacct_Sync_Status__c") != SYNCED
        ):
            findings.add(
                "missing_write_backs",
                opportunity_id,
                "the Opportunity does not say Synced with its order's DOCID",
                order=doc_id,
                opportunity=_brief(
                    opportunity, "Intacct_Order_Id__c", "Intacct_Sync_Status__c", "Intacct_Sync_Error__c"
                ),
            )

    earlier_dead_letters = set(expected.earlier_dead_letters)
    for message in state.dead_letters:
        if str(message.get("message_id")) in earlier_dead_letters:
            continue
        record_id = str(message.get("record_id") or "")
        if record_id and record_id in expected.explained_dead_letters:
            findings.explained_dead_letters += 1
            continue
        findings.add(
            "unexplained_dead_letters",
            record_id or str(message.get("message_id")),
            f"a message left in {message.get('function')}'s dead-letter queue",
            body=message.get("body"),
        )
    return findings


def _brief(record: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {name: record.get(name) for name in names}


def _number(value: Any) -> Decimal:
    """A quantity, price or discount as an exact number; empty is 0 (Intacct leaves a 0 discount empty)."""
    if value is None or value == "":
        return Decimal(0)
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return Decimal("NaN")
    return number.normalize() + 0


def _text(value: Any) -> str:
    return format(_number(value), "f")


def _salesforce_line(item: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (
        str(item.get("ProductCode")),
        _text(item.get("Quantity")),
        _text(item.get("UnitPrice")),
        _text(item.get("Discount")),
    )


def _intacct_line(line: Mapping[str, Any]) -> tuple[str, str, str, str]:
    return (
        str(line.get("ITEMID")),
        _text(line.get("QUANTITY")),
        _text(line.get("PRICE")),
        _text(line.get("DISCOUNT")),
    )


# ---------------------------------------------------------------------------- acting in Salesforce


class PatientRep(SalesRep):
    """A SalesRep that rides out the chaos: a 5xx, a dropped connection or an expired session is tried again.

    Faults hit a request before it runs, so trying again never does anything twice. `calls` counts every
    REST request this rep sent (the sandbox counts them too; they are not the workers').
    """

    def __init__(self, salesforce: Mapping[str, Any], *, username: str | None = None) -> None:
        self.calls = 0
        super().__init__(salesforce, username=username)

    def _send(self, method: str, path: str, expected: int, **options: Any) -> httpx.Response:
        problem = ""
        for attempt in range(REP_ATTEMPTS):
            if attempt:
                time.sleep(min(2.0, 0.1 * 2**attempt))
            self.calls += 1
            try:
                response = self.http.request(method, path, **options)
            except httpx.TransportError as error:
                problem = f"{type(error).__name__}: {error}"
                continue
            if response.status_code == expected:
                return response
            problem = f"{response.status_code} {response.text[:300]}"
            if response.status_code == httpx.codes.UNAUTHORIZED:
                self.log_in()
            elif response.status_code < 500:
                break
        raise SoakError(f"the rep's {method} {path} failed: {problem}")

    def create(self, object_type: str, fields: Mapping[str, Any]) -> str:
        response = self._send("POST", f"/sobjects/{object_type}", httpx.codes.CREATED, json=dict(fields))
        return str(response.json()["id"])

    def update(self, object_type: str, record_id: str, fields: Mapping[str, Any]) -> None:
        self._send("PATCH", f"/sobjects/{object_type}/{record_id}", httpx.codes.NO_CONTENT, json=dict(fields))

    def read(self, object_type: str, record_id: str) -> dict[str, Any]:
        record: dict[str, Any] = self._send(
            "GET", f"/sobjects/{object_type}/{record_id}", httpx.codes.OK
        ).json()
        return record

    def query(self, soql: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self._send(
            "GET", "/query", httpx.codes.OK, params={"q": soql}
        ).json()["records"]
        return records


class Notifier:
    """Sends the intake what Salesforce would: Outbound Messages (SOAP) and signed Platform Events."""

    def __init__(self, stack: LocalStack, definition: OutboundMessageDefinition, action_id: str) -> None:
        self.api_url = stack.info["api_url"]
        self.outbound_url = stack.info["outbound_url"]  # with the intake's token, as Salesforce sends it
        salesforce = stack.info["salesforce"]
        self.context = MessageContext(
            org_id=salesforce["org_id"],
            action_id=action_id,
            session_id=None,
            instance_url=salesforce["instance_url"],
            api_version=salesforce["api_version"],
        )
        self.definition = definition
        secret = secretsmanager_client(
            stack.info["secretsmanager_endpoint"], stack.info["region"]
        ).get_secret_value(SecretId=stack.info["secrets"]["intake"])
        self.signing_key = str(json.loads(secret["SecretString"])["event_signing_key"]).encode()
        self.http = httpx.Client(timeout=30.0)
        self.refusals: list[str] = []

    def close(self) -> None:
        self.http.close()

    def outbound(self, notifications: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
        """One Outbound Message: (notification id, the Opportunity as the REST API reads it) each."""
        rows = [
            (notification_id, str(record["Id"]), _soap_record(record))
            for notification_id, record in notifications
        ]
        body = build_notifications_envelope(self.context, self.definition, rows)
        self._post(self.outbound_url, body, {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'})

    def events(self, events: Sequence[Mapping[str, str]]) -> None:
        """One signed callout with these Platform Events ({"EventUuid", "OpportunityId__c"} each)."""
        body = json.dumps(list(events) if len(events) > 1 else events[0]).encode()
        timestamp = str(int(time.time()))
        signature = hmac.new(self.signing_key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        self._post(
            f"{self.api_url}/salesforce/events",
            body,
            {
                "Content-Type": "application/json",
                "X-Signature-Timestamp": timestamp,
                "X-Signature": signature,
            },
        )

    def _post(self, url: str, body: bytes, headers: Mapping[str, str]) -> None:
        problem = ""
        for attempt in range(INTAKE_ATTEMPTS):
            if attempt:
                time.sleep(0.2 * 2**attempt)
            try:
                response = self.http.post(url, content=body, headers=dict(headers))
            except httpx.TransportError as error:
                problem = f"{type(error).__name__}: {error}"
                continue
            if response.status_code < 300:
                return
            problem = f"{response.status_code} {response.text[:300]}"
            if response.status_code < 500:
                break  # refused: the deal it names will show up as lost
        self.refusals.append(f"{urlsplit(url).path}: {problem}")  # never the query: it holds the token


def _soap_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The REST API's JSON of an Opportunity as the values the Outbound Message writes."""
    values = dict(record)
    modified = values.get("LastModifiedDate")
    if isinstance(modified, str):
        values["LastModifiedDate"] = datetime.strptime(modified, "%Y-%m-%dT%H:%M:%S.%f%z")
    return values


# ---------------------------------------------------------------------------- faults and kills


class Chaos:
    """Switches the sandboxes' faults on (and latency off again after a few deals); counts what it did.

    Counted faults add up: a fault injected while an earlier one is still pending does not replace it.
    """

    def __init__(self, intacct: IntacctAdminClient, salesforce_admin: SalesforceAdminClient) -> None:
        self.intacct = intacct
        self.salesforce = salesforce_admin
        self.injected: Counter[str] = Counter()
        self._latency_ends: dict[str, int] = {}

    def inject(self, fault: Fault, deal_index: int) -> None:
        settings = fault.settings
        match fault.kind:
            case "intacct_latency":
                self.intacct.set_faults(latency_ms=settings["latency_ms"])
                self._latency_ends["intacct"] = deal_index + settings["deals"]
            case "intacct_5xx":
                pending = self.intacct.set_faults()["fail_next"]["count"]
                self.intacct.set_faults(
                    fail_next={"count": pending + settings["count"], "status": settings["status"]}
                )
            case "intacct_429":
                pending = self.intacct.set_faults()["rate_limit_next"]
                self.intacct.set_faults(rate_limit_next=pending + settings["count"])
            case "intacct_524_after_commit":
                self._add_after_commit("timeout_after_commit_next", settings)
            case "intacct_drop_after_commit":
                self._add_after_commit("drop_connection_next", settings)
            case "intacct_offline":
                self.intacct.set_faults(offline=True)
                try:
                    time.sleep(settings["seconds"])
                finally:
                    self.intacct.set_faults(offline=False)
            case "intacct_expire_sessions":
                self.intacct.expire_sessions()
            case "salesforce_latency":
                self.salesforce.set_faults(latency_ms=settings["latency_ms"])
                self._latency_ends["salesforce"] = deal_index + settings["deals"]
            case "salesforce_5xx":
                pending = self.salesforce.set_faults()["fail_next"]
                count = settings["count"] + (pending["count"] if pending["path"] == settings["path"] else 0)
                self.salesforce.set_faults(fail_next={**settings, "count": count})
            case "salesforce_expire_tokens":
                self.salesforce.set_faults(expire_tokens=True)
            case _:
                raise SoakError(f"unknown fault {fault.kind}")
        self.injected[fault.kind] += 1

    def _add_after_commit(self, key: str, settings: Mapping[str, Any]) -> None:
        """More of an after-commit fault: the pending ones stay (on any function if theirs differs)."""
        pending = self.intacct.set_faults()[key]
        function = settings["function"]
        if pending["count"] and pending["function"] != function:
            function = None
        self.intacct.set_faults(
            **{key: {"count": pending["count"] + settings["count"], "function": function}}
        )

    def tick(self, deal_index: int) -> None:
        """Latency ends after the number of deals it was drawn for."""
        for system, ends in list(self._latency_ends.items()):
            if deal_index >= ends:
                (self.intacct if system == "intacct" else self.salesforce).set_faults(latency_ms=0)
                del self._latency_ends[system]

    def clear(self) -> None:
        self.intacct.clear_faults()
        self.salesforce.clear_faults()
        self._latency_ends.clear()


class PlannedKill(Protocol):
    def happened(self) -> bool: ...

    def cancel(self) -> bool: ...


class WorkerKills:
    """Kills worker processes at sync checkpoints through the local stack's crash plan.

    The hook is `stack.workers.crash_at(step, function=..., record_id=...)`, returning a planned kill
    with happened() and cancel(). A stack without it (workers that are threads of this process, which
    cannot be killed alone) gets no kills: `wired` is False and the figures say so.
    """

    def __init__(self, stack: LocalStack) -> None:
        running: Any = stack  # a LocalStack with or without the crash plan
        try:
            crash_at = getattr(running.workers, "crash_at", None)
        except (AttributeError, LookupError):  # no workers part, or workers without a crash plan
            crash_at = None
        self._crash_at: Callable[..., PlannedKill] | None = crash_at if callable(crash_at) else None
        self.planned: list[tuple[str, str, PlannedKill]] = []

    @property
    def wired(self) -> bool:
        return self._crash_at is not None

    def plan(self, function: str, step: str, record_id: str | None) -> None:
        if self._crash_at is not None:
            self.planned.append(
                (function, step, self._crash_at(step, function=function, record_id=record_id))
            )

    def happened(self) -> Counter[str]:
        return Counter(f"{function}:{step}" for function, step, kill in self.planned if kill.happened())

    def cancel_the_rest(self) -> int:
        """Take back the kills no worker reached (their record never got to that step)."""
        return sum(1 for _, _, kill in self.planned if not kill.happened() and kill.cancel())


# ---------------------------------------------------------------------------- the run


@dataclass
class SoakResult:
    figures: dict[str, Any]
    findings: Findings
    settled: bool
    details: dict[str, list[str]]  # record id -> its sync log, for the problems

    @property
    def exit_code(self) -> int:
        if not self.settled:
            return EXIT_NOT_SETTLED
        return EXIT_PASSED if self.findings.passed else EXIT_FOUND


class Soak:
    def __init__(self, stack: LocalStack, plan: SoakPlan, *, settle_seconds: float = SETTLE_SECONDS) -> None:
        self.stack = stack
        self.plan = plan
        self.settle_seconds = settle_seconds
        self.rng = random.Random(plan.seed * 7919 + 1)  # runtime choices (which earlier id to reuse)
        self.ids = IdGenerator(random.Random(plan.seed))
        salesforce = stack.info["salesforce"]
        self.intacct = IntacctAdminClient(
            stack.info["intacct"]["admin_url"], stack.info["intacct"]["ca_file"]
        )
        self.rep = PatientRep(salesforce)
        self.quiet = PatientRep(salesforce, username=salesforce["username"])  # the integration user
        self.admin = self.rep.admin
        self.chaos = Chaos(self.intacct, self.admin)
        self.kills = WorkerKills(stack)
        self.counts: Counter[str] = Counter()  # duplicates:<kind>, collisions:<kind>, edits, ...
        self.opportunities: dict[str, str] = {}  # Opportunity id -> Account id, in close order
        self.accounts: set[str] = set()
        self.notifications: dict[str, list[tuple[str, str]]] = defaultdict(list)  # deal -> (kind, id)
        self.real_notification_ids: list[str] = []  # Outbound Message Ids Salesforce sent
        self.event_uuids: list[str] = []  # EventUuids the soak sent
        self.later: list[tuple[int, Callable[[], None]]] = []
        self.actions: dict[str, list[str]] = defaultdict(list)  # record id -> what the soak did, when
        self._definitions: list[dict[str, Any]] = []  # the Outbound Messages as they were
        self.notifier: Notifier | None = None

    def close(self) -> None:
        self.rep.close()
        self.quiet.close()
        if self.notifier is not None:
            self.notifier.close()

    # ------------------------------------------------------------------ phases

    def run(self) -> SoakResult:
        started = time.monotonic()
        earlier = self.records_before()
        accounts, deals = self.set_up()
        before = {**self.snapshot(), **earlier}
        chaos_started = time.monotonic()
        try:
            for plan, opportunity_id in zip(self.plan.deals, deals, strict=True):
                self.play(plan, accounts, opportunity_id)
            for _, action in sorted(self.later, key=lambda entry: entry[0]):
                action()
            # The faults injected last still bite: the workers catch up with them on before they go.
            self.stack.wait_until_settled(min(FAULTS_LINGER_SECONDS, self.settle_seconds))
        finally:
            self.chaos.clear()
        chaos_seconds = time.monotonic() - chaos_started
        settled = self.stack.wait_until_settled(self.settle_seconds)
        kills_cancelled = self.kills.cancel_the_rest()
        if settled:
            self.late_wave()
            settled = self.stack.wait_until_settled(self.settle_seconds)
        settle_seconds = time.monotonic() - chaos_started - chaos_seconds
        after = self.snapshot()
        findings = check(self.expectation(before), self.state())
        figures = self.figures(before, after, findings, settled=settled, kills_cancelled=kills_cancelled)
        figures["seconds"] = {
            "wall": round(time.monotonic() - started, 1),
            "chaos": round(chaos_seconds, 1),
            "settle": round(settle_seconds, 1),
        }
        return SoakResult(figures, findings, settled, self.sync_logs(findings))

    def set_up(self) -> tuple[dict[tuple[str, int], str], list[str]]:
        """Accounts synced before, new Accounts, every deal but the racing ones; the quiet closer."""
        self.chaos.clear()
        if not self.stack.wait_until_settled(self.settle_seconds):
            raise SoakError("the local stack was busy before the soak began")
        self._quiet_closes()
        self.rep.products()
        accounts: dict[tuple[str, int], str] = {}
        for slot in range(self.plan.synced_accounts):
            accounts["synced", slot] = self.rep.create(
                "Account",
                {
                    "Name": f"Soak {self.plan.seed} Customer {slot}",
                    "BillingCity": "Boston",
                    "Type": "Customer - Direct",
                },
            )
        for slot in range(self.plan.new_accounts):
            accounts["new", slot] = self.quiet.create(
                "Account", {"Name": f"Soak {self.plan.seed} New Customer {slot}", "BillingCity": "Austin"}
            )
        self.accounts.update(accounts.values())
        if not self.stack.wait_until_settled(self.settle_seconds):
            raise SoakError("the Accounts synced before the soak did not settle")
        known = {str(c.get("SALESFORCE_ID")) for c in self.intacct.records("CUSTOMER")}
        missing = [a for (kind, _), a in accounts.items() if kind == "synced" and a not in known]
        if missing:
            raise SoakError(f"{len(missing)} Accounts synced before the soak have no Intacct customer")
        if any(a in known for (kind, _), a in accounts.items() if kind == "new"):
            raise SoakError("Intacct already knows an Account the integration user made")
        deals = [
            ""
            if plan.account_kind == "racing"
            else self.rep.deal(
                accounts[plan.account_kind, plan.account_slot], self._deal_name(plan), plan.lines
            )
            for plan in self.plan.deals
        ]
        return accounts, deals

    def _quiet_closes(self) -> None:
        """The Opportunity Outbound Message leaves out the integration user's closes (until finish())."""
        self._definitions = self._admin_json("GET", "/outbound/definitions")
        definitions = []
        notifier = None
        for payload in self._definitions:
            definition = definition_from_json(payload)
            if definition.name == OPPORTUNITY_MESSAGE:
                definition = replace(
                    definition, ignore_changes_by=self.stack.info["salesforce"]["integration_user_id"]
                )
                notifier = Notifier(self.stack, definition, str(payload.get("action_id") or ""))
            definitions.append(definition)
        if notifier is None:
            raise SoakError(f"the Salesforce sandbox has no {OPPORTUNITY_MESSAGE} Outbound Message")
        self.admin.set_outbound_definitions(definitions)
        self.notifier = notifier

    def finish(self) -> None:
        """Faults off, the Outbound Message definitions as they were."""
        self.chaos.clear()
        if self._definitions:
            self.admin.set_outbound_definitions(
                [definition_from_json(payload) for payload in self._definitions]
            )

    def play(self, plan: DealPlan, accounts: Mapping[tuple[str, int], str], opportunity_id: str) -> None:
        """Chaos first, then close the deal and notify as planned; duplicates, edits and due actions after."""
        self.chaos.tick(plan.index)
        for fault in plan.faults:
            self.chaos.inject(fault, plan.index)
        if plan.account_kind == "racing":
            account_id = self.rep.create(
                "Account",
                {"Name": f"Soak {self.plan.seed} Racing Customer {plan.index}", "BillingCity": "Denver"},
            )
            self.accounts.add(account_id)
            opportunity_id = self.rep.deal(account_id, self._deal_name(plan), plan.lines)
        else:
            account_id = accounts[plan.account_kind, plan.account_slot]
        if plan.kill is not None:
            kill = plan.kill
            self.kills.plan(kill.function, kill.step, opportunity_id if kill.this_deal else None)
            self._did(opportunity_id, f"kill planned: {kill.function} at {kill.step}")
        self.opportunities[opportunity_id] = account_id
        self._did(account_id, f"deal {plan.index} ({opportunity_id}) closes")
        if plan.notice == "outbound":
            self.rep.close_won(opportunity_id)
            self._did(opportunity_id, f"deal {plan.index} closed by the rep")
            notification_id = self._real_notification_id(opportunity_id)
            if notification_id:
                self.real_notification_ids.append(notification_id)
                self.notifications[opportunity_id].append(("salesforce_outbound", notification_id))
        else:
            self.quiet.close_won(opportunity_id)
            self._did(opportunity_id, f"deal {plan.index} closed quietly")
            self._notify(plan, opportunity_id)
        if plan.edit:
            self.rep.update(
                "Opportunity",
                opportunity_id,
                {
                    "Description": f"Edited right after the close (soak deal {plan.index})",
                    "NextStep": "Kick-off",
                },
            )
            self.counts["edits"] += 1
            self._did(opportunity_id, "edited (Description, NextStep)")
        if plan.account_edit is not None:
            rename = self._rename(plan, account_id)
            if plan.account_edit:
                self.later.append((plan.index + plan.account_edit, rename))
            else:
                rename()
        for duplicate in plan.duplicates:
            self._duplicate(plan, opportunity_id, duplicate)
        due = [entry for entry in self.later if entry[0] <= plan.index]
        self.later = [entry for entry in self.later if entry[0] > plan.index]
        for _, action in due:
            action()

    def _rename(self, plan: DealPlan, account_id: str) -> Callable[[], None]:
        def rename() -> None:
            name = f"Soak {self.plan.seed} {plan.account_kind} Customer {plan.account_slot} rev {plan.index}"
            self.rep.update(
                "Account", account_id, {"Name": name, "Phone": f"+1 617 555 {plan.index % 10000:04d}"}
            )
            self.counts["account_edits"] += 1
            self._did(account_id, f"renamed to {name!r}")

        return rename

    def _notify(self, plan: DealPlan, opportunity_id: str) -> None:
        """The only notification of a quiet close: fresh, or colliding with another deal's id."""
        notifier = self._notifier()
        notice = plan.notice
        if notice == "collision_outbound" and not self.real_notification_ids:
            notice = "own_outbound"
        if notice == "event":
            self._event(opportunity_id, self._new_uuid())
        elif notice == "own_outbound":
            notification_id = self.ids.new_id("04l")
            self._outbound(opportunity_id, notification_id, "own_outbound")
        elif notice == "collision_outbound":
            notification_id = self.rng.choice(self.real_notification_ids)
            self._outbound(opportunity_id, notification_id, "collision_outbound")
            self.counts["collisions:outbound_notification_id"] += 1
        elif notice == "collision_event":
            if self.event_uuids:
                uuid = self.rng.choice(self.event_uuids)
            else:  # nobody used one yet: an earlier deal gets an event first
                uuid = self._new_uuid()
                self._event(self.rng.choice(list(self.opportunities)), uuid)
            self._event(opportunity_id, uuid)
            self.counts["collisions:event_uuid"] += 1
        elif notice == "collision_batch":
            uuid = self._new_uuid()
            other = self.rng.choice(
                [o for o in self.opportunities if o != opportunity_id] or [opportunity_id]
            )
            events = [
                {"EventUuid": uuid, "OpportunityId__c": other},
                {"EventUuid": uuid, "OpportunityId__c": opportunity_id},
            ]
            notifier.events(events)
            self.event_uuids.append(uuid)
            self.notifications[opportunity_id].append(("collision_batch", uuid))
            self.notifications[other].append(("collision_batch", uuid))
            self.counts["collisions:event_uuid_in_one_request"] += 1
            self._did(opportunity_id, f"event {uuid} sent with one for {other} (collision_batch)")

    def _duplicate(self, plan: DealPlan, opportunity_id: str, kind: str) -> None:
        sent = self.notifications.get(opportunity_id, [])
        outbound = [nid for how, nid in sent if how in ("salesforce_outbound", "own_outbound")]
        events = [uuid for how, uuid in sent if how == "event"]
        if kind in ("copy_now", "copy_later") and outbound:
            action = self._later_copy(opportunity_id, outbound[0])
            if kind == "copy_now":
                action()
            else:
                self.later.append((plan.index + self.rng.randint(2, 6), action))
        elif kind == "event_same_change":
            self._event(opportunity_id, self._new_uuid(), counted_as="duplicates:event_for_the_same_change")
        elif kind == "event_repeat" and events:
            self._event(opportunity_id, events[0], counted_as="duplicates:event_repeated")

    def _later_copy(self, opportunity_id: str, notification_id: str) -> Callable[[], None]:
        def copy() -> None:
            self._outbound(
                opportunity_id, notification_id, "copy", counted_as="duplicates:outbound_message_copy"
            )

        return copy

    def late_wave(self) -> None:
        """After the stack settled: the first notification of some deals once more (each already done)."""
        for plan, opportunity_id in zip(self.plan.deals, self.opportunities, strict=True):
            if not plan.late_duplicate:
                continue
            sent = self.notifications.get(opportunity_id, [])
            if not sent:
                continue
            how, producer_id = sent[0]
            if how in ("salesforce_outbound", "own_outbound", "collision_outbound"):
                self._outbound(opportunity_id, producer_id, "late", counted_as="duplicates:late")
            elif how == "event":
                self._event(opportunity_id, producer_id, counted_as="duplicates:late")

    # ------------------------------------------------------------------ notifications

    def _notifier(self) -> Notifier:
        if self.notifier is None:
            raise SoakError("the soak was not set up")
        return self.notifier

    def _outbound(self, opportunity_id: str, notification_id: str, how: str, *, counted_as: str = "") -> None:
        record = self.rep.read("Opportunity", opportunity_id)
        self._notifier().outbound([(notification_id, record)])
        self._did(opportunity_id, f"Outbound Message {notification_id} sent ({counted_as or how})")
        if counted_as:
            self.counts[counted_as] += 1
        else:
            self.notifications[opportunity_id].append((how, notification_id))

    def _event(self, opportunity_id: str, uuid: str, *, counted_as: str = "") -> None:
        self._notifier().events([{"EventUuid": uuid, "OpportunityId__c": opportunity_id}])
        self._did(opportunity_id, f"event {uuid} sent ({counted_as or 'event'})")
        if counted_as:
            self.counts[counted_as] += 1
        else:
            self.notifications[opportunity_id].append(("event", uuid))
            self.event_uuids.append(uuid)

    def _did(self, record_id: str, what: str) -> None:
        self.actions[record_id].append(f"{datetime.now(UTC):%H:%M:%S.%f} {what}")

    def _new_uuid(self) -> str:
        return f"soak-{self.plan.seed}-{self.rng.getrandbits(64):016x}"

    def _real_notification_id(self, opportunity_id: str) -> str | None:
        for delivery in reversed(self.admin.outbound()):
            if delivery["definition"] == OPPORTUNITY_MESSAGE and opportunity_id in delivery["record_ids"]:
                return str(delivery["notification_ids"][delivery["record_ids"].index(opportunity_id)])
        return None

    def _deal_name(self, plan: DealPlan) -> str:
        return f"Soak {self.plan.seed} deal {plan.index}"

    # ------------------------------------------------------------------ state and figures

    def records_before(self) -> dict[str, list[str]]:
        """What the sandboxes and dead-letter queues held before the soak (a shared stack): left out."""
        return {
            "customers": [str(c.get("RECORDNO")) for c in self.intacct.records("CUSTOMER")],
            "orders": [str(o.get("DOCID")) for o in self.intacct.records("SODOCUMENT")],
            "dead_letters": [str(m["message_id"]) for m in self.dead_letters()],
        }

    def snapshot(self) -> dict[str, Any]:
        """The request counters at one moment."""
        return {
            "intacct": self.intacct.counts(),
            "salesforce": self.admin.counts(),
            "rep_calls": self.rep.calls + self.quiet.calls,
        }

    def expectation(self, before: Mapping[str, Any]) -> Expectation:
        return Expectation(
            opportunities=dict(self.opportunities),
            accounts=set(self.accounts),
            earlier_customers=before["customers"],
            earlier_orders=before["orders"],
            earlier_dead_letters=before["dead_letters"],
        )

    def state(self) -> SandboxState:
        return SandboxState(
            customers=self.intacct.records("CUSTOMER"),
            orders=self.intacct.records("SODOCUMENT"),
            order_lines=self.intacct.records("SODOCUMENTENTRY"),
            opportunities=self.admin.records("Opportunity"),
            accounts=self.admin.records("Account"),
            line_items=self.admin.records("OpportunityLineItem"),
            dead_letters=self.dead_letters(),
        )

    def dead_letters(self) -> list[dict[str, Any]]:
        """Every message in the workers' dead-letter queues, left where it is (visible again at once)."""
        sqs = sqs_client(self.stack.info["sqs_endpoint"], self.stack.info["region"])
        messages: list[dict[str, Any]] = []
        for function, worker in sorted(self.stack.info["workers"].items()):
            queue_url = worker.get("dead_letter_queue_url")
            if queue_url:
                messages.extend(_peek(sqs, queue_url, function))
        return messages

    def figures(
        self,
        before: Mapping[str, Any],
        after: Mapping[str, Any],
        findings: Findings,
        *,
        settled: bool,
        kills_cancelled: int,
    ) -> dict[str, Any]:
        deals = len(self.opportunities)
        intacct_requests = int(after["intacct"]["requests"]) - int(before["intacct"]["requests"])
        rep_calls = int(after["rep_calls"]) - int(before["rep_calls"])
        salesforce_requests = int(after["salesforce"]["requests"]) - int(before["salesforce"]["requests"])
        worker_salesforce = salesforce_requests - rep_calls
        statuses = {
            status: count - int(before["intacct"]["statuses"].get(status, 0))
            for status, count in sorted(after["intacct"]["statuses"].items())
            if status != "200" and count != int(before["intacct"]["statuses"].get(status, 0))
        }
        kills = self.kills.happened()
        try:
            workers = {name: stats.get("outcomes", {}) for name, stats in self.stack.poller.stats().items()}
        except (LookupError, AttributeError):
            workers = {}
        kinds = Counter({key: value for key, value in self.counts.items() if ":" in key})
        return {
            "seed": self.plan.seed,
            "deals": deals,
            "accounts": dict(sorted(Counter(plan.account_kind for plan in self.plan.deals).items())),
            "settled": settled,
            "passed": settled and findings.passed,
            "checks": findings.counts(),
            "explained_dead_letters": findings.explained_dead_letters,
            "faults": dict(sorted(self.chaos.injected.items())),
            "faults_total": sum(self.chaos.injected.values()),
            "intacct_fault_answers": statuses,
            "duplicates": _group(kinds, "duplicates"),
            "duplicates_total": sum(_group(kinds, "duplicates").values()),
            "collisions": _group(kinds, "collisions"),
            "collisions_total": sum(_group(kinds, "collisions").values()),
            "edits": self.counts["edits"],
            "account_edits": self.counts["account_edits"],
            "kills_wired": self.kills.wired,
            "kills": sum(kills.values()),
            "kills_by_step": dict(sorted(kills.items())),
            "kills_planned": len(self.kills.planned),
            "kills_not_reached": kills_cancelled,
            "intake_refusals": len(self._notifier().refusals),
            "intacct_requests_per_deal": round(intacct_requests / deals, 2) if deals else 0.0,
            "salesforce_calls_per_deal": round(worker_salesforce / deals, 2) if deals else 0.0,
            "intacct_requests": intacct_requests,
            "salesforce_calls_by_workers": worker_salesforce,
            "worker_outcomes": workers,
            "problems": [problem.as_dict() for problem in findings.problems[:SHOWN_PROBLEMS]],
        }

    def sync_logs(self, findings: Findings) -> dict[str, list[str]]:
        """The sync log of every record a problem is about (what the workers thought happened)."""
        log = SyncLog(
            dynamodb_client(self.stack.info["dynamodb_endpoint"], self.stack.info["region"]),
            self.stack.info["tables"]["SyncLogTable"],
        )
        details: dict[str, list[str]] = {}
        for problem in findings.problems[:SHOWN_PROBLEMS]:
            record_id = problem.record_id
            if record_id in details or record_id[:3] not in ("001", "006"):
                continue
            # An Account's problem may come from the order worker of one of its deals: their logs too.
            records = [record_id] + [o for o, a in self.opportunities.items() if a == record_id]
            lines = [
                (
                    entry.at,
                    f"{entry.at:%H:%M:%S.%f} {entry.sf_id} {entry.status} {entry.reason} "
                    f"{entry.message} (producer {entry.producer_id}, {entry.source}, "
                    f"customer {entry.intacct_customer_id}, order {entry.intacct_order_id})",
                )
                for record in records
                for entry in log.history(record)
            ]
            details[record_id] = [line for _, line in sorted(lines)] + [
                f"soak: {action}" for action in self.actions.get(record_id, [])
            ]
        return details

    def _admin_json(self, method: str, route: str) -> Any:
        """A Salesforce admin call its client has no method for."""
        salesforce = self.stack.info["salesforce"]
        with httpx.Client(
            verify=ssl.create_default_context(cafile=salesforce["ca_file"]), timeout=30.0
        ) as client:
            response = client.request(method, salesforce["admin_url"].rstrip("/") + route)
        response.raise_for_status()
        return response.json()


def _group(counts: Mapping[str, int], prefix: str) -> dict[str, int]:
    return {
        key.split(":", 1)[1]: value for key, value in sorted(counts.items()) if key.startswith(prefix + ":")
    }


def _peek(sqs: SQSClient, queue_url: str, function: str) -> Iterator[dict[str, Any]]:
    """Receive every message of a queue once, then make them visible again."""
    seen: dict[str, dict[str, Any]] = {}
    handles: list[str] = []
    while True:
        received = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60, WaitTimeSeconds=0
        ).get("Messages", [])
        if not received:
            break
        for message in received:
            handles.append(message["ReceiptHandle"])
            body = message.get("Body", "")
            try:
                request = json.loads(body)
            except ValueError:
                request = {}
            seen[message["MessageId"]] = {
                "function": function,
                "message_id": message["MessageId"],
                "object_type": request.get("object_type") if isinstance(request, dict) else None,
                "record_id": request.get("record_id") if isinstance(request, dict) else None,
                "body": body[:500],
            }
    for handle in handles:
        sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=handle, VisibilityTimeout=0)
    yield from seen.values()


# ---------------------------------------------------------------------------- report


def print_report(result: SoakResult) -> None:
    figures = result.figures
    rows = [
        ("deals", str(figures["deals"])),
        ("accounts (per deal)", _pairs(figures["accounts"])),
        ("faults injected", f"{figures['faults_total']}  ({_pairs(figures['faults'])})"),
        ("Intacct fault answers", _pairs(figures["intacct_fault_answers"]) or "-"),
        ("duplicates", f"{figures['duplicates_total']}  ({_pairs(figures['duplicates'])})"),
        ("collisions", f"{figures['collisions_total']}  ({_pairs(figures['collisions'])})"),
        ("edits after close", f"{figures['edits']} Opportunities, {figures['account_edits']} Accounts"),
        (
            "worker kills",
            f"{figures['kills']} of {figures['kills_planned']} planned ({_pairs(figures['kills_by_step'])})"
            if figures["kills_wired"]
            else "not wired: this local stack has no crash plan (stack.workers.crash_at)",
        ),
        ("Intacct requests / deal", f"{figures['intacct_requests_per_deal']:.2f}"),
        ("Salesforce calls / deal", f"{figures['salesforce_calls_per_deal']:.2f}  (by the workers)"),
        (
            "wall time",
            f"{figures['seconds']['wall']:.1f} s  (chaos {figures['seconds']['chaos']:.1f} s, "
            f"settling {figures['seconds']['settle']:.1f} s)",
        ),
        ("settled", "yes" if result.settled else "NO"),
    ]
    rows += [(f"check: {name.replace('_', ' ')}", str(count)) for name, count in figures["checks"].items()]
    width = max(len(name) for name, _ in rows)
    print("Soak figures")
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    if result.findings.problems:
        print(f"\nProblems ({len(result.findings.problems)}; the first {SHOWN_PROBLEMS} in detail)")
        for problem in result.findings.problems[:SHOWN_PROBLEMS]:
            print(f"  {problem.check:<24} {problem.record_id}  {problem.what}")
            for key, value in problem.held.items():
                print(f"      {key}: {json.dumps(value, default=str)}")
            for line in result.details.get(problem.record_id, []):
                print(f"      log: {line}")
    verdict = "PASS" if result.exit_code == EXIT_PASSED else "FAIL"
    print(f"\n{verdict}: {', '.join(f'{count} {name}' for name, count in figures['checks'].items())}")


def _pairs(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in values.items())


def run_soak(
    stack: LocalStack, deals: int, seed: int, *, settle_seconds: float = SETTLE_SECONDS
) -> SoakResult:
    """The soak on a running stack (its own, or a shared one: records made before are left out)."""
    kills = WorkerKills(stack).wired
    soak = Soak(stack, make_plan(deals, seed, kills=kills), settle_seconds=settle_seconds)
    try:
        return soak.run()
    finally:
        try:
            soak.finish()
        finally:
            soak.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.soak",
        description="Push many closed-won deals through the local stack under chaos and check what holds.",
    )
    parser.add_argument(
        "--deals", type=_positive, default=DEFAULT_DEALS, metavar="N", help=f"default {DEFAULT_DEALS}"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help=f"draws the plan (default {DEFAULT_SEED})"
    )
    parser.add_argument(
        "--settle-seconds",
        type=float,
        default=SETTLE_SECONDS,
        metavar="S",
        help=f"how long to wait for the stack to settle (default {SETTLE_SECONDS:.0f})",
    )
    parser.add_argument("--json", action="store_true", help="print only the JSON line of figures")
    arguments = parser.parse_args(argv)
    # The functions log JSON lines and metrics like on Lambda; the soak prints its own report.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="sfintacct-soak-") as state_dir:
        print("Starting the local stack...", file=sys.stderr, flush=True)
        with start_local_stack(
            Path(state_dir),
            ephemeral=True,
            queue_visibility_seconds=VISIBILITY_SECONDS,
            parameters={"LogLevel": "ERROR"},
        ) as stack:
            print(f"Soak: {arguments.deals} deal(s), seed {arguments.seed}...", file=sys.stderr, flush=True)
            try:
                result = run_soak(
                    stack, arguments.deals, arguments.seed, settle_seconds=arguments.settle_seconds
                )
            except SoakError as error:
                print(f"soak failed: {error}", file=sys.stderr)
                return EXIT_NOT_SETTLED
    if not arguments.json:
        print_report(result)
    print(json.dumps(result.figures, sort_keys=True, default=str))
    return result.exit_code


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("must be a whole number of at least 1")
    return int(text)


if __name__ == "__main__":
    sys.exit(main())
