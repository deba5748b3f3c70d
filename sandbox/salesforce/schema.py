"""The objects and fields the sandbox org knows, and conversions between JSON and stored values.

The standard objects and their standard fields are Salesforce's and are defined here. An org's custom
fields and custom objects come from the Salesforce package (sandbox/salesforce/org_setup.py adds them):
one `Schema` per sandbox holds both.

Stored values are Python values: str, bool, float (currency, double, percent), int, date, datetime
(UTC, millisecond precision) or None. JSON output follows Salesforce: dates "2026-11-28", date-times
"2026-11-28T16:05:00.000+0000", numbers as JSON numbers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from sandbox.salesforce.errors import ApiError, api_error, json_parser_error
from sandbox.salesforce.ids import KEY_PREFIXES, MalformedIdError, to_18


class FieldType(StrEnum):
    ID = "id"
    REFERENCE = "reference"
    STRING = "string"
    TEXTAREA = "textarea"
    PICKLIST = "picklist"
    BOOLEAN = "boolean"
    CURRENCY = "currency"
    DOUBLE = "double"
    PERCENT = "percent"
    INT = "int"
    DATE = "date"
    DATETIME = "datetime"
    PHONE = "phone"
    URL = "url"
    EMAIL = "email"
    ENCRYPTEDSTRING = "encryptedstring"


TEXT_TYPES = frozenset(
    {
        FieldType.ID,
        FieldType.REFERENCE,
        FieldType.STRING,
        FieldType.TEXTAREA,
        FieldType.PICKLIST,
        FieldType.PHONE,
        FieldType.URL,
        FieldType.EMAIL,
        FieldType.ENCRYPTEDSTRING,
    }
)
NUMBER_TYPES = frozenset({FieldType.CURRENCY, FieldType.DOUBLE, FieldType.PERCENT, FieldType.INT})
LONG_TEXT_LENGTH = 4096


@dataclass(frozen=True)
class FieldSpec:
    """One field of an object, with what the API may do with it."""

    name: str
    type: FieldType
    createable: bool = True
    updateable: bool = True
    required: bool = False
    max_length: int | None = None
    reference_to: str | None = None
    relationship_name: str | None = None
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    label: str = ""
    # Number, currency and percent fields: digits in all and after the decimal point (None: not checked).
    precision: int | None = None
    scale: int | None = None
    # A formula field (read-only): its formula (flow_formula.parse_field_formula) and blank handling.
    formula: str | None = None
    formula_blanks_as_zero: bool = False

    @property
    def filterable(self) -> bool:
        """Long text areas and encrypted fields cannot be filtered or sorted in SOQL."""
        if self.type is FieldType.ENCRYPTEDSTRING:
            return False
        return not (self.type is FieldType.TEXTAREA and (self.max_length or 0) > LONG_TEXT_LENGTH)

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")


@dataclass(frozen=True)
class ChildRelationship:
    """A parent-to-child relationship usable as a SOQL subquery, e.g. Opportunity.OpportunityLineItems."""

    name: str
    child_object: str
    field: str


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    fields: tuple[FieldSpec, ...]
    children: tuple[ChildRelationship, ...] = ()
    writable: bool = True
    label: str = ""
    prefix: str | None = None  # a custom object's key prefix; standard objects' are in ids.KEY_PREFIXES
    _by_name: dict[str, FieldSpec] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for spec in self.fields:
            if spec.name.lower() in self._by_name:
                raise ValueError(f"{self.name} has two fields called {spec.name}")
            self._by_name[spec.name.lower()] = spec

    @property
    def key_prefix(self) -> str:
        return self.prefix or KEY_PREFIXES[self.name]

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    def field(self, name: str) -> FieldSpec | None:
        """The field called `name` (case-insensitive), or None."""
        return self._by_name.get(name.lower())

    def relationship(self, name: str) -> FieldSpec | None:
        """The reference field whose relationship is called `name` (e.g. Account -> AccountId)."""
        lowered = name.lower()
        for spec in self.fields:
            if spec.relationship_name and spec.relationship_name.lower() == lowered:
                return spec
        return None

    def child(self, name: str) -> ChildRelationship | None:
        lowered = name.lower()
        for relationship in self.children:
            if relationship.name.lower() == lowered:
                return relationship
        return None


def _text(name: str, length: int, **options: Any) -> FieldSpec:
    return FieldSpec(name, FieldType.STRING, max_length=length, **options)


def _long_text(name: str, length: int = 32000) -> FieldSpec:
    return FieldSpec(name, FieldType.TEXTAREA, max_length=length)


def _read_only(name: str, field_type: FieldType, **options: Any) -> FieldSpec:
    return FieldSpec(name, field_type, createable=False, updateable=False, **options)


def _reference(name: str, target: str, relationship: str, label: str, **options: Any) -> FieldSpec:
    return FieldSpec(
        name,
        FieldType.REFERENCE,
        reference_to=target,
        relationship_name=relationship,
        max_length=18,
        label=label,
        **options,
    )


def _owner() -> FieldSpec:
    return _reference("OwnerId", "User", "Owner", "Owner ID")


def system_fields() -> tuple[FieldSpec, ...]:
    return (
        _read_only("Id", FieldType.ID, max_length=18),
        _read_only("IsDeleted", FieldType.BOOLEAN),
        _read_only("CreatedDate", FieldType.DATETIME),
        _read_only("CreatedById", FieldType.REFERENCE, reference_to="User", relationship_name="CreatedBy"),
        _read_only("LastModifiedDate", FieldType.DATETIME),
        _read_only(
            "LastModifiedById",
            FieldType.REFERENCE,
            reference_to="User",
            relationship_name="LastModifiedBy",
        ),
        _read_only("SystemModstamp", FieldType.DATETIME),
    )


def _master_record(object_type: str) -> FieldSpec:
    """MasterRecordId of a mergeable object: the record that won the merge this one lost (else null)."""
    return _read_only(
        "MasterRecordId",
        FieldType.REFERENCE,
        reference_to=object_type,
        relationship_name="MasterRecord",
        max_length=18,
        label="Master Record ID",
    )


def _address(prefix: str) -> tuple[FieldSpec, ...]:
    return (
        FieldSpec(f"{prefix}Street", FieldType.TEXTAREA, max_length=255),
        _text(f"{prefix}City", 40),
        _text(f"{prefix}State", 80),
        _text(f"{prefix}PostalCode", 20),
        _text(f"{prefix}Country", 80),
    )


ACCOUNT = ObjectSpec(
    "Account",
    (
        *system_fields(),
        _master_record("Account"),
        _text("Name", 255, required=True),
        _text("AccountNumber", 40),
        FieldSpec(
            "Type",
            FieldType.PICKLIST,
            picklist=(
                "Prospect",
                "Customer - Direct",
                "Customer - Channel",
                "Channel Partner / Reseller",
                "Installation Partner",
                "Technology Partner",
                "Other",
            ),
        ),
        FieldSpec("Industry", FieldType.PICKLIST),
        FieldSpec("Phone", FieldType.PHONE, max_length=40),
        FieldSpec("Fax", FieldType.PHONE, max_length=40),
        FieldSpec("Website", FieldType.URL, max_length=255),
        _long_text("Description"),
        *_address("Billing"),
        *_address("Shipping"),
        FieldSpec("AnnualRevenue", FieldType.CURRENCY),
        FieldSpec("NumberOfEmployees", FieldType.INT),
        _reference("ParentId", "Account", "Parent", "Account ID"),
        _owner(),
    ),
    children=(
        ChildRelationship("Contacts", "Contact", "AccountId"),
        ChildRelationship("Opportunities", "Opportunity", "AccountId"),
    ),
)

CONTACT = ObjectSpec(
    "Contact",
    (
        *system_fields(),
        _master_record("Contact"),
        _text("FirstName", 40),
        _text("LastName", 80, required=True),
        _read_only("Name", FieldType.STRING, max_length=121),
        _reference("AccountId", "Account", "Account", "Account ID"),
        FieldSpec("Email", FieldType.EMAIL, max_length=80),
        FieldSpec("Phone", FieldType.PHONE, max_length=40),
        FieldSpec("MobilePhone", FieldType.PHONE, max_length=40),
        _text("Title", 128),
        _text("Department", 80),
        *_address("Mailing"),
        _long_text("Description"),
        _owner(),
    ),
)

PRODUCT2 = ObjectSpec(
    "Product2",
    (
        *system_fields(),
        _text("Name", 255, required=True),
        _text("ProductCode", 255),
        FieldSpec("Family", FieldType.PICKLIST),
        FieldSpec("IsActive", FieldType.BOOLEAN),
        FieldSpec("Description", FieldType.TEXTAREA, max_length=4000),
        _text("StockKeepingUnit", 180),
        FieldSpec("QuantityUnitOfMeasure", FieldType.PICKLIST),
    ),
    children=(ChildRelationship("PricebookEntries", "PricebookEntry", "Product2Id"),),
)

PRICEBOOK2 = ObjectSpec(
    "Pricebook2",
    (
        *system_fields(),
        _text("Name", 255, required=True),
        FieldSpec("IsActive", FieldType.BOOLEAN),
        _read_only("IsStandard", FieldType.BOOLEAN),
        _text("Description", 255),
    ),
    children=(ChildRelationship("PricebookEntries", "PricebookEntry", "Pricebook2Id"),),
)

PRICEBOOK_ENTRY = ObjectSpec(
    "PricebookEntry",
    (
        *system_fields(),
        _read_only("Name", FieldType.STRING, max_length=255),
        _reference(
            "Pricebook2Id", "Pricebook2", "Pricebook2", "Price Book ID", required=True, updateable=False
        ),
        _reference("Product2Id", "Product2", "Product2", "Product ID", required=True, updateable=False),
        _read_only("ProductCode", FieldType.STRING, max_length=255),
        FieldSpec("UnitPrice", FieldType.CURRENCY, required=True),
        FieldSpec("IsActive", FieldType.BOOLEAN),
        FieldSpec("UseStandardPrice", FieldType.BOOLEAN),
    ),
)

OPPORTUNITY = ObjectSpec(
    "Opportunity",
    (
        *system_fields(),
        _reference("AccountId", "Account", "Account", "Account ID"),
        _text("Name", 120, required=True),
        _long_text("Description"),
        FieldSpec("StageName", FieldType.PICKLIST, required=True, label="Stage"),
        FieldSpec("Amount", FieldType.CURRENCY),
        FieldSpec("Probability", FieldType.PERCENT),
        _read_only("ExpectedRevenue", FieldType.CURRENCY),
        FieldSpec("CloseDate", FieldType.DATE, required=True),
        FieldSpec(
            "Type",
            FieldType.PICKLIST,
            picklist=(
                "Existing Customer - Upgrade",
                "Existing Customer - Replacement",
                "Existing Customer - Downgrade",
                "New Customer",
            ),
        ),
        _text("NextStep", 255),
        FieldSpec("LeadSource", FieldType.PICKLIST),
        _read_only("IsClosed", FieldType.BOOLEAN),
        _read_only("IsWon", FieldType.BOOLEAN),
        _read_only("ForecastCategoryName", FieldType.PICKLIST),
        _reference("Pricebook2Id", "Pricebook2", "Pricebook2", "Price Book ID"),
        _read_only("HasOpportunityLineItem", FieldType.BOOLEAN),
        _owner(),
    ),
    children=(ChildRelationship("OpportunityLineItems", "OpportunityLineItem", "OpportunityId"),),
)

OPPORTUNITY_LINE_ITEM = ObjectSpec(
    "OpportunityLineItem",
    (
        *system_fields(),
        _reference(
            "OpportunityId", "Opportunity", "Opportunity", "Opportunity ID", required=True, updateable=False
        ),
        FieldSpec("SortOrder", FieldType.INT),
        _reference(
            "PricebookEntryId", "PricebookEntry", "PricebookEntry", "Price Book Entry ID", updateable=False
        ),
        _reference("Product2Id", "Product2", "Product2", "Product ID", updateable=False),
        _read_only("ProductCode", FieldType.STRING, max_length=255),
        _read_only("Name", FieldType.STRING, max_length=376),
        FieldSpec("Quantity", FieldType.DOUBLE, required=True),
        FieldSpec("TotalPrice", FieldType.CURRENCY),
        FieldSpec("UnitPrice", FieldType.CURRENCY),
        _read_only("ListPrice", FieldType.CURRENCY),
        _read_only("Subtotal", FieldType.CURRENCY),
        FieldSpec("Discount", FieldType.PERCENT),
        FieldSpec("ServiceDate", FieldType.DATE),
        _text("Description", 255),
    ),
)

USER = ObjectSpec(
    "User",
    (
        *system_fields(),
        _text("Username", 80),
        _text("FirstName", 40),
        _text("LastName", 80),
        _text("Name", 121),
        FieldSpec("Email", FieldType.EMAIL, max_length=128),
        _text("Alias", 8),
        FieldSpec("IsActive", FieldType.BOOLEAN),
    ),
    writable=False,
)

# Salesforce's own objects, with their standard fields only.
STANDARD_OBJECTS: Mapping[str, ObjectSpec] = MappingProxyType(
    {
        spec.name: spec
        for spec in (
            ACCOUNT,
            CONTACT,
            PRODUCT2,
            PRICEBOOK2,
            PRICEBOOK_ENTRY,
            OPPORTUNITY,
            OPPORTUNITY_LINE_ITEM,
            USER,
        )
    }
)


class Schema:
    """The objects of one org: the standard objects plus the org's custom fields and custom objects."""

    def __init__(self, objects: Mapping[str, ObjectSpec]) -> None:
        self.objects: Mapping[str, ObjectSpec] = MappingProxyType(dict(objects))
        self._by_lower = {name.lower(): spec for name, spec in self.objects.items()}

    def __getitem__(self, name: str) -> ObjectSpec:
        """The object with this exact API name (KeyError if there is none)."""
        return self.objects[name]

    def object(self, name: str) -> ObjectSpec | None:
        """The object called `name` (case-insensitive), or None."""
        return self._by_lower.get(name.lower())

    def names(self) -> list[str]:
        return list(self.objects)


STANDARD_SCHEMA = Schema(STANDARD_OBJECTS)


def path_field(schema: Schema, object_type: str, path: str) -> FieldSpec | None:
    """The field a path names from `object_type`: `Name`, or through lookups `Account.Name` (the
    relationship names of reference fields); None when there is no such field or relationship."""
    spec = schema.object(object_type)
    *relationships, name = path.split(".")
    for relationship in relationships:
        lookup = spec.relationship(relationship) if spec is not None else None
        if lookup is None or lookup.reference_to is None:
            return None
        spec = schema.object(lookup.reference_to)
    return spec.field(name) if spec is not None else None


# --- dates and times -------------------------------------------------------------------------------

DATETIME_INPUT = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?)?$"
)


def now_utc() -> datetime:
    """The current time, UTC, truncated to milliseconds like Salesforce stores it."""
    current = datetime.now(UTC)
    return current.replace(microsecond=current.microsecond // 1000 * 1000)


def format_datetime(value: datetime) -> str:
    """Salesforce's REST format: 2026-11-28T16:05:00.000+0000."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def format_soap_datetime(value: datetime) -> str:
    """The SOAP (xsd:dateTime) format Outbound Messages use: 2026-11-28T16:05:00.000Z."""
    value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def parse_datetime_text(text: str) -> datetime | None:
    """An ISO 8601 date-time in any of the forms Salesforce accepts; None when it is not one."""
    match = DATETIME_INPUT.match(text.strip())
    if match is None or match.group(4) is None:
        return None
    year, month, day, hour, minute = (int(match.group(index)) for index in range(1, 6))
    second = int(match.group(6) or 0)
    fraction = (match.group(7) or "0")[:6].ljust(6, "0")
    zone = match.group(8)
    tz = UTC
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        tz = timezone(sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    try:
        parsed = datetime(year, month, day, hour, minute, second, int(fraction), tzinfo=tz)
    except ValueError:
        return None
    parsed = parsed.astimezone(UTC)
    return parsed.replace(microsecond=parsed.microsecond // 1000 * 1000)


def parse_date_text(text: str) -> date | None:
    """A date (YYYY-MM-DD, or the date part of a date-time); None when it is not one."""
    match = DATETIME_INPUT.match(text.strip())
    if match is None:
        return None
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError:
        return None


# --- JSON <-> stored values --------------------------------------------------------------------------


def json_value(spec: FieldSpec, value: Any) -> Any:
    """A stored value as Salesforce writes it in JSON."""
    if value is None:
        return None
    if spec.type is FieldType.DATETIME:
        return format_datetime(value)
    if spec.type is FieldType.DATE:
        return value.isoformat()
    return value


def _cannot_deserialize(kind: str, raw: Any) -> ApiError:
    token = "VALUE_STRING" if isinstance(raw, str) else f"VALUE_{type(raw).__name__.upper()}"
    return json_parser_error(
        f"Cannot deserialize instance of {kind} from {token} value {raw} "
        "or request may be missing a required field"
    )


def coerce_input(spec: FieldSpec, raw: Any) -> Any:
    """A JSON value sent for `spec` as the stored value, or the error Salesforce would answer."""
    if raw is None:
        return False if spec.type is FieldType.BOOLEAN else None
    if isinstance(raw, (dict, list)):
        raise _cannot_deserialize(spec.type.value, raw)
    if spec.type is FieldType.BOOLEAN:
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise _cannot_deserialize("boolean", raw)
    if spec.type in NUMBER_TYPES:
        return _coerce_number(spec, raw)
    if spec.type is FieldType.DATE:
        parsed_date = parse_date_text(raw) if isinstance(raw, str) else None
        if parsed_date is None:
            raise _cannot_deserialize("date", raw)
        return parsed_date
    if spec.type is FieldType.DATETIME:
        parsed = parse_datetime_text(raw) if isinstance(raw, str) else None
        if parsed is None:
            parsed_day = parse_date_text(raw) if isinstance(raw, str) else None
            if parsed_day is None:
                raise _cannot_deserialize("datetime", raw)
            parsed = datetime(parsed_day.year, parsed_day.month, parsed_day.day, tzinfo=UTC)
        return parsed
    text = ("true" if raw else "false") if isinstance(raw, bool) else str(raw)
    if spec.type is FieldType.REFERENCE:
        return _coerce_reference(spec, text)
    if text == "":
        return None
    if spec.max_length and spec.type is not FieldType.PICKLIST and len(text) > spec.max_length:
        raise api_error(
            400,
            "STRING_TOO_LONG",
            f"{spec.label or spec.name}: data value too large: {text[:50]} (max length={spec.max_length})",
            [spec.name],
        )
    if spec.type is FieldType.PICKLIST and spec.restricted and text not in spec.picklist:
        raise api_error(
            400,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            f"{spec.label or spec.name}: bad value for restricted picklist field: {text}",
            [spec.name],
        )
    return text


def _coerce_number(spec: FieldSpec, raw: Any) -> float | int:
    """A JSON number, or text holding one ("600.00"), for a number field; anything else is the JSON parser
    error Salesforce answers, naming the field type ("Cannot deserialize instance of currency from
    VALUE_STRING value abc ...")."""
    kind = spec.type.value
    if isinstance(raw, bool):
        raise _cannot_deserialize(kind, raw)
    number: float
    if isinstance(raw, (int, float)):
        number = float(raw)
    else:
        try:
            number = float(str(raw))
        except ValueError as error:
            raise _cannot_deserialize(kind, raw) from error
    if not math.isfinite(number):
        raise _cannot_deserialize(kind, raw)
    if spec.type is FieldType.INT:
        if number != int(number):
            raise _cannot_deserialize("int", raw)
        return int(number)
    if spec.precision is not None:
        return _within_digits(spec, number, raw)
    if spec.type is FieldType.CURRENCY:
        return round(number, 2)
    return number


def _within_digits(spec: FieldSpec, number: float, raw: Any) -> float:
    """The number as sent (the API stores more decimals than the scale, unrounded); more digits before
    the point than precision - scale allows is NUMBER_OUTSIDE_VALID_RANGE."""
    if abs(Decimal(str(number))) >= Decimal(10) ** ((spec.precision or 0) - (spec.scale or 0)):
        raise _outside_range(spec, raw)
    return number


def _outside_range(spec: FieldSpec, raw: Any) -> ApiError:
    return api_error(
        400,
        "NUMBER_OUTSIDE_VALID_RANGE",
        f"{spec.label or spec.name}: value outside of valid range on numeric field: {raw}",
        [spec.name],
    )


def _coerce_reference(spec: FieldSpec, text: str) -> str | None:
    if text == "":
        return None
    label = spec.label or spec.name
    try:
        record_id = to_18(text)
    except MalformedIdError as error:
        raise api_error(
            400, "MALFORMED_ID", f"{label}: id value of incorrect type: {text}", [spec.name]
        ) from error
    target = spec.reference_to or ""
    if record_id[:3] != KEY_PREFIXES[target]:
        raise api_error(400, "MALFORMED_ID", f"{label}: id value of incorrect type: {text}", [spec.name])
    return record_id
