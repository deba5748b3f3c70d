"""Building requests: element order, authentication, uniqueid, control ids, escaping, refusals."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from xml.etree.ElementTree import Element

import pytest
from defusedxml.ElementTree import fromstring
from pydantic import SecretStr, ValidationError

from sfintacct.intacct import (
    Contact,
    CustomerUpdate,
    IntacctFunction,
    IntacctRequestError,
    MailAddress,
    NewCustomer,
    SalesTransaction,
    SalesTransactionLine,
    all_of,
    create,
    equal_to,
    equals_clause,
    in_list,
    query,
    quote_query_value,
    read_by_query,
    sotransaction_element,
    write_function,
)
from sfintacct.intacct.request import (
    Authentication,
    LoginAuthentication,
    SessionAuthentication,
    build_request,
    request_control_id,
)
from sfintacct.intacct.writers import customer_update_element, new_customer_element

SENDER_PASSWORD = SecretStr("sender-pw-1")
LOGIN = LoginAuthentication(user_id="xml_gateway", company_id="acme-co", password=SecretStr("user-pw-2"))


def build(
    functions: list[IntacctFunction],
    authentication: Authentication = LOGIN,
    unique_id: bool = True,
    transaction: bool = False,
) -> Element:
    body = build_request(
        sender_id="sender",
        sender_password=SENDER_PASSWORD,
        authentication=authentication,
        functions=functions,
        unique_id=unique_id,
        transaction=transaction,
    )
    assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    root: Element = fromstring(body)
    return root


def customer_function(control_id: str = "cust-1", name: str = "Acme") -> IntacctFunction:
    return create([new_customer_element(NewCustomer(name=name))], control_id=control_id)


def test_control_block_has_schema_order_and_fixed_settings() -> None:
    root = build([customer_function()])
    control = root.find("control")
    assert control is not None
    assert [child.tag for child in control] == [
        "senderid",
        "password",
        "controlid",
        "uniqueid",
        "dtdversion",
        "includewhitespace",
        "showadditionalerrorinfo",
    ]
    assert control.findtext("senderid") == "sender"
    assert control.findtext("password") == "sender-pw-1"
    assert control.findtext("uniqueid") == "true"
    assert control.findtext("dtdversion") == "3.0"
    assert control.findtext("includewhitespace") == "false"
    assert control.findtext("showadditionalerrorinfo") == "true"
    assert [child.tag for child in root] == ["control", "operation"]


def test_reads_are_sent_with_uniqueid_false_and_transaction_flag() -> None:
    function = query("ITEM", ["ITEMID"])
    root = build([function], unique_id=False, transaction=True)
    assert root.findtext("control/uniqueid") == "false"
    operation = root.find("operation")
    assert operation is not None
    assert operation.get("transaction") == "true"
    assert [child.tag for child in operation] == ["authentication", "content"]


def test_login_authentication_with_and_without_entity() -> None:
    root = build([customer_function()])
    login = root.find("operation/authentication/login")
    assert login is not None
    assert [child.tag for child in login] == ["userid", "companyid", "password"]
    assert login.findtext("password") == "user-pw-2"

    entity_login = LoginAuthentication(
        user_id="xml_gateway", company_id="acme-co", password=SecretStr("user-pw-2"), location_id="UK"
    )
    root = build([customer_function()], authentication=entity_login)
    login = root.find("operation/authentication/login")
    assert login is not None
    assert [child.tag for child in login] == ["userid", "companyid", "password", "locationid"]
    assert login.findtext("locationid") == "UK"


def test_session_authentication_sends_only_the_session_id() -> None:
    session = SessionAuthentication("sess-abc..")
    root = build([customer_function()], authentication=session)
    authentication = root.find("operation/authentication")
    assert authentication is not None
    assert [child.tag for child in authentication] == ["sessionid"]
    assert authentication.findtext("sessionid") == "sess-abc.."
    assert "sess-abc" not in repr(session)


def test_several_functions_keep_order_and_caller_control_ids() -> None:
    functions = [customer_function("cust-a"), customer_function("cust-b", name="Beta")]
    root = build(functions)
    content = root.find("operation/content")
    assert content is not None
    assert [(f.tag, f.get("controlid")) for f in content] == [("function", "cust-a"), ("function", "cust-b")]
    assert [f[0].tag for f in content] == ["create", "create"]


def test_request_control_id_is_derived_from_function_control_ids() -> None:
    first = build([customer_function("cust-a"), customer_function("cust-b")])
    again = build([customer_function("cust-a"), customer_function("cust-b")])
    other = build([customer_function("cust-a"), customer_function("cust-c")])
    assert first.findtext("control/controlid") == again.findtext("control/controlid")
    assert first.findtext("control/controlid") != other.findtext("control/controlid")
    functions = [customer_function("cust-a")]
    assert request_control_id(functions) == build(functions).findtext("control/controlid")


def test_same_logical_write_builds_byte_identical_requests() -> None:
    def body() -> bytes:
        return build_request(
            sender_id="sender",
            sender_password=SENDER_PASSWORD,
            authentication=LOGIN,
            functions=[customer_function("cust-a")],
            unique_id=True,
        )

    assert body() == body()


def test_reads_get_deterministic_control_ids_from_their_content() -> None:
    first = query("CUSTOMER", ["RECORDNO"], query_filter=equal_to("CUSTOMERID", "C-1"))
    same = query("CUSTOMER", ["RECORDNO"], query_filter=equal_to("CUSTOMERID", "C-1"))
    other = query("CUSTOMER", ["RECORDNO"], query_filter=equal_to("CUSTOMERID", "C-2"))
    assert first.control_id == same.control_id
    assert first.control_id != other.control_id
    assert first.writes is False


def test_values_are_escaped_not_injected() -> None:
    hostile = 'Acme </NAME><STATUS>inactive</STATUS> & "Sons" <x>'
    root = build([customer_function(name=hostile)])
    customer = root.find("operation/content/function/create/CUSTOMER")
    assert customer is not None
    assert customer.findtext("NAME") == hostile
    assert customer.find("STATUS") is None


def test_characters_xml_cannot_carry_are_refused() -> None:
    with pytest.raises(IntacctRequestError, match="NAME"):
        build([customer_function(name="Acme\x00Corp")])


def test_control_id_rules() -> None:
    with pytest.raises(IntacctRequestError):
        customer_function(control_id="x" * 257)
    with pytest.raises(IntacctRequestError):
        customer_function(control_id="")
    with pytest.raises(IntacctRequestError, match="unique"):
        build([customer_function("same"), customer_function("same")])


# ---------------------------------------------------------------------------- CUSTOMER


def test_new_customer_has_display_contact_with_print_as_and_top_level_custom_fields() -> None:
    customer = NewCustomer(
        name="Acme Inc",
        contact=Contact(
            first_name="Ada",
            last_name="Lovelace",
            email1="ada@acme.test",
            phone1="+1 555 0100",
            mail_address=MailAddress(
                address1="1 Main St", city="Springfield", zip="12345", country="United States"
            ),
        ),
        term_name="N30",
        credit_limit=Decimal("25000.50"),
        custom_fields={"SALESFORCE_ID": "001000000000001AAA"},
    )
    element = new_customer_element(customer)
    assert element.tag == "CUSTOMER"
    assert element.find("CUSTOMERID") is None  # auto-numbered
    assert element.findtext("NAME") == "Acme Inc"
    assert element.findtext("DISPLAYCONTACT/PRINTAS") == "Acme Inc"
    assert element.findtext("DISPLAYCONTACT/FIRSTNAME") == "Ada"
    assert element.findtext("DISPLAYCONTACT/EMAIL1") == "ada@acme.test"
    assert element.findtext("DISPLAYCONTACT/MAILADDRESS/CITY") == "Springfield"
    assert element.findtext("CREDITLIMIT") == "25000.50"
    assert element.findtext("SALESFORCE_ID") == "001000000000001AAA"
    assert element.find("DISPLAYCONTACT/SALESFORCE_ID") is None


def test_new_customer_with_given_id_and_explicit_print_as() -> None:
    element = new_customer_element(
        NewCustomer(customer_id="SF-001", name="Acme Inc", contact=Contact(print_as="ACME INCORPORATED"))
    )
    assert element.findtext("CUSTOMERID") == "SF-001"
    assert element.findtext("DISPLAYCONTACT/PRINTAS") == "ACME INCORPORATED"


def test_customer_update_sends_only_what_changes() -> None:
    element = customer_update_element(
        CustomerUpdate(
            customer_id="C-00042", contact=Contact(email1="new@acme.test"), custom_fields={"X": ""}
        )
    )
    assert [child.tag for child in element] == ["CUSTOMERID", "DISPLAYCONTACT", "X"]
    contact = element.find("DISPLAYCONTACT")
    assert contact is not None
    assert [child.tag for child in contact] == ["EMAIL1"]
    assert element.findtext("X") == ""
    with pytest.raises(ValidationError):
        CustomerUpdate(name="No identity")


def test_custom_field_names_must_be_element_names() -> None:
    with pytest.raises(ValidationError):
        NewCustomer(name="Acme", custom_fields={"BAD NAME": "x"})
    with pytest.raises(ValidationError):
        NewCustomer(name="Acme", custom_fields={"<script>": "x"})


# ---------------------------------------------------------------------------- create_sotransaction


def sales_order(**overrides: object) -> SalesTransaction:
    values: dict[str, object] = {
        "date_created": date(2026, 3, 8),
        "customer_id": "C-00042",
        "reference_no": "006AAA",
        "term_name": "N30",
        "external_id": "006AAA",
        "currency": "USD",
        "base_currency": "USD",
        "message": "Thank you",
        "state": "Pending",
        "custom_fields": {"SALESFORCE_OPPORTUNITY_ID": "006AAA"},
        "lines": [
            SalesTransactionLine(
                item_id="SUB-PLATFORM", quantity=Decimal(1), price=Decimal("12000.00"), unit="Each"
            ),
            SalesTransactionLine(
                item_id="SVC-TRAINING",
                quantity=Decimal("2.5"),
                price=Decimal(0),
                discount_percent=Decimal(10),
                memo="Free add-on",
                location_id="US",
                department_id="SERVICES",
                revrec_start_date=date(2026, 4, 1),
                revrec_end_date=date(2027, 3, 31),
            ),
        ],
    }
    values.update(overrides)
    return SalesTransaction.model_validate(values)


def test_sotransaction_header_in_schema_order_with_legacy_date_and_custom_fields() -> None:
    element = sotransaction_element(sales_order())
    assert [child.tag for child in element] == [
        "transactiontype",
        "datecreated",
        "customerid",
        "referenceno",
        "termname",
        "message",
        "externalid",
        "basecurr",
        "currency",
        "exchratetype",
        "customfields",
        "state",
        "sotransitems",
    ]
    assert element.findtext("transactiontype") == "Sales Order"
    assert [element.findtext(f"datecreated/{part}") for part in ("year", "month", "day")] == [
        "2026",
        "03",
        "08",
    ]
    assert element.findtext("customfields/customfield/customfieldname") == "SALESFORCE_OPPORTUNITY_ID"
    assert element.findtext("customfields/customfield/customfieldvalue") == "006AAA"
    assert element.findtext("exchratetype") == ""


def test_sotransaction_lines_in_schema_order_with_decimals_and_zero_price() -> None:
    element = sotransaction_element(sales_order())
    lines = element.findall("sotransitems/sotransitem")
    assert [child.tag for child in lines[1]] == [
        "itemid",
        "quantity",
        "discountpercent",
        "price",
        "locationid",
        "departmentid",
        "memo",
        "revrecstartdate",
        "revrecenddate",
    ]
    assert lines[0].findtext("price") == "12000.00"
    assert lines[1].findtext("price") == "0"
    assert lines[1].findtext("quantity") == "2.5"
    revrec_dates = [
        [lines[1].findtext(f"{tag}/{part}") for part in ("year", "month", "day")]
        for tag in ("revrecstartdate", "revrecenddate")
    ]
    assert revrec_dates == [["2026", "04", "01"], ["2027", "03", "31"]]


def test_sotransaction_with_due_date_instead_of_terms() -> None:
    element = sotransaction_element(sales_order(term_name=None, date_due=date(2026, 4, 7)))
    assert element.find("termname") is None
    assert [element.findtext(f"datedue/{part}") for part in ("year", "month", "day")] == ["2026", "04", "07"]


def test_sotransaction_inputs_are_validated_at_the_edge() -> None:
    with pytest.raises(ValidationError, match="float"):
        SalesTransactionLine(item_id="A", quantity=1.5)
    with pytest.raises(ValidationError, match="float"):
        SalesTransactionLine(item_id="A", quantity=Decimal(1), price=19.99)
    with pytest.raises(ValidationError):
        SalesTransactionLine(item_id="A", quantity=Decimal("NaN"))
    with pytest.raises(ValidationError):
        SalesTransactionLine(item_id="A", quantity=Decimal(1), discount_percent=Decimal(101))
    with pytest.raises(ValidationError, match="exactly one"):
        sales_order(date_due=date(2026, 4, 7))
    with pytest.raises(ValidationError, match="exactly one"):
        sales_order(term_name=None)
    with pytest.raises(ValidationError):
        sales_order(lines=[])
    with pytest.raises(ValidationError, match="revrec_end_date"):
        SalesTransactionLine(
            item_id="A",
            quantity=Decimal(1),
            revrec_start_date=date(2026, 5, 1),
            revrec_end_date=date(2026, 4, 1),
        )
    assert SalesTransactionLine(item_id="A", quantity="3").quantity == Decimal(3)


def test_write_function_is_a_write_with_the_caller_control_id() -> None:
    function = write_function(sotransaction_element(sales_order()), "so-006AAA-v1")
    assert function.writes is True
    assert function.control_id == "so-006AAA-v1"
    assert function.label == "create_sotransaction"


# ---------------------------------------------------------------------------- queries


def test_query_function_with_nested_filter_order_and_docparid() -> None:
    function = query(
        "SODOCUMENT",
        ["RECORDNO", "DOCID"],
        query_filter=all_of(equal_to("PONUMBER", "O'Brien & <Co>"), in_list("STATE", ["Pending", "Draft"])),
        order_by=[("RECORDNO", True)],
        page_size=5000,
        offset=200,
        docparid="Sales Order",
    )
    operation = function.operation
    assert [child.tag for child in operation] == [
        "object",
        "select",
        "filter",
        "orderby",
        "pagesize",
        "offset",
        "docparid",
    ]
    assert operation.findtext("filter/and/equalto/field") == "PONUMBER"
    assert operation.findtext("filter/and/equalto/value") == "O'Brien & <Co>"
    assert [value.text for value in operation.findall("filter/and/in/value")] == ["Pending", "Draft"]
    assert operation.find("orderby/order/descending") is not None
    assert operation.findtext("pagesize") == "2000"  # capped at the gateway's maximum
    assert operation.findtext("offset") == "200"
    assert function.label == "query:SODOCUMENT"


def test_field_and_object_names_are_checked() -> None:
    with pytest.raises(IntacctRequestError):
        equal_to("NAME) OR (1=1", "x")
    with pytest.raises(IntacctRequestError):
        query("CUSTOMER; DROP", ["RECORDNO"])
    with pytest.raises(IntacctRequestError):
        query("CUSTOMER", [])


def test_read_by_query_string_literals_are_escaped() -> None:
    assert quote_query_value("Jane's Deli") == "'Jane\\'s Deli'"
    assert quote_query_value("back\\slash") == "'back\\\\slash'"
    assert equals_clause("NAME", "O'Brien") == "NAME = 'O\\'Brien'"
    function = read_by_query(
        "CUSTOMER", query_text=equals_clause("NAME", "O'Brien"), fields=["RECORDNO", "NAME"]
    )
    assert [child.tag for child in function.operation] == ["object", "fields", "query", "pagesize"]
    assert function.operation.findtext("fields") == "RECORDNO,NAME"
    assert function.operation.findtext("query") == "NAME = 'O\\'Brien'"
