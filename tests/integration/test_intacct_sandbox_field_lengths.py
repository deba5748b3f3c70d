"""The Intacct sandbox over HTTPS: maximum field lengths, and empty elements in a customer update."""

from __future__ import annotations

from xml.etree.ElementTree import Element

import pytest

from tests.integration.conftest import IntacctSandboxHandle
from tests.integration.test_intacct_sandbox import (
    Client,
    create_customer,
    eq,
    fields,
    function,
    order_xml,
    query_xml,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def client(intacct: IntacctSandboxHandle) -> Client:
    return Client(intacct)


def errors(result: Element) -> list[dict[str, str]]:
    return [
        {name: error.findtext(name, "") for name in ("errorno", "description2", "correction")}
        for error in result.findall("errormessage/error")
    ]


def customer_with(contact: str = "", address: str = "", extra: str = "") -> str:
    """A CUSTOMER create with these DISPLAYCONTACT / MAILADDRESS children (schema order is free here)."""
    return create_customer_xml(
        f"<DISPLAYCONTACT><PRINTAS>Acme</PRINTAS>{contact}"
        f"<MAILADDRESS>{address}</MAILADDRESS></DISPLAYCONTACT>{extra}"
    )


def create_customer_xml(inner: str) -> str:
    return function(
        "create",
        f"<create><CUSTOMER><CUSTOMERID>C-1</CUSTOMERID><NAME>Acme</NAME>{inner}</CUSTOMER></create>",
    )


def read_customer(client: Client) -> dict[str, str]:
    select = [
        "DISPLAYCONTACT.PHONE1",
        "DISPLAYCONTACT.FAX",
        "DISPLAYCONTACT.URL1",
        "DISPLAYCONTACT.EMAIL1",
        "DISPLAYCONTACT.MAILADDRESS.ADDRESS1",
        "DISPLAYCONTACT.MAILADDRESS.CITY",
        "COMMENTS",
    ]
    reply = client.call(function("read", query_xml("CUSTOMER", select, eq("CUSTOMERID", "C-1"))))
    [record] = reply.result().findall("data/CUSTOMER")
    return fields(record)


# ---------------------------------------------------------------------------- lengths


@pytest.mark.parametrize(
    ("contact", "address", "extra", "path", "limit"),
    [
        ("<PHONE1>{}</PHONE1>", "", "", "DISPLAYCONTACT.PHONE1", 30),
        ("<FAX>{}</FAX>", "", "", "DISPLAYCONTACT.FAX", 30),
        ("<EMAIL1>{}</EMAIL1>", "", "", "DISPLAYCONTACT.EMAIL1", 200),
        ("", "<CITY>{}</CITY>", "", "DISPLAYCONTACT.MAILADDRESS.CITY", 80),
        ("", "<COUNTRY>{}</COUNTRY>", "", "DISPLAYCONTACT.MAILADDRESS.COUNTRY", 60),
        ("", "", "<COMMENTS>{}</COMMENTS>", "COMMENTS", 200),
    ],
)
def test_a_customer_value_longer_than_its_limit_is_refused_naming_field_and_limit(
    client: Client, contact: str, address: str, extra: str, path: str, limit: int
) -> None:
    too_long = "9" * (limit + 1)
    reply = client.call(
        customer_with(contact.format(too_long), address.format(too_long), extra.format(too_long))
    )

    result = reply.result()
    assert result.findtext("status") == "failure"
    assert errors(result) == [
        {
            "errorno": "BL01001973",
            "description2": f"{path} is too long: {limit + 1} characters, at most {limit} are allowed.",
            "correction": f"Send at most {limit} characters in {path}.",
        },
        {"errorno": "BL01001973", "description2": "Could not create Customer record!", "correction": ""},
    ]
    assert client.sandbox.admin.records("CUSTOMER") == []


def test_values_of_exactly_the_limit_are_accepted(client: Client) -> None:
    reply = client.call(
        customer_with(
            f"<PHONE1>{'1' * 30}</PHONE1><FAX>{'2' * 30}</FAX>",
            f"<ADDRESS1>{'a' * 255}</ADDRESS1><CITY>{'c' * 80}</CITY>",
            f"<COMMENTS>{'x' * 200}</COMMENTS>",
        )
    )

    assert reply.result().findtext("status") == "success", reply.text
    stored = read_customer(client)
    assert (len(stored["DISPLAYCONTACT.PHONE1"]), len(stored["DISPLAYCONTACT.MAILADDRESS.CITY"])) == (30, 80)


def test_an_update_too_long_is_refused_and_changes_nothing(client: Client) -> None:
    client.call(customer_with("<PHONE1>555-0100</PHONE1>"))

    reply = client.call(
        function(
            "update",
            "<update><CUSTOMER><CUSTOMERID>C-1</CUSTOMERID>"
            f"<DISPLAYCONTACT><PHONE1>{'5' * 31}</PHONE1></DISPLAYCONTACT></CUSTOMER></update>",
        )
    )

    result = reply.result()
    assert result.findtext("status") == "failure"
    assert errors(result)[0]["description2"] == (
        "DISPLAYCONTACT.PHONE1 is too long: 31 characters, at most 30 are allowed."
    )
    assert errors(result)[1]["description2"] == "Could not update Customer record!"
    assert read_customer(client)["DISPLAYCONTACT.PHONE1"] == "555-0100"


def test_unconfirmed_lengths_are_enforced_only_when_configured(client: Client) -> None:
    long_company = "<COMPANYNAME>" + "c" * 150 + "</COMPANYNAME>"
    assert client.call(customer_with(long_company)).result().findtext("status") == "success"
    client.sandbox.admin.reset()
    client.session_id = None

    client.sandbox.admin.configure(
        extra_field_lengths={"CUSTOMER.DISPLAYCONTACT.COMPANYNAME": 100, "SODOCUMENT.referenceno": 10}
    )
    refused = client.call(customer_with(long_company)).result()
    assert refused.findtext("status") == "failure"
    assert errors(refused)[0]["description2"] == (
        "DISPLAYCONTACT.COMPANYNAME is too long: 150 characters, at most 100 are allowed."
    )

    assert client.call(create_customer("customer", "Beta")).result().findtext("status") == "success"
    order = order_xml(customer="C-00001", before_terms="<referenceno>OPP-0123456789</referenceno>")
    refused_order = client.call(function("order", order)).result()
    assert refused_order.findtext("status") == "failure"
    assert errors(refused_order)[0]["description2"] == (
        "referenceno is too long: 14 characters, at most 10 are allowed."
    )


# ---------------------------------------------------------------------------- empty elements on update


EMPTYING_UPDATE = function(
    "empty",
    "<update><CUSTOMER><CUSTOMERID>C-1</CUSTOMERID>"
    "<DISPLAYCONTACT><PHONE1></PHONE1><URL1/><MAILADDRESS><ADDRESS1/></MAILADDRESS></DISPLAYCONTACT>"
    "</CUSTOMER></update>",
)


def seed_full_customer(client: Client) -> None:
    reply = client.call(
        customer_with(
            "<PHONE1>555-0100</PHONE1><FAX>555-0199</FAX><EMAIL1>ap@example.com</EMAIL1>"
            "<URL1>https://example.com</URL1>",
            "<ADDRESS1>1 Main St</ADDRESS1><CITY>Boston</CITY>",
        )
    )
    assert reply.result().findtext("status") == "success", reply.text


def test_an_empty_element_clears_the_field_and_a_field_not_sent_keeps_its_value(client: Client) -> None:
    seed_full_customer(client)

    reply = client.call(EMPTYING_UPDATE)

    assert reply.result().findtext("status") == "success", reply.text
    assert read_customer(client) == {
        "DISPLAYCONTACT.PHONE1": "",
        "DISPLAYCONTACT.FAX": "555-0199",
        "DISPLAYCONTACT.URL1": "",
        "DISPLAYCONTACT.EMAIL1": "ap@example.com",
        "DISPLAYCONTACT.MAILADDRESS.ADDRESS1": "",
        "DISPLAYCONTACT.MAILADDRESS.CITY": "Boston",
        "COMMENTS": "",
    }


def test_empty_elements_are_ignored_when_configured_so(client: Client) -> None:
    client.sandbox.admin.configure(empty_element_clears=False)
    seed_full_customer(client)

    reply = client.call(EMPTYING_UPDATE)

    assert reply.result().findtext("status") == "success", reply.text
    stored = read_customer(client)
    assert (
        stored["DISPLAYCONTACT.PHONE1"],
        stored["DISPLAYCONTACT.URL1"],
        stored["DISPLAYCONTACT.MAILADDRESS.ADDRESS1"],
    ) == ("555-0100", "https://example.com", "1 Main St")
