"""`make demo`: start the local stack, run the Intacct side of the flow through the real client, print it.

It creates a customer and a Sales Order with three lines (one a free add-on at price 0) in the Intacct
sandbox over HTTPS, with the same settings loader the workers use (the secret in the local Secrets
Manager), reads both back, prints them with the API calls it took, and stops the stack.
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import date
from decimal import Decimal
from pathlib import Path

from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.stack import LocalStack, start_local_stack
from sfintacct.intacct import (
    Contact,
    IntacctClient,
    MailAddress,
    NewCustomer,
    SalesTransaction,
    SalesTransactionLine,
    load_intacct_settings,
)

ACCOUNT_ID = "0015g00000DemoAcAAA"
OPPORTUNITY_ID = "0065g00000DemoOpAAA"


def run_demo(stack: LocalStack) -> None:
    intacct = stack.info["intacct"]
    os.environ.update(stack.aws_environment())
    os.environ.update(
        {
            "INTACCT_SECRET_ARN": stack.info["secrets"]["intacct"],
            "INTACCT_ENDPOINT_URL": intacct["endpoint"],
            "INTACCT_CA_FILE": intacct["ca_file"],
        }
    )
    admin = IntacctAdminClient(intacct["admin_url"], intacct["ca_file"])
    settings = load_intacct_settings()
    with IntacctClient(settings) as client:
        customer = client.create_customer(
            NewCustomer(
                name="Northwind Traders",
                contact=Contact(
                    print_as="Northwind Traders",
                    email1="ap@northwind.example",
                    phone1="+1 415 555 0100",
                    mail_address=MailAddress(
                        address1="1 Market St",
                        city="San Francisco",
                        state="CA",
                        zip="94105",
                        country="United States",
                    ),
                ),
                term_name="N30",
                custom_fields={"SALESFORCE_ID": ACCOUNT_ID},
            ),
            control_id=f"customer-create-{ACCOUNT_ID}",
        )
        doc_id = client.create_sotransaction(
            SalesTransaction(
                transaction_type="Sales Order",
                date_created=date.today(),
                customer_id=customer.customer_id,
                reference_no=OPPORTUNITY_ID,
                term_name="N30",
                message="Closed won: Northwind platform deal",
                custom_fields={"SALESFORCE_OPPORTUNITY_ID": OPPORTUNITY_ID},
                lines=[
                    SalesTransactionLine(item_id="SUB-PLATFORM", quantity=Decimal(1), price=Decimal(12000)),
                    SalesTransactionLine(item_id="SVC-ONBOARD", quantity=Decimal(1), price=Decimal(2500)),
                    SalesTransactionLine(
                        item_id="SVC-TRAINING",
                        quantity=Decimal(2),
                        price=Decimal(0),
                        memo="Free add-on promised in contract",
                    ),
                ],
            ),
            control_id=f"order-create-{OPPORTUNITY_ID}",
        )
        stored_customer = client.get_customer(customer.customer_id)
        orders = client.find_sales_documents(reference_no=OPPORTUNITY_ID)
        lines = client.get_sales_document_lines(doc_id)

    assert stored_customer is not None, "the customer just created was not found"
    print(
        f"Intacct customer  {stored_customer.customer_id}  {stored_customer.name}  ({stored_customer.status})"
    )
    for order in orders:
        print(
            f"Intacct order     {order.doc_id}  customer {order.customer_id}  "
            f"reference {order.reference_no}  state {order.state}  total {order.total}"
        )
    for line in lines:
        print(
            f"  line {line.line_no}: {line.item_id:<13} qty {line.quantity}  price {line.price}  "
            f"total {line.total}  {line.memo}"
        )
    counts = admin.counts()
    calls = ", ".join(f"{name} x{count}" for name, count in sorted(counts["functions"].items()))
    print(f"API calls         {counts['requests']} HTTP requests to Intacct: {calls}")
    if len(orders) != 1 or len(lines) != 3:
        raise SystemExit(f"unexpected result: {len(orders)} orders, {len(lines)} lines")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="sfintacct-demo-") as state_dir:
        print("Starting the local stack (DynamoDB Local, moto, Intacct sandbox)...", flush=True)
        with start_local_stack(Path(state_dir), ephemeral=True) as stack:
            run_demo(stack)
        print("Local stack stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
