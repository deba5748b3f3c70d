"""Contract: what the sync needs from an Intacct company, checked through the project's IntacctClient.

Log in, find the item to order, create / find / update a customer by its Salesforce id field, create a
Sales Order and find it again by its reference (PONUMBER) with its lines and amounts, read query pages.
Runs against the Intacct sandbox, or a real company when SFINTACCT_CONTRACT_INTACCT_* is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

import pytest

from sfintacct.intacct import (
    Contact,
    CustomerUpdate,
    IntacctClient,
    MailAddress,
    NewCustomer,
    SalesTransaction,
    SalesTransactionLine,
    SessionCache,
    equal_to,
)
from sfintacct.mapping import SyncMapping
from tests.contract.support import DEAL_LINES, IntacctCleanup, record_id_like
from tests.contract.targets import IntacctTarget

pytestmark = pytest.mark.contract

CONTACT_FIELDS = ("DISPLAYCONTACT.EMAIL1", "DISPLAYCONTACT.MAILADDRESS.CITY")


def test_logs_in_and_finds_the_item_to_order(
    intacct_client: IntacctClient, intacct_target: IntacctTarget
) -> None:
    items = intacct_client.get_items([intacct_target.item_id])

    assert list(items) == [intacct_target.item_id], f"item {intacct_target.item_id} not found"
    assert items[intacct_target.item_id].active, f"item {intacct_target.item_id} is not active"


def test_customer_is_found_with_what_was_written_and_then_updated(
    intacct_client: IntacctClient,
    intacct_cleanup: IntacctCleanup,
    sync_mapping: SyncMapping,
    run_id: str,
) -> None:
    id_field = sync_mapping.salesforce_id_field
    customer_id = f"CT-{run_id}"
    account_id = record_id_like("001", run_id)
    name = f"sfintacct contract {run_id} Zürich AG"
    intacct_cleanup.customers.append(customer_id)
    written = NewCustomer(
        customer_id=customer_id,
        name=name,
        contact=Contact(
            print_as=name,
            company_name=name,
            email1=f"contract-{run_id.lower()}@example.com",
            mail_address=MailAddress(address1="Bahnhofstrasse 1", city="Zürich", zip="8001"),
        ),
        custom_fields={id_field: account_id},
    )

    created = intacct_client.create_customer(written, control_id=f"contract-{run_id}-customer-create")

    assert created.customer_id == customer_id
    assert created.record_no
    found = intacct_client.find_customers(id_field, account_id, extra_fields=CONTACT_FIELDS)
    assert [(c.record_no, c.customer_id, c.name, c.status) for c in found] == [
        (created.record_no, customer_id, name, "active")
    ]
    assert found[0].fields["DISPLAYCONTACT.EMAIL1"] == f"contract-{run_id.lower()}@example.com"
    assert found[0].fields["DISPLAYCONTACT.MAILADDRESS.CITY"] == "Zürich"

    new_name = f"sfintacct contract {run_id} Grüezi AG"
    intacct_client.update_customer(
        CustomerUpdate(
            customer_id=customer_id,
            name=new_name,
            contact=Contact(print_as=new_name, email1=f"billing-{run_id.lower()}@example.com"),
        ),
        control_id=f"contract-{run_id}-customer-update",
    )

    updated = intacct_client.get_customer(customer_id, extra_fields=(*CONTACT_FIELDS, id_field))
    assert updated is not None
    assert (updated.record_no, updated.name, updated.status) == (created.record_no, new_name, "active")
    assert updated.fields["DISPLAYCONTACT.EMAIL1"] == f"billing-{run_id.lower()}@example.com"
    assert updated.fields[id_field] == account_id


# ---------------------------------------------------------------------------- orders


@dataclass(frozen=True)
class PlacedOrder:
    doc_id: str
    order: SalesTransaction


@pytest.fixture(scope="module")
def placed_order(
    intacct_target: IntacctTarget, intacct_cleanup: IntacctCleanup, sync_mapping: SyncMapping, run_id: str
) -> PlacedOrder:
    """A customer and a Draft order for it with two lines of the contract item, written once per module."""
    customer_id = f"CO-{run_id}"
    intacct_cleanup.customers.append(customer_id)
    today = date.today()
    order = SalesTransaction(
        transaction_type=intacct_target.transaction_type,
        date_created=today,
        date_due=today + timedelta(days=30),
        customer_id=customer_id,
        reference_no=record_id_like("006", run_id),
        message=f"sfintacct contract test {run_id}",
        state="Draft",
        lines=[
            SalesTransactionLine(
                item_id=intacct_target.item_id, quantity=quantity, price=price, memo=f"contract line {number}"
            )
            for number, (quantity, price) in enumerate(DEAL_LINES, start=1)
        ],
    )
    with IntacctClient(intacct_target.settings, sessions=SessionCache()) as client:
        client.create_customer(
            NewCustomer(
                customer_id=customer_id,
                name=f"sfintacct contract {run_id} orders",
                custom_fields={sync_mapping.salesforce_id_field: record_id_like("001", f"O{run_id}")},
            ),
            control_id=f"contract-{run_id}-order-customer-create",
        )
        doc_id = client.create_sotransaction(order, control_id=f"contract-{run_id}-order-create")
    intacct_cleanup.orders.append(doc_id)
    return PlacedOrder(doc_id, order)


def test_order_is_found_by_its_reference_with_the_header_written(
    intacct_client: IntacctClient, placed_order: PlacedOrder
) -> None:
    order = placed_order.order

    found = intacct_client.find_sales_documents(
        reference_no=order.reference_no, transaction_type=order.transaction_type
    )

    assert [(d.doc_id, d.transaction_type, d.customer_id, d.reference_no) for d in found] == [
        (placed_order.doc_id, order.transaction_type, order.customer_id, order.reference_no)
    ]
    header = found[0]
    assert (header.date_created, header.date_due, header.message) == (
        order.date_created,
        order.date_due,
        order.message,
    )
    assert header.total == Decimal("1648.50")


def test_order_lines_have_the_items_quantities_prices_and_totals_written(
    intacct_client: IntacctClient, placed_order: PlacedOrder
) -> None:
    order = placed_order.order

    lines = intacct_client.get_sales_document_lines(
        placed_order.doc_id, transaction_type=order.transaction_type
    )

    assert [(line.item_id, line.quantity, line.price, line.total, line.memo) for line in lines] == [
        (order.lines[0].item_id, Decimal(3), Decimal("149.50"), Decimal("448.50"), "contract line 1"),
        (order.lines[1].item_id, Decimal(1), Decimal(1200), Decimal(1200), "contract line 2"),
    ]


def test_query_reads_every_page(intacct_client: IntacctClient, placed_order: PlacedOrder) -> None:
    records = list(
        intacct_client.query(
            "SODOCUMENTENTRY",
            ["RECORDNO", "DOCHDRID", "LINE_NO"],
            query_filter=equal_to("DOCHDRID", placed_order.doc_id),
            order_by=[("LINE_NO", False)],
            page_size=1,
            docparid=placed_order.order.transaction_type,
        )
    )

    assert [record["DOCHDRID"] for record in records] == [placed_order.doc_id] * 2
    assert len({record["RECORDNO"] for record in records}) == 2
