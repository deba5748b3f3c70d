"""Typed inputs for writes (pydantic, validated at the edge) and typed views of records read back.

Money and quantities are Decimal (a float is refused, never rounded silently). Custom fields are given
by their integration name (`SALESFORCE_ID`) and written the way each function expects them.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal, Self

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _refuse_float(value: Any) -> Any:
    if isinstance(value, float):
        raise ValueError("use Decimal or a string for amounts and quantities, not float")
    return value


def _custom_field_names(values: dict[str, str]) -> dict[str, str]:
    for name in values:
        if not _FIELD_NAME.match(name):
            raise ValueError(f"{name!r} is not a valid custom field name")
    return values


Amount = Annotated[Decimal, BeforeValidator(_refuse_float), Field(allow_inf_nan=False)]
CustomFields = Annotated[dict[str, str], AfterValidator(_custom_field_names)]
TransactionState = Literal["Draft", "Pending", "Closed"]
CustomerStatus = Literal["active", "inactive"]


class _Input(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


# ---------------------------------------------------------------------------- customers


class MailAddress(_Input):
    """DISPLAYCONTACT.MAILADDRESS."""

    address1: str | None = None
    address2: str | None = None
    address3: str | None = None
    city: str | None = None
    state: str | None = None
    zip: str | None = None
    country: str | None = None
    iso_country_code: str | None = None


class Contact(_Input):
    """DISPLAYCONTACT. PRINTAS defaults to the customer name on create."""

    print_as: str | None = None
    contact_name: str | None = None
    company_name: str | None = None
    prefix: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone1: str | None = None
    phone2: str | None = None
    cell_phone: str | None = None
    fax: str | None = None
    email1: str | None = None
    email2: str | None = None
    url1: str | None = None
    url2: str | None = None
    mail_address: MailAddress | None = None


class _CustomerFields(_Input):
    contact: Contact | None = None
    status: CustomerStatus | None = None
    customer_type: str | None = None
    parent_id: str | None = None
    term_name: str | None = None
    tax_id: str | None = None
    credit_limit: Amount | None = None
    comments: str | None = None
    currency: str | None = None
    custom_fields: CustomFields = Field(default_factory=dict)


class NewCustomer(_CustomerFields):
    """A CUSTOMER to create; without customer_id Intacct numbers it from the customer sequence."""

    customer_id: str | None = Field(default=None, min_length=1)
    name: str = Field(min_length=1)


class CustomerUpdate(_CustomerFields):
    """Changes to an existing CUSTOMER, identified by record_no or customer_id. None = leave as is."""

    record_no: int | None = Field(default=None, ge=1)
    customer_id: str | None = Field(default=None, min_length=1)
    name: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _identified(self) -> Self:
        if self.record_no is None and self.customer_id is None:
            raise ValueError("a customer update needs record_no or customer_id")
        return self


# ---------------------------------------------------------------------------- sales transactions


class SalesTransactionLine(_Input):
    """One `sotransitem`. Without price Intacct uses the item's price; 0 is a real (free) price."""

    item_id: str = Field(min_length=1)
    quantity: Amount
    unit: str | None = None
    price: Amount | None = None
    discount_percent: Amount | None = Field(default=None, ge=0, le=100)
    item_description: str | None = None
    memo: str | None = None
    location_id: str | None = None
    department_id: str | None = None
    revrec_start_date: date | None = None
    revrec_end_date: date | None = None
    custom_fields: CustomFields = Field(default_factory=dict)

    @model_validator(mode="after")
    def _revrec_in_order(self) -> Self:
        start, end = self.revrec_start_date, self.revrec_end_date
        if start is not None and end is not None and end < start:
            raise ValueError("revrec_end_date is before revrec_start_date")
        return self


class SalesTransaction(_Input):
    """A create_sotransaction: header and at least one line. Give term_name or date_due, not both."""

    transaction_type: str = Field(default="Sales Order", min_length=1)
    date_created: date
    customer_id: str = Field(min_length=1)
    document_no: str | None = None
    reference_no: str | None = None
    term_name: str | None = None
    date_due: date | None = None
    message: str | None = None
    external_id: str | None = None
    base_currency: str | None = None
    currency: str | None = None
    exchange_rate_type: str | None = None
    custom_fields: CustomFields = Field(default_factory=dict)
    state: TransactionState | None = None
    lines: list[SalesTransactionLine] = Field(min_length=1)

    @model_validator(mode="after")
    def _terms_or_due_date(self) -> Self:
        if (self.term_name is None) == (self.date_due is None):
            raise ValueError("give exactly one of term_name and date_due")
        return self

    @model_validator(mode="after")
    def _currency_group(self) -> Self:
        """Intacct's schema takes basecurr and exchratetype only together with currency."""
        if self.currency is None and (self.base_currency is not None or self.exchange_rate_type is not None):
            raise ValueError("base_currency and exchange_rate_type need currency (the transaction currency)")
        return self


# ---------------------------------------------------------------------------- records read back


def text_of(record: dict[str, Any], name: str) -> str:
    value = record.get(name, "")
    return value.strip() if isinstance(value, str) else ""


def decimal_of(record: dict[str, Any], name: str) -> Decimal | None:
    text = text_of(record, name)
    if not text:
        return None
    try:
        return Decimal(text)
    except InvalidOperation:
        return None


def date_of(record: dict[str, Any], name: str) -> date | None:
    """A date from mm/dd/yyyy (optionally followed by a time) or ISO yyyy-mm-dd text."""
    text = text_of(record, name).split(" ")[0]
    for pattern in ("%m/%d/%Y", "%Y-%m-%d"):
        try:
            return datetime.strptime(text, pattern).date()
        except ValueError:
            continue
    return None


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)

    fields: dict[str, Any] = Field(default_factory=dict, description="Every field as returned by Intacct")


class CustomerRef(BaseModel):
    """What create/update answer: the record number and the customer ID."""

    model_config = ConfigDict(frozen=True)

    record_no: str
    customer_id: str


class Customer(_Record):
    record_no: str
    customer_id: str
    name: str
    status: str

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Customer:
        return cls(
            record_no=text_of(record, "RECORDNO"),
            customer_id=text_of(record, "CUSTOMERID"),
            name=text_of(record, "NAME"),
            status=text_of(record, "STATUS"),
            fields=record,
        )


class Item(_Record):
    record_no: str
    item_id: str
    name: str
    status: str
    base_price: Decimal | None
    unit: str

    @property
    def active(self) -> bool:
        return self.status == "active"

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Item:
        return cls(
            record_no=text_of(record, "RECORDNO"),
            item_id=text_of(record, "ITEMID"),
            name=text_of(record, "NAME"),
            status=text_of(record, "STATUS"),
            base_price=decimal_of(record, "BASEPRICE"),
            unit=text_of(record, "UOM"),
            fields=record,
        )


# readByQuery answers STATE as a letter; query and read answer it in words (developer.intacct.com, Order
# Entry transactions). Both are read as the word.
SALES_DOCUMENT_STATE_CODES = {
    "S": "Submitted",
    "A": "Approved",
    "X": "Partially Approved",
    "R": "Declined",
    "I": "Draft",
    "O": "Pending",
    "D": "Closed",
    "G": "In Progress",
    "C": "Converted",
    "P": "Partially Converted",
}
# The states in which an order may still be updated, closed or deleted (nothing was made from it yet).
OPEN_ORDER_STATES = frozenset({"Draft", "Pending"})


class SalesDocument(_Record):
    """An SODOCUMENT header. An attribute whose field was not selected is empty: the client's default select
    (client.SALES_DOCUMENT_FIELDS) leaves out TERMNAME, EXTERNALID and BASECURR, which no source shows on
    SODOCUMENT (ask for them with `extra_fields` where a company is known to have them)."""

    record_no: str
    doc_id: str
    doc_no: str
    transaction_type: str
    state: str
    customer_id: str
    reference_no: str
    external_id: str
    date_created: date | None
    date_due: date | None
    term_name: str
    currency: str
    base_currency: str
    message: str
    total: Decimal | None

    @property
    def state_name(self) -> str:
        """The state in words (Draft, Pending, Closed, Converted, ...), whichever form Intacct answered."""
        return SALES_DOCUMENT_STATE_CODES.get(self.state, self.state)

    @property
    def is_open(self) -> bool:
        """Draft or Pending: nothing was made from it yet, so it can still follow the deal."""
        return self.state_name in OPEN_ORDER_STATES

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SalesDocument:
        return cls(
            record_no=text_of(record, "RECORDNO"),
            doc_id=text_of(record, "DOCID"),
            doc_no=text_of(record, "DOCNO"),
            transaction_type=text_of(record, "DOCPARID"),
            state=text_of(record, "STATE"),
            customer_id=text_of(record, "CUSTVENDID"),
            reference_no=text_of(record, "PONUMBER"),
            external_id=text_of(record, "EXTERNALID"),
            date_created=date_of(record, "WHENCREATED"),
            date_due=date_of(record, "WHENDUE"),
            term_name=text_of(record, "TERMNAME"),
            currency=text_of(record, "CURRENCY"),
            base_currency=text_of(record, "BASECURR"),
            message=text_of(record, "MESSAGE"),
            total=decimal_of(record, "TOTAL"),
            fields=record,
        )


class SalesDocumentLine(_Record):
    """An SODOCUMENTENTRY line; line_no counts from 0 as Intacct reads it. The default select
    (client.SALES_DOCUMENT_LINE_FIELDS) leaves out UNIT, DISCOUNT, LOCATIONID, DEPARTMENTID, REVRECSTARTDATE
    and REVRECENDDATE, whose names no source confirms: those attributes are empty unless asked for with
    `extra_fields`."""

    record_no: str
    doc_id: str
    line_no: int
    item_id: str
    quantity: Decimal | None
    unit: str
    price: Decimal | None
    discount_percent: Decimal | None
    total: Decimal | None
    memo: str
    location_id: str
    department_id: str
    revrec_start_date: date | None
    revrec_end_date: date | None

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> SalesDocumentLine:
        line_no = text_of(record, "LINE_NO")
        return cls(
            record_no=text_of(record, "RECORDNO"),
            doc_id=text_of(record, "DOCHDRID"),
            line_no=int(line_no) if line_no.isascii() and line_no.isdigit() else -1,
            item_id=text_of(record, "ITEMID"),
            quantity=decimal_of(record, "QUANTITY"),
            unit=text_of(record, "UNIT"),
            price=decimal_of(record, "PRICE"),
            discount_percent=decimal_of(record, "DISCOUNT"),
            total=decimal_of(record, "TOTAL"),
            memo=text_of(record, "MEMO"),
            location_id=text_of(record, "LOCATIONID"),
            department_id=text_of(record, "DEPARTMENTID"),
            revrec_start_date=date_of(record, "REVRECSTARTDATE"),
            revrec_end_date=date_of(record, "REVRECENDDATE"),
            fields=record,
        )
