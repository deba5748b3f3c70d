"""The Intacct sandbox over HTTPS with raw XML: the gateway protocol, our objects, and injected faults."""

from __future__ import annotations

import concurrent.futures
import ssl
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

import httpx
import pytest
from defusedxml.ElementTree import fromstring

from tests.integration.conftest import IntacctSandboxHandle

pytestmark = pytest.mark.integration

ROLLED_BACK_TEXT = "The entire transaction in this operation has been rolled back due to an error."


# ---------------------------------------------------------------------------- helpers


@dataclass
class Reply:
    """A gateway answer: HTTP status and headers, and the parsed XML when there is any."""

    status: int
    content_type: str
    text: str

    @property
    def xml(self) -> Element:
        root: Element = fromstring(self.text.encode())
        return root

    def control_status(self) -> str:
        return self.xml.findtext("control/status", "")

    def auth_status(self) -> str:
        return self.xml.findtext("operation/authentication/status", "")

    def results(self) -> list[Element]:
        return self.xml.findall("operation/result")

    def result(self, index: int = 0) -> Element:
        return self.results()[index]

    def top_errors(self) -> list[dict[str, str]]:
        return errors_of(self.xml)

    def operation_errors(self) -> list[dict[str, str]]:
        operation = self.xml.find("operation")
        assert operation is not None
        return errors_of(operation)


def tls_context(sandbox: IntacctSandboxHandle) -> ssl.SSLContext:
    """Trust the sandbox's CA, and only it."""
    return ssl.create_default_context(cafile=str(sandbox.ca_file))


def errors_of(element: Element) -> list[dict[str, str]]:
    return [
        {name: error.findtext(name, "") for name in ("errorno", "description", "description2", "correction")}
        for error in element.findall("errormessage/error")
    ]


def one(element: Element, path: str) -> Element:
    """The element at `path`, which must exist."""
    found = element.find(path)
    assert found is not None, f"no {path}"
    return found


def fields(record: Element) -> dict[str, str]:
    return {child.tag: child.text or "" for child in record if len(child) == 0}


class Client:
    """Builds raw gateway requests for the sandbox under test."""

    def __init__(self, sandbox: IntacctSandboxHandle) -> None:
        self.sandbox = sandbox
        self.http = httpx.Client(verify=tls_context(sandbox), timeout=10)
        self.session_id: str | None = None

    def login_xml(self, *, password: str | None = None, location: str | None = None) -> str:
        credentials = self.sandbox.credentials
        location_xml = f"<locationid>{location}</locationid>" if location else ""
        return (
            f"<login><userid>{credentials.user_id}</userid><companyid>{credentials.company_id}</companyid>"
            f"<password>{escape(password or credentials.user_password)}</password>{location_xml}</login>"
        )

    def request_xml(
        self,
        functions: str,
        *,
        auth: str | None = None,
        transaction: bool = False,
        uniqueid: str | None = "false",
        sender_password: str | None = None,
        control_id: str = "request-1",
    ) -> str:
        credentials = self.sandbox.credentials
        uniqueid_xml = "" if uniqueid is None else f"<uniqueid>{uniqueid}</uniqueid>"
        return (
            '<?xml version="1.0" encoding="UTF-8"?><request><control>'
            f"<senderid>{credentials.sender_id}</senderid>"
            f"<password>{escape(sender_password or credentials.sender_password)}</password>"
            f"<controlid>{control_id}</controlid>{uniqueid_xml}<dtdversion>3.0</dtdversion>"
            "<includewhitespace>false</includewhitespace></control>"
            f'<operation transaction="{"true" if transaction else "false"}">'
            f"<authentication>{auth or self.login_xml()}</authentication>"
            f"<content>{functions}</content></operation></request>"
        )

    def post_raw(self, body: str | bytes, url: str | None = None) -> Reply:
        response = self.http.post(
            url or self.sandbox.gateway_url, content=body, headers={"content-type": "application/xml"}
        )
        return Reply(response.status_code, response.headers.get("content-type", ""), response.text)

    def post(self, functions: str, *, url: str | None = None, **options: Any) -> Reply:
        return self.post_raw(self.request_xml(functions, **options), url)

    def session(self) -> str:
        """Open an API session (once) and return its id."""
        if self.session_id is None:
            reply = self.post(function("getAPISession", "<getAPISession/>"))
            assert reply.result().findtext("status") == "success", reply.text
            self.session_id = reply.result().findtext("data/api/sessionid", "")
        return self.session_id

    def call(self, functions: str, **options: Any) -> Reply:
        """Send functions with session auth at the session endpoint."""
        auth = f"<sessionid>{self.session()}</sessionid>"
        reply = self.post(functions, url=self.sandbox.session_url, auth=auth, **options)
        assert reply.status == 200, reply.text
        assert reply.auth_status() == "success", reply.text
        return reply


def function(control_id: str, body: str) -> str:
    return f'<function controlid="{control_id}">{body}</function>'


def customer_xml(name: str, *, customer_id: str = "", extra: str = "") -> str:
    id_xml = f"<CUSTOMERID>{customer_id}</CUSTOMERID>" if customer_id else ""
    return (
        f"<CUSTOMER>{id_xml}<NAME>{escape(name)}</NAME>"
        f"<DISPLAYCONTACT><PRINTAS>{escape(name)}</PRINTAS><EMAIL1>ap@example.com</EMAIL1>"
        "<MAILADDRESS><CITY>Boston</CITY><COUNTRY>United States</COUNTRY></MAILADDRESS></DISPLAYCONTACT>"
        f"{extra}</CUSTOMER>"
    )


def create_customer(control_id: str, name: str, *, customer_id: str = "", extra: str = "") -> str:
    return function(
        control_id, f"<create>{customer_xml(name, customer_id=customer_id, extra=extra)}</create>"
    )


def line_xml(item: str = "SUB-PLATFORM", quantity: str = "1", extra: str = "") -> str:
    return f"<sotransitem><itemid>{item}</itemid><quantity>{quantity}</quantity>{extra}</sotransitem>"


def date_xml(tag: str, year: str, month: str, day: str) -> str:
    return f"<{tag}><year>{year}</year><month>{month}</month><day>{day}</day></{tag}>"


def order_xml(
    *,
    customer: str = "C-00001",
    definition: str = "Sales Order",
    date: tuple[str, str, str] = ("2026", "11", "28"),
    terms: str = "<termname>N30</termname>",
    lines: str | None = None,
    before_terms: str = "",
    after_terms: str = "",
) -> str:
    """A create_sotransaction in schema order: `before_terms` holds documentno/referenceno, `after_terms`
    message, externalid, the currency group, customfields and state."""
    return (
        f"<create_sotransaction><transactiontype>{definition}</transactiontype>"
        + date_xml("datecreated", *date)
        + f"<customerid>{customer}</customerid>{before_terms}{terms}{after_terms}"
        + f"<sotransitems>{lines if lines is not None else line_xml()}</sotransitems></create_sotransaction>"
    )


def read_by_query(object_name: str, query: str, *, fields_list: str = "*", extra: str = "") -> str:
    return (
        f"<readByQuery><object>{object_name}</object><fields>{fields_list}</fields>"
        f"<query>{escape(query)}</query>{extra}</readByQuery>"
    )


@pytest.fixture
def client(intacct: IntacctSandboxHandle) -> Client:
    return Client(intacct)


def seed_customers(client: Client, names: list[str]) -> list[str]:
    """Create customers C-00001.. with these names; returns their ids."""
    functions = "".join(create_customer(f"seed-{index}", name) for index, name in enumerate(names))
    reply = client.call(functions)
    assert all(result.findtext("status") == "success" for result in reply.results()), reply.text
    return [result.findtext("data/customer/CUSTOMERID", "") for result in reply.results()]


# ---------------------------------------------------------------------------- sessions and authentication


def test_get_api_session_returns_the_session_endpoint_and_timeout(client: Client) -> None:
    reply = client.post(function("session", "<getAPISession/>"))

    assert reply.status == 200
    assert reply.content_type.startswith("text/xml")
    assert reply.control_status() == "success"
    authentication = reply.xml.find("operation/authentication")
    assert authentication is not None
    assert authentication.findtext("userid") == client.sandbox.credentials.user_id
    assert authentication.findtext("companyid") == client.sandbox.credentials.company_id
    stamp = datetime.fromisoformat(authentication.findtext("sessiontimestamp", ""))
    timeout = datetime.fromisoformat(authentication.findtext("sessiontimeout", ""))
    assert stamp.utcoffset() is not None
    assert (timeout - stamp).total_seconds() == 3600
    api = reply.result().find("data/api")
    assert api is not None
    assert api.findtext("endpoint") == client.sandbox.session_url
    assert api.findtext("sessionid", "").endswith("..")


def test_session_auth_works_at_the_login_url_and_at_the_session_endpoint(client: Client) -> None:
    """The real gateway takes a session id at the URL used to log in, and at the endpoint getAPISession
    returns (normally that same URL); sageintacctsdk relies on the first."""
    auth = f"<sessionid>{client.session()}</sessionid>"
    query = function("items", read_by_query("ITEM", "", fields_list="ITEMID"))

    login_url = client.post(query, auth=auth)
    session_endpoint = client.post(query, auth=auth, url=client.sandbox.session_url)
    unknown_session = client.post(query, auth="<sessionid>no-such-session..</sessionid>")

    for reply in (login_url, session_endpoint):
        assert reply.auth_status() == "success"
        assert reply.result().findtext("status") == "success"
    assert unknown_session.control_status() == "success"
    assert unknown_session.auth_status() == "failure"
    assert unknown_session.results() == []
    assert unknown_session.operation_errors()[0]["errorno"] == "XL03000006"


def test_login_auth_is_accepted_at_the_session_endpoint_too(client: Client) -> None:
    reply = client.post(function("items", read_by_query("ITEM", "")), url=client.sandbox.session_url)

    assert reply.auth_status() == "success"


def test_get_api_session_with_other_functions_fails(client: Client) -> None:
    reply = client.post(
        function("session", "<getAPISession/>")
        + function("items", read_by_query("ITEM", "", fields_list="ITEMID"))
    )

    assert reply.result(0).findtext("status") == "failure"
    assert "only function" in errors_of(reply.result(0))[0]["description2"]
    assert reply.result(0).find("data") is None
    assert reply.result(1).findtext("status") == "success"


def test_entity_session_carries_its_location_onto_order_lines(client: Client) -> None:
    seed_customers(client, ["Acme"])
    reply = client.post(function("session", "<getAPISession/>"), auth=client.login_xml(location="UK"))
    session_id = reply.result().findtext("data/api/sessionid", "")
    assert reply.result().findtext("data/api/locationid") == "UK"

    created = client.post(
        function("order", order_xml()),
        url=client.sandbox.session_url,
        auth=f"<sessionid>{session_id}</sessionid>",
    )

    assert created.xml.findtext("operation/authentication/locationid") == "UK"
    assert created.result().findtext("status") == "success", created.text
    assert client.sandbox.admin.records("SODOCUMENTENTRY")[0]["LOCATIONID"] == "UK"


def test_bad_sender_is_refused_with_http_401_and_no_operation(client: Client) -> None:
    reply = client.post(function("items", read_by_query("ITEM", "")), sender_password="wrong")

    assert reply.status == 401
    assert reply.content_type.startswith("text/xml")
    assert reply.control_status() == "failure"
    assert reply.xml.find("operation") is None
    assert reply.top_errors()[0]["errorno"] == "XMLGW_JPP0002"
    assert "Sign-in information is incorrect" in reply.top_errors()[0]["description"]


@pytest.mark.parametrize("location", [None, "MARS"])
def test_bad_login_is_an_authentication_failure(client: Client, location: str | None) -> None:
    password = "wrong" if location is None else None
    reply = client.post(
        function("items", read_by_query("ITEM", "")),
        auth=client.login_xml(password=password, location=location),
    )

    assert reply.status == 200
    assert reply.control_status() == "success"
    assert reply.auth_status() == "failure"
    assert reply.results() == []
    error = reply.operation_errors()[0]
    assert error["errorno"] == "XL03000006"
    assert error["description2"] == "Sign-in information is incorrect"


def test_expired_session_is_refused_and_each_call_extends_it(client: Client) -> None:
    client.sandbox.admin.configure(session_seconds=1)
    query = function("items", read_by_query("ITEM", "", fields_list="ITEMID"))
    client.session()
    for _ in range(3):  # 1.8 s in all: longer than the lifetime, but each call renews it
        time.sleep(0.6)
        client.call(query)
    time.sleep(1.3)

    reply = client.post(
        query, url=client.sandbox.session_url, auth=f"<sessionid>{client.session()}</sessionid>"
    )

    assert reply.status == 200
    assert reply.control_status() == "success"
    assert reply.auth_status() == "failure"
    assert reply.results() == []
    assert reply.operation_errors() == [
        {
            "errorno": "XL03000006",
            "description": "Sign-in information is incorrect",
            "description2": "The API session is invalid or has expired",
            "correction": "",
        }
    ]


def test_expire_sessions_fault_invalidates_sessions_but_not_logins(client: Client) -> None:
    query = function("items", read_by_query("ITEM", "", fields_list="ITEMID"))
    client.call(query)

    client.sandbox.admin.expire_sessions()

    expired = client.post(
        query, url=client.sandbox.session_url, auth=f"<sessionid>{client.session()}</sessionid>"
    )
    assert expired.auth_status() == "failure"
    assert expired.operation_errors()[0]["errorno"] == "XL03000006"
    assert client.post(query).auth_status() == "success"


# ---------------------------------------------------------------------------- envelope errors


@pytest.mark.parametrize("missing", ["senderid", "password", "controlid"])
def test_missing_required_control_element_is_a_control_failure(client: Client, missing: str) -> None:
    body = client.request_xml(function("items", read_by_query("ITEM", "")))
    start, end = body.index(f"<{missing}>"), body.index(f"</{missing}>") + len(missing) + 3
    reply = client.post_raw(body[:start] + body[end:])

    assert reply.status == 200
    assert reply.control_status() == "failure"
    assert reply.top_errors()[0]["errorno"] == "XL03000003"
    assert client.sandbox.admin.counts()["functions"] == {}


HOSTILE_BODIES = {
    "tag mismatch": b"<request><control><senderid>x</control></request>",
    "not xml": b"this is not xml",
    "entity expansion": (
        b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b"<request><control><senderid>&lol3;</senderid></control></request>"
    ),
    "external entity": (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b"<request><control><senderid>&xxe;</senderid></control></request>"
    ),
    "doctype": b'<?xml version="1.0"?><!DOCTYPE request SYSTEM "http://127.0.0.1:9/x.dtd"><request/>',
    "wrong root": b"<response><control/></response>",
}


@pytest.mark.parametrize("body", HOSTILE_BODIES.values(), ids=HOSTILE_BODIES.keys())
def test_malformed_or_hostile_xml_is_a_parse_failure_not_a_crash(client: Client, body: bytes) -> None:
    reply = client.post_raw(body)

    assert reply.status == 200
    assert reply.control_status() == "failure"
    error = reply.top_errors()[0]
    assert error["errorno"] == "XL03000003"
    assert "root:" not in reply.text
    assert client.post(function("items", read_by_query("ITEM", ""))).auth_status() == "success"


def test_chunked_request_bodies_are_read(client: Client) -> None:
    body = client.request_xml(function("items", read_by_query("ITEM", "", fields_list="ITEMID"))).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(body), 100):
            yield body[start : start + 100]

    response = client.http.post(client.sandbox.gateway_url, content=chunks())

    assert response.status_code == 200
    assert "SUB-PLATFORM" in response.text


def test_unknown_path_and_wrong_method(client: Client) -> None:
    base = client.sandbox.gateway_url.split("/ia/")[0]

    assert client.http.post(base + "/nowhere", content=b"<request/>").status_code == 404
    assert client.http.get(client.sandbox.gateway_url).status_code == 405


# ---------------------------------------------------------------------------- CUSTOMER


def test_customer_create_auto_numbers_or_keeps_the_given_id(client: Client) -> None:
    reply = client.call(
        create_customer("one", "Acme Inc", extra="<SALESFORCE_ID>001A</SALESFORCE_ID>")
        + create_customer("two", "Beta LLC", customer_id="SF-001B")
        + create_customer("three", "Gamma")
    )

    created = [fields(one(result, "data/customer")) for result in reply.results()]
    assert [result.findtext("function") for result in reply.results()] == ["create"] * 3
    assert one(reply.result(0), "data").attrib == {"listtype": "objects", "count": "1"}
    assert [row["CUSTOMERID"] for row in created] == ["C-00001", "SF-001B", "C-00002"]
    assert len({row["RECORDNO"] for row in created}) == 3
    stored = client.sandbox.admin.records("CUSTOMER")
    assert stored[0]["SALESFORCE_ID"] == "001A"
    assert stored[0]["STATUS"] == "active"
    assert stored[0]["DISPLAYCONTACT"]["MAILADDRESS"]["CITY"] == "Boston"
    assert stored[0]["DISPLAYCONTACT"]["CONTACTNAME"] == "Acme Inc(CC-00001)"


def test_duplicate_customer_id_fails_with_intacct_errors(client: Client) -> None:
    client.call(create_customer("first", "Acme", customer_id="ACME"))

    reply = client.call(create_customer("second", "Acme again", customer_id="ACME"))

    result = reply.result()
    assert result.findtext("status") == "failure"
    assert one(result, "data").attrib["count"] == "0"
    assert errors_of(result) == [
        {
            "errorno": "BL34000061",
            "description": "",
            "description2": "Another Customer with the given value(s) ACME already exists",
            "correction": "Use a unique value instead.",
        },
        {
            "errorno": "BL01001973",
            "description": "",
            "description2": "Could not create Customer record!",
            "correction": "",
        },
    ]
    assert [row["NAME"] for row in client.sandbox.admin.records("CUSTOMER")] == ["Acme"]


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("<FAVOURITE_COLOUR>red</FAVOURITE_COLOUR>", "FAVOURITE_COLOUR"),
        ("<customerid>x</customerid>", "customerid"),
    ],
)
def test_unknown_customer_field_fails_and_names_the_field(client: Client, extra: str, named: str) -> None:
    reply = client.call(create_customer("c", "Acme", extra=extra))

    result = reply.result()
    assert result.findtext("status") == "failure"
    errors = errors_of(result)
    assert {error["errorno"] for error in errors} == {"BL01001973"}
    assert named in errors[0]["description2"]
    assert client.sandbox.admin.records("CUSTOMER") == []


def test_customer_create_requires_name_and_print_as(client: Client) -> None:
    reply = client.call(
        function(
            "no-name",
            "<create><CUSTOMER><DISPLAYCONTACT><PRINTAS>x</PRINTAS></DISPLAYCONTACT></CUSTOMER></create>",
        )
        + function("no-contact", "<create><CUSTOMER><NAME>Acme</NAME></CUSTOMER></create>")
    )

    assert [result.findtext("status") for result in reply.results()] == ["failure", "failure"]
    assert "NAME" in errors_of(reply.result(0))[0]["description2"]
    assert "PRINTAS" in errors_of(reply.result(1))[0]["description2"]


def test_customer_update_by_customer_id_or_record_number(client: Client) -> None:
    seed_customers(client, ["Acme", "Beta"])
    reply = client.call(
        function(
            "by-id",
            "<update><CUSTOMER><CUSTOMERID>C-00001</CUSTOMERID><NAME>Acme Renamed</NAME>"
            "<DISPLAYCONTACT><PHONE1>555-0100</PHONE1></DISPLAYCONTACT>"
            "<SALESFORCE_ID>001A</SALESFORCE_ID></CUSTOMER></update>",
        )
        + function(
            "by-recordno",
            "<update><CUSTOMER><RECORDNO>2</RECORDNO><STATUS>inactive</STATUS></CUSTOMER></update>",
        )
        + function(
            "missing", "<update><CUSTOMER><CUSTOMERID>NOPE</CUSTOMERID><NAME>x</NAME></CUSTOMER></update>"
        )
    )

    assert [result.findtext("status") for result in reply.results()] == ["success", "success", "failure"]
    assert fields(one(reply.result(0), "data/customer")) == {"RECORDNO": "1", "CUSTOMERID": "C-00001"}
    assert "NOPE" in errors_of(reply.result(2))[0]["description2"]
    acme, beta = client.sandbox.admin.records("CUSTOMER")
    assert acme["NAME"] == "Acme Renamed"
    assert acme["SALESFORCE_ID"] == "001A"
    assert acme["DISPLAYCONTACT"]["PHONE1"] == "555-0100"
    assert acme["DISPLAYCONTACT"]["EMAIL1"] == "ap@example.com"  # untouched fields stay
    assert beta["STATUS"] == "inactive"


def test_custom_fields_are_configurable(client: Client) -> None:
    client.sandbox.admin.configure(custom_fields={"CUSTOMER": ["SF_ACCOUNT_ID"]})

    reply = client.call(
        create_customer("new-field", "Acme", extra="<SF_ACCOUNT_ID>001A</SF_ACCOUNT_ID>")
        + create_customer("old-field", "Beta", extra="<SALESFORCE_ID>001B</SALESFORCE_ID>")
    )

    assert [result.findtext("status") for result in reply.results()] == ["success", "failure"]
    found = client.call(
        function("q", read_by_query("CUSTOMER", "SF_ACCOUNT_ID = '001A'", fields_list="CUSTOMERID"))
    )
    assert found.result().findtext("data/customer/CUSTOMERID") == "C-00001"
    client.sandbox.admin.reset()
    assert client.sandbox.admin.configure()["custom_fields"]["CUSTOMER"] == ["SALESFORCE_ID"]


# ---------------------------------------------------------------------------- reads and queries


def test_read_by_query_returns_lowercase_objects_with_all_fields(client: Client) -> None:
    seed_customers(client, ["Acme", "Beta"])

    reply = client.call(function("q", read_by_query("CUSTOMER", "NAME = 'Beta'")))

    data = reply.result().find("data")
    assert data is not None
    assert data.attrib == {
        "listtype": "customer",
        "count": "1",
        "totalcount": "1",
        "numremaining": "0",
        "resultId": "",
    }
    record = data.find("customer")
    assert record is not None
    assert fields(record)["CUSTOMERID"] == "C-00002"
    assert fields(record)["SALESFORCE_ID"] == ""  # custom fields are listed, empty when unset
    assert record.findtext("DISPLAYCONTACT/EMAIL1") == "ap@example.com"


QUERIES = {
    "NAME = 'Acme'": ["C-00001"],
    "NAME != 'Acme'": ["C-00002", "C-00003", "C-00004"],
    "RECORDNO > 2": ["C-00003", "C-00004"],
    "RECORDNO >= 2 AND RECORDNO < 4": ["C-00002", "C-00003"],
    "RECORDNO <= 1 OR NAME = 'Delta'": ["C-00001", "C-00004"],
    "NAME like 'B%'": ["C-00002"],
    "NAME like '%a%'": ["C-00002", "C-00003", "C-00004"],
    "NAME not like '%a%'": ["C-00001"],
    "CUSTOMERID in ('C-00001', 'C-00003')": ["C-00001", "C-00003"],
    "CUSTOMERID not in ('C-00001', 'C-00003')": ["C-00002", "C-00004"],
    "SALESFORCE_ID IS NULL": ["C-00001", "C-00002", "C-00004"],
    "SALESFORCE_ID IS NOT NULL": ["C-00003"],
    "(NAME = 'Acme' OR NAME = 'Beta') AND RECORDNO > 1": ["C-00002"],
    "NAME = 'Gamma\\'s'": ["C-00003"],
    "DISPLAYCONTACT.EMAIL1 = 'ap@example.com' AND NAME = 'Delta'": ["C-00004"],
    "name = 'acme'": [],
    "": ["C-00001", "C-00002", "C-00003", "C-00004"],
}


@pytest.mark.parametrize(("query", "expected"), QUERIES.items(), ids=QUERIES.keys())
def test_read_by_query_string_subset(client: Client, query: str, expected: list[str]) -> None:
    seed_customers(client, ["Acme", "Beta", "Gamma's", "Delta"])
    client.call(
        function(
            "tag",
            "<update><CUSTOMER><CUSTOMERID>C-00003</CUSTOMERID><SALESFORCE_ID>001G</SALESFORCE_ID></CUSTOMER></update>",
        )
    )

    reply = client.call(function("q", read_by_query("CUSTOMER", query, fields_list="CUSTOMERID,NAME")))

    assert reply.result().findtext("status") == "success", reply.text
    assert [record.findtext("CUSTOMERID") for record in reply.result().findall("data/customer")] == expected


@pytest.mark.parametrize(
    "query",
    [
        "NAME = 'unterminated",
        "NAME == 'x'",
        "NAME = 'x' AND",
        "NAME BETWEEN 1 AND 2",
        "(NAME = 'x'",
        "NOSUCH = 'x'",
    ],
)
def test_read_by_query_rejects_what_it_does_not_understand(client: Client, query: str) -> None:
    reply = client.call(function("q", read_by_query("CUSTOMER", query)))

    result = reply.result()
    assert result.findtext("status") == "failure"
    assert "not understood" in errors_of(result)[0]["description2"]


def test_read_by_query_unknown_object_or_field_fails(client: Client) -> None:
    reply = client.call(
        function("object", read_by_query("WIDGET", ""))
        + function("field", read_by_query("CUSTOMER", "", fields_list="CUSTOMERID,NOPE"))
    )

    assert [result.findtext("status") for result in reply.results()] == ["failure", "failure"]
    assert "WIDGET" in errors_of(reply.result(0))[0]["description2"]
    assert "NOPE" in errors_of(reply.result(1))[0]["errorno"]


def test_read_by_query_pages_with_read_more(client: Client) -> None:
    seed_customers(client, [f"Customer {index}" for index in range(5)])
    first = client.call(
        function("q", read_by_query("CUSTOMER", "", fields_list="CUSTOMERID", extra="<pagesize>2</pagesize>"))
    )
    pages = [one(first.result(), "data")]
    result_id = pages[0].attrib["resultId"]
    for index in range(2):
        more = client.call(
            function(f"more-{index}", f"<readMore><resultId>{result_id}</resultId></readMore>")
        )
        assert more.result().findtext("function") == "readMore"
        pages.append(one(more.result(), "data"))

    assert [page.attrib["numremaining"] for page in pages] == ["3", "1", "0"]
    assert [page.attrib["totalcount"] for page in pages] == ["5"] * 3
    assert pages[1].attrib["resultId"] == result_id
    assert pages[2].attrib["resultId"] == ""
    ids = [record.findtext("CUSTOMERID") for page in pages for record in page.findall("customer")]
    assert ids == [f"C-{number:05d}" for number in range(1, 6)]
    finished = client.call(function("done", f"<readMore><resultId>{result_id}</resultId></readMore>"))
    assert finished.result().findtext("status") == "failure"


def query_xml(object_name: str, select: list[str], filter_xml: str = "", extra: str = "") -> str:
    select_xml = "".join(f"<field>{name}</field>" for name in select)
    filter_part = f"<filter>{filter_xml}</filter>" if filter_xml else ""
    return f"<query><object>{object_name}</object><select>{select_xml}</select>{filter_part}{extra}</query>"


def eq(field: str, value: str, operator: str = "equalto") -> str:
    return f"<{operator}><field>{field}</field><value>{value}</value></{operator}>"


FILTERS = {
    "equalto": (eq("NAME", "Acme"), ["C-00001"]),
    "notequalto": (eq("NAME", "Acme", "notequalto"), ["C-00002", "C-00003"]),
    "greaterthan": (eq("RECORDNO", "1", "greaterthan"), ["C-00002", "C-00003"]),
    "lessthanorequalto": (eq("RECORDNO", "2", "lessthanorequalto"), ["C-00001", "C-00002"]),
    "like": (eq("NAME", "%e%", "like"), ["C-00001", "C-00002"]),
    "in": ("<in><field>NAME</field><value>Acme</value><value>Gamma</value></in>", ["C-00001", "C-00003"]),
    "isnull": ("<isnull><field>SALESFORCE_ID</field></isnull>", ["C-00001", "C-00002"]),
    "isnotnull": ("<isnotnull><field>SALESFORCE_ID</field></isnotnull>", ["C-00003"]),
    "and/or": (
        f"<and><or>{eq('NAME', 'Acme')}{eq('NAME', 'Beta')}</or>{eq('RECORDNO', '1', 'greaterthan')}</and>",
        ["C-00002"],
    ),
    "dotted field": (eq("DISPLAYCONTACT.EMAIL1", "ap@example.com"), ["C-00001", "C-00002", "C-00003"]),
}


@pytest.mark.parametrize(("filter_xml", "expected"), FILTERS.values(), ids=FILTERS.keys())
def test_query_filters(client: Client, filter_xml: str, expected: list[str]) -> None:
    seed_customers(client, ["Acme", "Beta", "Gamma"])
    client.call(
        function(
            "tag",
            "<update><CUSTOMER><CUSTOMERID>C-00003</CUSTOMERID><SALESFORCE_ID>001G</SALESFORCE_ID></CUSTOMER></update>",
        )
    )

    reply = client.call(function("q", query_xml("CUSTOMER", ["CUSTOMERID"], filter_xml)))

    assert reply.result().findtext("status") == "success", reply.text
    assert [record.findtext("CUSTOMERID") for record in reply.result().findall("data/CUSTOMER")] == expected


def test_query_orders_pages_and_counts(client: Client) -> None:
    seed_customers(client, ["Acme", "Beta", "Gamma", "Delta", "Epsilon"])
    order = "<orderby><order><field>NAME</field><descending/></order></orderby>"

    reply = client.call(
        function(
            "q",
            query_xml(
                "CUSTOMER", ["NAME", "CUSTOMERID"], extra=f"{order}<pagesize>2</pagesize><offset>1</offset>"
            ),
        )
    )

    data = reply.result().find("data")
    assert data is not None
    assert data.attrib == {
        "listtype": "CUSTOMER",
        "totalcount": "5",
        "offset": "1",
        "count": "2",
        "numremaining": "2",
    }
    assert [fields(record) for record in data.findall("CUSTOMER")] == [
        {"NAME": "Epsilon", "CUSTOMERID": "C-00005"},
        {"NAME": "Delta", "CUSTOMERID": "C-00004"},
    ]


def test_query_case_insensitive_option_and_required_select(client: Client) -> None:
    seed_customers(client, ["Acme"])
    options = "<options><caseinsensitive>true</caseinsensitive></options>"

    reply = client.call(
        function("ci", query_xml("CUSTOMER", ["CUSTOMERID"], eq("NAME", "ACME"), extra=options))
        + function("cs", query_xml("CUSTOMER", ["CUSTOMERID"], eq("NAME", "ACME")))
    )
    no_select = client.post(function("no-select", "<query><object>CUSTOMER</object></query>"))
    bad_operator = client.post(
        function("bad-op", query_xml("CUSTOMER", ["CUSTOMERID"], eq("NAME", "x", "resembles")))
    )

    assert reply.result(0).findtext("data/CUSTOMER/CUSTOMERID") == "C-00001"
    assert one(reply.result(1), "data").attrib["count"] == "0"
    for refused, named in ((no_select, "select"), (bad_operator, "resembles")):
        assert refused.control_status() == "failure"
        assert named in refused.top_errors()[0]["description2"]


def test_read_and_read_by_name(client: Client) -> None:
    seed_customers(client, ["Acme", "Beta"])

    reply = client.call(
        function(
            "read", "<read><object>CUSTOMER</object><keys>2,99</keys><fields>CUSTOMERID,NAME</fields></read>"
        )
        + function(
            "by-name",
            "<readByName><object>CUSTOMER</object><keys>C-00001</keys><fields>*</fields></readByName>",
        )
        + function(
            "item",
            "<readByName><object>ITEM</object><keys>SVC-ONBOARD,OLD-LEGACY</keys><fields>*</fields></readByName>",
        )
    )

    read_data = reply.result(0).find("data")
    assert read_data is not None
    assert read_data.attrib == {"listtype": "CUSTOMER", "count": "1"}
    assert [fields(record) for record in read_data.findall("CUSTOMER")] == [
        {"CUSTOMERID": "C-00002", "NAME": "Beta"}
    ]
    assert reply.result(1).findtext("data/CUSTOMER/NAME") == "Acme"
    items = [fields(record) for record in reply.result(2).findall("data/ITEM")]
    assert [(item["ITEMID"], item["STATUS"]) for item in items] == [
        ("SVC-ONBOARD", "active"),
        ("OLD-LEGACY", "inactive"),
    ]


def test_item_catalogue_is_seeded(client: Client) -> None:
    reply = client.call(
        function("q", read_by_query("ITEM", "STATUS = 'active'", fields_list="ITEMID,NAME,BASEPRICE,UOM"))
        + function("inactive", query_xml("ITEM", ["ITEMID"], eq("STATUS", "inactive")))
    )

    items = {record.findtext("ITEMID"): fields(record) for record in reply.result(0).findall("data/item")}
    assert set(items) == {"SUB-PLATFORM", "SVC-ONBOARD", "SVC-TRAINING", "SUP-PREMIUM", "HW-GATEWAY"}
    assert items["SUB-PLATFORM"]["NAME"] == "Platform subscription (annual)"
    assert items["HW-GATEWAY"]["BASEPRICE"] == "499"
    assert {item["UOM"] for item in items.values()} == {"Each"}
    assert reply.result(1).findtext("data/ITEM/ITEMID") == "OLD-LEGACY"


def test_lookup_lists_fields_and_marks_custom_ones(client: Client) -> None:
    reply = client.call(function("lookup", "<lookup><object>CUSTOMER</object></lookup>"))

    described = {
        node.findtext("ID"): (node.findtext("ISCUSTOM"), node.findtext("READONLY"))
        for node in reply.result().findall("data/Type/Fields/Field")
    }
    assert one(reply.result(), "data/Type").get("Name") == "CUSTOMER"
    assert described["SALESFORCE_ID"] == ("true", "false")
    assert described["CUSTOMERID"] == ("false", "false")
    assert described["RECORDNO"] == ("false", "true")


def test_read_only_fields_of_the_real_objects_are_known_and_derived_where_the_sandbox_can(
    client: Client,
) -> None:
    """The fields sageintacctsdk's default select lists name (apis/constants.py) can be queried."""
    seed_customers(client, ["Acme Holdings"])
    child = client.post(
        create_customer("child", "Acme Tools", extra="<PARENTID>C-00001</PARENTID>"),
        auth=client.login_xml(location="UK"),
    )
    assert child.result().findtext("status") == "success", child.text
    written = client.call(
        function("ro", f"<create>{customer_xml('Beta', extra='<PARENTKEY>1</PARENTKEY>')}</create>")
    )
    customers = ["ENTITY", "PARENTKEY", "PARENTID", "PARENTNAME", "CUSTREPNAME", "GLGRPKEY"]

    reply = client.call(
        function("c", query_xml("CUSTOMER", ["CUSTOMERID", *customers], eq("RECORDNO", "0", "greaterthan")))
        + function("i", query_xml("ITEM", ["ITEMID", "MRR"], eq("ITEMID", "SUB-PLATFORM")))
        + function("l", query_xml("LOCATION", ["LOCATIONID", "PARENTID"], eq("LOCATIONID", "UK")))
        + function(
            "d",
            query_xml(
                "DEPARTMENT",
                ["DEPARTMENTID", "PARENTKEY", "PARENTID", "SUPERVISORNAME", "CUSTTITLE"],
                eq("DEPARTMENTID", "SALES"),
            ),
        )
    )

    assert [fields(record) for record in reply.result(0).findall("data/CUSTOMER")] == [
        dict(zip(["CUSTOMERID", *customers], ["C-00001", "", "", "", "", "", ""], strict=True)),
        dict(
            zip(
                ["CUSTOMERID", *customers],
                ["C-00002", "UK", "1", "C-00001", "Acme Holdings", "", ""],
                strict=True,
            )
        ),
    ]
    assert fields(one(reply.result(1), "data/ITEM")) == {"ITEMID": "SUB-PLATFORM", "MRR": "false"}
    assert fields(one(reply.result(2), "data/LOCATION")) == {"LOCATIONID": "UK", "PARENTID": ""}
    assert fields(one(reply.result(3), "data/DEPARTMENT")) == {
        "DEPARTMENTID": "SALES",
        "PARENTKEY": "",
        "PARENTID": "",
        "SUPERVISORNAME": "",
        "CUSTTITLE": "",
    }
    # Read-only: a create that sets one is refused and names it.
    assert written.result().findtext("status") == "failure"
    assert "PARENTKEY" in errors_of(written.result())[0]["description2"]


def test_each_operation_authenticates_on_its_own(client: Client) -> None:
    credentials = client.sandbox.credentials
    query = function("items", read_by_query("ITEM", "", fields_list="ITEMID"))
    good = client.request_xml(query)
    operation = good[good.index("<operation") : good.index("</operation>") + len("</operation>")]
    bad = operation.replace(f"<password>{credentials.user_password}</password>", "<password>nope</password>")
    body = good.replace(operation, bad + operation)

    reply = client.post_raw(body)

    operations = reply.xml.findall("operation")
    assert [node.findtext("authentication/status") for node in operations] == ["failure", "success"]
    assert operations[0].find("result") is None
    assert operations[1].findtext("result/status") == "success"


# ---------------------------------------------------------------------------- sales orders


def test_create_sotransaction_numbers_per_definition_and_stores_header_and_lines(client: Client) -> None:
    seed_customers(client, ["Acme"])
    lines = (
        line_xml(
            "SUB-PLATFORM",
            "2",
            "<unit>Each</unit><discountpercent>10</discountpercent><price>12000</price>"
            "<locationid>US</locationid><departmentid>SALES</departmentid><memo>Year 1</memo>"
            + date_xml("revrecstartdate", "2026", "12", "01")
            + date_xml("revrecenddate", "2027", "11", "30"),
        )
        + line_xml("SVC-TRAINING", "1", "<price>0</price><memo>Free add-on</memo>")
        + line_xml("HW-GATEWAY", "3")
    )
    after_terms = (
        "<message>Thanks</message><externalid>006OPP-EXT</externalid>"
        "<basecurr>USD</basecurr><currency>EUR</currency><exchratetype/>"
        "<customfields><customfield><customfieldname>SALESFORCE_OPPORTUNITY_ID</customfieldname>"
        "<customfieldvalue>006OPP</customfieldvalue></customfield></customfields><state>Draft</state>"
    )

    reply = client.call(
        function(
            "so-1",
            order_xml(lines=lines, before_terms="<referenceno>006OPP</referenceno>", after_terms=after_terms),
        )
        + function("so-2", order_xml())
        + function(
            "inv-1", order_xml(definition="Sales Invoice", terms="<termname>Due on receipt</termname>")
        )
        + function("sq-1", order_xml(definition="Sales Quote"))
    )

    assert [result.findtext("key") for result in reply.results()] == [
        "Sales Order-SO0001",
        "Sales Order-SO0002",
        "Sales Invoice-INV0001",
        "Sales Quote-SQ0001",
    ]
    header = (
        client.call(
            function(
                "h",
                read_by_query("SODOCUMENT", "PONUMBER = '006OPP'", extra="<docparid>Sales Order</docparid>"),
            )
        )
        .result()
        .find("data/sodocument")
    )
    assert header is not None
    assert {
        name: fields(header)[name]
        for name in (
            "DOCID",
            "DOCNO",
            "CUSTVENDID",
            "WHENCREATED",
            "WHENDUE",
            "TERMNAME",
            "STATE",
            "CURRENCY",
            "BASECURR",
            "MESSAGE",
            "EXTERNALID",
            "TOTAL",
            "SALESFORCE_OPPORTUNITY_ID",
        )
    } == {
        "DOCID": "Sales Order-SO0001",
        "DOCNO": "SO0001",
        "CUSTVENDID": "C-00001",
        "WHENCREATED": "11/28/2026",
        "WHENDUE": "12/28/2026",
        "TERMNAME": "N30",
        "STATE": "Draft",
        "CURRENCY": "EUR",
        "BASECURR": "USD",
        "MESSAGE": "Thanks",
        "EXTERNALID": "006OPP-EXT",
        "TOTAL": "23097.00",
        "SALESFORCE_OPPORTUNITY_ID": "006OPP",
    }
    entries = (
        client.call(
            function(
                "lines",
                query_xml(
                    "SODOCUMENTENTRY",
                    [
                        "LINE_NO",
                        "ITEMID",
                        "QUANTITY",
                        "UNIT",
                        "PRICE",
                        "DISCOUNT",
                        "TOTAL",
                        "MEMO",
                        "LOCATIONID",
                        "DEPARTMENTID",
                        "REVRECSTARTDATE",
                        "REVRECENDDATE",
                    ],
                    eq("DOCHDRID", "Sales Order-SO0001"),
                    "<orderby><order><field>LINE_NO</field><ascending/></order></orderby>",
                ),
            )
        )
        .result()
        .findall("data/SODOCUMENTENTRY")
    )
    assert [fields(entry) for entry in entries] == [
        {
            "LINE_NO": "0",
            "ITEMID": "SUB-PLATFORM",
            "QUANTITY": "2",
            "UNIT": "Each",
            "PRICE": "12000",
            "DISCOUNT": "10",
            "TOTAL": "21600.00",
            "MEMO": "Year 1",
            "LOCATIONID": "US",
            "DEPARTMENTID": "SALES",
            "REVRECSTARTDATE": "12/01/2026",
            "REVRECENDDATE": "11/30/2027",
        },
        {
            "LINE_NO": "1",
            "ITEMID": "SVC-TRAINING",
            "QUANTITY": "1",
            "UNIT": "Each",
            "PRICE": "0",
            "DISCOUNT": "0",
            "TOTAL": "0.00",
            "MEMO": "Free add-on",
            "LOCATIONID": "",
            "DEPARTMENTID": "",
            "REVRECSTARTDATE": "",
            "REVRECENDDATE": "",
        },
        {
            "LINE_NO": "2",
            "ITEMID": "HW-GATEWAY",
            "QUANTITY": "3",
            "UNIT": "Each",
            "PRICE": "499",
            "DISCOUNT": "0",
            "TOTAL": "1497.00",
            "MEMO": "",
            "LOCATIONID": "",
            "DEPARTMENTID": "",
            "REVRECSTARTDATE": "",
            "REVRECENDDATE": "",
        },
    ]
    by_docparid = client.call(
        function(
            "inv",
            read_by_query("SODOCUMENT", "", fields_list="DOCID", extra="<docparid>Sales Invoice</docparid>"),
        )
    )
    assert [r.findtext("DOCID") for r in by_docparid.result().findall("data/sodocument")] == [
        "Sales Invoice-INV0001"
    ]
    state = client.sandbox.admin.records("SODOCUMENT")
    assert [(row["DOCID"], row["STATE"]) for row in state][1:] == [
        ("Sales Order-SO0002", "Pending"),
        ("Sales Invoice-INV0001", "Pending"),
        ("Sales Quote-SQ0001", "Pending"),
    ]


def test_read_of_a_sales_order_includes_its_lines(client: Client) -> None:
    seed_customers(client, ["Acme"])
    client.call(function("so", order_xml(lines=line_xml("SUB-PLATFORM") + line_xml("SVC-ONBOARD"))))

    reply = client.call(
        function("read", "<read><object>SODOCUMENT</object><keys>1</keys><fields>*</fields></read>")
        + function(
            "by-name",
            "<readByName><object>SODOCUMENT</object><keys>Sales Order-SO0001</keys>"
            "<fields>DOCID,TOTAL</fields></readByName>",
        )
    )

    lines = reply.result(0).findall("data/SODOCUMENT/SODOCUMENTENTRIES/sodocumententry")
    assert [line.findtext("ITEMID") for line in lines] == ["SUB-PLATFORM", "SVC-ONBOARD"]
    assert fields(one(reply.result(1), "data/SODOCUMENT")) == {
        "DOCID": "Sales Order-SO0001",
        "TOTAL": "14500.00",
    }


def test_create_sotransaction_with_due_date_and_own_document_number(client: Client) -> None:
    seed_customers(client, ["Acme"])
    due = "<datedue><year>2027</year><month>01</month><day>15</day></datedue>"
    order = order_xml(terms=due, before_terms="<documentno>SO-MANUAL-7</documentno>")

    first = client.call(function("so", order))
    second = client.call(function("so-again", order))

    assert first.result().findtext("key") == "Sales Order-SO-MANUAL-7"
    assert second.result().findtext("status") == "failure"
    (header,) = client.sandbox.admin.records("SODOCUMENT")
    assert (header["DOCNO"], header["WHENDUE"], header["TERMNAME"]) == ("SO-MANUAL-7", "01/15/2027", "")


INVALID_ORDERS = {
    "unknown customer": (order_xml(customer="C-99999"), "C-99999"),
    "unknown item": (order_xml(lines=line_xml("NO-SUCH-ITEM")), "Invalid Item NO-SUCH-ITEM"),
    "inactive item": (order_xml(lines=line_xml("OLD-LEGACY")), "Invalid Item OLD-LEGACY"),
    "bad definition": (order_xml(definition="Sales Rumour"), "Invalid transaction definition"),
    "bad date": (order_xml(date=("2026", "02", "30")), "datecreated"),
    "unknown term": (order_xml(terms="<termname>N45</termname>"), "N45"),
    "no terms or due date": (order_xml(terms=""), "termname or datedue"),
    "unknown currency": (order_xml(after_terms="<currency>JPY</currency><exchratetype/>"), "JPY"),
    "unknown location": (order_xml(lines=line_xml(extra="<locationid>MARS</locationid>")), "MARS"),
    "unknown department": (order_xml(lines=line_xml(extra="<departmentid>LEGAL</departmentid>")), "LEGAL"),
    "bad quantity": (order_xml(lines=line_xml(quantity="lots")), "quantity"),
    "bad revrec date": (
        order_xml(lines=line_xml(extra=date_xml("revrecstartdate", "2026", "02", "30"))),
        "revrecstartdate on line 1",
    ),
    "unknown custom field": (
        order_xml(
            after_terms="<customfields><customfield><customfieldname>NOPE</customfieldname>"
            "<customfieldvalue>x</customfieldvalue></customfield></customfields>"
        ),
        "NOPE",
    ),
}


@pytest.mark.parametrize(("order", "message"), INVALID_ORDERS.values(), ids=INVALID_ORDERS.keys())
def test_create_sotransaction_validates_and_stores_nothing_on_failure(
    client: Client, order: str, message: str
) -> None:
    seed_customers(client, ["Acme"])

    reply = client.call(function("so", order))

    result = reply.result()
    assert result.findtext("status") == "failure"
    assert result.find("key") is None
    errors = errors_of(result)
    assert errors[0]["errorno"] == "BL01001973"
    assert message in errors[0]["description2"]
    assert errors[-1]["description2"] == "Could not create Document record!"
    assert client.sandbox.admin.records("SODOCUMENT") == []
    assert client.sandbox.admin.records("SODOCUMENTENTRY") == []


SCHEMA_VIOLATIONS = {
    "shuffled header": (
        "<create_sotransaction><transactiontype>Sales Order</transactiontype><customerid>C-00001</customerid>"
        + date_xml("datecreated", "2026", "11", "28")
        + "<termname>N30</termname><sotransitems>"
        + line_xml()
        + "</sotransitems></create_sotransaction>",
        "Element 'customerid': This element is not expected. Expected is ( datecreated ).",
    ),
    "text rev-rec date": (
        order_xml(lines=line_xml(extra="<revrecstartdate>01/04/2027</revrecstartdate>")),
        "Element 'revrecstartdate': Character content other than whitespace is not allowed",
    ),
    "basecurr alone": (
        order_xml(after_terms="<basecurr>USD</basecurr>"),
        "Element 'sotransitems': This element is not expected. Expected is ( currency ).",
    ),
    "no lines": (order_xml(lines=""), "Element 'sotransitems': Missing child element(s)."),
    "line elements out of order": (
        order_xml(lines=line_xml(extra="<memo>Year 1</memo><price>10</price>")),
        "Element 'price': This element is not expected.",
    ),
}


@pytest.mark.parametrize(("order", "message"), SCHEMA_VIOLATIONS.values(), ids=SCHEMA_VIOLATIONS.keys())
def test_a_request_that_breaks_the_schema_is_refused_whole_and_nothing_is_written(
    client: Client, order: str, message: str
) -> None:
    """As at the gateway: the request is validated before anything runs, so the valid customer create
    in front of the bad order is not applied either."""
    reply = client.post(create_customer("customer", "Acme") + function("order", order))

    assert reply.control_status() == "failure"
    assert reply.results() == []
    [error] = reply.top_errors()
    assert error["errorno"] == "XL03000003"
    assert error["description2"].startswith("XML Parse schema error: Error 1: ")
    assert message in error["description2"]
    assert client.sandbox.admin.records("CUSTOMER") == []
    assert client.sandbox.admin.records("SODOCUMENT") == []


# ---------------------------------------------------------------------------- transactions and uniqueid


def test_transaction_rolls_back_everything_on_failure(client: Client) -> None:
    functions = (
        create_customer("cust", "Acme", customer_id="ACME")
        + function("bad-order", order_xml(customer="ACME", lines=line_xml("NO-SUCH-ITEM")))
        + function("later", read_by_query("ITEM", "", fields_list="ITEMID"))
    )

    reply = client.call(functions, transaction=True, uniqueid="true")

    statuses = [result.findtext("status") for result in reply.results()]
    assert statuses == ["aborted", "failure", "aborted"]
    assert errors_of(reply.result(0)) == [
        {"errorno": "XL03000009", "description": ROLLED_BACK_TEXT, "description2": "", "correction": ""}
    ]
    failure_errors = errors_of(reply.result(1))
    assert "Invalid Item NO-SUCH-ITEM" in failure_errors[0]["description2"]
    assert failure_errors[-1]["errorno"] == "XL03000009"
    assert client.sandbox.admin.records("CUSTOMER") == []

    fixed = functions.replace("NO-SUCH-ITEM", "SUB-PLATFORM")
    retried = client.call(fixed, transaction=True, uniqueid="true")

    assert [result.findtext("status") for result in retried.results()] == ["success"] * 3
    assert retried.result(1).findtext("key") == "Sales Order-SO0001"


def test_without_transaction_other_functions_still_run(client: Client) -> None:
    reply = client.call(
        create_customer("ok", "Acme")
        + function("bad", order_xml(customer="NOPE"))
        + create_customer("ok2", "Beta")
    )

    assert [result.findtext("status") for result in reply.results()] == ["success", "failure", "success"]
    assert len(client.sandbox.admin.records("CUSTOMER")) == 2


@pytest.mark.parametrize("uniqueid", ["true", None])
def test_uniqueid_refuses_a_control_id_that_already_succeeded(client: Client, uniqueid: str | None) -> None:
    create = create_customer("acct-001A-v1", "Acme")

    first = client.call(create, uniqueid=uniqueid)
    again = client.call(create, uniqueid=uniqueid, control_id="request-2")

    assert first.result().findtext("status") == "success"
    result = again.result()
    assert result.findtext("status") == "failure"
    assert again.xml.findtext("control/uniqueid") == (uniqueid or "true")
    errors = errors_of(result)
    assert errors[0]["errorno"] == "BL01001973"
    assert errors[0]["description2"] == (
        "A successful transaction has already been recorded with the control id acct-001A-v1."
    )
    assert len(client.sandbox.admin.records("CUSTOMER")) == 1


REPEATED_CONTROLID_ANSWERS = {
    "already_recorded": {
        "errorno": "BL01001973",
        "description": "",
        "description2": (
            "A successful transaction has already been recorded with the control id acct-001A-v1."
        ),
        "correction": "Use a new control id for a new transaction.",
    },
    "other_wording": {
        "errorno": "XL03000012",
        "description": "Duplicate request",
        "description2": "Control ID acct-001A-v1 belongs to a function that was executed before.",
        "correction": "Send a new control ID to execute the function again.",
    },
    "generic_failure": {
        "errorno": "BL01001973",
        "description": "",
        "description2": "Unable to complete the request.",
        "correction": "",
    },
}


@pytest.mark.parametrize("answer", REPEATED_CONTROLID_ANSWERS)
def test_the_words_refusing_a_repeated_control_id_are_configurable(client: Client, answer: str) -> None:
    """What Intacct answers to a repeated control id under uniqueid=true is not documented."""
    assert client.sandbox.admin.configure()["duplicate_controlid_answer"] == "already_recorded"  # default
    client.sandbox.admin.configure(duplicate_controlid_answer=answer)
    create = create_customer("acct-001A-v1", "Acme")

    first = client.call(create, uniqueid="true")
    again = client.call(create, uniqueid="true", control_id="request-2")

    assert first.result().findtext("status") == "success"
    assert again.result().findtext("status") == "failure"
    assert errors_of(again.result()) == [REPEATED_CONTROLID_ANSWERS[answer]]
    assert len(client.sandbox.admin.records("CUSTOMER")) == 1
    client.sandbox.admin.reset()
    assert client.sandbox.admin.configure()["duplicate_controlid_answer"] == "already_recorded"


def test_an_unknown_repeated_control_id_answer_is_refused_by_the_admin_api(client: Client) -> None:
    with pytest.raises(httpx.HTTPStatusError) as refused:
        client.sandbox.admin.configure(duplicate_controlid_answer="shrug")
    assert refused.value.response.status_code == 400
    assert "already_recorded, other_wording, generic_failure" in refused.value.response.json()["error"]


def test_uniqueid_false_runs_again_and_failed_functions_may_be_retried(client: Client) -> None:
    create = create_customer("same-id", "Acme")
    client.call(create, uniqueid="false")
    client.call(create, uniqueid="false")
    assert len(client.sandbox.admin.records("CUSTOMER")) == 2

    failing = function("order-1", order_xml(customer="C-00009"))
    assert client.call(failing, uniqueid="true").result().findtext("status") == "failure"
    retried = client.call(failing.replace("C-00009", "C-00001"), uniqueid="true")
    assert retried.result().findtext("key") == "Sales Order-SO0001"


# ---------------------------------------------------------------------------- faults


def test_latency_delays_gateway_requests(client: Client) -> None:
    client.sandbox.admin.set_faults(latency_ms=400)
    query = function("items", read_by_query("ITEM", "", fields_list="ITEMID"))

    started = time.monotonic()
    reply = client.post(query)

    assert time.monotonic() - started >= 0.4
    assert reply.status == 200
    client.sandbox.admin.set_faults(latency_ms=0)
    started = time.monotonic()
    client.post(query)
    assert time.monotonic() - started < 0.4


def test_fail_next_answers_5xx_without_executing(client: Client) -> None:
    state = client.sandbox.admin.set_faults(fail_next={"count": 2, "status": 502})
    assert state["fail_next"] == {"count": 2, "status": 502}
    create = create_customer("c", "Acme")

    replies = [client.post(create) for _ in range(3)]

    assert [reply.status for reply in replies] == [502, 502, 200]
    assert replies[0].content_type.startswith("text/html")
    assert len(client.sandbox.admin.records("CUSTOMER")) == 1
    counts = client.sandbox.admin.counts()
    assert counts["statuses"] == {"502": 2, "200": 1}
    assert counts["functions"] == {"create:CUSTOMER": 1}


def test_fail_next_defaults_to_503(client: Client) -> None:
    client.sandbox.admin.set_faults(fail_next={"count": 1})

    assert client.post(function("i", read_by_query("ITEM", ""))).status == 503


def test_rate_limit_answers_429_gw_0010(client: Client) -> None:
    client.sandbox.admin.set_faults(rate_limit_next=1)
    create = create_customer("c", "Acme")

    limited = client.post(create)
    passed = client.post(create)

    assert limited.status == 429
    assert limited.content_type.startswith("text/xml")
    assert limited.control_status() == "failure"
    assert limited.xml.find("operation") is None
    error = limited.top_errors()[0]
    assert (error["errorno"], error["description"]) == ("GW-0010", "Rate limit exceeded")
    assert error["description2"].startswith("Your API client has hit its assigned rate limit")
    assert passed.status == 200
    assert len(client.sandbox.admin.records("CUSTOMER")) == 1


def test_timeout_after_commit_really_commits(client: Client) -> None:
    seed_customers(client, ["Acme"])
    client.sandbox.admin.set_faults(
        timeout_after_commit_next={"count": 1, "function": "create_sotransaction"}
    )
    order = function("opp-006A-v1", order_xml())
    auth = f"<sessionid>{client.session()}</sessionid>"

    unrelated = client.call(function("items", read_by_query("ITEM", "", fields_list="ITEMID")))
    timed_out = client.post(order, url=client.sandbox.session_url, auth=auth, uniqueid="true")
    resent = client.post(order, url=client.sandbox.session_url, auth=auth, uniqueid="true")

    assert unrelated.status == 200
    assert timed_out.status == 524
    assert timed_out.content_type.startswith("text/html")
    assert [row["DOCID"] for row in client.sandbox.admin.records("SODOCUMENT")] == ["Sales Order-SO0001"]
    assert resent.status == 200
    assert (
        "already been recorded with the control id opp-006A-v1"
        in errors_of(resent.result())[0]["description2"]
    )
    assert len(client.sandbox.admin.records("SODOCUMENT")) == 1


@pytest.mark.parametrize("repeats_apply", [False, True], ids=["repeat-refused", "repeat-applies"])
def test_a_slow_order_commits_after_its_client_gave_up_and_a_repeat_sent_meanwhile_both_ways(
    client: Client, repeats_apply: bool
) -> None:
    """Whether Intacct refuses a repeat of a request that is still running is not documented: both ways."""
    seed_customers(client, ["Acme"])
    client.sandbox.admin.configure(repeats_in_flight_apply=repeats_apply)
    client.sandbox.admin.set_faults(
        slow_next={"count": 1, "function": "create_sotransaction", "delay_ms": 1500}
    )
    order = function("order-006A-0", order_xml())
    auth = f"<sessionid>{client.session()}</sessionid>"
    body = client.request_xml(order, auth=auth, uniqueid="true")
    impatient = httpx.Client(verify=tls_context(client.sandbox), timeout=0.3)

    try:
        started = time.monotonic()
        with pytest.raises(httpx.ReadTimeout):
            impatient.post(
                client.sandbox.session_url, content=body, headers={"content-type": "application/xml"}
            )
        repeat = client.post(order, url=client.sandbox.session_url, auth=auth, uniqueid="true")
        assert time.monotonic() - started < 1.4  # the repeat was not held up by the slow one
        assert repeat.result().findtext("status") == "success"
        time.sleep(1.5)  # the slow one runs now
    finally:
        client.sandbox.admin.configure(repeats_in_flight_apply=False)

    # Refused as already recorded, or (checked when it arrived) applied a second time.
    assert len(client.sandbox.admin.records("SODOCUMENT")) == (2 if repeats_apply else 1)
    assert client.sandbox.admin.set_faults()["slow_next"] == {
        "count": 0,
        "function": "create_sotransaction",
        "delay_ms": 1500,
    }
    again = client.post(order, url=client.sandbox.session_url, auth=auth, uniqueid="true")
    assert "already been recorded" in errors_of(again.result())[0]["description2"]  # not in flight: refused


@pytest.mark.parametrize("remembered", [False, True])
def test_a_refused_functions_control_id_is_reusable_unless_the_sandbox_remembers_failures(
    client: Client, remembered: bool
) -> None:
    """Whether Intacct lets a failed function's control id be used again is not documented: both ways."""
    seed_customers(client, ["Acme"])
    client.sandbox.admin.configure(remember_failed_controlids=remembered)
    try:
        refused = client.call(
            function("order-006B-0", order_xml(customer="NO-SUCH-CUSTOMER")), uniqueid="true"
        )
        corrected = client.call(function("order-006B-0", order_xml()), uniqueid="true")
    finally:
        client.sandbox.admin.configure(remember_failed_controlids=False)

    assert refused.result().findtext("status") == "failure"
    if remembered:
        assert (
            "already been recorded with the control id order-006B-0"
            in errors_of(corrected.result())[0]["description2"]
        )
        assert client.sandbox.admin.records("SODOCUMENT") == []
    else:
        assert corrected.result().findtext("status") == "success"
        assert len(client.sandbox.admin.records("SODOCUMENT")) == 1


def test_timeout_after_commit_matches_generic_function_keys(client: Client) -> None:
    client.sandbox.admin.set_faults(timeout_after_commit_next={"count": 1, "function": "create:CUSTOMER"})

    assert client.post(function("i", read_by_query("ITEM", ""))).status == 200
    assert client.post(create_customer("c", "Acme")).status == 524
    assert len(client.sandbox.admin.records("CUSTOMER")) == 1


def test_drop_connection_commits_then_closes_without_answer(client: Client) -> None:
    client.sandbox.admin.set_faults(drop_connection_next={"count": 1, "function": None})

    with pytest.raises(httpx.RemoteProtocolError):
        client.post(create_customer("c", "Acme"))

    assert len(client.sandbox.admin.records("CUSTOMER")) == 1
    assert client.post(function("i", read_by_query("ITEM", ""))).status == 200


def test_offline_until_switched_back(client: Client) -> None:
    client.sandbox.admin.set_faults(offline=True)
    query = function("i", read_by_query("ITEM", ""))

    replies = [client.post(query), client.post(query)]
    client.sandbox.admin.set_faults(offline=False)
    back = client.post(query)

    for reply in replies:
        assert reply.status == 503
        assert reply.content_type.startswith("text/xml")
        assert reply.top_errors()[0]["errorno"] == "GW-0009"
        assert "Temporarily Off-line" in reply.top_errors()[0]["description"]
    assert back.status == 200


def test_delete_faults_clears_them(client: Client) -> None:
    admin = client.sandbox.admin
    admin.set_faults(offline=True, rate_limit_next=3, latency_ms=5)

    state = admin.clear_faults()

    assert state["offline"] is False
    assert state["rate_limit_next"] == 0
    assert state["latency_ms"] == 0
    assert client.post(function("i", read_by_query("ITEM", ""))).status == 200


@pytest.mark.parametrize(
    "payload",
    [{"fail_next": {"count": 1, "status": 404}}, {"latency_ms": -1}, {"offline": "yes"}, {"explode": True}],
)
def test_admin_rejects_bad_fault_settings(intacct: IntacctSandboxHandle, payload: dict[str, object]) -> None:
    response = httpx.post(intacct.admin_url + "/faults", json=payload, verify=tls_context(intacct))

    assert response.status_code == 400
    assert "error" in response.json()


def test_counts_records_and_reset(client: Client) -> None:
    admin = client.sandbox.admin
    client.session()
    client.call(create_customer("c", "Acme"))
    client.call(function("o", order_xml()) + function("q", read_by_query("SODOCUMENT", "")))
    client.call(function("q2", read_by_query("SODOCUMENT", "")))
    client.post(create_customer("x", "Bad sender"), sender_password="nope")

    counts = admin.counts()

    assert counts == {
        "requests": 5,
        "functions": {
            "getAPISession": 1,
            "create:CUSTOMER": 1,
            "create_sotransaction": 1,
            "readByQuery:SODOCUMENT": 2,
        },
        "statuses": {"200": 4, "401": 1},
    }
    assert [row["ITEMID"] for row in admin.records("item")][:2] == ["SUB-PLATFORM", "SVC-ONBOARD"]
    missing = httpx.get(client.sandbox.admin_url + "/records/WIDGET", verify=tls_context(client.sandbox))
    assert missing.status_code == 404

    admin.set_faults(rate_limit_next=5)
    admin.reset()

    assert admin.counts() == {"requests": 0, "functions": {}, "statuses": {}}
    assert admin.records("CUSTOMER") == []
    assert admin.records("SODOCUMENT") == []
    assert len(admin.records("ITEM")) == 6
    stale = client.post(
        function("i", read_by_query("ITEM", "")),
        url=client.sandbox.session_url,
        auth=f"<sessionid>{client.session()}</sessionid>",
    )
    assert stale.status == 200  # faults are off again
    assert stale.auth_status() == "failure"  # sessions are gone
    again = client.post(create_customer("c", "Acme"), uniqueid="true")
    assert again.result().findtext("status") == "success"  # recorded control ids are gone
    assert again.result().findtext("data/customer/CUSTOMERID") == "C-00001"


def test_concurrent_requests_get_distinct_numbers(client: Client) -> None:
    def create(index: int) -> str:
        local = Client(client.sandbox)
        reply = local.post(create_customer(f"c-{index}-{uuid.uuid4()}", f"Customer {index}"))
        return reply.result().findtext("data/customer/CUSTOMERID", "")

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(create, range(16)))

    assert sorted(ids) == [f"C-{number:05d}" for number in range(1, 17)]
