"""Every request the client builds passes Intacct's published 3.0 schema (sandbox/intacct/xsd).

The gateway validates a request before it runs anything and refuses the whole request when it fails,
so a builder mistake here would lose every order in production. The scripted gateway of the other
client tests checks every request they send too (intacct_fakes.FakeIntacct).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from xml.etree.ElementTree import fromstring, tostring

import pytest
from pydantic import SecretStr, ValidationError

from sandbox.intacct.schema import schema_errors
from sfintacct.intacct import (
    Contact,
    CustomerUpdate,
    IntacctFunction,
    MailAddress,
    NewCustomer,
    SalesTransaction,
    SalesTransactionLine,
    all_of,
    any_of,
    create,
    equal_to,
    in_list,
    query,
    read_by_query,
    sotransaction_element,
    update,
    write_function,
)
from sfintacct.intacct.functions import get_api_session, read_more
from sfintacct.intacct.request import (
    Authentication,
    LoginAuthentication,
    SessionAuthentication,
    build_request,
)
from sfintacct.intacct.writers import customer_update_element, new_customer_element

LOGIN = LoginAuthentication(user_id="xml_gateway", company_id="acme-co", password=SecretStr("pw-1"))
ENTITY_LOGIN = LoginAuthentication(
    user_id="xml_gateway", company_id="acme-co", password=SecretStr("pw-1"), location_id="UK"
)
SESSION = SessionAuthentication("session-id..")

FULL_CONTACT = Contact(
    print_as="Acme Corp",
    contact_name="Acme Corp (C-1)",
    company_name="Acme Corp",
    prefix="Ms",
    first_name="Ada",
    last_name="Lovelace",
    phone1="+1 555 0100",
    phone2="+1 555 0101",
    cell_phone="+1 555 0102",
    fax="+1 555 0103",
    email1="ap@acme.example",
    email2="ceo@acme.example",
    url1="https://acme.example",
    url2="https://shop.acme.example",
    mail_address=MailAddress(
        address1="1 Main St",
        address2="Suite 2",
        address3="Floor 3",
        city="Springfield",
        state="IL",
        zip="62701",
        country="United States",
        iso_country_code="US",
    ),
)
CUSTOMER_FIELDS = {
    "contact": FULL_CONTACT,
    "status": "active",
    "customer_type": "Direct",
    "parent_id": "C-PARENT",
    "term_name": "N30",
    "tax_id": "12-3456789",
    "credit_limit": Decimal("50000.00"),
    "comments": "From Salesforce",
    "currency": "USD",
    "custom_fields": {"SALESFORCE_ID": "001AAA"},
}
FULL_LINE = SalesTransactionLine(
    item_id="PLAT-SUB",
    quantity=Decimal("2.5"),
    unit="Each",
    price=Decimal("0"),
    discount_percent=Decimal("10"),
    item_description="Platform subscription",
    memo="Free add-on",
    location_id="US",
    department_id="SALES",
    revrec_start_date=date(2027, 1, 4),
    revrec_end_date=date(2027, 12, 31),
    custom_fields={"SALESFORCE_LINE_ID": "00kAAA"},
)


def order(**changes: object) -> SalesTransaction:
    values: dict[str, object] = {
        "transaction_type": "Sales Order",
        "date_created": date(2026, 12, 1),
        "customer_id": "C-1",
        "document_no": "SO-1",
        "reference_no": "006AAA",
        "term_name": "N30",
        "message": "Closed won",
        "external_id": "006AAA",
        "base_currency": "USD",
        "currency": "EUR",
        "exchange_rate_type": "Intacct Daily Rate",
        "custom_fields": {"SALESFORCE_OPPORTUNITY_ID": "006AAA"},
        "state": "Pending",
        "lines": [FULL_LINE, SalesTransactionLine(item_id="SETUP", quantity=Decimal(1))],
    }
    values.update(changes)
    return SalesTransaction.model_validate(values)


def request_body(
    functions: list[IntacctFunction], authentication: Authentication = LOGIN, transaction: bool = False
) -> bytes:
    return build_request(
        sender_id="sender",
        sender_password=SecretStr("sender-pw"),
        authentication=authentication,
        functions=functions,
        unique_id=any(function.writes for function in functions),
        transaction=transaction,
    )


def order_function(transaction: SalesTransaction) -> IntacctFunction:
    return write_function(sotransaction_element(transaction), "order-006AAA-1")


FUNCTIONS: dict[str, IntacctFunction] = {
    "getAPISession": get_api_session(),
    "getAPISession for an entity": get_api_session("UK"),
    "create CUSTOMER, every field": create(
        [new_customer_element(NewCustomer(customer_id="C-1", name="Acme Corp", **CUSTOMER_FIELDS))],
        control_id="customer-create-1",
    ),
    "create CUSTOMER, name only": create(
        [new_customer_element(NewCustomer(name="Acme Corp"))], control_id="customer-create-2"
    ),
    "update CUSTOMER, every field": update(
        [
            customer_update_element(
                CustomerUpdate(record_no=7, customer_id="C-1", name="Acme Corp", **CUSTOMER_FIELDS)
            )
        ],
        control_id="customer-update-1",
    ),
    "create_sotransaction, every field": order_function(order()),
    "create_sotransaction, due date": order_function(
        order(term_name=None, date_due=date(2027, 1, 1), document_no=None)
    ),
    "create_sotransaction, currency without rate type": order_function(
        order(base_currency=None, exchange_rate_type=None)
    ),
    "create_sotransaction, no currency": order_function(
        order(base_currency=None, currency=None, exchange_rate_type=None, custom_fields={}, state=None)
    ),
    "query, every option": query(
        "SODOCUMENT",
        ["RECORDNO", "DOCID", "PONUMBER"],
        query_filter=all_of(
            equal_to("PONUMBER", "006AAA"),
            any_of(in_list("STATE", ["Pending", "Closed"]), equal_to("CUSTVENDID", "C-1")),
        ),
        order_by=[("RECORDNO", True), ("DOCID", False)],
        case_insensitive=True,
        page_size=50,
        offset=100,
        docparid="Sales Order",
    ),
    "readByQuery": read_by_query(
        "SODOCUMENT", query_text="PONUMBER = '006AAA'", fields=["RECORDNO", "DOCID"], docparid="Sales Order"
    ),
    "readByQuery, every field": read_by_query("CUSTOMER"),
    "readMore": read_more("result-id-1"),
}


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize(
    "authentication", [LOGIN, ENTITY_LOGIN, SESSION], ids=["login", "entity login", "session"]
)
def test_every_function_the_client_builds_passes_the_schema(
    name: str, authentication: Authentication
) -> None:
    assert schema_errors(request_body([FUNCTIONS[name]], authentication)) == []


def test_a_customer_and_its_order_in_one_transaction_pass_the_schema() -> None:
    customer = FUNCTIONS["create CUSTOMER, every field"]
    body = request_body([customer, FUNCTIONS["create_sotransaction, every field"]], transaction=True)

    assert schema_errors(body) == []


def test_revrec_dates_are_year_month_day_as_the_schema_requires() -> None:
    line = fromstring(request_body([FUNCTIONS["create_sotransaction, every field"]])).find(".//sotransitem")
    assert line is not None
    for tag, expected in (("revrecstartdate", ["2027", "01", "04"]), ("revrecenddate", ["2027", "12", "31"])):
        assert [line.findtext(f"{tag}/{part}") for part in ("year", "month", "day")] == expected


# ---------------------------------------------------------------------------- the oracle catches mistakes


def mutated(change: str) -> bytes:
    """The full order request with one mistake of the kind a builder change could make."""
    root = fromstring(request_body([FUNCTIONS["create_sotransaction, every field"]]))
    header = root.find(".//create_sotransaction")
    line = root.find(".//sotransitem")
    assert header is not None
    assert line is not None
    if change == "shuffled header":
        customer_id = header.find("customerid")
        assert customer_id is not None
        header.remove(customer_id)
        header.insert(0, customer_id)
    elif change == "text rev-rec date":
        start = line.find("revrecstartdate")
        assert start is not None
        start.clear()
        start.text = "01/04/2027"
    elif change == "basecurr alone":
        for tag in ("currency", "exchratetype"):
            element = header.find(tag)
            assert element is not None
            header.remove(element)
    elif change == "line element after its place":
        memo = line.find("memo")
        assert memo is not None
        line.remove(memo)
        line.append(memo)
    return tostring(root, encoding="utf-8")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ("shuffled header", "customerid"),
        ("text rev-rec date", "revrecstartdate"),
        ("basecurr alone", "currency"),
        ("line element after its place", "memo"),
    ],
)
def test_the_schema_refuses_the_mistakes_the_gateway_refuses(change: str, named: str) -> None:
    errors = schema_errors(mutated(change))

    assert errors
    assert named in " ".join(error.message for error in errors)


# ---------------------------------------------------------------------------- inputs that cannot be sent


@pytest.mark.parametrize(
    "changes",
    [{"currency": None}, {"currency": None, "base_currency": None}],
    ids=["base currency without currency", "rate type without currency"],
)
def test_a_currency_group_without_currency_is_refused_before_anything_is_built(
    changes: dict[str, object],
) -> None:
    with pytest.raises(ValidationError, match="need currency"):
        order(**changes)
