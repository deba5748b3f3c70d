"""Test records of the contract suite: what it creates in Intacct and Salesforce, and how it cleans up.

Every name and id carries the run id, so a run never touches records it did not create and two runs do not
collide. What cannot be removed is listed in the terminal summary (REPORT) when a real target is used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError, SalesforceResourceNotFound

from sfintacct.intacct import CustomerUpdate, IntacctClient, IntacctError, SessionCache
from sfintacct.salesforce import auth
from sfintacct.salesforce.client import SalesforceClient
from sfintacct.salesforce.models import OpportunityQueryFields
from sfintacct.salesforce.session import build_session
from tests.contract.targets import IntacctTarget, SalesforceTarget

# Lines printed after the run (real targets only): which targets were used and what was left behind.
REPORT: list[str] = []

# The Opportunity's products: (quantity, unit price). Amount = 3 x 149.50 + 1 x 1200 = 1648.50.
DEAL_LINES: tuple[tuple[Decimal, Decimal], ...] = (
    (Decimal(3), Decimal("149.50")),
    (Decimal(1), Decimal(1200)),
)


def record_id_like(prefix: str, run_id: str) -> str:
    """An 18-character value shaped like a Salesforce id (`001…`, `006…`), unique to the run."""
    return f"{prefix}CT{run_id}".ljust(18, "0")[:18]


# ---------------------------------------------------------------------------- Intacct


@dataclass
class IntacctCleanup:
    """Customers to inactivate and orders to report at the end of the session."""

    target: IntacctTarget
    run_id: str
    customers: list[str] = field(default_factory=list)
    orders: list[str] = field(default_factory=list)

    def run(self) -> list[str]:
        """Inactivate every registered customer that exists; the problems met, if any."""
        problems: list[str] = []
        with IntacctClient(self.target.settings, sessions=SessionCache()) as client:
            for customer_id in self.customers:
                try:
                    if client.get_customer(customer_id) is None:
                        continue  # never created
                    client.update_customer(
                        CustomerUpdate(customer_id=customer_id, status="inactive"),
                        control_id=f"contract-{self.run_id}-inactivate-{customer_id}",
                    )
                    customer = client.get_customer(customer_id)
                except IntacctError as error:
                    problems.append(f"Intacct customer {customer_id} was not inactivated: {error}")
                    continue
                if customer is None or customer.status != "inactive":
                    status = customer.status if customer else "gone"
                    problems.append(f"Intacct customer {customer_id} reads back as {status}, not inactive")
        if self.target.real:
            REPORT.extend(
                f"Left in Intacct (Draft, see tests/contract/README.md): {doc}" for doc in self.orders
            )
            REPORT.extend(f"Inactivated in Intacct: customer {customer}" for customer in self.customers)
        return problems


# ---------------------------------------------------------------------------- Salesforce


@dataclass(frozen=True)
class SeededDeal:
    """An Account and an Opportunity with two products, as created in Salesforce."""

    account_id: str
    account_name: str
    opportunity_id: str
    opportunity_name: str
    product_code: str
    line_ids: tuple[str, ...]


@dataclass
class SalesforceOrg:
    """The org of the contract tests: the project's client, and a separate API for test records only."""

    target: SalesforceTarget
    query_fields: OpportunityQueryFields
    created: list[tuple[str, str]] = field(default_factory=list)
    _api: Salesforce | None = None

    def client(self) -> SalesforceClient:
        """The project's Salesforce client, configured as the sync configures it."""
        return SalesforceClient(self.target.settings, query_fields=self.query_fields)

    def api(self) -> Salesforce:
        """simple-salesforce on a token of its own, to create and delete the test records."""
        if self._api is None:
            settings = self.target.settings
            session = build_session(settings)
            token = auth.request_access_token(settings, session)
            self._api = Salesforce(
                instance_url=token.instance_url,
                session_id=token.value,
                session=session,
                version=settings.api_version,
                object_pairs_hook=dict,
            )
        return self._api

    def create(self, object_type: str, values: dict[str, object]) -> str:
        """Create a record and remember it for deletion."""
        result = getattr(self.api(), object_type).create(values)
        record_id = str(result["id"])
        self.created.append((object_type, record_id))
        return record_id

    def seed_deal(self, run_id: str) -> SeededDeal:
        """A product in the standard price book, an Account, and an Opportunity with DEAL_LINES of it."""
        api = self.api()
        standard = api.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true")["records"]
        if not standard:
            raise AssertionError("the org has no standard price book")
        pricebook_id = standard[0]["Id"]
        name = f"sfintacct contract {run_id}"
        product_code = f"SFCT-{run_id}"
        product_id = self.create(
            "Product2", {"Name": name, "ProductCode": product_code, "Family": "Services", "IsActive": True}
        )
        entry_id = self.create(
            "PricebookEntry",
            {"Pricebook2Id": pricebook_id, "Product2Id": product_id, "UnitPrice": 149.5, "IsActive": True},
        )
        account_name = f"{name} Zürich AG"
        account_id = self.create("Account", {"Name": account_name, "BillingCity": "Zürich"})
        opportunity_id = self.create(
            "Opportunity",
            {
                "Name": name,
                "AccountId": account_id,
                "StageName": "Prospecting",
                "CloseDate": date.today().isoformat(),
                "Pricebook2Id": pricebook_id,
            },
        )
        line_ids = tuple(
            self.create(
                "OpportunityLineItem",
                {
                    "OpportunityId": opportunity_id,
                    "PricebookEntryId": entry_id,
                    "Quantity": float(quantity),
                    "UnitPrice": float(price),
                },
            )
            for quantity, price in DEAL_LINES
        )
        return SeededDeal(account_id, account_name, opportunity_id, name, product_code, line_ids)

    def delete_created(self) -> list[str]:
        """Delete what this run created, children first; the problems met, if any."""
        problems: list[str] = []
        while self.created:
            object_type, record_id = self.created.pop()
            if object_type == "OpportunityLineItem":
                continue  # deleted with its Opportunity
            try:
                getattr(self.api(), object_type).delete(record_id)
            except SalesforceResourceNotFound:
                pass  # already deleted along with its parent
            except (SalesforceError, requests.RequestException) as error:
                problems.append(f"Salesforce {object_type} {record_id} was not deleted: {error}")
            else:
                if self.target.real:
                    REPORT.append(f"Deleted in Salesforce: {object_type} {record_id}")
        return problems
