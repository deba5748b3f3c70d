"""Salesforce → Intacct field mapping, read from a TOML file (`mapping.toml`).

The file says which Salesforce field (or constant) fills which Intacct field of the customer, the order
header and the order lines. It is validated when loaded: a bad file raises `MappingError` naming the
entry. A record the mapping cannot turn into a valid Intacct input raises `RecordDataError`.
The order's reference number is always the Opportunity id (the recovery key) and is not configurable.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, Self, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from sfintacct.faults import ConfigurationFault
from sfintacct.intacct.field_lengths import MAX_LENGTHS
from sfintacct.intacct.models import (
    Contact,
    CustomerUpdate,
    MailAddress,
    NewCustomer,
    SalesTransaction,
    SalesTransactionLine,
)
from sfintacct.salesforce.models import (
    FIELD_PATH_PATTERN,
    OpportunityQueryFields,
    OpportunitySnapshot,
    field_value,
)

DEFAULT_MAPPING_FILE = Path(__file__).resolve().parent.parent / "mapping.toml"
MAPPING_FILE_VARIABLE = "SFINTACCT_MAPPING_FILE"


class MappingError(ConfigurationFault):
    """The mapping file is invalid (a configuration error: the work waits until it is fixed)."""

    kind = "mapping"
    what_to_do = "correct the mapping file named in the message"


class RecordDataError(Exception):
    """A Salesforce record cannot be mapped; the message names the record, line and field."""


# ---------------------------------------------------------------------------- Intacct targets

Kind = Literal["text", "number", "date"]
_NUMBER_TARGETS = frozenset({"credit_limit", "quantity", "price", "discount_percent"})
_DATE_TARGETS = frozenset({"date_created", "date_due", "revrec_start_date", "revrec_end_date"})
_CUSTOM_FIELD_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


def _targets(model: type[BaseModel], excluded: Iterable[str] = (), prefix: str = "") -> dict[str, Kind]:
    """The model's fields (less `excluded`) as mapping targets, with the kind of value each takes."""
    kinds: dict[str, Kind] = {}
    for name in model.model_fields:
        if name not in excluded:
            kind: Kind = "number" if name in _NUMBER_TARGETS else "date" if name in _DATE_TARGETS else "text"
            kinds[prefix + name] = kind
    return kinds


CUSTOMER_TARGETS: dict[str, Kind] = {
    **_targets(NewCustomer, {"customer_id", "contact", "custom_fields"}),
    **_targets(Contact, {"mail_address"}, "contact."),
    **_targets(MailAddress, (), "contact.mail_address."),
}
HEADER_TARGETS: dict[str, Kind] = _targets(
    SalesTransaction, {"transaction_type", "customer_id", "reference_no", "lines", "custom_fields"}
)
LINE_TARGETS: dict[str, Kind] = _targets(SalesTransactionLine, {"custom_fields"})

ADDRESS_LINE_TARGETS = (
    "contact.mail_address.address1",
    "contact.mail_address.address2",
    "contact.mail_address.address3",
)
# Never sent empty on an update: required by Intacct (name, print_as) or not free text (status).
NEVER_CLEARED = frozenset({"name", "contact.print_as", "status"})
# Free text that may be shortened to Intacct's length without changing what the record is; every
# other field is refused when too long, unless its mapping entry says too_long = "shorten".
SHORTENED_BY_DEFAULT = frozenset(
    {
        "customer.comments",
        *(f"customer.{target}" for target in ADDRESS_LINE_TARGETS),
        "order.message",
        "line.memo",
        "line.item_description",
    }
)


# ---------------------------------------------------------------------------- the file's structure

Constant = StrictStr | StrictInt | StrictFloat | date


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Source(_Strict):
    """Where a value comes from: a Salesforce field (with an optional default) or a constant."""

    field: str | None = None
    value: Constant | None = None
    default: Constant | None = None
    too_long: Literal["refuse", "shorten"] | None = None  # None: the target's default (TOO_LONG_DEFAULTS)

    @model_validator(mode="before")
    @classmethod
    def _from_field_name(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"field": data}
        if not isinstance(data, dict | Source):
            raise ValueError(
                'expected a Salesforce field name, { value = "..." } or { field = "...", default = "..." }, '
                f"not {data!r}"
            )
        return data

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.field is None) == (self.value is None):
            raise ValueError("give either field or value")
        if self.field is not None and not FIELD_PATH_PATTERN.fullmatch(self.field):
            raise ValueError(f"{json.dumps(self.field, ensure_ascii=False)} is not a Salesforce field path")
        if self.value is not None and self.default is not None:
            raise ValueError("default goes with field, not with value")
        return self


class CreateCondition(_Strict):
    """An Account matching it gets its customer before its first won deal: `field` holds one of `values`."""

    field: str
    values: list[StrictStr]

    @model_validator(mode="after")
    def _valid(self) -> Self:
        if not FIELD_PATH_PATTERN.fullmatch(self.field) or "." in self.field:
            raise ValueError(f"{json.dumps(self.field, ensure_ascii=False)} is not an Account field name")
        if not self.values:
            raise ValueError("give at least one value")
        return self


class TransactionTypeCondition(_Strict):
    """A won deal whose Opportunity `field` holds one of `values` becomes a `transaction_type` document
    (e.g. a Sales Invoice once finance approved it) instead of the stack's transaction type. A checkbox
    field's value is "true" or "false"."""

    field: str
    values: list[StrictStr]
    transaction_type: StrictStr

    @model_validator(mode="after")
    def _valid(self) -> Self:
        if not FIELD_PATH_PATTERN.fullmatch(self.field) or "." in self.field:
            raise ValueError(f"{json.dumps(self.field, ensure_ascii=False)} is not an Opportunity field name")
        if not self.values:
            raise ValueError("give at least one value")
        if not self.transaction_type.strip():
            raise ValueError('give the Intacct transaction definition, e.g. "Sales Invoice"')
        return self

    def matches(self, opportunity: Mapping[str, Any]) -> bool:
        value = field_value(opportunity, self.field)
        text = ("true" if value else "false") if isinstance(value, bool) else value
        return isinstance(text, str) and text.strip() in self.values


class CustomerSection(_Strict):
    customer_id: Literal["salesforce_id", "intacct"] = "salesforce_id"
    salesforce_id_field: str = "SALESFORCE_ID"
    address_lines: str | None = None
    create_when: CreateCondition | None = None
    fields: dict[str, Source]
    custom_fields: dict[str, Source] = {}


class OrderSection(_Strict):
    transaction_type_when: TransactionTypeCondition | None = None
    fields: dict[str, Source]
    custom_fields: dict[str, Source] = {}


class LineSection(_Strict):
    fields: dict[str, Source]
    custom_fields: dict[str, Source] = {}
    items: dict[str, StrictStr] = {}


def _entry(parts: Iterable[str | int]) -> str:
    """`customer.fields."contact.phone1"`: a TOML key path, quoted where needed."""
    return ".".join(
        str(part) if re.fullmatch(r"[A-Za-z0-9_-]+", str(part)) else json.dumps(str(part), ensure_ascii=False)
        for part in parts
    )


def _entry_problems(section: str, fields: Mapping[str, Source], targets: Mapping[str, Kind]) -> list[str]:
    problems = []
    what = {"customer": "customer", "order": "order header", "line": "order line"}[section]
    for target, source in fields.items():
        entry = _entry((section, "fields", target))
        if target not in targets:
            problems.append(f"{entry}: not an Intacct {what} field")
            continue
        for constant in (source.value, source.default):
            try:
                _convert(constant, targets[target])
            except ValueError as error:
                problems.append(f"{entry}: {error}")
    return problems


def _currency_group_problems(fields: Mapping[str, Source]) -> list[str]:
    """Intacct's schema takes basecurr and exchratetype only together with currency, so every order
    that maps one of them must have a currency: a constant, or a field with a default."""
    problems = []
    currency = fields.get("currency")
    for name in ("base_currency", "exchange_rate_type"):
        if name not in fields:
            continue
        entry = _entry(("order", "fields", name))
        if currency is None:
            problems.append(f"{entry}: Intacct takes it only with currency; map currency too")
        elif currency.value is None and currency.default is None:
            problems.append(
                f"{entry}: Intacct takes it only with currency; give order.fields.currency a default "
                "for records whose currency field is empty"
            )
    return problems


def _custom_field_problems(section: str, custom_fields: Mapping[str, Source]) -> list[str]:
    return [
        f"{_entry((section, 'custom_fields', name))}: not a valid Intacct custom field name"
        for name in custom_fields
        if not _CUSTOM_FIELD_NAME.fullmatch(name)
    ]


# ---------------------------------------------------------------------------- the mapping


class SyncMapping(_Strict):
    """A validated mapping: builds the Intacct inputs from Salesforce records."""

    customer: CustomerSection
    order: OrderSection
    line: LineSection

    @model_validator(mode="after")
    def _valid_entries(self) -> Self:
        problems = [
            *_entry_problems("customer", self.customer.fields, CUSTOMER_TARGETS),
            *_entry_problems("order", self.order.fields, HEADER_TARGETS),
            *_entry_problems("line", self.line.fields, LINE_TARGETS),
            *_custom_field_problems("customer", self.customer.custom_fields),
            *_custom_field_problems("order", self.order.custom_fields),
            *_custom_field_problems("line", self.line.custom_fields),
        ]
        required = {"customer": ("name",), "order": ("date_created",), "line": ("item_id", "quantity")}
        for section, names in required.items():
            problems += [
                f"{section}.fields: {name} is required"
                for name in names
                if name not in getattr(self, section).fields
            ]
        if not {"term_name", "date_due"} & set(self.order.fields):
            problems.append("order.fields: map term_name or date_due")
        problems += _currency_group_problems(self.order.fields)
        for name, source in self.order.fields.items():
            if source.field and source.field.split(".")[0].lower() in {"account", "opportunitylineitems"}:
                problems.append(
                    f"{_entry(('order', 'fields', name))}: the order header reads Opportunity fields only"
                )
        if self.customer.address_lines is not None:
            if not FIELD_PATH_PATTERN.fullmatch(self.customer.address_lines):
                problems.append("customer.address_lines: not a Salesforce field path")
            problems += [
                f"{_entry(('customer', 'fields', target))}: filled by customer.address_lines"
                for target in ADDRESS_LINE_TARGETS
                if target in self.customer.fields
            ]
        id_field = self.customer.salesforce_id_field
        if not _CUSTOM_FIELD_NAME.fullmatch(id_field):
            problems.append("customer.salesforce_id_field: not a valid Intacct custom field name")
        if id_field in self.customer.custom_fields:
            entry = _entry(("customer", "custom_fields", id_field))
            problems.append(f"{entry}: set by salesforce_id_field (the Account id)")
        for code, item_id in self.line.items.items():
            if not item_id.strip():
                problems.append(f"{_entry(('line', 'items', code))}: empty Intacct item id")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def customer_id_strategy(self) -> Literal["salesforce_id", "intacct"]:
        return self.customer.customer_id

    @property
    def salesforce_id_field(self) -> str:
        return self.customer.salesforce_id_field

    def query_fields(self) -> OpportunityQueryFields:
        """The default query fields plus every Salesforce field this mapping reads."""
        always = ("Id", "LastModifiedDate")
        return OpportunityQueryFields().with_extra(
            opportunity_fields=(
                *always,
                *_paths(self.order.fields, self.order.custom_fields),
                *([self.order.transaction_type_when.field] if self.order.transaction_type_when else []),
            ),
            account_fields=(
                *always,
                *_paths(self.customer.fields, self.customer.custom_fields),
                *([self.customer.address_lines] if self.customer.address_lines else []),
                *([self.customer.create_when.field] if self.customer.create_when else []),
            ),
            line_fields=("Id", "SortOrder", *_paths(self.line.fields, self.line.custom_fields)),
        )

    def transaction_type_for(self, opportunity: Mapping[str, Any], default: str) -> str:
        """The transaction definition a won deal's document is made as: order.transaction_type_when's
        when the deal matches it, else `default` (the stack's IntacctTransactionType)."""
        condition = self.order.transaction_type_when
        return condition.transaction_type if condition and condition.matches(opportunity) else default

    def transaction_types(self, default: str) -> tuple[str, ...]:
        """Every transaction definition a deal's document may have been made as (where to look for it)."""
        condition = self.order.transaction_type_when
        return tuple(dict.fromkeys((default, *([condition.transaction_type] if condition else []))))

    def wants_customer_before_a_deal(self, account: Mapping[str, Any]) -> bool:
        """Whether the Account matches customer.create_when (without it, only a won deal makes a customer)."""
        condition = self.customer.create_when
        if condition is None:
            return False
        value = field_value(account, condition.field)
        return isinstance(value, str) and value.strip() in condition.values

    def new_customer(
        self, account: Mapping[str, Any], customer_id: str | None, notes: list[str] | None = None
    ) -> NewCustomer:
        """The CUSTOMER to create; customer_id None lets Intacct number it. Empty values are left out.

        `notes` collects a warning for each value shortened to Intacct's length.
        """
        what, values = self._customer_values(account, clear_empty=False, notes=notes)
        if customer_id is not None:
            values["customer_id"] = customer_id
        return _build(NewCustomer, values, what, self.customer.fields)

    def customer_update(
        self, account: Mapping[str, Any], customer_id: str, notes: list[str] | None = None
    ) -> CustomerUpdate:
        """The same values as `new_customer`, as an update of customer `customer_id`; a mapped text field
        that is empty in Salesforce is sent empty, so Intacct clears it."""
        what, values = self._customer_values(account, clear_empty=True, notes=notes)
        return _build(CustomerUpdate, {**values, "customer_id": customer_id}, what, self.customer.fields)

    def sales_transaction(
        self,
        snapshot: OpportunitySnapshot,
        *,
        customer_id: str,
        transaction_type: str,
        notes: list[str] | None = None,
    ) -> SalesTransaction:
        """The order: header from the Opportunity, one line per OpportunityLineItem in SortOrder."""
        what = f"Opportunity {snapshot.opportunity_id}"
        if not snapshot.lines:
            raise RecordDataError(f"{what} has no products (OpportunityLineItems), so the order has no lines")
        lines = [
            self._line(number, line, notes) for number, line in enumerate(_in_order(snapshot.lines), start=1)
        ]
        values = _mapped(self.order.fields, HEADER_TARGETS, snapshot.opportunity, what)
        _fit(values, "order", self.order.fields, what, notes)
        values["custom_fields"] = _mapped_custom(self.order.custom_fields, snapshot.opportunity, what)
        values.update(
            transaction_type=transaction_type,
            customer_id=customer_id,
            reference_no=snapshot.opportunity_id,
            lines=lines,
        )
        return _build(SalesTransaction, values, what, self.order.fields)

    def _customer_values(
        self, account: Mapping[str, Any], *, clear_empty: bool, notes: list[str] | None
    ) -> tuple[str, dict[str, Any]]:
        account_id = field_value(account, "Id")
        if not account_id:
            raise RecordDataError("the Account has no Id")
        what = f"Account {account_id}"
        flat = _mapped(self.customer.fields, CUSTOMER_TARGETS, account, what, clear_empty=clear_empty)
        spec = dict(self.customer.fields)
        if self.customer.address_lines is not None:
            street = Source(field=self.customer.address_lines)
            for target, line in zip(
                ADDRESS_LINE_TARGETS, _address_lines(_read(street, account)), strict=True
            ):
                if line or clear_empty:
                    flat[target] = line
                spec[target] = street
        _fit(flat, "customer", spec, what, notes)
        values = _nested(flat)
        values["custom_fields"] = {
            self.salesforce_id_field: str(account_id),
            **_mapped_custom(self.customer.custom_fields, account, what, clear_empty=clear_empty),
        }
        return what, values

    def _line(self, number: int, line: Mapping[str, Any], notes: list[str] | None) -> SalesTransactionLine:
        what = f"line {number} ({line.get('Id') or 'without Id'})"
        values = _mapped(self.line.fields, LINE_TARGETS, line, what)
        if "item_id" not in values:
            source = self.line.fields["item_id"]
            raise RecordDataError(f"{what}: {source.field} is empty, so the Intacct item is unknown")
        values["item_id"] = self.line.items.get(values["item_id"], values["item_id"])
        _fit(values, "line", self.line.fields, what, notes)
        values["custom_fields"] = _mapped_custom(self.line.custom_fields, line, what)
        return _build(SalesTransactionLine, values, what, self.line.fields)


def load_mapping(path: Path | None = None) -> SyncMapping:
    """The mapping in `path`, else in $SFINTACCT_MAPPING_FILE, else the default file. Not cached."""
    if path is None:
        configured = os.environ.get(MAPPING_FILE_VARIABLE, "").strip()
        path = Path(configured) if configured else DEFAULT_MAPPING_FILE
    try:
        with path.open("rb") as file:
            data = tomllib.load(file)
    except OSError as error:
        raise MappingError(f"{path}: cannot read the mapping file: {error.strerror or error}") from error
    except tomllib.TOMLDecodeError as error:
        raise MappingError(f"{path}: not valid TOML: {error}") from error
    return parse_mapping(data, source=str(path))


def parse_mapping(data: Mapping[str, Any], source: str = "mapping") -> SyncMapping:
    """A mapping from already parsed TOML; `source` names it in error messages."""
    try:
        return SyncMapping.model_validate(data)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            message = item["msg"].removeprefix("Value error, ")
            if item["type"] == "extra_forbidden":
                message = "unknown entry"
            entry = _entry(item["loc"])
            problems.append(f"{entry}: {message}" if entry else message)
        raise MappingError(f"{source}: {'; '.join(problems)}") from None


# ---------------------------------------------------------------------------- values

_M = TypeVar("_M", bound=BaseModel)


def _paths(*specs: Mapping[str, Source]) -> list[str]:
    return [source.field for spec in specs for source in spec.values() if source.field is not None]


def _read(source: Source, record: Mapping[str, Any] | None) -> Any:
    if source.field is None:
        return source.value
    value = field_value(record, source.field)
    if value is None or (isinstance(value, str) and not value.strip()):
        return source.default
    return value


def _convert(value: Any, kind: Kind) -> str | Decimal | date | None:
    """A Salesforce (or constant) value as Intacct text, Decimal or date; None/"" = not given."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if kind == "number":
        return _number(value)
    if kind == "date":
        return _date(value)
    return _text(value)


def _number(value: Any) -> Decimal:
    """An exact Decimal from int, float, Decimal or numeric text (via str: no float arithmetic)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal | str):
        raise ValueError(f"{value!r} is not a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not a number")
    return number


def _date(value: Any) -> date:
    """A date from a date, a datetime, "YYYY-MM-DD" or an ISO datetime (2026-11-28T10:00:00.000+0000)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        return date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text).date()
    except ValueError:
        raise ValueError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float | Decimal):
        return format(Decimal(str(value)), "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if not isinstance(value, str | int):
        raise ValueError(f"{value!r} is not a text value")
    return str(value).strip()


def _mapped(
    spec: Mapping[str, Source],
    targets: Mapping[str, Kind],
    record: Mapping[str, Any],
    what: str,
    *,
    clear_empty: bool = False,
) -> dict[str, Any]:
    """The mapped values; an empty one is left out, or with `clear_empty` sent as "" (text fields)."""
    values: dict[str, Any] = {}
    for target, source in spec.items():
        try:
            value = _convert(_read(source, record), targets[target])
        except ValueError as error:
            raise RecordDataError(
                f"{what}: {source.field or 'value'}: {error} (for Intacct {target})"
            ) from None
        if value is not None:
            values[target] = value
        elif clear_empty and targets[target] == "text" and target not in NEVER_CLEARED:
            values[target] = ""
    return values


def _mapped_custom(
    spec: Mapping[str, Source], record: Mapping[str, Any], what: str, *, clear_empty: bool = False
) -> dict[str, str]:
    texts = _mapped(spec, dict.fromkeys(spec, "text"), record, what, clear_empty=clear_empty)
    return {name: str(text) for name, text in texts.items()}


def _fit(
    values: dict[str, Any], section: str, spec: Mapping[str, Source], what: str, notes: list[str] | None
) -> None:
    """Check each text value against Intacct's length: shorten it (with a note) or refuse the record."""
    for target, value in values.items():
        limit = MAX_LENGTHS.get(f"{section}.{target}")
        if limit is None or not isinstance(value, str) or len(value) <= limit:
            continue
        source = spec.get(target)
        origin = f" (Salesforce {source.field})" if source is not None and source.field else ""
        choice = source.too_long if source is not None else None
        if choice is None:
            choice = "shorten" if f"{section}.{target}" in SHORTENED_BY_DEFAULT else "refuse"
        if choice == "refuse":
            raise RecordDataError(
                f"{what}: Intacct {target}{origin} takes at most {limit} characters, the value has "
                f'{len(value)}; shorten it in Salesforce, or set too_long = "shorten" on '
                f"{_entry((section, 'fields', target))} in the mapping"
            )
        values[target] = value[:limit].rstrip()
        if notes is not None:
            notes.append(
                f"{what}: Intacct {target}{origin} was shortened to {limit} characters (from {len(value)})"
            )


def _address_lines(street: Any) -> tuple[str, str, str]:
    """A multi-line street as three address lines: line 1, line 2, and the rest joined with ", "."""
    text = _text(street) if street is not None else ""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return (
        lines[0] if lines else "",
        lines[1] if len(lines) > 1 else "",
        ", ".join(lines[2:]),
    )


def _nested(values: Mapping[str, Any]) -> dict[str, Any]:
    """{"contact.mail_address.city": "X"} -> {"contact": {"mail_address": {"city": "X"}}}."""
    result: dict[str, Any] = {}
    for path, value in values.items():
        *parents, name = path.split(".")
        level = result
        for parent in parents:
            level = level.setdefault(parent, {})
        level[name] = value
    return result


def _in_order(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Lines by SortOrder where given (stable: lines without it keep their order, after the others)."""

    def key(line: Mapping[str, Any]) -> tuple[bool, Decimal]:
        try:
            number = _convert(line.get("SortOrder"), "number")
        except ValueError:
            number = None
        return (False, number) if isinstance(number, Decimal) else (True, Decimal(0))

    return sorted(lines, key=key)


def _build(model: type[_M], values: dict[str, Any], what: str, spec: Mapping[str, Source]) -> _M:
    """`model` from the values, a ValidationError turned into a RecordDataError naming the record."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        problems = []
        for item in error.errors():
            target = ".".join(str(part) for part in item["loc"])
            source = spec.get(target)
            if source is not None and source.field:
                target = f"{target} (Salesforce {source.field})"
            message = item["msg"].removeprefix("Value error, ")
            problems.append(f"{target}: {message}" if target else message)
        raise RecordDataError(f"{what}: {'; '.join(problems)}") from None
