"""`make bench`'s finance line: one run of the scheduled finance function over N changed invoices.

Seeded directly, not through the sync (that is the rest of the benchmark): N won Opportunities on N/4
Accounts in Salesforce (made by the integration user, so no Outbound Message fires), their customers and
one Sales Invoice per deal in Intacct (the deal approved straight to an invoice; 50 functions a request),
and the crosswalk entries the sync would have written. Then two runs of the function, as its schedule
runs it, measured by the sandboxes' own counters:

  Salesforce writes   sObject Collections calls of the first run; target: at most one per 200 changed
                      records (Opportunities and Accounts), rounded up
  Intacct requests    the first run's requests, without its one getAPISession: the paged ARINVOICE
                      reads (changed ones, then once a day the open ones) and the SODOCUMENT reads that
                      link invoices to their deals (`in` lists of 100)
  second run          the same invoices, nothing changed: target no Salesforce write
"""

from __future__ import annotations

import math
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.sales_rep import SalesRep
from sandbox.salesforce.admin_client import SalesforceAdminClient
from sandbox.stack import LocalStack
from sfintacct.crosswalk import CrosswalkKind
from sfintacct.intacct import functions as builders
from sfintacct.intacct.client import IntacctClient
from sfintacct.intacct.models import NewCustomer, SalesTransaction, SalesTransactionLine
from sfintacct.intacct.request import IntacctFunction
from sfintacct.intacct.writers import new_customer_element, sotransaction_element
from sfintacct_ops.deployment import from_local

FUNCTION = "FinanceStatusFunction"
DEALS_PER_ACCOUNT = 4
FUNCTIONS_PER_REQUEST = 50
RECORDS_PER_COLLECTION_CALL = 200
PAGE_SIZE = 1000
KEYS_PER_QUERY = 100


class FinanceBenchFailed(Exception):
    """The finance run did not do what it should have (the message says what)."""


@dataclass(frozen=True)
class FinanceBenchResult:
    invoices: int
    accounts: int
    seconds: float
    salesforce_write_calls: int
    salesforce_write_calls_target: int
    intacct_requests: int
    intacct_pages: int
    intacct_link_queries: int
    second_run_salesforce_writes: int
    written: int

    @property
    def passed(self) -> bool:
        return (
            self.salesforce_write_calls <= self.salesforce_write_calls_target
            and self.intacct_requests == self.intacct_pages + self.intacct_link_queries
            and self.second_run_salesforce_writes == 0
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "invoices": self.invoices,
            "accounts": self.accounts,
            "seconds": round(self.seconds, 2),
            "salesforce_write_calls": self.salesforce_write_calls,
            "salesforce_write_calls_target": self.salesforce_write_calls_target,
            "intacct_requests": self.intacct_requests,
            "intacct_pages": self.intacct_pages,
            "intacct_link_queries": self.intacct_link_queries,
            "second_run_salesforce_writes": self.second_run_salesforce_writes,
            "written": self.written,
            "passed": self.passed,
        }


def bench_finance(stack: LocalStack, invoices: int) -> FinanceBenchResult:
    salesforce = stack.info["salesforce"]
    admin = SalesforceAdminClient(salesforce["admin_url"], salesforce["ca_file"])
    intacct_admin = IntacctAdminClient(stack.info["intacct"]["admin_url"], stack.info["intacct"]["ca_file"])
    deals = _seed(stack, invoices)
    accounts = len({account_id for account_id, _ in deals})

    before_salesforce, before_intacct = admin.counts()["by_kind"], intacct_admin.counts()
    started = time.monotonic()
    first = _run(stack)
    seconds = time.monotonic() - started
    after_salesforce, after_intacct = admin.counts()["by_kind"], intacct_admin.counts()
    second = _run(stack)
    final_salesforce = admin.counts()["by_kind"]

    changed = invoices + accounts
    if first["written"] != changed:
        raise FinanceBenchFailed(f"the first run wrote {first['written']} records, not {changed}")
    requests = after_intacct["requests"] - before_intacct["requests"]
    log_ins = after_intacct["functions"].get("getAPISession", 0) - before_intacct["functions"].get(
        "getAPISession", 0
    )
    pages = 2 * math.ceil(invoices / PAGE_SIZE)  # changed invoices, then (first run of the day) open ones
    return FinanceBenchResult(
        invoices=invoices,
        accounts=accounts,
        seconds=seconds,
        salesforce_write_calls=after_salesforce.get("composite", 0) - before_salesforce.get("composite", 0),
        salesforce_write_calls_target=math.ceil(changed / RECORDS_PER_COLLECTION_CALL),
        intacct_requests=requests - log_ins,
        intacct_pages=pages,
        intacct_link_queries=math.ceil(invoices / KEYS_PER_QUERY),
        second_run_salesforce_writes=final_salesforce.get("composite", 0)
        - after_salesforce.get("composite", 0)
        + second["written"],
        written=int(first["written"]),
    )


def _run(stack: LocalStack) -> dict[str, Any]:
    result = stack.workers.run_scheduled(FUNCTION)
    if (
        result.status != "returned"
        or not isinstance(result.response, dict)
        or "stopped_by" in result.response
    ):
        raise FinanceBenchFailed(
            f"the finance run did not finish: {result.status} {result.error} {result.response}"
        )
    return result.response


def _seed(stack: LocalStack, invoices: int) -> list[tuple[str, str]]:
    """(Account id, Opportunity id) of `invoices` won deals, each with its Sales Invoice in Intacct."""
    salesforce = stack.info["salesforce"]
    user = SalesRep(salesforce, username=salesforce["username"])  # its saves send no Outbound Message
    tag = uuid.uuid4().hex[:6]
    try:
        account_ids = [
            user.create("Account", {"Name": f"Finance bench {tag} {number}"})
            for number in range(math.ceil(invoices / DEALS_PER_ACCOUNT))
        ]
        deals = [
            (
                account_ids[number // DEALS_PER_ACCOUNT],
                user.create(
                    "Opportunity",
                    {
                        "Name": f"Finance bench {tag} {number}",
                        "AccountId": account_ids[number // DEALS_PER_ACCOUNT],
                        "StageName": "Closed Won",
                        "CloseDate": "2026-12-01",
                    },
                ),
            )
            for number in range(invoices)
        ]
    finally:
        user.close()
    assert stack.stack_file is not None
    deployment = from_local(stack.stack_file)
    try:
        intacct, crosswalk = deployment.intacct_client(), deployment.crosswalk()
        _execute_in_requests(intacct, [_create_customer(account_id) for account_id in account_ids])
        due = datetime.now(UTC).date() + timedelta(days=30)
        documents = [_invoice(account_id, opportunity_id, due) for account_id, opportunity_id in deals]
        results = _execute_in_requests(intacct, documents)
        for account_id in account_ids:
            crosswalk.put_mapping(account_id, CrosswalkKind.CUSTOMER, account_id, None)
        for (_, opportunity_id), result in zip(deals, results, strict=True):
            crosswalk.put_mapping(opportunity_id, CrosswalkKind.ORDER, result.key or "", None)
    finally:
        deployment.close()
    return deals


def _execute_in_requests(intacct: IntacctClient, functions: list[IntacctFunction]) -> list[Any]:
    results: list[Any] = []
    for start in range(0, len(functions), FUNCTIONS_PER_REQUEST):
        results += intacct.execute_checked(functions[start : start + FUNCTIONS_PER_REQUEST])
    return results


def _create_customer(account_id: str) -> IntacctFunction:
    customer = NewCustomer(customer_id=account_id, name=f"Bench customer {account_id}")
    return builders.create([new_customer_element(customer)], control_id=f"bench-customer-{account_id}")


def _invoice(account_id: str, opportunity_id: str, due: date) -> IntacctFunction:
    """A Sales Invoice made straight for the deal (as an approved deal is), written by the product."""
    invoice = SalesTransaction(
        transaction_type="Sales Invoice",
        date_created=datetime.now(UTC).date(),
        customer_id=account_id,
        reference_no=opportunity_id,
        date_due=due,
        lines=[SalesTransactionLine(item_id="SUB-PLATFORM", quantity=Decimal(1), price=Decimal(1000))],
    )
    return builders.write_function(sotransaction_element(invoice), f"bench-invoice-{opportunity_id}")
