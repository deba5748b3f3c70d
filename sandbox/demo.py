"""`make demo`: the whole flow on the local stack, as a rep and finance would see it.

It starts the stack, seeds Salesforce with an Account, three products that exist as Intacct items and an
Opportunity with three lines (one a free add-on at price 0), closes the deal as won through the REST
API (the Outbound Message fires as in real life), waits for the workers, then prints the Intacct
customer, the Sales Order with its lines, the fields written back on Salesforce, the sync log, the
API calls it took, and the parts of the Salesforce package (salesforce/) the run went through, read
from the package itself: the write-back fields, the Outbound Messages and the flows that sent them,
and the permission set whose holders' changes send nothing. It ends with the operations command
(.venv/bin/sfintacct, as an operator runs it): `status` of the deal, then a second deal that fails on a
product code Intacct does not know, is fixed in Salesforce and sent again with `sfintacct retry`. Then
it stops the stack.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sandbox.accountant import Accountant
from sandbox.aws_local import dynamodb_client
from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.sales_rep import THREE_LINES, Line, SalesRep
from sandbox.salesforce.package import PackageError, SalesforcePackage, load_package
from sandbox.stack import LocalStack, start_local_stack
from sfintacct.sync.sync_log import SyncLog
from sfintacct_ops.deployment import from_local

WAIT_SECONDS = 60.0
REPO_ROOT = Path(__file__).resolve().parents[1]
OPERATIONS_COMMAND = REPO_ROOT / ".venv" / "bin" / "sfintacct"
# A product whose code has a typo: Intacct's item is HW-GATEWAY.
MISTYPED_CODE, RIGHT_CODE = "HW-GATEWY", "HW-GATEWAY"


class DemoFailed(Exception):
    """The flow did not produce what it should have."""


def run_demo(stack: LocalStack) -> None:
    try:
        package = load_package()
    except PackageError as error:
        raise DemoFailed(f"the Salesforce package cannot be read: {error}") from error
    salesforce = stack.info["salesforce"]
    intacct = IntacctAdminClient(stack.info["intacct"]["admin_url"], stack.info["intacct"]["ca_file"])
    rep = SalesRep(salesforce)
    try:
        print("\n1. The rep works in Salesforce")
        account_id = rep.create(
            "Account",
            {
                "Name": "Northwind Traders",
                "Phone": "+1 415 555 0100",
                "Website": "https://northwind.example",
                "BillingStreet": "1 Market St",
                "BillingCity": "San Francisco",
                "BillingState": "CA",
                "BillingPostalCode": "94105",
                "BillingCountry": "United States",
            },
        )
        print(f"   Account      {account_id}  Northwind Traders")
        rep.products()
        opportunity_id = rep.deal(account_id, "Northwind platform deal", THREE_LINES)
        print(f"   Opportunity  {opportunity_id}  Northwind platform deal, 3 lines")
        wait_until_settled(stack)
        intacct_before = intacct.counts()
        salesforce_before = rep.admin.counts()
        stack.poller.reset_stats()

        print("\n2. The rep closes the deal as won")
        started = time.monotonic()
        rep.close_won(opportunity_id)
        wait_until_settled(stack)
        print(f"   ...synced in {time.monotonic() - started:.1f} s")
        calls = api_calls(intacct, intacct_before, rep, salesforce_before, stack)

        print("\n3. Intacct now holds")
        show_intacct(intacct, account_id, opportunity_id)
        print("\n4. Salesforce shows the rep")
        show_write_back(rep, account_id, opportunity_id)
        print("\n5. The sync log")
        show_sync_log(stack, opportunity_id)
        print("\n6. API calls for the closed deal")
        print("\n".join(calls))
        print(f"\n7. The parts of the Salesforce package ({where(package)}) this run went through")
        records = {"Account": account_id, "Opportunity": opportunity_id}
        show_package(package, rep, salesforce["integration_user_id"], records)
        print("\n8. The operator asks for the deal's whole story")
        print(f"   $ sfintacct --local <stack.json> status {opportunity_id}")
        print(indented(sfintacct(stack, "status", opportunity_id)))
        print("\n9. A deal that fails, is fixed, and is sent again")
        show_fixed_and_retried(stack, rep, account_id)
        print("\n10. Finance back to sales: what accounting does in Intacct reaches the rep")
        show_finance(stack, rep, account_id, opportunity_id)
    finally:
        rep.close()


def show_finance(stack: LocalStack, rep: SalesRep, account_id: str, opportunity_id: str) -> None:
    """The accountant invoices the deal and the customer pays part of it; an older invoice is 130 days
    late; each step, then one run of the scheduled finance function, and what the records show."""
    deployment = from_local(stack.stack_file) if stack.stack_file else None
    if deployment is None:
        raise DemoFailed("the local stack wrote no stack.json")
    accountant = Accountant(deployment.intacct_client())
    today = datetime.now(UTC).date()
    try:
        [order] = [o for o in _orders(stack) if o.get("PONUMBER") == opportunity_id]
        invoice = accountant.convert_to_invoice(str(order["DOCID"]), day=today)
        finance_run(stack)
        show_invoice(rep, "The order is invoiced", opportunity_id)
        accountant.pay(invoice, Decimal(5000), day=today)
        finance_run(stack)
        show_invoice(rep, "The customer pays 5,000.00", opportunity_id)
        late_deal = rep.deal(
            account_id,
            "Northwind onboarding (last spring)",
            (Line("SVC-ONBOARD", Decimal(1), Decimal(2500)),),
        )
        rep.close_won(late_deal)
        wait_until_settled(stack)
        [late_order] = [o for o in _orders(stack) if o.get("PONUMBER") == late_deal]
        late = accountant.convert_to_invoice(str(late_order["DOCID"]), day=today - timedelta(days=160))
        finance_run(stack)
        account = rep.read("Account", account_id)
        balance, late_days = account["Intacct_AR_Balance__c"], int(account["Intacct_Days_Past_Due__c"])
        print(
            f"   An older invoice, due 130 days ago, unpaid: Account AR balance {balance}, {late_days} days "
            f"past due, in collections: {account['Intacct_In_Collections__c']}"
        )
        if account["Intacct_In_Collections__c"] is not True:
            raise DemoFailed("the Account 130 days past due is not flagged in collections")
        upsell = rep.deal(account_id, "Northwind upsell", (Line("SVC-TRAINING", Decimal(1), Decimal(800)),))
        warning = rep.read("Opportunity", upsell)["Intacct_Collections_Warning__c"]
        print(f"   A new deal for the Account warns the rep: {warning}")
        accountant.pay(late, Decimal(2500), day=today)
        finance_run(stack)
        account = rep.read("Account", account_id)
        print(
            f"   Paid in full: days past due {int(account['Intacct_Days_Past_Due__c'])}, in collections: "
            f"{account['Intacct_In_Collections__c']}"
        )
        if account["Intacct_In_Collections__c"] is not False:
            raise DemoFailed("the flag did not clear once the late invoice was paid")
    finally:
        deployment.close()


def finance_run(stack: LocalStack) -> None:
    result = stack.workers.run_scheduled("FinanceStatusFunction")
    if (
        result.status != "returned"
        or not isinstance(result.response, dict)
        or "stopped_by" in result.response
    ):
        raise DemoFailed(f"the finance run did not finish: {result.status} {result.error} {result.response}")


def show_invoice(rep: SalesRep, what: str, opportunity_id: str) -> None:
    deal = rep.read("Opportunity", opportunity_id)
    print(
        f"   {what}: Opportunity Intacct_Invoice_Number__c={deal['Intacct_Invoice_Number__c']}  "
        f"Intacct_Invoice_State__c={deal['Intacct_Invoice_State__c']}  "
        f"Intacct_Amount_Due__c={deal['Intacct_Amount_Due__c']}"
    )


def _orders(stack: LocalStack) -> list[dict[str, Any]]:
    intacct = IntacctAdminClient(stack.info["intacct"]["admin_url"], stack.info["intacct"]["ca_file"])
    return [o for o in intacct.records("SODOCUMENT") if o.get("DOCPARID") == "Sales Order"]


def sfintacct(stack: LocalStack, *arguments: str) -> str:
    """Run the operations command as an operator would (`--local` names this stack's stack.json)."""
    if stack.stack_file is None:
        raise DemoFailed("the local stack wrote no stack.json for the operations command")
    if not OPERATIONS_COMMAND.exists():
        raise DemoFailed(f"{OPERATIONS_COMMAND.relative_to(REPO_ROOT)} is missing: run make setup")
    finished = subprocess.run(  # noqa: S603 - our own launcher, fixed arguments
        [str(OPERATIONS_COMMAND), "--local", str(stack.stack_file), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if finished.returncode != 0:
        raise DemoFailed(
            f"sfintacct {arguments[0]} failed ({finished.returncode}): {finished.stderr.strip()}"
        )
    return finished.stdout.rstrip()


def indented(text: str) -> str:
    return "\n".join(f"   {line}" for line in text.splitlines())


def show_fixed_and_retried(stack: LocalStack, rep: SalesRep, account_id: str) -> None:
    rep.product(MISTYPED_CODE, "Gateway device", Decimal(499))
    [product] = rep.query(f"SELECT Id FROM Product2 WHERE ProductCode = '{MISTYPED_CODE}'")  # noqa: S608
    deal_id = rep.deal(
        account_id, "Northwind gateway add-on", (Line(MISTYPED_CODE, Decimal(2), Decimal(499)),)
    )
    rep.close_won(deal_id)
    wait_until_settled(stack)
    failed = rep.read("Opportunity", deal_id)
    print(f"   Opportunity  {deal_id}  Northwind gateway add-on, 2 x {MISTYPED_CODE}, closed won")
    print(f"   Intacct_Sync_Status__c={failed['Intacct_Sync_Status__c']}")
    print(f"   Intacct_Sync_Error__c={failed['Intacct_Sync_Error__c']}")
    if failed["Intacct_Sync_Status__c"] != "Failed" or MISTYPED_CODE not in (
        failed["Intacct_Sync_Error__c"] or ""
    ):
        raise DemoFailed(f"the deal with product code {MISTYPED_CODE} did not fail naming it")

    rep.update("Product2", product["Id"], {"ProductCode": RIGHT_CODE})
    print(f"   The admin corrects the product code in Salesforce: {MISTYPED_CODE} -> {RIGHT_CODE}")
    print(f"   $ sfintacct --local <stack.json> retry {deal_id}")
    print(indented(sfintacct(stack, "retry", deal_id)))
    wait_until_settled(stack)
    fixed = rep.read("Opportunity", deal_id)
    print(
        f"   Intacct_Sync_Status__c={fixed['Intacct_Sync_Status__c']}  "
        f"Intacct_Order_Id__c={fixed['Intacct_Order_Id__c']}"
    )
    if fixed["Intacct_Sync_Status__c"] != "Synced":
        raise DemoFailed(f"the retried deal says {fixed['Intacct_Sync_Status__c']}")


def wait_until_settled(stack: LocalStack) -> None:
    if not stack.wait_until_settled(WAIT_SECONDS):
        raise DemoFailed(f"the workers did not finish within {WAIT_SECONDS:.0f} s")


def show_intacct(intacct: IntacctAdminClient, account_id: str, opportunity_id: str) -> None:
    customers = [c for c in intacct.records("CUSTOMER") if c.get("SALESFORCE_ID") == account_id]
    orders = [o for o in intacct.records("SODOCUMENT") if o.get("PONUMBER") == opportunity_id]
    if len(customers) != 1 or len(orders) != 1:
        raise DemoFailed(f"expected one customer and one order, found {len(customers)} and {len(orders)}")
    customer, order = customers[0], orders[0]
    print(f"   Customer     {customer['CUSTOMERID']}  {customer['NAME']}  (SALESFORCE_ID {account_id})")
    print(
        f"   Sales Order  {order['DOCID']}  customer {order['CUSTVENDID']}  reference {order['PONUMBER']}  "
        f"terms {order.get('TERMNAME', '')}  state {order.get('STATE', '')}"
    )
    lines = sorted(
        (line for line in intacct.records("SODOCUMENTENTRY") if line.get("DOCHDRID") == order["DOCID"]),
        key=lambda line: int(line["LINE_NO"]),
    )
    for number, line in enumerate(lines, start=1):
        revrec = f"  rev-rec from {line['REVRECSTARTDATE']}" if line.get("REVRECSTARTDATE") else ""
        print(
            f"     line {number}: {line['ITEMID']:<13} qty {line['QUANTITY']:>3}  price {line['PRICE']:>8}  "
            f"discount {line.get('DISCOUNT') or '0':>3}%{revrec}  {line.get('MEMO') or ''}"
        )
    if len(lines) != len(THREE_LINES):
        raise DemoFailed(f"expected {len(THREE_LINES)} order lines, found {len(lines)}")
    for deal_line, order_line in zip(THREE_LINES, lines, strict=True):
        wanted = deal_line.service_date
        if wanted and order_line.get("REVRECSTARTDATE") != f"{wanted[5:7]}/{wanted[8:10]}/{wanted[:4]}":
            raise DemoFailed(f"{deal_line.product_code}: ServiceDate {wanted} is not the rev-rec start date")


def show_write_back(rep: SalesRep, account_id: str, opportunity_id: str) -> None:
    account = rep.read("Account", account_id)
    opportunity = rep.read("Opportunity", opportunity_id)
    print(
        f"   Account      Intacct_Customer_Id__c={account['Intacct_Customer_Id__c']}  "
        f"Intacct_Sync_Status__c={account['Intacct_Sync_Status__c']}"
    )
    print(
        f"   Opportunity  Intacct_Order_Id__c={opportunity['Intacct_Order_Id__c']}  "
        f"Intacct_Sync_Status__c={opportunity['Intacct_Sync_Status__c']}  "
        f"Intacct_Synced_At__c={opportunity['Intacct_Synced_At__c']}"
    )
    if opportunity["Intacct_Sync_Status__c"] != "Synced":
        raise DemoFailed(f"the Opportunity says {opportunity['Intacct_Sync_Status__c']}")


def show_sync_log(stack: LocalStack, opportunity_id: str) -> None:
    client = dynamodb_client(stack.info["dynamodb_endpoint"], stack.info["region"])
    for entry in SyncLog(client, stack.info["tables"]["SyncLogTable"]).history(opportunity_id):
        print(
            f"   {entry.at:%H:%M:%S}  {entry.status:<8} {entry.reason:<8} {entry.message}  ({entry.source})"
        )


def where(package: SalesforcePackage) -> str:
    root = package.root.resolve()
    return f"{root.relative_to(REPO_ROOT)}/" if root.is_relative_to(REPO_ROOT) else str(root)


def show_package(
    package: SalesforcePackage, rep: SalesRep, integration_user_id: str, records: dict[str, str]
) -> None:
    """What the run went through of the package, by name: its fields the workers wrote back on the
    records (object -> id), the Outbound Messages sent for them with the flows that send them, and the
    permission set whose holders' changes send nothing."""
    rows: list[tuple[str, str]] = []
    for object_type, record_id in records.items():
        fields = written_back(package, rep, integration_user_id, object_type, record_id)
        rows.append(("Fields written back", f"{object_type}: {', '.join(fields)}"))
    sent = Counter(
        (delivery["definition"], record_id)
        for delivery in rep.admin.outbound()
        for record_id in delivery["record_ids"]
        if record_id in records.values()
    )
    if not sent:
        raise DemoFailed("Salesforce sent no Outbound Message for the Account or the Opportunity")
    for (name, _), count in sorted(sent.items()):
        if name not in {message.name for message in package.outbound_messages}:
            raise DemoFailed(
                f"Salesforce sent the Outbound Message {name}, which the package does not define"
            )
        flows = ", ".join(trigger.flow for trigger in package.outbound_message(name).triggers)
        rows.append(("Outbound Messages", f"{name} x{count}, sent by flow {flows or '(none)'}"))
    for message in package.outbound_messages:
        written = records.get(message.object_type)
        holders = sorted(
            {
                name
                for trigger in message.triggers
                if trigger.skipped
                for name in trigger.skipped.permission_sets
            }
        )
        if written is None or not holders:
            continue
        if (count := sent[message.name, written]) != 1:
            raise DemoFailed(
                f"{message.name} was sent {count} times; once was expected, for the rep's change"
            )
        rows.append(("No echo", f"the write-back to the {message.object_type} sent no {message.name}:"))
        rows.append(("No echo", f"its flow skips users with permission set {' or '.join(holders)}"))
    for index, (label, text) in enumerate(rows):
        shown = label if index == 0 or rows[index - 1][0] != label else ""
        print(f"   {shown:<20} {text}")


def written_back(
    package: SalesforcePackage, rep: SalesRep, integration_user_id: str, object_type: str, record_id: str
) -> list[str]:
    """The custom fields holding a value on a record the integration user changed last (the rep fills
    in none of them), each one checked to be a field of the package."""
    record = rep.read(object_type, record_id)
    if record["LastModifiedById"] != integration_user_id:
        raise DemoFailed(f"the {object_type} was not written back by the integration user")
    fields = sorted(
        name for name, value in record.items() if name.endswith("__c") and value not in (None, "")
    )
    if not fields:
        raise DemoFailed(f"the {object_type} holds none of the package's write-back fields")
    outside = [name for name in fields if package.field(object_type, name) is None]
    if outside:
        raise DemoFailed(f"{object_type} fields written back outside the package: {', '.join(outside)}")
    return fields


def api_calls(
    intacct: IntacctAdminClient,
    intacct_before: dict[str, Any],
    rep: SalesRep,
    salesforce_before: dict[str, Any],
    stack: LocalStack,
) -> list[str]:
    """What closing the deal cost, from the sandboxes' request counters and the poller's timings."""
    intacct_after = intacct.counts()
    functions = _increase(intacct_before["functions"], intacct_after["functions"])
    salesforce = _increase(salesforce_before["by_kind"], rep.admin.counts()["by_kind"])
    salesforce["sobject_write"] = salesforce.get("sobject_write", 0) - 1  # the rep's own "Closed Won" update
    worker = stack.poller.stats()["OpportunityToOrderFunction"]
    return [
        f"   Intacct      {intacct_after['requests'] - intacct_before['requests']} request(s): "
        + ", ".join(f"{name} x{count}" for name, count in sorted(functions.items())),
        "   Salesforce   "
        + ", ".join(f"{kind} x{count}" for kind, count in sorted(salesforce.items()) if count)
        + "  (by the worker; the rep's update that closed the deal not counted)",
        f"   Worker       {worker['invocations']} invocation(s), {worker['cpu_seconds'] * 1000:.0f} ms CPU",
    ]


def _increase(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {
        name: count - before.get(name, 0) for name, count in after.items() if count != before.get(name, 0)
    }


def main() -> int:
    # The intake (in this process) logs JSON lines and metrics like on Lambda; the demo prints its own
    # story instead. The workers' processes log to the stack's logs directory.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="sfintacct-demo-") as state_dir:
        print(
            "Starting the local stack (DynamoDB Local, moto, Salesforce and Intacct sandboxes, local API)..."
        )
        with start_local_stack(
            Path(state_dir), ephemeral=True, queue_visibility_seconds=10, parameters={"LogLevel": "WARNING"}
        ) as stack:
            try:
                run_demo(stack)
            except DemoFailed as error:
                print(f"\ndemo failed: {error}", file=sys.stderr)
                return 1
        print("\nLocal stack stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
