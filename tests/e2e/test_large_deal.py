"""A deal with more lines than Salesforce returns in one batch of a child subquery still becomes one
Sales Order with every line.

Salesforce sends the lines of a deal (the OpportunityLineItems child result) in batches of about 200,
each with a nextRecordsUrl to the next; the sandbox does the same (child_batch_size 200). With 250
lines the worker must follow that link to read the last 50.
"""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pytest

from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.sales_rep import PRODUCTS, Line, SalesRep
from sandbox.stack import LocalStack
from sfintacct.sync.sync_log import SyncLog
from tests.e2e.conftest import customers_of, orders_of, settle

pytestmark = pytest.mark.e2e

LINE_COUNT = 250
SETTLE_SECONDS = 120.0


def lines_of(intacct: IntacctAdminClient, doc_id: str) -> list[dict[str, Any]]:
    return [record for record in intacct.records("SODOCUMENTENTRY") if record.get("DOCHDRID") == doc_id]


def test_a_closed_won_deal_with_250_lines_becomes_a_sales_order_with_all_250(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog
) -> None:
    batch_size = rep.admin.config()["child_batch_size"]
    assert batch_size is not None
    assert batch_size < LINE_COUNT  # Salesforce sends these lines in more than one batch
    # Every line has its own quantity, so each one is recognisable in the order.
    lines = [
        Line(PRODUCTS[number % len(PRODUCTS)][0], Decimal(number + 1), PRODUCTS[number % len(PRODUCTS)][2])
        for number in range(LINE_COUNT)
    ]
    account_id = rep.create("Account", {"Name": "Wide World Importers", "BillingCity": "Seattle"})
    opportunity_id = rep.deal(account_id, "Wide World Importers fleet", lines)
    settle(stack, SETTLE_SECONDS)

    rep.close_won(opportunity_id)
    settle(stack, SETTLE_SECONDS)

    customers = customers_of(intacct, account_id)
    orders = orders_of(intacct, opportunity_id)
    assert len(customers) == 1, customers
    assert len(orders) == 1, orders
    order_lines = lines_of(intacct, orders[0]["DOCID"])
    assert len(order_lines) == LINE_COUNT
    assert len({int(line["LINE_NO"]) for line in order_lines}) == LINE_COUNT
    assert Counter((line["ITEMID"], Decimal(line["QUANTITY"])) for line in order_lines) == Counter(
        (line.product_code, line.quantity) for line in lines
    )
    assert rep.read("Opportunity", opportunity_id)["Intacct_Sync_Status__c"] == "Synced"
    assert [entry.status for entry in sync_log.history(opportunity_id)].count("synced") == 1
