"""A sales rep working in the Salesforce sandbox through its REST API, as the browser would.

Used by `make demo`, `make bench` and the end-to-end tests to seed accounts, products and deals and
to close them as won: the sandbox then fires its Outbound Messages exactly as Salesforce would.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

from sandbox.salesforce.admin_client import SalesforceAdminClient

SALES_REP_USERNAME_PREFIX = "sales.rep@"


@dataclass(frozen=True)
class Line:
    """One product on a deal: Salesforce ProductCode, quantity, unit price, optional discount (%)."""

    product_code: str
    quantity: Decimal
    unit_price: Decimal
    discount: Decimal | None = None
    description: str | None = None
    service_date: str | None = None


# What the demo, the benchmark and the end-to-end tests sell: products that exist as Intacct sandbox
# items (ProductCode = ITEMID), and a three-line deal with a free add-on at price 0.
PRODUCTS: tuple[tuple[str, str, Decimal], ...] = (
    ("SUB-PLATFORM", "Platform subscription (annual)", Decimal(12000)),
    ("SVC-ONBOARD", "Onboarding service", Decimal(2500)),
    ("SVC-TRAINING", "Training add-on", Decimal(800)),
)
THREE_LINES: tuple[Line, ...] = (
    Line("SUB-PLATFORM", Decimal(1), Decimal(12000), discount=Decimal(10)),
    Line("SVC-ONBOARD", Decimal(1), Decimal(2500), service_date="2027-01-04"),
    Line("SVC-TRAINING", Decimal(2), Decimal(0), description="Free add-on promised in the contract"),
)


class SalesRep:
    """The seeded sales rep by default; `username` acts as another seeded user (e.g. the integration user)."""

    def __init__(self, salesforce: Mapping[str, Any], *, username: str | None = None) -> None:
        self.admin = SalesforceAdminClient(salesforce["admin_url"], salesforce["ca_file"])
        if username is None:
            username = next(
                user["username"]
                for user in self.admin.users()
                if user["username"].startswith(SALES_REP_USERNAME_PREFIX)
            )
        self.username = username
        self.http = httpx.Client(
            base_url=f"{salesforce['instance_url']}/services/data/v{salesforce['api_version']}",
            verify=ssl.create_default_context(cafile=salesforce["ca_file"]),
            timeout=30.0,
        )
        self.log_in()
        self._price_book_entries: dict[str, str] = {}

    def log_in(self) -> None:
        """A fresh session (after the sandbox expired every token)."""
        token = self.admin.log_in(self.username)["access_token"]
        self.http.headers["Authorization"] = f"Bearer {token}"

    def close(self) -> None:
        self.http.close()

    # ------------------------------------------------------------------ REST basics

    def create(self, object_type: str, fields: Mapping[str, Any]) -> str:
        response = self.http.post(f"/sobjects/{object_type}", json=dict(fields))
        if response.status_code != httpx.codes.CREATED:
            raise RuntimeError(f"creating {object_type} failed: {response.status_code} {response.text}")
        record_id: str = response.json()["id"]
        return record_id

    def update(self, object_type: str, record_id: str, fields: Mapping[str, Any]) -> None:
        response = self.http.patch(f"/sobjects/{object_type}/{record_id}", json=dict(fields))
        if response.status_code != httpx.codes.NO_CONTENT:
            raise RuntimeError(
                f"updating {object_type} {record_id} failed: {response.status_code} {response.text}"
            )

    def read(self, object_type: str, record_id: str) -> dict[str, Any]:
        response = self.http.get(f"/sobjects/{object_type}/{record_id}")
        response.raise_for_status()
        record: dict[str, Any] = response.json()
        return record

    def query(self, soql: str) -> list[dict[str, Any]]:
        response = self.http.get("/query", params={"q": soql})
        response.raise_for_status()
        records: list[dict[str, Any]] = response.json()["records"]
        return records

    # ------------------------------------------------------------------ the sales story

    def product(self, product_code: str, name: str, list_price: Decimal) -> str:
        """A Product2 with this ProductCode and its standard price book entry (made once per code)."""
        if product_code not in self._price_book_entries:
            product_id = self.create(
                "Product2", {"Name": name, "ProductCode": product_code, "IsActive": True}
            )
            self._price_book_entries[product_code] = self.create(
                "PricebookEntry",
                {
                    "Pricebook2Id": self._standard_price_book_id(),
                    "Product2Id": product_id,
                    "UnitPrice": str(list_price),
                    "IsActive": True,
                },
            )
        return self._price_book_entries[product_code]

    def products(self) -> None:
        """Every product of PRODUCTS, with its standard price."""
        for code, name, price in PRODUCTS:
            self.product(code, name, price)

    def deal(
        self, account_id: str, name: str, lines: Sequence[Line], *, close_date: str = "2026-12-15"
    ) -> str:
        """An open Opportunity with these lines (every product must have been made with product())."""
        opportunity_id = self.create(
            "Opportunity",
            {
                "Name": name,
                "AccountId": account_id,
                "StageName": "Negotiation/Review",
                "CloseDate": close_date,
            },
        )
        for line in lines:
            self.add_line(opportunity_id, line)
        return opportunity_id

    def add_line(self, opportunity_id: str, line: Line) -> str:
        """A product line on the Opportunity (Salesforce recomputes its Amount)."""
        fields: dict[str, Any] = {
            "OpportunityId": opportunity_id,
            "PricebookEntryId": self._price_book_entries[line.product_code],
            "Quantity": str(line.quantity),
            "UnitPrice": str(line.unit_price),
        }
        if line.discount is not None:
            fields["Discount"] = str(line.discount)
        if line.description is not None:
            fields["Description"] = line.description
        if line.service_date is not None:
            fields["ServiceDate"] = line.service_date
        return self.create("OpportunityLineItem", fields)

    def delete(self, object_type: str, record_id: str) -> None:
        response = self.http.delete(f"/sobjects/{object_type}/{record_id}")
        if response.status_code != httpx.codes.NO_CONTENT:
            raise RuntimeError(
                f"deleting {object_type} {record_id} failed: {response.status_code} {response.text}"
            )

    def close_won(self, opportunity_id: str) -> None:
        self.update("Opportunity", opportunity_id, {"StageName": "Closed Won"})

    def _standard_price_book_id(self) -> str:
        records = self.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true LIMIT 1")
        return str(records[0]["Id"])
