"""The TOML field mapping: loading and validation, and Salesforce records mapped to Intacct inputs."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from sfintacct.mapping import (
    DEFAULT_MAPPING_FILE,
    MAPPING_FILE_VARIABLE,
    MappingError,
    RecordDataError,
    SyncMapping,
    load_mapping,
)
from sfintacct.salesforce.models import OpportunitySnapshot

ACCOUNT_ID = "001Dn00000AbCdEIAV"
OPPORTUNITY_ID = "006Dn00000XyZaBIAV"
DEFAULT_TEXT = DEFAULT_MAPPING_FILE.read_text(encoding="utf-8")

MINIMAL = """
[customer]
customer_id = "intacct"
salesforce_id_field = "SF_ACCOUNT"
[customer.fields]
name = "Name"
credit_limit = { field = "AnnualRevenue", default = 5000 }
[customer.custom_fields]
TIER = { field = "Tier__c", default = "standard" }

[order]
[order.fields]
date_created = "CloseDate"
date_due = { value = 2026-12-31 }
external_id = "Name"
[order.custom_fields]
OPP_TYPE = "Type"

[line]
[line.fields]
item_id = { field = "ProductCode", default = "MISC" }
quantity = "Quantity"
location_id = { value = "100" }
department_id = { field = "Department__c", default = "SALES" }
[line.custom_fields]
FAMILY = "Product2.Family"
[line.items]
"GC1040" = "GENCLOUD-STD"
"""


def account(**fields: Any) -> dict[str, Any]:
    return {"Id": ACCOUNT_ID, "Name": "Acme Corp", "BillingCity": "Austin", "Phone": "", **fields}


def line(line_id: str, code: str | None, **fields: Any) -> dict[str, Any]:
    return {"Id": line_id, "Product2": {"ProductCode": code, "Family": "Cloud"}, "Quantity": 1.0, **fields}


def snapshot(lines: list[dict[str, Any]], **opportunity: Any) -> OpportunitySnapshot:
    header = {"Id": OPPORTUNITY_ID, "Name": "Acme renewal", "CloseDate": "2026-11-28", **opportunity}
    return OpportunitySnapshot(opportunity=header, account=account(), lines=lines)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def default() -> SyncMapping:
    return load_mapping(DEFAULT_MAPPING_FILE)


@pytest.fixture
def minimal(tmp_path: Path) -> SyncMapping:
    return load_mapping(write(tmp_path, MINIMAL))


# ---------------------------------------------------------------------------- loading


def test_the_default_file_ships_next_to_the_package_and_loads(default: SyncMapping) -> None:
    repository = Path(__file__).resolve().parents[2]
    assert repository / "layers" / "sync" / "mapping.toml" == DEFAULT_MAPPING_FILE
    assert default.customer_id_strategy == "salesforce_id"
    assert default.salesforce_id_field == "SALESFORCE_ID"


def test_load_mapping_reads_the_file_named_by_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MAPPING_FILE_VARIABLE, str(write(tmp_path, MINIMAL)))
    assert load_mapping().customer_id_strategy == "intacct"
    monkeypatch.setenv(MAPPING_FILE_VARIABLE, "")
    assert load_mapping().customer_id_strategy == "salesforce_id"


def test_query_fields_select_what_the_mapping_reads(default: SyncMapping, minimal: SyncMapping) -> None:
    fields = default.query_fields()
    assert {"Id", "LastModifiedDate", "Name", "Fax", "BillingPostalCode"} <= set(fields.account_fields)
    assert {"Id", "LastModifiedDate", "CloseDate", "Name"} <= set(fields.opportunity_fields)
    assert {"Id", "Product2.ProductCode", "Quantity", "UnitPrice", "Discount", "ServiceDate"} <= set(
        fields.line_fields
    )
    custom = minimal.query_fields()
    assert {"AnnualRevenue", "Tier__c"} <= set(custom.account_fields)
    assert {"Type", "Id", "LastModifiedDate"} <= set(custom.opportunity_fields)
    assert {"Department__c", "Product2.Family", "ProductCode"} <= set(custom.line_fields)


def test_the_default_mapping_reads_only_standard_fields_and_the_packages_own(default: SyncMapping) -> None:
    fields = default.query_fields()
    mapped = [*fields.account_fields, *fields.opportunity_fields, *fields.line_fields]
    package = {
        "Intacct_Order_Id__c",
        "Intacct_Sync_Status__c",
        "Intacct_Customer_Id__c",
        "Intacct_Invoice_Approved__c",  # order.transaction_type_when: straight to an invoice
    }
    assert [name for name in mapped if name.endswith("__c") and name not in package] == []


# ---------------------------------------------------------------------------- orders


def test_a_three_line_opportunity_becomes_a_sales_transaction(default: SyncMapping) -> None:
    order = default.sales_transaction(
        snapshot(
            [
                line("00k000000000003AAA", "ADDON", UnitPrice=0, Quantity=2, SortOrder=3),
                line(
                    "00k000000000001AAA",
                    "GC1040",
                    UnitPrice=Decimal("1200.50"),
                    Quantity=1.1,
                    Discount=10.0,
                    ServiceDate="2027-01-01",
                    Description="first year",
                    SortOrder=1,
                ),
                line("00k000000000002AAA", "SUPPORT", UnitPrice="99.99", SortOrder=2),
            ],
            CloseDate="2026-11-28T10:00:00.000+0000",
        ),
        customer_id=ACCOUNT_ID,
        transaction_type="Sales Invoice",
    )
    assert order.transaction_type == "Sales Invoice"
    assert order.customer_id == ACCOUNT_ID
    assert order.reference_no == OPPORTUNITY_ID
    assert order.date_created == date(2026, 11, 28)
    assert (order.term_name, order.date_due, order.state, order.message) == (
        "N30",
        None,
        "Pending",
        "Acme renewal",
    )
    assert [item.item_id for item in order.lines] == ["GC1040", "SUPPORT", "ADDON"]
    first, second, free = order.lines
    assert (first.quantity, first.price, first.discount_percent) == (
        Decimal("1.1"),
        Decimal("1200.50"),
        Decimal("10.0"),
    )
    assert (first.revrec_start_date, first.memo) == (date(2027, 1, 1), "first year")
    assert (second.price, second.discount_percent, second.revrec_start_date) == (Decimal("99.99"), None, None)
    assert (free.price, free.quantity) == (Decimal(0), Decimal(2))
    assert free.price is not None


def test_lines_without_sort_order_keep_their_order(default: SyncMapping) -> None:
    order = default.sales_transaction(
        snapshot([line("00k1", "B"), line("00k2", "A"), line("00k3", "C", SortOrder=None)]),
        customer_id="C-1",
        transaction_type="Sales Order",
    )
    assert [item.item_id for item in order.lines] == ["B", "A", "C"]


def test_the_item_table_translates_codes_and_passes_others_through(minimal: SyncMapping) -> None:
    lines = [line("00k1", None, ProductCode="GC1040"), line("00k2", None, ProductCode="OTHER-1")]
    order = minimal.sales_transaction(snapshot(lines), customer_id="C-1", transaction_type="Sales Order")
    assert [item.item_id for item in order.lines] == ["GENCLOUD-STD", "OTHER-1"]


def test_constants_and_defaults(minimal: SyncMapping) -> None:
    lines = [
        line("00k1", None, ProductCode="", Department__c="OPS"),
        line("00k2", None, ProductCode="X", Product2=None),
    ]
    order = minimal.sales_transaction(
        snapshot(lines, Type="New Customer"), customer_id="C-1", transaction_type="SO"
    )
    assert (order.date_due, order.term_name, order.state, order.external_id) == (
        date(2026, 12, 31),
        None,
        None,
        "Acme renewal",
    )
    assert order.custom_fields == {"OPP_TYPE": "New Customer"}
    first, second = order.lines
    assert (first.item_id, first.location_id, first.department_id) == ("MISC", "100", "OPS")
    assert first.custom_fields == {"FAMILY": "Cloud"}
    assert (second.item_id, second.department_id, second.custom_fields) == ("X", "SALES", {})


def test_a_line_without_product_code_is_a_record_error(default: SyncMapping) -> None:
    lines = [line("00k000000000001AAA", "A"), line("00k000000000002AAA", "  ")]
    with pytest.raises(RecordDataError) as caught:
        default.sales_transaction(snapshot(lines), customer_id="C-1", transaction_type="Sales Order")
    assert str(caught.value) == (
        "line 2 (00k000000000002AAA): Product2.ProductCode is empty, so the Intacct item is unknown"
    )


def test_an_opportunity_without_lines_is_a_record_error(default: SyncMapping) -> None:
    with pytest.raises(RecordDataError, match=f"Opportunity {OPPORTUNITY_ID} has no products"):
        default.sales_transaction(snapshot([]), customer_id="C-1", transaction_type="Sales Order")


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"Quantity": "two"}, "line 1 (00k1): Quantity: 'two' is not a number (for Intacct quantity)"),
        ({"Quantity": True}, "line 1 (00k1): Quantity: True is not a number"),
        ({"ServiceDate": "01/02/2027"}, "line 1 (00k1): ServiceDate: '01/02/2027' is not a date"),
        ({"Discount": 150}, "line 1 (00k1): discount_percent (Salesforce Discount): Input should be less"),
        ({"Quantity": None}, "line 1 (00k1): quantity (Salesforce Quantity): Field required"),
    ],
)
def test_unusable_line_values_are_record_errors(
    default: SyncMapping, fields: dict[str, Any], expected: str
) -> None:
    with pytest.raises(RecordDataError) as caught:
        default.sales_transaction(
            snapshot([line("00k1", "A", **fields)]), customer_id="C", transaction_type="SO"
        )
    assert str(caught.value).startswith(expected)


def test_an_unusable_header_value_names_the_opportunity(default: SyncMapping) -> None:
    with pytest.raises(RecordDataError) as caught:
        default.sales_transaction(
            snapshot([line("00k1", "A")], CloseDate=None), customer_id="C", transaction_type="SO"
        )
    assert (
        str(caught.value)
        == f"Opportunity {OPPORTUNITY_ID}: date_created (Salesforce CloseDate): Field required"
    )


# ---------------------------------------------------------------------------- customers


def test_new_customer_with_the_salesforce_id_strategy(default: SyncMapping) -> None:
    customer = default.new_customer(account(BillingPostalCode="78701", Website="acme.example"), ACCOUNT_ID)
    assert customer.customer_id == ACCOUNT_ID
    assert customer.name == "Acme Corp"
    assert customer.term_name == "N30"
    assert customer.custom_fields == {"SALESFORCE_ID": ACCOUNT_ID}
    assert customer.contact is not None
    assert (customer.contact.print_as, customer.contact.url1, customer.contact.phone1) == (
        "Acme Corp",
        "acme.example",
        None,
    )
    assert customer.contact.mail_address is not None
    assert (customer.contact.mail_address.city, customer.contact.mail_address.zip) == ("Austin", "78701")


def test_new_customer_with_the_intacct_strategy(minimal: SyncMapping) -> None:
    assert minimal.customer_id_strategy == "intacct"
    customer = minimal.new_customer(account(AnnualRevenue=Decimal("250000.00")), None)
    assert customer.customer_id is None
    assert customer.contact is None
    assert customer.credit_limit == Decimal("250000.00")
    assert customer.custom_fields == {"SF_ACCOUNT": ACCOUNT_ID, "TIER": "standard"}
    assert minimal.new_customer(account(Tier__c="gold"), None).custom_fields["TIER"] == "gold"
    assert minimal.new_customer(account(), None).credit_limit == Decimal(5000)


def test_customer_update_carries_the_same_values(default: SyncMapping) -> None:
    update = default.customer_update(account(Name="Acme Corporation"), "C-00042")
    assert (update.customer_id, update.record_no, update.name) == ("C-00042", None, "Acme Corporation")
    assert update.custom_fields == {"SALESFORCE_ID": ACCOUNT_ID}
    assert update.contact is not None
    assert update.contact.company_name == "Acme Corporation"


def test_an_account_without_name_is_a_record_error(default: SyncMapping) -> None:
    with pytest.raises(
        RecordDataError, match=f"^Account {ACCOUNT_ID}: name \\(Salesforce Name\\): Field required"
    ):
        default.new_customer(account(Name=" "), ACCOUNT_ID)


# ---------------------------------------------------------------------------- invalid files


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            '"contact.phone1" = "Phone"',
            '"contact.phone9" = "Phone"',
            'customer.fields."contact.phone9": not an Intacct customer field',
        ),
        (
            'quantity = "Quantity"',
            'quantity = "Quantity Foo"',
            'line.fields.quantity: "Quantity Foo" is not a Salesforce field path',
        ),
        ("[order]", "[orders]\n[order]", "orders: unknown entry"),
        (
            'customer_id = "salesforce_id"',
            'customer_id = "salesforce_id"\ncolour = "blue"',
            "customer.colour: unknown",
        ),
        ('message = "Name"', 'message = { feild = "Name" }', "order.fields.message.feild: unknown entry"),
        ('quantity = "Quantity"', "quantity = 5", "line.fields.quantity: expected a Salesforce field name"),
        (
            'customer_id = "salesforce_id"',
            'customer_id = "sequence"',
            "customer.customer_id: Input should be",
        ),
        (
            'quantity = "Quantity"',
            'quantity = { value = "lots" }',
            "line.fields.quantity: 'lots' is not a number",
        ),
        ('quantity = "Quantity"', 'unit = "Quantity"', "line.fields: quantity is required"),
        (
            'message = "Name"',
            'message = "Account.Name"',
            "order.fields.message: the order header reads Opportunity",
        ),
        (
            "[customer.custom_fields]",
            '[customer.custom_fields]\nSALESFORCE_ID = "Id"',
            "customer.custom_fields.SALESFORCE_ID: set by salesforce_id_field",
        ),
        (
            "[line.custom_fields]",
            '[line.custom_fields]\n"BAD NAME" = "Id"',
            'line.custom_fields."BAD NAME": not a',
        ),
        ('term_name = { value = "N30" }            # or', "# ", "order.fields: map term_name or date_due"),
        (
            'message = "Name"',
            'message = "Name"\nbase_currency = { value = "USD" }',
            "order.fields.base_currency: Intacct takes it only with currency; map currency too",
        ),
        (
            'message = "Name"',
            'message = "Name"\nexchange_rate_type = { value = "Intacct Daily Rate" }\n'
            'currency = "CurrencyIsoCode"',
            "order.fields.exchange_rate_type: Intacct takes it only with currency; give "
            "order.fields.currency a default",
        ),
    ],
)
def test_an_invalid_mapping_names_the_entry(tmp_path: Path, old: str, new: str, expected: str) -> None:
    assert old in DEFAULT_TEXT
    path = write(tmp_path, DEFAULT_TEXT.replace(old, new, 1))
    with pytest.raises(MappingError) as caught:
        load_mapping(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert expected in str(caught.value)


def test_a_currency_group_with_a_currency_default_loads_and_builds_a_valid_group(tmp_path: Path) -> None:
    text = DEFAULT_TEXT.replace(
        'message = "Name"',
        'message = "Name"\nbase_currency = { value = "USD" }\n'
        'currency = { field = "CurrencyIsoCode", default = "USD" }',
        1,
    )
    mapping = load_mapping(write(tmp_path, text))

    transaction = mapping.sales_transaction(
        snapshot([line("00k1", "GC1040", Quantity=1.0)]), customer_id="C-1", transaction_type="Sales Order"
    )

    assert (transaction.base_currency, transaction.currency) == ("USD", "USD")


def test_a_toml_syntax_error_is_a_mapping_error(tmp_path: Path) -> None:
    path = write(tmp_path, DEFAULT_TEXT.replace('message = "Name"', "message = Name", 1))
    with pytest.raises(MappingError, match=r"mapping\.toml: not valid TOML: .*line \d+"):
        load_mapping(path)


def test_a_missing_file_is_a_mapping_error(tmp_path: Path) -> None:
    with pytest.raises(MappingError, match="cannot read the mapping file"):
        load_mapping(tmp_path / "absent.toml")


# ---------------------------------------------------------------------------- after the first sync


def test_a_multi_line_street_fills_three_address_lines(default: SyncMapping) -> None:
    street = "Building 4\r\n1 Main Street\nFloor 3\nSuite 12"
    customer = default.new_customer(account(BillingStreet=street), ACCOUNT_ID)
    assert customer.contact is not None
    assert customer.contact.mail_address is not None
    address = customer.contact.mail_address
    assert (address.address1, address.address2, address.address3) == (
        "Building 4",
        "1 Main Street",
        "Floor 3, Suite 12",
    )
    one_line = default.new_customer(account(BillingStreet="1 Main Street"), ACCOUNT_ID).contact
    assert one_line is not None
    assert one_line.mail_address is not None
    assert (one_line.mail_address.address1, one_line.mail_address.address2) == ("1 Main Street", None)


def test_an_update_clears_what_salesforce_left_empty_and_a_create_leaves_it_out(default: SyncMapping) -> None:
    created = default.new_customer(account(Phone=None, Website=""), ACCOUNT_ID)
    updated = default.customer_update(account(Phone=None, Website=""), "C-1")
    assert created.contact is not None
    assert updated.contact is not None
    assert (created.contact.phone1, created.contact.url1) == (None, None)
    assert (updated.contact.phone1, updated.contact.url1, updated.contact.fax) == ("", "", "")
    assert updated.contact.mail_address is not None
    assert (updated.contact.mail_address.address1, updated.contact.mail_address.city) == ("", "Austin")
    assert (updated.name, updated.contact.print_as) == ("Acme Corp", "Acme Corp")  # never cleared


def test_too_long_values_are_refused_or_shortened_per_entry(tmp_path: Path, default: SyncMapping) -> None:
    with pytest.raises(
        RecordDataError, match=r"Intacct contact.phone1 \(Salesforce Phone\) takes at most 30"
    ):
        default.new_customer(account(Phone="1" * 31), ACCOUNT_ID)
    assert default.new_customer(account(Phone="1" * 30), ACCOUNT_ID).contact.phone1 == "1" * 30  # type: ignore[union-attr]
    lenient = load_mapping(
        write(
            tmp_path,
            DEFAULT_TEXT.replace(
                '"contact.phone1" = "Phone"', '"contact.phone1" = { field = "Phone", too_long = "shorten" }'
            ),
        )
    )
    notes: list[str] = []
    customer = lenient.new_customer(account(Phone="1" * 31), ACCOUNT_ID, notes)
    assert customer.contact is not None
    assert customer.contact.phone1 == "1" * 30
    assert notes == [
        f"Account {ACCOUNT_ID}: Intacct contact.phone1 (Salesforce Phone) was shortened to 30 characters "
        "(from 31)"
    ]


def test_create_when_names_the_accounts_that_are_customers_before_a_deal(
    tmp_path: Path, default: SyncMapping
) -> None:
    assert default.wants_customer_before_a_deal(account(Type="Customer - Direct")) is True
    assert default.wants_customer_before_a_deal(account(Type="Customer - Channel")) is True
    assert default.wants_customer_before_a_deal(account(Type="Prospect")) is False
    assert default.wants_customer_before_a_deal(account()) is False
    assert "Type" in default.query_fields().account_fields
    without = load_mapping(write(tmp_path, DEFAULT_TEXT.replace("\ncreate_when = ", "\n# create_when = ")))
    assert without.wants_customer_before_a_deal(account(Type="Customer - Direct")) is False


@pytest.mark.parametrize(
    ("original", "replacement", "problem"),
    [
        (
            '"contact.mail_address.city" = "BillingCity"',
            '"contact.mail_address.city" = "BillingCity"\n"contact.mail_address.address1" = "BillingStreet"',
            'customer.fields."contact.mail_address.address1": filled by customer.address_lines',
        ),
        ('"Customer - Direct", "Customer - Channel"', "", "customer.create_when: give at"),
        (
            '"contact.phone1" = "Phone"',
            '"contact.phone1" = { field = "Phone", too_long = "cut" }',
            "too_long",
        ),
    ],
)
def test_new_entries_are_checked(tmp_path: Path, original: str, replacement: str, problem: str) -> None:
    text = DEFAULT_TEXT.replace(original, replacement)
    assert text != DEFAULT_TEXT
    with pytest.raises(MappingError, match=re.escape(problem)):
        load_mapping(write(tmp_path, text))
