"""Typed inputs and outputs of the Salesforce client: field selection, snapshots, write-back updates."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, field_validator, model_validator

# A field or a parent path such as `Product2.ProductCode` (SOQL allows five levels).
FIELD_PATH_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*){0,4}$")
OBJECT_NAME_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
RECORD_ID_PATTERN = re.compile(r"^[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?$")

DEFAULT_OPPORTUNITY_FIELDS: tuple[str, ...] = (
    "Id",
    "Name",
    "AccountId",
    "StageName",
    "IsClosed",
    "IsWon",
    "CloseDate",
    "Amount",
    "Description",
    "Type",
    "Pricebook2Id",
    "LastModifiedDate",
    "Intacct_Order_Id__c",
    "Intacct_Sync_Status__c",
)
DEFAULT_ACCOUNT_FIELDS: tuple[str, ...] = (
    "Id",
    "Name",
    "AccountNumber",
    "Type",
    "Phone",
    "Website",
    "BillingStreet",
    "BillingCity",
    "BillingState",
    "BillingPostalCode",
    "BillingCountry",
    "ShippingStreet",
    "ShippingCity",
    "ShippingState",
    "ShippingPostalCode",
    "ShippingCountry",
    "LastModifiedDate",
    "Intacct_Customer_Id__c",
    "Intacct_Sync_Status__c",  # with the id: whether the Account already shows Synced (no write-back)
)
DEFAULT_LINE_FIELDS: tuple[str, ...] = (
    "Id",
    "Name",
    "Product2Id",
    "Product2.Name",
    "Product2.ProductCode",
    "Product2.Family",
    "ProductCode",
    "PricebookEntryId",
    "Quantity",
    "UnitPrice",
    "ListPrice",
    "TotalPrice",
    "Discount",
    "ServiceDate",
    "Description",
    "SortOrder",
)

# Environment variables adding fields to the defaults (comma-separated, e.g. custom fields).
EXTRA_FIELD_VARIABLES = {
    "opportunity_fields": "SALESFORCE_OPPORTUNITY_FIELDS",
    "account_fields": "SALESFORCE_ACCOUNT_FIELDS",
    "line_fields": "SALESFORCE_LINE_FIELDS",
}

# Values a write-back may set; dates and datetimes are sent in Salesforce's ISO formats.
FieldValue = str | bool | int | Decimal | float | datetime | date | None


def _unique_fields(names: Iterable[str]) -> tuple[str, ...]:
    """`Id` first, then the names in order, without case-insensitive duplicates (SOQL rejects those)."""
    result: list[str] = ["Id"]
    seen = {"id"}
    for raw in names:
        name = raw.strip()
        if not FIELD_PATH_PATTERN.fullmatch(name):
            raise ValueError(f"not a Salesforce field name: {name!r}")
        if name.lower() not in seen:
            seen.add(name.lower())
            result.append(name)
    return tuple(result)


class OpportunityQueryFields(BaseModel):
    """Which fields the one Opportunity query selects.

    `account_fields` are relative to the Opportunity's Account (`Name` selects `Account.Name`);
    `line_fields` are fields of OpportunityLineItem and may reach its parents (`Product2.ProductCode`).
    `Id` is always selected.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    opportunity_fields: tuple[str, ...] = DEFAULT_OPPORTUNITY_FIELDS
    account_fields: tuple[str, ...] = DEFAULT_ACCOUNT_FIELDS
    line_fields: tuple[str, ...] = DEFAULT_LINE_FIELDS

    @field_validator("opportunity_fields", "account_fields", "line_fields")
    @classmethod
    def _valid_unique_names(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        return _unique_fields(names)

    @model_validator(mode="after")
    def _no_relationships_in_opportunity_fields(self) -> Self:
        for name in self.opportunity_fields:
            relationship = name.split(".", 1)[0].lower()
            if "." in name and relationship == "account":
                raise ValueError(f"{name}: select Account fields through account_fields")
            if relationship == "opportunitylineitems":
                raise ValueError(f"{name}: select line item fields through line_fields")
        return self

    def with_extra(
        self,
        *,
        opportunity_fields: Iterable[str] = (),
        account_fields: Iterable[str] = (),
        line_fields: Iterable[str] = (),
    ) -> OpportunityQueryFields:
        """These fields plus the given ones (e.g. custom fields a mapping needs)."""
        return OpportunityQueryFields(
            opportunity_fields=(*self.opportunity_fields, *opportunity_fields),
            account_fields=(*self.account_fields, *account_fields),
            line_fields=(*self.line_fields, *line_fields),
        )

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> OpportunityQueryFields:
        """The defaults plus the comma-separated fields in SALESFORCE_{OPPORTUNITY,ACCOUNT,LINE}_FIELDS."""
        environment = os.environ if environ is None else environ
        extra = {
            argument: [name for name in environment.get(variable, "").split(",") if name.strip()]
            for argument, variable in EXTRA_FIELD_VARIABLES.items()
        }
        return cls().with_extra(**extra)


@dataclass(frozen=True)
class OpportunitySnapshot:
    """An Opportunity, its Account and its line items as read in one query.

    Values are as Salesforce returns them (numbers with a fraction as Decimal), `attributes` removed;
    parent relationships stay nested (`line["Product2"]["ProductCode"]`, see `field_value`).
    `opportunity` holds neither `Account` nor `OpportunityLineItems`.
    """

    opportunity: dict[str, Any]
    account: dict[str, Any] | None
    lines: list[dict[str, Any]] = field(default_factory=list)

    @property
    def opportunity_id(self) -> str:
        """The Opportunity's id."""
        return str(self.opportunity["Id"])

    @property
    def account_id(self) -> str | None:
        """The Account's id, None for an Opportunity without Account."""
        value = self.opportunity.get("AccountId") or (self.account or {}).get("Id")
        return str(value) if value else None


class RecordUpdate(BaseModel):
    """Fields to set on one record in a write-back."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    object_type: str
    record_id: str
    fields: dict[str, FieldValue]

    @field_validator("object_type")
    @classmethod
    def _object_name(cls, value: str) -> str:
        if not OBJECT_NAME_PATTERN.fullmatch(value):
            raise ValueError(f"not a Salesforce object name: {value!r}")
        return value

    @field_validator("record_id")
    @classmethod
    def _record_id(cls, value: str) -> str:
        return validate_record_id(value)

    @field_validator("fields")
    @classmethod
    def _field_names(cls, value: dict[str, FieldValue]) -> dict[str, FieldValue]:
        if not value:
            raise ValueError("a record update needs at least one field")
        for name, item in value.items():
            if not OBJECT_NAME_PATTERN.fullmatch(name) or name.lower() == "id":
                raise ValueError(f"not an updatable field name: {name!r}")
            if isinstance(item, datetime) and item.tzinfo is None:
                raise ValueError(f"{name}: datetimes must carry a time zone")
        return value


def validate_record_id(value: str) -> str:
    """`value` if it looks like a Salesforce id (15 or 18 letters and digits), else ValueError."""
    if not RECORD_ID_PATTERN.fullmatch(value):
        raise ValueError(f"not a Salesforce record id: {value!r}")
    return value


def strip_attributes(value: Any) -> Any:
    """A copy of a Salesforce JSON value without the `attributes` entries, at any depth."""
    if isinstance(value, dict):
        return {key: strip_attributes(item) for key, item in value.items() if key != "attributes"}
    if isinstance(value, list):
        return [strip_attributes(item) for item in value]
    return value


def field_value(record: Mapping[str, Any] | None, path: str) -> Any:
    """The value at a field path such as `Product2.ProductCode`; None when any step is missing or null."""
    current: Any = record
    for part in path.split("."):
        if not isinstance(current, Mapping):
            return None
        current = current.get(part)
    return current
