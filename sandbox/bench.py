"""`make bench`: the API calls and CPU one closed-won deal costs, measured on the local stack.

It starts a fresh local stack (like `make demo`) and pushes `--opportunities N` closed-won Opportunities
through the real flow in two scenarios:

  customer_synced  one Account of type "Customer - Direct" made by the rep (its Outbound Message
                   creates the Intacct customer first: the mapping's create_when), then N deals on it
                   with three lines each, all closed as won;
  new_customer     N Accounts made by the integration user (no Account Outbound Message fires, so
                   Intacct does not know them), one deal each, closed as won by the rep.

Only the close-and-sync phase is measured: every counter is read before the first close_won and
again once the stack has settled. Figures per Opportunity:

  Salesforce reads    SOQL queries + sObject reads by the workers (the sandbox counts by kind, not by
                      user; in this phase the only other REST calls are the rep's own N close_won
                      PATCHes, which are subtracted from the sObject writes)
  Salesforce writes   composite + sObject writes by the workers (rep's PATCHes subtracted)
  OAuth tokens        token requests (one per worker process and session, amortised; not counted
                      as reads)
  Intacct requests    every request, and without getAPISession (logins are per process, amortised)
  DynamoDB ops        API calls the workers made, counted in each worker process by a botocore event
                      hook on every session (Powertools' idempotency client included) and reported
                      with each invocation
  worker CPU          the process CPU time of OpportunityToOrderFunction's invocations, measured in
                      its worker processes around the handler call
  intake CPU          thread CPU time of the intake handler per Outbound Message notification,
                      measured by a wrapper this benchmark puts around the handler the local API loads

Then each function's cold `import app` time in a fresh interpreter (median of three).

Targets: with the customer already synced, at most 1 Salesforce read, 1 Salesforce write and 1 Intacct
request (without getAPISession) per Opportunity; with a new customer at most 2 Intacct requests. The
exit code is 1 when a target is missed or the flow did not make exactly one Sales Order per
Opportunity. Output: a table, then one JSON line with every figure (for diffing runs).

Finance (sandbox.finance_bench): one run of the scheduled finance function over --invoices N changed
invoices (default 1000; 0 leaves it out): Salesforce calls at most N / 200 rounded up, Intacct requests
the ARINVOICE pages and the SODOCUMENT link queries, and no Salesforce write on a second run.

    PYTHONPATH=layers/sync:ops:. .venv/bin/python -m sandbox.bench --opportunities 5 --invoices 1000
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sandbox.local_api
from sandbox.finance_bench import FinanceBenchFailed, FinanceBenchResult, bench_finance
from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.local_api import Handler
from sandbox.sales_rep import THREE_LINES, SalesRep
from sandbox.stack import LocalStack, start_local_stack

REPO_ROOT = Path(__file__).resolve().parents[1]
LAYER_DIR = REPO_ROOT / "layers" / "sync"
DEFAULT_OPPORTUNITIES = 20
DEFAULT_INVOICES = 1000
SETTLE_SECONDS = 120.0
IMPORT_RUNS = 3
ORDER_FUNCTION = "OpportunityToOrderFunction"
CUSTOMER_FUNCTION = "CustomerUpsertFunction"
# name in the output -> (template logical id, code dir)
FUNCTIONS = {
    "intake": ("IntakeFunction", REPO_ROOT / "functions" / "intake"),
    "customer_upsert": (CUSTOMER_FUNCTION, REPO_ROOT / "functions" / "customer_upsert"),
    "opportunity_to_order": (ORDER_FUNCTION, REPO_ROOT / "functions" / "opportunity_to_order"),
    "finance_status": ("FinanceStatusFunction", REPO_ROOT / "functions" / "finance_status"),
}
SALESFORCE_READ_KINDS = ("query", "sobject_read")
SALESFORCE_WRITE_KINDS = ("sobject_write", "composite")
INTACCT_LOG_IN = "getAPISession"
# (scenario, figure per Opportunity, most allowed)
TARGETS = (
    ("customer_synced", "salesforce_reads", 1.0),
    ("customer_synced", "salesforce_writes", 1.0),
    ("customer_synced", "intacct_requests_without_log_in", 1.0),
    ("new_customer", "intacct_requests_without_log_in", 2.0),
)

# `import app` in a fresh interpreter: argv[1] is the function's code dir, argv[2] the layer.
IMPORT_TIMER = """
import sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
started = time.perf_counter()
import app
print((time.perf_counter() - started) * 1000)
"""


class BenchFailed(Exception):
    """The flow did not settle or did not produce what it should have."""


# ---------------------------------------------------------------------------- the intake's meter


@dataclass
class IntakeMeter:
    """Thread CPU time of the intake handler, per invocation, as the local API calls it."""

    invocations: int = 0
    cpu_seconds: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wrap(self, handler: Handler) -> Handler:
        def timed(event: dict[str, Any], context: Any) -> Any:
            started = time.thread_time()
            try:
                return handler(event, context)
            finally:
                spent = time.thread_time() - started
                with self._lock:
                    self.invocations += 1
                    self.cpu_seconds += spent

        return timed

    def snapshot(self) -> tuple[int, float]:
        with self._lock:
            return self.invocations, self.cpu_seconds


@contextmanager
def intake_measured(meter: IntakeMeter) -> Iterator[None]:
    """While active, the local API of a stack started here serves the intake handler wrapped by `meter`.

    LocalApiPart.start() looks load_intake_handler up in sandbox.local_api when it runs; nothing outside
    this process and this block is affected.
    """
    original = sandbox.local_api.load_intake_handler

    def load_measured(app_path: Path = sandbox.local_api.INTAKE_APP_PATH) -> Handler:
        return meter.wrap(original(app_path))

    sandbox.local_api.load_intake_handler = load_measured
    try:
        yield
    finally:
        sandbox.local_api.load_intake_handler = original


# ---------------------------------------------------------------------------- one scenario


@dataclass
class Counters:
    """Every counter the benchmark reads, at one moment."""

    salesforce: dict[str, int]
    intacct_requests: int
    intacct_functions: dict[str, int]
    intake_invocations: int
    intake_cpu_seconds: float
    delivered_notifications: set[str]


@dataclass
class ScenarioResult:
    name: str
    opportunities: int
    seconds: float
    totals: dict[str, Any]
    per_opportunity: dict[str, float]
    intake_cpu_ms_per_notification: float
    problems: list[str]  # the flow did not make what it should have, or a meter counted nothing


class Bench:
    def __init__(self, stack: LocalStack, intake: IntakeMeter) -> None:
        self.stack = stack
        self.intake = intake
        self.intacct = IntacctAdminClient(
            stack.info["intacct"]["admin_url"], stack.info["intacct"]["ca_file"]
        )
        self.rep = SalesRep(stack.info["salesforce"])
        self.tables = {name: logical_id for logical_id, name in stack.info["tables"].items()}

    def close(self) -> None:
        self.rep.close()

    def seed_products(self) -> None:
        self.rep.products()

    def customer_synced(self, count: int) -> ScenarioResult:
        account_id = self.rep.create(
            "Account", {"Name": "Bench Synced Customer", "BillingCity": "Boston", "Type": "Customer - Direct"}
        )
        self.settle()
        if len(self.customers_of(account_id)) != 1:
            raise BenchFailed("the rep's Account did not become an Intacct customer before the deals closed")
        opportunity_ids = [
            self.rep.deal(account_id, f"Bench synced deal {number}", THREE_LINES) for number in range(count)
        ]
        self.settle()
        return self.measure("customer_synced", opportunity_ids, {account_id})

    def new_customer(self, count: int) -> ScenarioResult:
        integration = SalesRep(
            self.stack.info["salesforce"], username=self.stack.info["salesforce"]["username"]
        )
        try:
            account_ids = [
                integration.create(
                    "Account", {"Name": f"Bench New Customer {number}", "BillingCity": "Austin"}
                )
                for number in range(count)
            ]
        finally:
            integration.close()
        opportunity_ids = [
            self.rep.deal(account_id, f"Bench new-customer deal {number}", THREE_LINES)
            for number, account_id in enumerate(account_ids)
        ]
        self.settle()
        known = [account_id for account_id in account_ids if self.customers_of(account_id)]
        if known:
            raise BenchFailed(f"Intacct already knows {len(known)} of the integration user's Accounts")
        return self.measure("new_customer", opportunity_ids, set(account_ids))

    def measure(self, name: str, opportunity_ids: Sequence[str], account_ids: set[str]) -> ScenarioResult:
        """Close every Opportunity as won, settle, and work out what the phase cost."""
        self.stack.poller.reset_stats()
        before = self.counters()
        started = time.monotonic()
        for opportunity_id in opportunity_ids:
            self.rep.close_won(opportunity_id)
        self.settle()
        seconds = time.monotonic() - started
        after = self.counters()
        stats = self.stack.poller.stats()
        problems = self.check_orders(opportunity_ids, account_ids)
        count = len(opportunity_ids)

        salesforce = {
            kind: after.salesforce.get(kind, 0) - before.salesforce.get(kind, 0) for kind in after.salesforce
        }
        rep_patches = count  # the rep's close_won calls: PATCH /sobjects/Opportunity/<id> (sobject_write)
        salesforce_reads = sum(salesforce.get(kind, 0) for kind in SALESFORCE_READ_KINDS)
        salesforce_writes = sum(salesforce.get(kind, 0) for kind in SALESFORCE_WRITE_KINDS) - rep_patches
        intacct_functions = _difference(after.intacct_functions, before.intacct_functions)
        intacct_requests = after.intacct_requests - before.intacct_requests
        intacct_log_ins = intacct_functions.get(INTACCT_LOG_IN, 0)
        dynamodb_calls: Counter[tuple[str, str, str]] = Counter()
        for invocation in self.stack.poller.invocations():  # reset when the phase began
            for (table, operation), calls in invocation.dynamodb_calls.items():
                dynamodb_calls[(invocation.function_name, table, operation)] += calls
        worker_dynamodb = {
            f"{function} {self.tables.get(table, table)}.{operation}": calls
            for (function, table, operation), calls in sorted(dynamodb_calls.items())
        }
        dynamodb_operations = sum(worker_dynamodb.values())
        notifications = len(after.delivered_notifications - before.delivered_notifications)
        intake_invocations = after.intake_invocations - before.intake_invocations
        intake_cpu = after.intake_cpu_seconds - before.intake_cpu_seconds
        worker_cpu = {function: totals["cpu_seconds"] for function, totals in stats.items()}
        worker_records = {function: totals["records"] for function, totals in stats.items()}
        if dynamodb_operations == 0:
            problems.append(
                "no DynamoDB call of the workers was counted (the worker processes' botocore hook "
                "did not catch them)"
            )
        if intake_invocations == 0 or notifications == 0:
            problems.append("no intake invocation or delivered notification was counted")
        if salesforce.get("sobject_write", 0) < rep_patches:
            problems.append("fewer sObject writes than the rep's own close_won PATCHes were counted")
        totals: dict[str, Any] = {
            "salesforce_by_kind": salesforce,
            "salesforce_rep_patches_subtracted": rep_patches,
            "salesforce_reads": salesforce_reads,
            "salesforce_writes": salesforce_writes,
            "salesforce_tokens": salesforce.get("token", 0),
            "intacct_requests": intacct_requests,
            "intacct_log_ins": intacct_log_ins,
            "intacct_functions": intacct_functions,
            "dynamodb_operations": dynamodb_operations,
            "dynamodb_by_call": worker_dynamodb,
            "worker_cpu_seconds": {function: round(cpu, 6) for function, cpu in worker_cpu.items()},
            "worker_records": worker_records,
            "worker_errors": {function: totals["errors"] for function, totals in stats.items()},
            "intake_invocations": intake_invocations,
            "intake_notifications": notifications,
            "intake_cpu_seconds": round(intake_cpu, 6),
        }
        per_opportunity = {
            "salesforce_reads": salesforce_reads / count,
            "salesforce_writes": salesforce_writes / count,
            "intacct_requests": intacct_requests / count,
            "intacct_requests_without_log_in": (intacct_requests - intacct_log_ins) / count,
            "dynamodb_operations": dynamodb_operations / count,
            "worker_cpu_ms": worker_cpu.get(ORDER_FUNCTION, 0.0) * 1000 / count,
        }
        return ScenarioResult(
            name=name,
            opportunities=count,
            seconds=seconds,
            totals=totals,
            per_opportunity=per_opportunity,
            intake_cpu_ms_per_notification=intake_cpu * 1000 / notifications if notifications else 0.0,
            problems=problems,
        )

    def counters(self) -> Counters:
        salesforce = self.rep.admin.counts()
        intacct = self.intacct.counts()
        invocations, cpu_seconds = self.intake.snapshot()
        delivered = {
            notification_id
            for delivery in self.rep.admin.outbound()
            if delivery["status"] == "delivered"
            for notification_id in delivery["notification_ids"]
        }
        return Counters(
            salesforce={kind: int(count) for kind, count in salesforce["by_kind"].items()},
            intacct_requests=int(intacct["requests"]),
            intacct_functions={name: int(count) for name, count in intacct["functions"].items()},
            intake_invocations=invocations,
            intake_cpu_seconds=cpu_seconds,
            delivered_notifications=delivered,
        )

    def check_orders(self, opportunity_ids: Sequence[str], account_ids: set[str]) -> list[str]:
        """Exactly one Sales Order per Opportunity (PONUMBER = its id), written back; one customer each."""
        problems: list[str] = []
        orders = Counter(order.get("PONUMBER") for order in self.intacct.records("SODOCUMENT"))
        for opportunity_id in opportunity_ids:
            if orders[opportunity_id] != 1:
                problems.append(f"{orders[opportunity_id]} Sales Orders for Opportunity {opportunity_id}")
        opportunities = {record["Id"]: record for record in self.rep.admin.records("Opportunity")}
        not_synced = [
            opportunity_id
            for opportunity_id in opportunity_ids
            if opportunities.get(opportunity_id, {}).get("Intacct_Sync_Status__c") != "Synced"
        ]
        if not_synced:
            problems.append(f"{len(not_synced)} Opportunities are not marked Synced in Salesforce")
        customers = Counter(customer.get("SALESFORCE_ID") for customer in self.intacct.records("CUSTOMER"))
        for account_id in sorted(account_ids):
            if customers[account_id] != 1:
                problems.append(f"{customers[account_id]} Intacct customers for Account {account_id}")
        return problems

    def customers_of(self, account_id: str) -> list[dict[str, Any]]:
        return [c for c in self.intacct.records("CUSTOMER") if c.get("SALESFORCE_ID") == account_id]

    def settle(self) -> None:
        if not self.stack.wait_until_settled(SETTLE_SECONDS):
            raise BenchFailed(f"the local stack did not settle within {SETTLE_SECONDS:.0f} s")


def _difference(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    return {
        name: count - before.get(name, 0)
        for name, count in sorted(after.items())
        if count != before.get(name, 0)
    }


# ---------------------------------------------------------------------------- cold imports


def cold_import_ms(stack: LocalStack, runs: int = IMPORT_RUNS) -> dict[str, float]:
    """Median time of `import app` per function in a fresh interpreter with the function's environment."""
    base = {name: os.environ[name] for name in ("PATH", "HOME", "LANG", "TMPDIR") if name in os.environ}
    ca_files = {"INTACCT_CA_FILE": str(stack.ca_file), "SALESFORCE_CA_FILE": str(stack.ca_file)}
    results: dict[str, float] = {}
    for name, (logical_id, code_dir) in FUNCTIONS.items():
        parameters = (
            {"IntakeSecretArn": stack.info["secrets"]["intake"]} if logical_id == "IntakeFunction" else {}
        )
        environment = {**base, **ca_files, **stack.function_environment(logical_id, parameters)}
        timings = []
        for _ in range(runs):
            completed = subprocess.run(  # noqa: S603 - this interpreter, fixed arguments
                [sys.executable, "-c", IMPORT_TIMER, str(code_dir), str(LAYER_DIR)],
                cwd=code_dir,
                env=environment,
                capture_output=True,
                text=True,
                check=False,
            )
            if completed.returncode != 0:
                raise BenchFailed(f"importing {name}'s app failed:\n{completed.stderr.strip()}")
            timings.append(float(completed.stdout.strip().splitlines()[-1]))
        results[name] = round(statistics.median(timings), 1)
    return results


# ---------------------------------------------------------------------------- report


def target_results(scenarios: Mapping[str, ScenarioResult]) -> list[dict[str, Any]]:
    return [
        {
            "scenario": scenario,
            "figure": figure,
            "per_opportunity": scenarios[scenario].per_opportunity[figure],
            "at_most": limit,
            "passed": scenarios[scenario].per_opportunity[figure] <= limit,
        }
        for scenario, figure, limit in TARGETS
    ]


def print_finance(finance: FinanceBenchResult) -> None:
    figures = finance.as_dict()
    print(
        f"\nFinance run over {figures['invoices']} changed invoices of {figures['accounts']} customers: "
        f"{figures['written']} records written in {figures['salesforce_write_calls']} Salesforce calls "
        f"(target at most {figures['salesforce_write_calls_target']}); {figures['intacct_requests']} "
        f"Intacct requests besides its log-in = {figures['intacct_pages']} ARINVOICE pages + "
        f"{figures['intacct_link_queries']} SODOCUMENT link queries; {figures['seconds']} s. Run again "
        f"with nothing changed: {figures['second_run_salesforce_writes']} Salesforce writes. "
        + ("PASS" if finance.passed else "FAIL")
    )


def print_report(
    scenarios: Mapping[str, ScenarioResult],
    targets: Sequence[Mapping[str, Any]],
    imports: Mapping[str, float],
) -> None:
    columns = (
        ("scenario", 16),
        ("opps", 5),
        ("SF reads", 9),
        ("SF writes", 10),
        ("SF tokens", 10),
        ("Intacct", 8),
        ("w/o login", 10),
        ("logins", 7),
        ("DynamoDB", 9),
        ("worker CPU ms", 14),
        ("intake CPU ms/notif", 20),
        ("seconds", 8),
    )
    print("Per Opportunity, close-and-sync phase only (tokens and logins: totals, per worker process)")
    print(
        "  ".join(
            f"{title:>{width}}" if index else f"{title:<{width}}"
            for index, (title, width) in enumerate(columns)
        )
    )
    for result in scenarios.values():
        per = result.per_opportunity
        cells = (
            result.name,
            str(result.opportunities),
            f"{per['salesforce_reads']:.2f}",
            f"{per['salesforce_writes']:.2f}",
            str(result.totals["salesforce_tokens"]),
            f"{per['intacct_requests']:.2f}",
            f"{per['intacct_requests_without_log_in']:.2f}",
            str(result.totals["intacct_log_ins"]),
            f"{per['dynamodb_operations']:.2f}",
            f"{per['worker_cpu_ms']:.1f}",
            f"{result.intake_cpu_ms_per_notification:.1f}",
            f"{result.seconds:.1f}",
        )
        print(
            "  ".join(
                f"{cell:>{width}}" if index else f"{cell:<{width}}"
                for index, (cell, (_, width)) in enumerate(zip(cells, columns, strict=True))
            )
        )
    print(
        "SF reads = query + sobject_read; SF writes = composite + sobject_write minus the rep's own\n"
        "close_won PATCH per Opportunity; Intacct w/o login = without getAPISession. Tokens and logins\n"
        "are per execution environment (one worker process per slot here, as on Lambda), so they are\n"
        "mostly spent before the phase."
    )
    print("\nTargets")
    for target in targets:
        verdict = "PASS" if target["passed"] else "FAIL"
        print(
            f"  {verdict}  {target['scenario']:<16} {target['figure']:<32} "
            f"{target['per_opportunity']:.2f} per Opportunity (at most {target['at_most']:g})"
        )
    for result in scenarios.values():
        print(f"\n{result.name}: calls in the phase")
        print(
            "  Salesforce  "
            + ", ".join(
                f"{kind} {count}" for kind, count in result.totals["salesforce_by_kind"].items() if count
            )
        )
        print(
            "  Intacct     "
            + ", ".join(f"{name} {count}" for name, count in result.totals["intacct_functions"].items())
        )
        for call, count in result.totals["dynamodb_by_call"].items():
            print(f"  DynamoDB    {call} {count}")
        print(
            f"  intake      {result.totals['intake_invocations']} invocation(s) for "
            f"{result.totals['intake_notifications']} notification(s)"
        )
        for problem in result.problems:
            print(f"  PROBLEM     {problem}")
    print("\nCold `import app` in a fresh interpreter (median of 3)")
    for name, milliseconds in imports.items():
        print(f"  {name:<22} {milliseconds:8.1f} ms")


def run(count: int, invoices: int = DEFAULT_INVOICES) -> int:
    # The intake (in this process) logs JSON lines and metrics like on Lambda; the benchmark prints its
    # own report. The workers' processes log to the stack's logs directory.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    logging.basicConfig(level=logging.WARNING)
    intake = IntakeMeter()
    with tempfile.TemporaryDirectory(prefix="sfintacct-bench-") as state_dir:
        print("Starting the local stack...", file=sys.stderr, flush=True)
        with (
            intake_measured(intake),
            start_local_stack(
                Path(state_dir),
                ephemeral=True,
                queue_visibility_seconds=10,
                parameters={"LogLevel": "WARNING"},
            ) as stack,
        ):
            bench = Bench(stack, intake)
            try:
                bench.seed_products()
                print(f"Scenario customer_synced: {count} deal(s)...", file=sys.stderr, flush=True)
                synced = bench.customer_synced(count)
                print(f"Scenario new_customer: {count} deal(s)...", file=sys.stderr, flush=True)
                new = bench.new_customer(count)
                finance = None
                if invoices:
                    print(f"Finance run over {invoices} changed invoice(s)...", file=sys.stderr, flush=True)
                    finance = bench_finance(stack, invoices)
                print("Timing cold imports...", file=sys.stderr, flush=True)
                imports = cold_import_ms(stack)
            except (BenchFailed, FinanceBenchFailed) as error:
                print(f"bench failed: {error}", file=sys.stderr)
                return 1
            finally:
                bench.close()
    scenarios = {result.name: result for result in (synced, new)}
    targets = target_results(scenarios)
    print_report(scenarios, targets, imports)
    if finance is not None:
        print_finance(finance)
    passed = (
        all(target["passed"] for target in targets)
        and not any(result.problems for result in scenarios.values())
        and (finance is None or finance.passed)
    )
    document = {
        "opportunities": count,
        "passed": passed,
        "targets": targets,
        "cold_import_ms": imports,
        "finance": finance.as_dict() if finance is not None else None,
        "scenarios": {
            result.name: {
                "opportunities": result.opportunities,
                "seconds": round(result.seconds, 2),
                "problems": result.problems,
                "per_opportunity": {name: round(value, 3) for name, value in result.per_opportunity.items()},
                "intake_cpu_ms_per_notification": round(result.intake_cpu_ms_per_notification, 3),
                "totals": result.totals,
            }
            for result in scenarios.values()
        },
    }
    print(json.dumps(document, sort_keys=True))
    return 0 if passed else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.bench", description="Measure the API calls and CPU one closed-won deal costs."
    )
    parser.add_argument(
        "--opportunities",
        type=_positive,
        default=DEFAULT_OPPORTUNITIES,
        metavar="N",
        help=f"closed-won Opportunities per scenario (default {DEFAULT_OPPORTUNITIES})",
    )
    parser.add_argument(
        "--invoices",
        type=int,
        default=DEFAULT_INVOICES,
        metavar="N",
        help=f"changed invoices for the finance run's line (default {DEFAULT_INVOICES}; 0 leaves it out)",
    )
    arguments = parser.parse_args(argv)
    return run(arguments.opportunities, max(0, arguments.invoices))


def _positive(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError("must be a whole number of at least 1")
    return int(text)


if __name__ == "__main__":
    sys.exit(main())
