"""The Salesforce sandbox driven over HTTPS by simple-salesforce itself and by raw httpx for error shapes:
OAuth (client credentials, JWT bearer), sobjects CRUD with derived fields and real ids, the SOQL subset
with paging, composite with references and rollback, API limits, faults, and Outbound Messages sent to
small listeners on 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import httpx
import jwt
import pytest
from defusedxml import ElementTree as SafeElementTree
from simple_salesforce import Salesforce, format_soql
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceMalformedRequest,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from sandbox.salesforce.admin_client import SalesforceAdminError
from sandbox.salesforce.ids import case_safe_suffix, to_18
from sandbox.salesforce.oauth import create_jwt_signing_key
from sandbox.salesforce.outbound import OutboundMessageDefinition

if TYPE_CHECKING:
    from tests.integration.salesforce_fixtures import SalesforceSandboxHandle

pytestmark = pytest.mark.integration

SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOBJECT_NS = "urn:sobject.enterprise.soap.sforce.com"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
SALESFORCE_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000$")
ACK = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
    b'<notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack>'
    b"</notificationsResponse></soapenv:Body></soapenv:Envelope>"
)
NACK = ACK.replace(b"<Ack>true</Ack>", b"<Ack>false</Ack>")


# --- shared pieces ----------------------------------------------------------------------------------------


def trust(handle: SalesforceSandboxHandle) -> ssl.SSLContext:
    """An SSL context that trusts the sandbox's CA."""
    return ssl.create_default_context(cafile=str(handle.ca_file))


def client_credentials_token(handle: SalesforceSandboxHandle) -> dict[str, Any]:
    response = httpx.post(
        handle.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": handle.credentials.client_id,
            "client_secret": handle.credentials.client_secret,
        },
        verify=trust(handle),
    )
    assert response.status_code == 200, response.text
    payload: dict[str, Any] = response.json()
    return payload


def connect(handle: SalesforceSandboxHandle, access_token: str | None = None) -> Salesforce:
    """simple-salesforce with direct auth (instance_url + session_id), as after an OAuth flow."""
    token = access_token or client_credentials_token(handle)["access_token"]
    return Salesforce(
        instance_url=handle.instance_url,
        session_id=token,
        session=handle.requests_session(),
        version=handle.api_version,
    )


def raw_client(handle: SalesforceSandboxHandle, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token or client_credentials_token(handle)['access_token']}"}
    return httpx.Client(
        base_url=f"{handle.instance_url}/services/data/v{handle.api_version}",
        headers=headers,
        verify=trust(handle),
    )


def standard_pricebook_id(sf: Salesforce) -> str:
    result = sf.query("SELECT Id FROM Pricebook2 WHERE IsStandard = true")
    return str(result["records"][0]["Id"])


@dataclass
class Order:
    account_id: str
    opportunity_id: str
    product_ids: list[str]
    entry_ids: list[str]
    line_ids: list[str]


def seed_order(sf: Salesforce, *, lines: int = 2, stage: str = "Negotiation/Review") -> Order:
    """An account, products in the standard price book, an opportunity with `lines` line items."""
    account_id = sf.Account.create({"Name": "Acme Corp", "BillingCity": "Lyon", "BillingCountry": "France"})[
        "id"
    ]
    pricebook_id = standard_pricebook_id(sf)
    product_ids, entry_ids = [], []
    for number in range(1, 3):
        product_id = sf.Product2.create(
            {"Name": f"Widget {number}", "ProductCode": f"W-{number}", "IsActive": True}
        )["id"]
        entry = sf.PricebookEntry.create(
            {
                "Pricebook2Id": pricebook_id,
                "Product2Id": product_id,
                "UnitPrice": 100.0 * number,
                "IsActive": True,
            }
        )
        product_ids.append(product_id)
        entry_ids.append(entry["id"])
    opportunity_id = sf.Opportunity.create(
        {"Name": "Big deal", "AccountId": account_id, "StageName": stage, "CloseDate": "2026-12-31"}
    )["id"]
    line_ids = [
        sf.OpportunityLineItem.create(
            {
                "OpportunityId": opportunity_id,
                "PricebookEntryId": entry_ids[index % 2],
                "Quantity": index + 1,
                "UnitPrice": 80.0 + index,
                "Discount": 10.0 * index,
                "SortOrder": lines - index,
            }
        )["id"]
        for index in range(lines)
    ]
    return Order(account_id, opportunity_id, product_ids, entry_ids, line_ids)


def errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    payload = response.json()
    assert isinstance(payload, list), payload
    return payload


# --- Outbound Message listeners ---------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Listener:
    """An HTTP listener on 127.0.0.1; `respond(n)` gives (status, body) for the n-th request (0-based)."""

    respond: Callable[[int], tuple[int, bytes]]
    received: list[Received] = field(default_factory=list)
    condition: threading.Condition = field(default_factory=threading.Condition)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/salesforce/outbound"

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self.condition:
            self.condition.wait_for(lambda: len(self.received) >= count, timeout=timeout)
            return list(self.received)


def start_listener(respond: Callable[[int], tuple[int, bytes]]) -> Listener:
    listener = Listener(respond)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            with listener.condition:
                index = len(listener.received)
                listener.received.append(Received(dict(self.headers.items()), body, time.monotonic()))
                listener.condition.notify_all()
            status, answer = listener.respond(index)
            self.send_response(status)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    listener.server = server
    return listener


@pytest.fixture
def listeners() -> Iterator[Callable[[Callable[[int], tuple[int, bytes]]], Listener]]:
    started: list[Listener] = []

    def make(respond: Callable[[int], tuple[int, bytes]]) -> Listener:
        listener = start_listener(respond)
        started.append(listener)
        return listener

    yield make
    for listener in started:
        assert listener.server is not None
        listener.server.shutdown()
        listener.server.server_close()


def always(status: int, body: bytes) -> Callable[[int], tuple[int, bytes]]:
    return lambda _index: (status, body)


@dataclass
class ParsedNotification:
    notification_id: str
    object_type: str
    fields: dict[str, str]
    nil_fields: list[str]


@dataclass
class ParsedMessage:
    organization_id: str
    action_id: str
    session_id: str | None
    enterprise_url: str
    partner_url: str
    notifications: list[ParsedNotification]


def parse_message(body: bytes) -> ParsedMessage:
    root = SafeElementTree.fromstring(body)
    assert root.tag == f"{{{SOAP_NS}}}Envelope"
    notifications = root.find(f"{{{SOAP_NS}}}Body/{{{OUTBOUND_NS}}}notifications")
    assert notifications is not None

    def text(name: str) -> str:
        element = notifications.find(f"{{{OUTBOUND_NS}}}{name}")
        assert element is not None, name
        return element.text or ""

    session = notifications.find(f"{{{OUTBOUND_NS}}}SessionId")
    assert session is not None
    parsed = []
    for item in notifications.findall(f"{{{OUTBOUND_NS}}}Notification"):
        sobject = item.find(f"{{{OUTBOUND_NS}}}sObject")
        identifier = item.find(f"{{{OUTBOUND_NS}}}Id")
        assert sobject is not None
        assert identifier is not None
        values = {child.tag.removeprefix(f"{{{SOBJECT_NS}}}"): child.text or "" for child in sobject}
        nils = [
            name
            for name, child in zip(values, sobject, strict=True)
            if child.get(f"{{{XSI_NS}}}nil") == "true"
        ]
        parsed.append(
            ParsedNotification(identifier.text or "", sobject.get(f"{{{XSI_NS}}}type") or "", values, nils)
        )
    return ParsedMessage(
        organization_id=text("OrganizationId"),
        action_id=text("ActionId"),
        session_id=None if session.get(f"{{{XSI_NS}}}nil") == "true" else session.text,
        enterprise_url=text("EnterpriseUrl"),
        partner_url=text("PartnerUrl"),
        notifications=parsed,
    )


def closed_won_definition(endpoint_url: str, **options: Any) -> OutboundMessageDefinition:
    return OutboundMessageDefinition(
        name="Opportunity_Closed_Won",
        object_type="Opportunity",
        fields=(
            "Name",
            "StageName",
            "IsWon",
            "AccountId",
            "Amount",
            "CloseDate",
            "Description",
            "LastModifiedDate",
        ),
        endpoint_url=endpoint_url,
        condition="is_won_becomes_true",
        **options,
    )


def account_definition(endpoint_url: str) -> OutboundMessageDefinition:
    return OutboundMessageDefinition(
        name="Account_Changed",
        object_type="Account",
        fields=("Name", "BillingCity", "LastModifiedDate"),
        endpoint_url=endpoint_url,
        condition="created_or_updated",
    )


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


# --- OAuth ------------------------------------------------------------------------------------------


def test_client_credentials_token_has_salesforce_shape(salesforce: SalesforceSandboxHandle) -> None:
    token = client_credentials_token(salesforce)
    credentials = salesforce.credentials

    assert token["access_token"].startswith(credentials.org_id[:15] + "!")
    assert token["instance_url"] == salesforce.instance_url
    assert token["token_type"] == "Bearer"
    assert token["id"].endswith(f"/id/{credentials.org_id}/{credentials.integration_user_id}")
    expected_signature = base64.b64encode(
        hmac.new(
            credentials.client_secret.encode(), (token["id"] + token["issued_at"]).encode(), hashlib.sha256
        ).digest()
    ).decode()
    assert token["signature"] == expected_signature
    assert salesforce.admin.counts()["by_kind"]["token"] == 1


def test_simple_salesforce_client_credentials_login(salesforce: SalesforceSandboxHandle) -> None:
    sf = Salesforce(
        consumer_key=salesforce.credentials.client_id,
        consumer_secret=salesforce.credentials.client_secret,
        domain="sfintacct-sandbox.my",
        session=salesforce.requests_session(),
        version=salesforce.api_version,
    )

    assert sf.sf_instance == salesforce.instance_url.removeprefix("https://")
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0


def test_simple_salesforce_jwt_login_acts_as_the_integration_user(
    salesforce: SalesforceSandboxHandle,
) -> None:
    sf = Salesforce(
        username=salesforce.credentials.username,
        consumer_key=salesforce.credentials.client_id,
        privatekey_file=str(salesforce.jwt_private_key_file),
        session=salesforce.requests_session(),
        version=salesforce.api_version,
    )

    account_id = sf.Account.create({"Name": "Via JWT"})["id"]
    account = sf.Account.get(account_id)
    assert account["LastModifiedById"] == salesforce.credentials.integration_user_id
    assert account["OwnerId"] == salesforce.credentials.integration_user_id


@pytest.mark.parametrize(
    ("form", "status", "error", "description"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client", "invalid client credentials"),
        ({"client_id": "3MVG9unknown"}, 400, "invalid_client_id", "client identifier invalid"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type", "grant type not supported"),
    ],
)
def test_token_errors_have_salesforce_shape(
    salesforce: SalesforceSandboxHandle, form: dict[str, str], status: int, error: str, description: str
) -> None:
    data = {
        "grant_type": "client_credentials",
        "client_id": salesforce.credentials.client_id,
        "client_secret": salesforce.credentials.client_secret,
        **form,
    }
    response = httpx.post(salesforce.token_url, data=data, verify=trust(salesforce))

    assert response.status_code == status
    assert response.json() == {"error": error, "error_description": description}


def jwt_assertion(handle: SalesforceSandboxHandle, key_pem: str | None = None, **claims: Any) -> str:
    payload = {
        "iss": handle.credentials.client_id,
        "sub": handle.credentials.username,
        "aud": "https://login.salesforce.com",
        "exp": int(time.time()) + 180,
        **claims,
    }
    return jwt.encode(payload, key_pem or handle.jwt_private_key_pem, algorithm="RS256")


@pytest.mark.parametrize(
    ("claims", "other_key", "error", "description"),
    [
        ({}, True, "invalid_grant", "invalid assertion"),
        ({"aud": "https://evil.example.com"}, False, "invalid_grant", "audience is invalid"),
        ({"exp": int(time.time()) - 10}, False, "invalid_grant", "expired authorization code"),
        ({"sub": "someone.else@example.com"}, False, "invalid_grant", "user hasn't approved this consumer"),
        ({"iss": "3MVG9another"}, False, "invalid_client_id", "client identifier invalid"),
    ],
)
def test_jwt_bearer_checks_signature_and_claims(
    salesforce: SalesforceSandboxHandle, claims: dict[str, Any], other_key: bool, error: str, description: str
) -> None:
    key = create_jwt_signing_key().private_key_pem if other_key else None
    response = httpx.post(
        salesforce.token_url,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt_assertion(salesforce, key, **claims),
        },
        verify=trust(salesforce),
    )

    assert response.status_code == 400
    assert response.json() == {"error": error, "error_description": description}


def jwt_bearer_token(handle: SalesforceSandboxHandle, audience: str) -> httpx.Response:
    return httpx.post(
        handle.token_url,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt_assertion(handle, aud=audience),
        },
        verify=trust(handle),
    )


def test_jwt_bearer_refuses_any_audience_but_login_test_or_a_site_of_the_org(
    salesforce: SalesforceSandboxHandle,
) -> None:
    # Salesforce takes https://login.salesforce.com, https://test.salesforce.com or an Experience Cloud
    # site URL as `aud`; the host the token is asked from (instance, My Domain) is not an audience.
    refused = [
        salesforce.instance_url,
        "https://acme.my.salesforce.com",
        "https://acme--uat.sandbox.my.salesforce.com",
        "https://acme.my.site.com/partners",  # a site, but not one of this org's
        "http://login.salesforce.com",
    ]
    for audience in refused:
        response = jwt_bearer_token(salesforce, audience)
        assert response.status_code == 400, audience
        assert response.json() == {"error": "invalid_grant", "error_description": "audience is invalid"}

    for audience in ("https://login.salesforce.com", "https://test.salesforce.com"):
        response = jwt_bearer_token(salesforce, audience)
        assert response.status_code == 200, response.text
        assert response.json()["instance_url"] == salesforce.instance_url


def test_jwt_bearer_accepts_the_url_of_a_site_of_the_org(salesforce: SalesforceSandboxHandle) -> None:
    site = "https://acme.my.site.com/partners"
    assert jwt_bearer_token(salesforce, site).status_code == 400

    salesforce.admin.set_config(community_urls=[site])
    accepted = jwt_bearer_token(salesforce, site)
    other_path = jwt_bearer_token(salesforce, "https://acme.my.site.com/customers")
    salesforce.admin.reset()

    assert accepted.status_code == 200, accepted.text
    assert other_path.json() == {"error": "invalid_grant", "error_description": "audience is invalid"}
    assert jwt_bearer_token(salesforce, site).status_code == 400  # a reset forgets the site


def test_simple_salesforce_jwt_login_to_a_sandbox_org(salesforce: SalesforceSandboxHandle) -> None:
    # domain="test": simple-salesforce signs aud https://test.salesforce.com and asks test.salesforce.com.
    sf = Salesforce(
        username=salesforce.credentials.username,
        consumer_key=salesforce.credentials.client_id,
        privatekey=salesforce.jwt_private_key_pem,
        domain="test",
        session=salesforce.requests_session(),
        version=salesforce.api_version,
    )

    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0


def test_simple_salesforce_reports_a_failed_login(salesforce: SalesforceSandboxHandle) -> None:
    with pytest.raises(SalesforceAuthenticationFailed) as failure:
        Salesforce(
            consumer_key=salesforce.credentials.client_id,
            consumer_secret="not-the-secret",
            domain="sfintacct-sandbox.my",
            session=salesforce.requests_session(),
        )

    assert failure.value.code == "invalid_client"


def test_versions_listing_needs_no_token(salesforce: SalesforceSandboxHandle) -> None:
    response = httpx.get(f"{salesforce.instance_url}/services/data", verify=trust(salesforce))

    versions = response.json()
    assert versions[-1] == {
        "label": "Winter '25",
        "url": f"/services/data/v{salesforce.api_version}",
        "version": salesforce.api_version,
    }
    assert {"version": "59.0", "label": "Winter '24", "url": "/services/data/v59.0"} in versions


def test_missing_or_unknown_token_is_invalid_session(salesforce: SalesforceSandboxHandle) -> None:
    with raw_client(salesforce, token="00Dxx!not-a-token") as client:
        response = client.get("/sobjects/Account")
    with httpx.Client(verify=trust(salesforce)) as client:
        anonymous = client.get(f"{salesforce.instance_url}/services/data/v{salesforce.api_version}/limits")

    for answer in (response, anonymous):
        assert answer.status_code == 401
        assert answer.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


def test_expired_tokens_refresh_with_a_login_flow_and_fail_with_direct_auth(
    salesforce: SalesforceSandboxHandle,
) -> None:
    with_login = Salesforce(
        username=salesforce.credentials.username,
        consumer_key=salesforce.credentials.client_id,
        privatekey=salesforce.jwt_private_key_pem,
        session=salesforce.requests_session(),
        version=salesforce.api_version,
    )
    direct = connect(salesforce)
    salesforce.admin.set_faults(expire_tokens=True)

    assert with_login.query("SELECT Id FROM Account")["totalSize"] == 0
    with pytest.raises(SalesforceExpiredSession):
        direct.query("SELECT Id FROM Account")
    assert salesforce.admin.counts()["by_kind"]["token"] == 3  # JWT login, direct token, JWT re-login


# --- ids and CRUD ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("id15", "suffix"),
    [
        ("001A0000006Vm9r", "IAC"),
        ("003A0000005QB3A", "IAW"),
        ("003A0000008qb1s", "IAA"),
        ("006E200000aIb6Z", "IAS"),
    ],
)
def test_case_safe_suffix_of_known_ids(id15: str, suffix: str) -> None:
    assert case_safe_suffix(id15) == suffix
    assert to_18((id15 + suffix).lower()) == id15 + suffix


def test_record_ids_are_real_format_and_urls_accept_15_and_18_characters(
    salesforce: SalesforceSandboxHandle,
) -> None:
    sf = connect(salesforce)
    order = seed_order(sf, lines=1)
    prefixes = {
        order.account_id: "001",
        order.opportunity_id: "006",
        order.product_ids[0]: "01t",
        order.entry_ids[0]: "01u",
        order.line_ids[0]: "00k",
        standard_pricebook_id(sf): "01s",
    }
    for record_id, prefix in prefixes.items():
        assert len(record_id) == 18
        assert record_id.startswith(prefix)
        assert record_id[15:] == case_safe_suffix(record_id[:15])

    assert sf.Account.get(order.account_id[:15])["Id"] == order.account_id
    assert sf.Account.get(order.account_id.lower())["Id"] == order.account_id
    assert salesforce.credentials.org_id.startswith("00D")
    assert salesforce.credentials.integration_user_id.startswith("005")


def test_account_create_read_update_delete(salesforce: SalesforceSandboxHandle) -> None:
    sf = connect(salesforce)

    created = sf.Account.create({"Name": "Globex", "BillingCity": "Springfield"})
    assert created["success"] is True
    assert created["errors"] == []
    account = sf.Account.get(created["id"])
    assert account["attributes"] == {
        "type": "Account",
        "url": f"/services/data/v{salesforce.api_version}/sobjects/Account/{created['id']}",
    }
    assert account["Name"] == "Globex"
    assert account["Intacct_Customer_Id__c"] is None
    assert SALESFORCE_DATETIME.match(account["CreatedDate"])
    assert account["SystemModstamp"] == account["LastModifiedDate"]

    time.sleep(0.005)
    assert (
        sf.Account.update(
            created["id"], {"Intacct_Customer_Id__c": "C-0042", "Intacct_Sync_Status__c": "Synced"}
        )
        == 204
    )
    updated = sf.Account.get(
        created["id"], params={"fields": "Name,Intacct_Customer_Id__c,LastModifiedDate,CreatedDate"}
    )
    assert list(updated) == [
        "attributes",
        "Name",
        "Intacct_Customer_Id__c",
        "LastModifiedDate",
        "CreatedDate",
    ]
    assert updated["Intacct_Customer_Id__c"] == "C-0042"
    assert updated["LastModifiedDate"] > account["LastModifiedDate"]
    assert updated["CreatedDate"] == account["CreatedDate"]

    assert sf.Account.delete(created["id"]) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Account.get(created["id"])
    with raw_client(salesforce) as client:
        response = client.patch(f"/sobjects/Account/{created['id']}", json={"Name": "Back"})
    assert response.status_code == 404
    assert errors_of(response)[0]["errorCode"] == "ENTITY_IS_DELETED"


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "code", "fields"),
    [
        ("POST", "/sobjects/Account/", {"BillingCity": "Paris"}, 400, "REQUIRED_FIELD_MISSING", ["Name"]),
        # No "fields" at all in Salesforce's answer: see test_unknown_field_answer_has_no_fields.
        ("POST", "/sobjects/Account/", {"Name": "A", "Colour__c": "red"}, 400, "INVALID_FIELD", None),
        (
            "POST",
            "/sobjects/Account/",
            {"Name": "A", "Intacct_Sync_Status__c": "Maybe"},
            400,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            ["Intacct_Sync_Status__c"],
        ),
        ("POST", "/sobjects/Account/", {"Name": "A" * 256}, 400, "STRING_TOO_LONG", ["Name"]),
        (
            "POST",
            "/sobjects/Account/",
            {"Name": "A", "Id": "001A0000006Vm9rIAC"},
            400,
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            ["Id"],
        ),
        (
            "POST",
            "/sobjects/Opportunity/",
            {"Name": "O", "StageName": "Prospecting", "CloseDate": "2026-02-30"},
            400,
            "JSON_PARSER_ERROR",
            None,
        ),
        (
            "POST",
            "/sobjects/Opportunity/",
            {
                "Name": "O",
                "StageName": "Prospecting",
                "CloseDate": "2026-02-01",
                "AccountId": "003A0000005QB3AIAW",
            },
            400,
            "MALFORMED_ID",
            ["AccountId"],
        ),
        (
            "POST",
            "/sobjects/Opportunity/",
            {
                "Name": "O",
                "StageName": "Prospecting",
                "CloseDate": "2026-02-01",
                "AccountId": "001A0000006Vm9rIAC",
            },
            400,
            "INVALID_CROSS_REFERENCE_KEY",
            ["AccountId"],
        ),
        (
            "POST",
            "/sobjects/Opportunity/",
            {"Name": "O", "StageName": "Won-ish", "CloseDate": "2026-02-01"},
            400,
            "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
            ["StageName"],
        ),
        (
            "POST",
            "/sobjects/Opportunity/",
            {"Name": "O", "StageName": "Prospecting", "CloseDate": "2026-02-01", "IsWon": True},
            400,
            "INVALID_FIELD_FOR_INSERT_UPDATE",
            ["IsWon"],
        ),
        ("POST", "/sobjects/Account/", [{"Name": "A"}], 400, "JSON_PARSER_ERROR", None),
        ("GET", "/sobjects/Account/001A0000006Vm9rIAC", None, 404, "NOT_FOUND", None),
        ("GET", "/sobjects/Account/003A0000005QB3AIAW", None, 400, "MALFORMED_ID", ["Id"]),
        ("GET", "/sobjects/Account/not-an-id", None, 404, "NOT_FOUND", None),
        ("GET", "/sobjects/Widget__c/001A0000006Vm9rIAC", None, 404, "NOT_FOUND", None),
        ("PUT", "/sobjects/Account/001A0000006Vm9rIAC", {"Name": "A"}, 405, "METHOD_NOT_ALLOWED", None),
    ],
)
def test_record_errors_have_salesforce_shape(
    salesforce: SalesforceSandboxHandle,
    method: str,
    url: str,
    body: Any,
    status: int,
    code: str,
    fields: list[str] | None,
) -> None:
    with raw_client(salesforce) as client:
        response = client.request(method, url, json=body)

    assert response.status_code == status
    errors = errors_of(response)
    assert len(errors) == 1
    assert errors[0]["errorCode"] == code
    assert errors[0]["message"]
    if fields is not None:
        assert errors[0]["fields"] == fields
    assert salesforce.admin.records("Account") == []


def test_unknown_field_answer_has_no_fields(salesforce: SalesforceSandboxHandle) -> None:
    """As recorded from Salesforce (see the sandbox README, "Unknown fields"): message and errorCode only."""
    with raw_client(salesforce) as client:
        response = client.post("/sobjects/Account/", json={"Name": "A", "Colour__c": "red"})

    assert response.status_code == 400
    assert response.json() == [
        {"message": "No such column 'Colour__c' on sobject of type Account", "errorCode": "INVALID_FIELD"}
    ]


def test_update_of_an_unknown_field_changes_nothing(salesforce: SalesforceSandboxHandle) -> None:
    sf = connect(salesforce)
    account_id = sf.Account.create({"Name": "Initech"})["id"]

    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.Account.update(account_id, {"Name": "Initrode", "Unknown__c": 1})

    assert failure.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert sf.Account.get(account_id)["Name"] == "Initech"


def test_custom_validation_rule_blocks_the_save(salesforce: SalesforceSandboxHandle) -> None:
    sf = connect(salesforce)
    order = seed_order(sf, lines=1)
    salesforce.admin.set_validation_rules(
        [
            {
                "object_type": "Opportunity",
                "message": "Order id must be set by finance",
                "error_field": "Intacct_Order_Id__c",
                "when": {"Intacct_Order_Id__c": "SO-BAD"},
            }
        ]
    )

    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.Opportunity.update(order.opportunity_id, {"Intacct_Order_Id__c": "SO-BAD"})
    sf.Opportunity.update(order.opportunity_id, {"Intacct_Order_Id__c": "SO-0001"})

    assert failure.value.content == [
        {
            "message": "Order id must be set by finance",
            "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "fields": ["Intacct_Order_Id__c"],
        }
    ]
    assert sf.Opportunity.get(order.opportunity_id)["Intacct_Order_Id__c"] == "SO-0001"


@pytest.mark.parametrize(
    ("stage", "is_closed", "is_won", "probability", "forecast"),
    [
        ("Prospecting", False, False, 10.0, "Pipeline"),
        ("Needs Analysis", False, False, 20.0, "Pipeline"),
        ("Proposal/Price Quote", False, False, 75.0, "Pipeline"),
        ("Negotiation/Review", False, False, 90.0, "Pipeline"),
        ("Closed Won", True, True, 100.0, "Closed"),
        ("Closed Lost", True, False, 0.0, "Omitted"),
    ],
)
def test_stage_table_derives_closed_won_and_probability(
    salesforce: SalesforceSandboxHandle,
    stage: str,
    is_closed: bool,
    is_won: bool,
    probability: float,
    forecast: str,
) -> None:
    sf = connect(salesforce)
    opportunity_id = sf.Opportunity.create(
        {"Name": "O", "StageName": "Qualification", "CloseDate": "2026-03-01"}
    )["id"]

    sf.Opportunity.update(opportunity_id, {"StageName": stage})

    opportunity = sf.Opportunity.get(opportunity_id)
    assert (opportunity["IsClosed"], opportunity["IsWon"]) == (is_closed, is_won)
    assert opportunity["Probability"] == probability
    assert opportunity["ForecastCategoryName"] == forecast


def test_line_items_derive_prices_and_roll_up_to_the_opportunity(salesforce: SalesforceSandboxHandle) -> None:
    sf = connect(salesforce)
    order = seed_order(sf, lines=3)

    lines = [sf.OpportunityLineItem.get(line_id) for line_id in order.line_ids]
    for index, line in enumerate(lines):
        quantity, unit_price, discount = index + 1, 80.0 + index, 10.0 * index
        assert line["Product2Id"] == order.product_ids[index % 2]
        assert line["ProductCode"] == f"W-{index % 2 + 1}"
        assert line["Name"] == f"Big deal Widget {index % 2 + 1}"
        assert line["ListPrice"] == 100.0 * (index % 2 + 1)
        assert line["Subtotal"] == round(quantity * unit_price, 2)
        assert line["TotalPrice"] == round(quantity * unit_price * (1 - discount / 100), 2)
    opportunity = sf.Opportunity.get(order.opportunity_id)
    assert opportunity["HasOpportunityLineItem"] is True
    assert opportunity["Amount"] == round(sum(line["TotalPrice"] for line in lines), 2)
    assert opportunity["Pricebook2Id"] == standard_pricebook_id(sf)

    sf.OpportunityLineItem.delete(order.line_ids[0])
    sf.OpportunityLineItem.update(order.line_ids[1], {"Quantity": 4})
    remaining = [sf.OpportunityLineItem.get(line_id) for line_id in order.line_ids[1:]]
    assert remaining[0]["TotalPrice"] == round(4 * 81.0 * 0.9, 2)
    assert sf.Opportunity.get(order.opportunity_id)["Amount"] == round(
        sum(line["TotalPrice"] for line in remaining), 2
    )


def test_line_item_total_price_derives_the_unit_price(salesforce: SalesforceSandboxHandle) -> None:
    sf = connect(salesforce)
    order = seed_order(sf, lines=0)

    line_id = sf.OpportunityLineItem.create(
        {
            "OpportunityId": order.opportunity_id,
            "PricebookEntryId": order.entry_ids[0],
            "Quantity": 4,
            "TotalPrice": 300,
        }
    )["id"]

    line = sf.OpportunityLineItem.get(line_id)
    assert (line["UnitPrice"], line["TotalPrice"]) == (75.0, 300.0)


def test_line_item_from_a_product_uses_the_opportunity_price_book(
    salesforce: SalesforceSandboxHandle,
) -> None:
    sf = connect(salesforce)
    order = seed_order(sf, lines=1)

    line_id = sf.OpportunityLineItem.create(
        {
            "OpportunityId": order.opportunity_id,
            "Product2Id": order.product_ids[1],
            "Quantity": 1,
            "UnitPrice": 150,
        }
    )["id"]

    line = sf.OpportunityLineItem.get(line_id)
    assert line["PricebookEntryId"] == order.entry_ids[1]
    assert line["ListPrice"] == 200.0


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"UnitPrice": 10, "TotalPrice": 20}, "FIELD_INTEGRITY_EXCEPTION"),
        ({}, "FIELD_INTEGRITY_EXCEPTION"),
        ({"UnitPrice": 10, "Quantity": 0}, "FIELD_INTEGRITY_EXCEPTION"),
    ],
)
def test_line_item_price_rules(salesforce: SalesforceSandboxHandle, extra: dict[str, Any], code: str) -> None:
    sf = connect(salesforce)
    order = seed_order(sf, lines=0)
    body = {
        "OpportunityId": order.opportunity_id,
        "PricebookEntryId": order.entry_ids[0],
        "Quantity": 1,
        **extra,
    }

    with pytest.raises(SalesforceMalformedRequest) as failure:
        sf.OpportunityLineItem.create(body)

    assert failure.value.content[0]["errorCode"] == code
    assert sf.Opportunity.get(order.opportunity_id)["HasOpportunityLineItem"] is False


def test_price_book_rules(salesforce: SalesforceSandboxHandle) -> None:
    sf = connect(salesforce)
    product_id = sf.Product2.create({"Name": "Gadget", "ProductCode": "G-1"})["id"]
    custom_book = sf.Pricebook2.create({"Name": "Partners", "IsActive": True})["id"]

    with pytest.raises(SalesforceMalformedRequest) as no_standard:
        sf.PricebookEntry.create({"Pricebook2Id": custom_book, "Product2Id": product_id, "UnitPrice": 5})
    sf.PricebookEntry.create(
        {"Pricebook2Id": standard_pricebook_id(sf), "Product2Id": product_id, "UnitPrice": 5}
    )
    entry_id = sf.PricebookEntry.create(
        {"Pricebook2Id": custom_book, "Product2Id": product_id, "UnitPrice": 4}
    )["id"]
    with pytest.raises(SalesforceMalformedRequest) as duplicate:
        sf.PricebookEntry.create({"Pricebook2Id": custom_book, "Product2Id": product_id, "UnitPrice": 3})
    opportunity_id = sf.Opportunity.create(
        {"Name": "O", "StageName": "Prospecting", "CloseDate": "2026-03-01"}
    )["id"]
    with pytest.raises(SalesforceMalformedRequest) as inactive:
        sf.OpportunityLineItem.create(
            {"OpportunityId": opportunity_id, "PricebookEntryId": entry_id, "Quantity": 1, "UnitPrice": 4}
        )

    assert no_standard.value.content[0]["errorCode"] == "STANDARD_PRICE_NOT_DEFINED"
    assert duplicate.value.content[0]["errorCode"] == "DUPLICATE_VALUE"
    assert inactive.value.content[0]["errorCode"] == "FIELD_INTEGRITY_EXCEPTION"
    assert sf.PricebookEntry.get(entry_id)["ProductCode"] == "G-1"


def test_deleting_an_account_deletes_its_opportunities_and_lines(salesforce: SalesforceSandboxHandle) -> None:
    sf = connect(salesforce)
    order = seed_order(sf)

    sf.Account.delete(order.account_id)

    assert sf.query("SELECT Id FROM Opportunity")["totalSize"] == 0
    assert sf.query("SELECT Id FROM OpportunityLineItem")["totalSize"] == 0
    deleted = sf.query_all("SELECT Id, IsDeleted FROM OpportunityLineItem", include_deleted=True)["records"]
    assert {record["Id"] for record in deleted} == set(order.line_ids)
    assert all(record["IsDeleted"] for record in deleted)


# --- SOQL ---------------------------------------------------------------------------------------------

ORDER_QUERY = """
SELECT Id, Name, StageName, IsWon, IsClosed, CloseDate, Amount, Description, Pricebook2Id, LastModifiedDate,
       Account.Id, Account.Name, Account.BillingCity, Account.BillingCountry, Account.Intacct_Customer_Id__c,
       (SELECT Id, Product2Id, Product2.Name, Product2.ProductCode, ProductCode, PricebookEntryId, Quantity,
               UnitPrice, ListPrice, TotalPrice, Discount, ServiceDate, Description, SortOrder
        FROM OpportunityLineItems ORDER BY SortOrder)
FROM Opportunity WHERE Id = {}
"""


def test_one_query_reads_opportunity_account_and_lines(salesforce: SalesforceSandboxHandle) -> None:
    sf = connect(salesforce)
    order = seed_order(sf, lines=3)

    result = sf.query(format_soql(ORDER_QUERY, order.opportunity_id[:15]))

    assert (result["totalSize"], result["done"]) == (1, True)
    assert "nextRecordsUrl" not in result
    record = result["records"][0]
    assert record["attributes"]["type"] == "Opportunity"
    assert record["Account"]["attributes"]["type"] == "Account"
    assert record["Account"]["Name"] == "Acme Corp"
    assert record["Account"]["Intacct_Customer_Id__c"] is None
    lines = record["OpportunityLineItems"]
    assert (lines["totalSize"], lines["done"]) == (3, True)
    assert [line["SortOrder"] for line in lines["records"]] == [1, 2, 3]
    assert [line["Id"] for line in lines["records"]] == list(reversed(order.line_ids))
    assert lines["records"][0]["Product2"] == {
        "attributes": {
            "type": "Product2",
            "url": f"/services/data/v{salesforce.api_version}/sobjects/Product2/{order.product_ids[0]}",
        },
        "Name": "Widget 1",
        "ProductCode": "W-1",
    }
    assert record["Amount"] == round(sum(line["TotalPrice"] for line in lines["records"]), 2)


def test_opportunity_without_lines_or_account_has_null_relationships(
    salesforce: SalesforceSandboxHandle,
) -> None:
    sf = connect(salesforce)
    opportunity_id = sf.Opportunity.create(
        {"Name": "Lonely", "StageName": "Prospecting", "CloseDate": "2026-05-01"}
    )["id"]

    record = sf.query(format_soql(ORDER_QUERY, opportunity_id))["records"][0]

    assert record["Account"] is None
    assert record["OpportunityLineItems"] is None


@pytest.fixture
def opportunities(salesforce: SalesforceSandboxHandle) -> Salesforce:
    """Five opportunities with distinct names, stages, amounts and close dates relative to today."""
    sf = connect(salesforce)
    today = datetime.now(UTC).date()
    account_id = sf.Account.create({"Name": "Umbrella"})["id"]
    rows = [
        ("Alpha", "Prospecting", 100.0, today, account_id, "Web"),
        ("beta", "Closed Won", 250.0, today - timedelta(days=1), account_id, None),
        ("Gamma 100%", "Closed Lost", None, today - timedelta(days=10), None, "Partner"),
        ("Delta", "Closed Won", 900.0, today + timedelta(days=3), account_id, "Web"),
        ("Epsilon_1", "Needs Analysis", 50.0, date(2020, 1, 15), None, None),
    ]
    for name, stage, amount, close_date, account, source in rows:
        sf.Opportunity.create(
            {
                "Name": name,
                "StageName": stage,
                "Amount": amount,
                "CloseDate": close_date.isoformat(),
                "AccountId": account,
                "LeadSource": source,
            }
        )
    return sf


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("Name = 'ALPHA'", {"Alpha"}),
        ("Name != 'Alpha'", {"beta", "Gamma 100%", "Delta", "Epsilon_1"}),
        ("Amount > 100", {"beta", "Delta"}),
        ("Amount >= 100", {"Alpha", "beta", "Delta"}),
        ("Amount < 100", {"Epsilon_1"}),
        ("Amount <= 100.0", {"Alpha", "Epsilon_1"}),
        ("Amount = null", {"Gamma 100%"}),
        ("AccountId != null", {"Alpha", "beta", "Delta"}),
        ("IsWon = true", {"beta", "Delta"}),
        ("IsClosed = false", {"Alpha", "Epsilon_1"}),
        ("StageName IN ('Closed Won', 'Closed Lost')", {"beta", "Gamma 100%", "Delta"}),
        ("StageName NOT IN ('Closed Won', 'Closed Lost')", {"Alpha", "Epsilon_1"}),
        ("Name LIKE 'a%'", {"Alpha"}),
        ("Name LIKE '%a'", {"Alpha", "beta", "Delta"}),
        ("Name LIKE '%\\%'", {"Gamma 100%"}),
        ("Name LIKE 'Epsilon\\_1'", {"Epsilon_1"}),
        ("Name LIKE '_eta'", {"beta"}),
        ("IsWon = true AND Amount > 500", {"Delta"}),
        ("IsWon = true OR Amount < 60", {"beta", "Delta", "Epsilon_1"}),
        ("(IsWon = true OR Amount < 60) AND LeadSource = 'Web'", {"Delta"}),
        ("NOT (IsWon = true OR Amount = null)", {"Alpha", "Epsilon_1"}),
        ("LeadSource != 'Web'", {"beta", "Gamma 100%", "Epsilon_1"}),
        ("Account.Name = 'Umbrella'", {"Alpha", "beta", "Delta"}),
        ("CloseDate = TODAY", {"Alpha"}),
        ("CloseDate = YESTERDAY", {"beta"}),
        ("CloseDate = LAST_N_DAYS:10", {"Alpha", "beta", "Gamma 100%"}),
        ("CloseDate > TODAY", {"Delta"}),
        ("CloseDate < LAST_N_DAYS:30", {"Epsilon_1"}),
        ("CloseDate = NEXT_N_DAYS:5", {"Delta"}),
        ("CloseDate < 2021-01-01", {"Epsilon_1"}),
        ("CloseDate >= 2020-01-15 AND CloseDate <= 2020-01-15", {"Epsilon_1"}),
        ("CreatedDate = TODAY", {"Alpha", "beta", "Gamma 100%", "Delta", "Epsilon_1"}),
        ("CreatedDate < 2000-01-01T00:00:00Z", set()),
        (
            "LastModifiedDate > 2020-01-01T00:00:00.000+02:00",
            {"Alpha", "beta", "Gamma 100%", "Delta", "Epsilon_1"},
        ),
    ],
)
def test_where_clauses(opportunities: Salesforce, where: str, expected: set[str]) -> None:
    result = opportunities.query(f"SELECT Name FROM Opportunity WHERE {where}")

    assert {record["Name"] for record in result["records"]} == expected
    assert result["totalSize"] == len(expected)


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ("ORDER BY Amount", ["Gamma 100%", "Epsilon_1", "Alpha", "beta", "Delta"]),
        ("ORDER BY Amount DESC", ["Delta", "beta", "Alpha", "Epsilon_1", "Gamma 100%"]),
        ("ORDER BY Amount ASC NULLS LAST", ["Epsilon_1", "Alpha", "beta", "Delta", "Gamma 100%"]),
        ("ORDER BY Amount DESC NULLS FIRST LIMIT 2", ["Gamma 100%", "Delta"]),
        ("ORDER BY Name", ["Alpha", "beta", "Delta", "Epsilon_1", "Gamma 100%"]),
        ("ORDER BY IsWon DESC, CloseDate ASC", ["beta", "Delta", "Epsilon_1", "Gamma 100%", "Alpha"]),
        ("ORDER BY Name LIMIT 2 OFFSET 1", ["beta", "Delta"]),
        (
            "ORDER BY Account.Name NULLS LAST, Name DESC",
            ["Delta", "beta", "Alpha", "Gamma 100%", "Epsilon_1"],
        ),
    ],
)
def test_order_by_and_limit(opportunities: Salesforce, order_by: str, expected: list[str]) -> None:
    result = opportunities.query(f"select name from opportunity {order_by}")

    assert [record["Name"] for record in result["records"]] == expected


def test_keywords_and_field_names_are_case_insensitive(opportunities: Salesforce) -> None:
    record = opportunities.query("select ID, name, ACCOUNT.name from OPPORTUNITY where NAME = 'delta'")[
        "records"
    ][0]

    assert list(record) == ["attributes", "Id", "Name", "Account"]
    assert record["Account"]["Name"] == "Umbrella"


def test_query_paging_through_next_records_url(salesforce: SalesforceSandboxHandle) -> None:
    sf = connect(salesforce)
    for number in range(5):
        sf.Account.create({"Name": f"Account {number}"})
    salesforce.admin.set_query_page_size(2)

    first = sf.query("SELECT Name FROM Account ORDER BY Name")
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    everything = sf.query_all("SELECT Name FROM Account ORDER BY Name")

    assert (first["totalSize"], first["done"], len(first["records"])) == (5, False, 2)
    assert re.fullmatch(
        rf"/services/data/v{salesforce.api_version}/query/01g\w{{15}}-2", first["nextRecordsUrl"]
    )
    assert [record["Name"] for record in second["records"]] == ["Account 2", "Account 3"]
    assert [record["Name"] for record in everything["records"]] == [
        f"Account {number}" for number in range(5)
    ]
    assert salesforce.admin.counts()["by_kind"]["query"] == 2 + 3
    with raw_client(salesforce) as client:
        expired = client.get("/query/01gA0000000XXXXXAA-2")
    assert expired.status_code == 400
    assert errors_of(expired)[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


def add_lines(sf: Salesforce, order: Order, count: int, first_sort_order: int) -> list[str]:
    """`count` more lines on the order's opportunity, created 25 per composite call."""
    base = f"/services/data/v{sf.sf_version}/sobjects/OpportunityLineItem"
    line_ids: list[str] = []
    numbers = list(range(first_sort_order, first_sort_order + count))
    for start in range(0, count, 25):
        response = sf.restful(
            "composite",
            method="POST",
            json={
                "allOrNone": True,
                "compositeRequest": [
                    {
                        "method": "POST",
                        "url": base,
                        "referenceId": f"line{number}",
                        "body": {
                            "OpportunityId": order.opportunity_id,
                            "PricebookEntryId": order.entry_ids[0],
                            "Quantity": 1,
                            "UnitPrice": 10.0,
                            "SortOrder": number,
                        },
                    }
                    for number in numbers[start : start + 25]
                ],
            },
        )
        line_ids += [item["body"]["id"] for item in response["compositeResponse"]]
    return line_ids


LINES_QUERY = (
    "SELECT Id, Name, (SELECT Id, SortOrder FROM OpportunityLineItems ORDER BY SortOrder) "
    "FROM Opportunity ORDER BY Name"
)


def test_child_results_come_in_batches_of_200_with_their_own_next_records_url(
    salesforce: SalesforceSandboxHandle,
) -> None:
    sf = connect(salesforce)
    order = seed_order(sf, lines=0)
    line_ids = add_lines(sf, order, 201, first_sort_order=1)

    record = sf.query(LINES_QUERY)["records"][0]
    lines = record["OpportunityLineItems"]
    rest = sf.query_more(lines["nextRecordsUrl"], identifier_is_url=True)

    assert salesforce.admin.config()["child_batch_size"] == 200
    assert (lines["totalSize"], lines["done"], len(lines["records"])) == (201, False, 200)
    assert re.fullmatch(
        rf"/services/data/v{salesforce.api_version}/query/01g\w{{15}}-200", lines["nextRecordsUrl"]
    )
    assert (rest["totalSize"], rest["done"], "nextRecordsUrl" in rest) == (201, True, False)
    assert [line["Id"] for line in lines["records"] + rest["records"]] == line_ids


def test_every_batch_of_a_child_result_is_reachable_and_small_ones_are_whole(
    salesforce: SalesforceSandboxHandle,
) -> None:
    sf = connect(salesforce)
    big = seed_order(sf, lines=7)  # SortOrder 7 down to 1
    small = seed_order(sf, lines=2)
    sf.Opportunity.update(small.opportunity_id, {"Name": "Small deal"})
    salesforce.admin.set_config(child_batch_size=3)

    big_record, small_record = sf.query(LINES_QUERY)["records"]
    batches = [big_record["OpportunityLineItems"]]
    while not batches[-1]["done"]:
        batches.append(sf.query_more(batches[-1]["nextRecordsUrl"], identifier_is_url=True))

    assert [len(batch["records"]) for batch in batches] == [3, 3, 1]
    assert {batch["totalSize"] for batch in batches} == {7}
    assert [batch["nextRecordsUrl"].rsplit("-", 1)[1] for batch in batches[:-1]] == ["3", "6"]
    assert [line["SortOrder"] for batch in batches for line in batch["records"]] == list(range(1, 8))
    assert {line["Id"] for batch in batches for line in batch["records"]} == set(big.line_ids)
    assert batches[1]["records"][0]["attributes"]["type"] == "OpportunityLineItem"
    small_lines = small_record["OpportunityLineItems"]
    assert (small_lines["totalSize"], small_lines["done"], len(small_lines["records"])) == (2, True, 2)
    assert "nextRecordsUrl" not in small_lines
    # The batch size is the sandbox's, whatever page size the query asks for.
    asked = sf.query(LINES_QUERY, headers={"Sforce-Query-Options": "batchSize=1000"})
    assert len(asked["records"][0]["OpportunityLineItems"]["records"]) == 3
    # A child LIMIT within the batch size needs no second batch.
    limited = sf.query(
        "SELECT Id, (SELECT Id FROM OpportunityLineItems ORDER BY SortOrder LIMIT 3) FROM Opportunity "
        f"WHERE Id = '{big.opportunity_id}'"
    )["records"][0]["OpportunityLineItems"]
    assert (limited["totalSize"], limited["done"]) == (3, True)


def test_child_batches_can_be_switched_off_and_reset_restores_them(
    salesforce: SalesforceSandboxHandle,
) -> None:
    sf = connect(salesforce)
    seed_order(sf, lines=5)
    salesforce.admin.set_config(child_batch_size=None)

    whole = sf.query(LINES_QUERY)["records"][0]["OpportunityLineItems"]
    salesforce.admin.reset()

    assert (whole["totalSize"], whole["done"], len(whole["records"])) == (5, True, 5)
    assert salesforce.admin.config()["child_batch_size"] == 200


def test_child_batches_in_query_all_and_in_a_composite_query(salesforce: SalesforceSandboxHandle) -> None:
    sf = connect(salesforce)
    order = seed_order(sf, lines=4)
    salesforce.admin.set_config(child_batch_size=2)
    query = format_soql(
        "SELECT Id, (SELECT Id FROM OpportunityLineItems) FROM Opportunity WHERE Id = {}",
        order.opportunity_id,
    )
    base = f"/services/data/v{salesforce.api_version}"
    subrequest = {"method": "GET", "url": f"{base}/query?q={quote_plus(query)}", "referenceId": "q"}

    with_deleted = sf.query_all(query, include_deleted=True)["records"][0]["OpportunityLineItems"]
    composite = sf.restful(
        "composite",
        method="POST",
        json={"compositeRequest": [subrequest]},
    )["compositeResponse"][0]["body"]["records"][0]["OpportunityLineItems"]

    for first in (with_deleted, composite):
        assert (first["totalSize"], first["done"], len(first["records"])) == (4, False, 2)
        rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
        assert {line["Id"] for line in first["records"] + rest["records"]} == set(order.line_ids)
    assert with_deleted["nextRecordsUrl"].startswith(f"{base}/queryAll/01g")


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("SELECT FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'", "MALFORMED_QUERY"),
        ("SELECT COUNT() FROM Account", "MALFORMED_QUERY"),
        ("SELECT Name FROM Account GROUP BY Name", "MALFORMED_QUERY"),
        ("SELECT Id FROM Opportunity WHERE AccountId IN (SELECT Id FROM Account)", "MALFORMED_QUERY"),
        (
            "SELECT Id, (SELECT Id, (SELECT Id FROM OpportunityLineItems) FROM Opportunities) FROM Account",
            "MALFORMED_QUERY",
        ),
        ("SELECT Id, Id FROM Account", "MALFORMED_QUERY"),
        ("SELECT Id FROM Account WHERE Name = 'unterminated", "MALFORMED_QUERY"),
        ("SELECT Colour__c FROM Account", "INVALID_FIELD"),
        ("SELECT Owner.Colour FROM Account", "INVALID_FIELD"),
        ("SELECT Boss.Name FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Account WHERE Description = 'x'", "INVALID_FIELD"),
        ("SELECT Id FROM Widget__c", "INVALID_TYPE"),
        ("SELECT Id, (SELECT Id FROM Widgets) FROM Opportunity", "INVALID_TYPE"),
        ("SELECT Id FROM Opportunity WHERE Amount = '100'", "INVALID_QUERY_FILTER_OPERATOR"),
        ("SELECT Id FROM Opportunity WHERE CloseDate = '2026-01-01'", "INVALID_QUERY_FILTER_OPERATOR"),
        ("SELECT Id FROM Opportunity WHERE Id = 'nope'", "INVALID_QUERY_FILTER_OPERATOR"),
        ("SELECT Id FROM Opportunity WHERE IsWon > true", "INVALID_QUERY_FILTER_OPERATOR"),
    ],
)
def test_query_errors(salesforce: SalesforceSandboxHandle, query: str, code: str) -> None:
    with raw_client(salesforce) as client:
        response = client.get("/query", params={"q": query})

    assert response.status_code == 400
    errors = errors_of(response)
    assert [error["errorCode"] for error in errors] == [code]
    assert set(errors[0]) == {"message", "errorCode"}


def test_query_error_message_points_at_the_problem(salesforce: SalesforceSandboxHandle) -> None:
    with pytest.raises(SalesforceMalformedRequest) as failure:
        connect(salesforce).query("SELECT Id, Nmae FROM Account")

    message = failure.value.content[0]["message"]
    assert "ERROR at Row:1:Column:12" in message
    assert "No such column 'Nmae' on entity 'Account'" in message


# --- composite ----------------------------------------------------------------------------------------


def test_composite_with_references_counts_as_one_request(salesforce: SalesforceSandboxHandle) -> None:
    sf = connect(salesforce)
    version = salesforce.api_version
    base = f"/services/data/v{version}"
    usage_before = salesforce.server.state.allowance.used

    result = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": True,
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": f"{base}/sobjects/Account",
                    "referenceId": "acct",
                    "body": {"Name": "Hooli"},
                },
                {
                    "method": "POST",
                    "url": f"{base}/sobjects/Opportunity",
                    "referenceId": "opp",
                    "body": {
                        "Name": "Hooli deal",
                        "AccountId": "@{acct.id}",
                        "StageName": "Prospecting",
                        "CloseDate": "2026-04-01",
                    },
                },
                {
                    "method": "GET",
                    "url": f"{base}/query/?q=SELECT+Id,Account.Name+FROM+Opportunity",
                    "referenceId": "q",
                },
                {
                    "method": "PATCH",
                    "url": f"{base}/sobjects/Account/@{{acct.id}}",
                    "referenceId": "writeBack",
                    "body": {
                        "Intacct_Customer_Id__c": "C-@{q.totalSize}",
                        "Intacct_Sync_Status__c": "Synced",
                    },
                },
                {
                    "method": "GET",
                    "url": f"{base}/sobjects/Opportunity/@{{q.records[0].Id}}?fields=Name,AccountId",
                    "referenceId": "read",
                },
            ],
        },
    )

    responses = {item["referenceId"]: item for item in result["compositeResponse"]}
    assert [item["httpStatusCode"] for item in result["compositeResponse"]] == [201, 201, 200, 204, 200]
    account_id = responses["acct"]["body"]["id"]
    assert responses["acct"]["httpHeaders"] == {"Location": f"{base}/sobjects/Account/{account_id}"}
    assert responses["writeBack"]["body"] is None
    assert responses["read"]["body"]["AccountId"] == account_id
    assert responses["q"]["body"]["records"][0]["Account"]["Name"] == "Hooli"
    assert salesforce.server.state.allowance.used == usage_before + 1
    assert salesforce.admin.counts()["by_kind"]["composite"] == 1
    assert sf.Account.get(account_id)["Intacct_Customer_Id__c"] == "C-1"


def test_composite_all_or_none_rolls_back(salesforce: SalesforceSandboxHandle, listeners: Any) -> None:
    listener = listeners(always(200, ACK))
    salesforce.server.set_outbound_messages([account_definition(listener.url)])
    sf = connect(salesforce)
    base = f"/services/data/v{salesforce.api_version}"

    result = sf.restful(
        "composite",
        method="POST",
        json={
            "allOrNone": True,
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": f"{base}/sobjects/Account",
                    "referenceId": "good",
                    "body": {"Name": "Kept?"},
                },
                {
                    "method": "POST",
                    "url": f"{base}/sobjects/Account",
                    "referenceId": "bad",
                    "body": {"Nom": "x"},
                },
                {"method": "GET", "url": f"{base}/sobjects/Account/@{{good.id}}", "referenceId": "after"},
            ],
        },
    )

    items = result["compositeResponse"]
    assert [item["httpStatusCode"] for item in items] == [400, 400, 400]
    assert items[1]["body"][0]["errorCode"] == "INVALID_FIELD"
    for index in (0, 2):
        assert items[index]["body"] == [
            {
                "errorCode": "PROCESSING_HALTED",
                "message": "The transaction was rolled back since another operation in the same "
                "transaction failed.",
            }
        ]
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0
    assert salesforce.admin.flush_outbound() == []
    assert listener.received == []


def test_composite_without_all_or_none_keeps_what_succeeded(salesforce: SalesforceSandboxHandle) -> None:
    sf = connect(salesforce)
    base = f"/services/data/v{salesforce.api_version}"

    result = sf.restful(
        "composite",
        method="POST",
        json={
            "compositeRequest": [
                {
                    "method": "POST",
                    "url": f"{base}/sobjects/Account",
                    "referenceId": "kept",
                    "body": {"Name": "Kept"},
                },
                {"method": "POST", "url": f"{base}/sobjects/Account", "referenceId": "bad", "body": {}},
                {
                    "method": "PATCH",
                    "url": f"{base}/sobjects/Account/@{{bad.id}}",
                    "referenceId": "dependent",
                    "body": {"Name": "x"},
                },
            ]
        },
    )

    items = result["compositeResponse"]
    assert [item["httpStatusCode"] for item in items] == [201, 400, 400]
    assert items[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert items[2]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert "bad.id" in items[2]["body"][0]["message"]
    assert [record["Name"] for record in sf.query("SELECT Name FROM Account")["records"]] == ["Kept"]


# --- limits and faults --------------------------------------------------------------------------------


def test_limit_info_header_and_spent_allowance(salesforce: SalesforceSandboxHandle) -> None:
    sf = connect(salesforce)
    sf.query("SELECT Id FROM Account")
    first = sf.api_usage["api-usage"]
    sf.query("SELECT Id FROM Account")
    assert sf.api_usage["api-usage"].used == first.used + 1
    assert sf.api_usage["api-usage"].total == 15000
    assert sf.limits()["DailyApiRequests"]["Max"] == 15000

    salesforce.admin.set_faults(spend_api_allowance=True)

    with pytest.raises(SalesforceRefusedRequest) as refused:
        sf.query("SELECT Id FROM Account")
    assert refused.value.content == [
        {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
    ]
    assert client_credentials_token(salesforce)["access_token"]  # OAuth is not an API request


def test_fail_next_requests_and_latency(salesforce: SalesforceSandboxHandle) -> None:
    with raw_client(salesforce) as client:
        salesforce.admin.set_faults(fail_next={"count": 2, "status": 503}, latency_ms=60)
        started = time.monotonic()
        statuses = [client.get("/query", params={"q": "SELECT Id FROM Account"}) for _ in range(3)]
        elapsed = time.monotonic() - started

    assert [response.status_code for response in statuses] == [503, 503, 200]
    assert errors_of(statuses[0])[0]["errorCode"] == "SERVER_UNAVAILABLE"
    assert all(response.headers["Sforce-Limit-Info"].startswith("api-usage=") for response in statuses)
    assert elapsed >= 0.18
    assert salesforce.admin.counts()["by_kind"]["query"] == 3


def test_fail_next_with_a_path_fails_only_the_requests_that_match(
    salesforce: SalesforceSandboxHandle,
) -> None:
    with raw_client(salesforce) as client:
        salesforce.admin.set_faults(fail_next={"count": 1, "status": 503, "path": "/composite"})
        read = client.get("/query", params={"q": "SELECT Id FROM Account"})
        write = client.post("/composite", json={"allOrNone": True, "compositeRequest": []})
        again = client.post("/composite", json={"allOrNone": True, "compositeRequest": []})

    assert read.status_code == 200
    assert write.status_code == 503
    assert again.status_code != 503
    assert salesforce.admin.set_faults()["fail_next"] == {"count": 0, "status": 503, "path": "/composite"}


def test_counts_by_kind_and_reset(salesforce: SalesforceSandboxHandle) -> None:
    sf = connect(salesforce)
    account_id = sf.Account.create({"Name": "Counted"})["id"]
    sf.Account.get(account_id)
    sf.Account.update(account_id, {"Phone": "555"})
    sf.query("SELECT Id FROM Account")

    assert salesforce.admin.counts() == {
        "requests": 5,
        "by_kind": {
            "token": 1,
            "query": 1,
            "sobject_read": 1,
            "sobject_write": 2,
            "composite": 0,
            "other": 0,
        },
    }
    salesforce.admin.reset()
    assert salesforce.admin.counts()["requests"] == 0
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 0  # tokens survive a reset


# --- Outbound Messages --------------------------------------------------------------------------------


def test_closing_won_sends_one_soap_message(salesforce: SalesforceSandboxHandle, listeners: Any) -> None:
    listener = listeners(always(200, ACK))
    salesforce.server.set_outbound_messages([closed_won_definition(listener.url)])
    sf = connect(salesforce)
    order = seed_order(sf, lines=2)

    sf.Opportunity.update(order.opportunity_id, {"StageName": "Closed Won"})
    received = listener.wait_for(1)
    sf.Opportunity.update(order.opportunity_id, {"NextStep": "Invoice"})  # still won: no new message
    sf.Account.update(order.account_id, {"Phone": "555"})
    deliveries = salesforce.admin.flush_outbound()

    assert len(listener.received) == 1
    assert received[0].headers["Content-Type"] == "text/xml; charset=utf-8"
    assert received[0].headers["SOAPAction"] == '""'
    message = parse_message(received[0].body)
    credentials = salesforce.credentials
    assert message.organization_id == credentials.org_id
    assert message.action_id.startswith("04k")
    assert len(message.action_id) == 18
    assert message.session_id is None
    assert (
        message.enterprise_url
        == f"{salesforce.instance_url}/services/Soap/c/{salesforce.api_version}/{credentials.org_id[:15]}"
    )
    assert (
        message.partner_url
        == f"{salesforce.instance_url}/services/Soap/u/{salesforce.api_version}/{credentials.org_id[:15]}"
    )
    [notification] = message.notifications
    assert notification.notification_id.startswith("04l")
    assert notification.object_type == "sf:Opportunity"
    opportunity = sf.Opportunity.get(order.opportunity_id)
    assert notification.fields == {
        "Id": order.opportunity_id,
        "Name": "Big deal",
        "StageName": "Closed Won",
        "IsWon": "true",
        "AccountId": order.account_id,
        "Amount": repr(opportunity["Amount"]),
        "CloseDate": "2026-12-31",
        "LastModifiedDate": notification.fields["LastModifiedDate"],
    }  # Description is null: omitted
    assert re.fullmatch(
        r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z", notification.fields["LastModifiedDate"]
    )
    assert [
        (delivery["definition"], delivery["status"], delivery["attempts"], delivery["last_http_status"])
        for delivery in deliveries
    ] == [("Opportunity_Closed_Won", "delivered", 1, 200)]
    assert deliveries[0]["notification_ids"] == [notification.notification_id]
    assert deliveries[0]["record_ids"] == [order.opportunity_id]


def test_creating_an_opportunity_already_won_fires_and_accounts_fire_on_create_and_update(
    salesforce: SalesforceSandboxHandle, listeners: Any
) -> None:
    listener = listeners(always(200, ACK))
    salesforce.server.set_outbound_messages(
        [closed_won_definition(listener.url), account_definition(listener.url)]
    )
    sf = connect(salesforce)

    account_id = sf.Account.create({"Name": "Société Générale & Fils <SA>", "BillingCity": "Malibu"})["id"]
    sf.Account.update(account_id, {"BillingCity": "New York"})
    sf.Opportunity.create(
        {"Name": "Suits", "StageName": "Closed Won", "CloseDate": "2026-06-01", "AccountId": account_id}
    )
    sf.Opportunity.create({"Name": "Open", "StageName": "Prospecting", "CloseDate": "2026-06-01"})
    deliveries = salesforce.admin.flush_outbound()

    sent = [
        notification for item in listener.received for notification in parse_message(item.body).notifications
    ]
    assert sorted(notification.object_type for notification in sent) == [
        "sf:Account",
        "sf:Account",
        "sf:Opportunity",
    ]
    assert all(delivery["status"] == "delivered" for delivery in deliveries)
    account_values = [
        notification.fields["BillingCity"]
        for notification in sent
        if notification.object_type == "sf:Account"
    ]
    assert account_values == ["New York", "New York"]  # values at send time, not at change time
    assert {notification.fields["Name"] for notification in sent} == {"Société Générale & Fils <SA>", "Suits"}


def test_changes_by_the_ignored_user_do_not_fire(salesforce: SalesforceSandboxHandle, listeners: Any) -> None:
    listener = listeners(always(200, ACK))
    integration_user_id = salesforce.credentials.integration_user_id
    definition = replace(account_definition(listener.url), ignore_changes_by=integration_user_id)
    salesforce.server.set_outbound_messages([definition])
    [rep] = [user for user in salesforce.admin.users() if user["id"] != integration_user_id]
    rep_token = httpx.post(
        salesforce.token_url,
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "assertion": jwt_assertion(salesforce, sub=rep["username"]),
        },
        verify=trust(salesforce),
    ).json()["access_token"]
    as_rep, as_integration = connect(salesforce, access_token=rep_token), connect(salesforce)

    account_id = as_rep.Account.create({"Name": "Rep's account"})["id"]
    salesforce.admin.flush_outbound()
    as_integration.Account.update(account_id, {"Intacct_Customer_Id__c": "C-7"})  # a write-back: no echo
    salesforce.admin.flush_outbound()
    as_rep.Account.update(account_id, {"Phone": "555"})
    deliveries = salesforce.admin.flush_outbound()

    assert as_rep.Account.get(account_id)["OwnerId"] == rep["id"]
    assert [len(delivery["notification_ids"]) for delivery in deliveries] == [1, 1]
    assert len(listener.received) == 2


def test_session_id_is_sent_when_asked_and_works_for_callbacks(
    salesforce: SalesforceSandboxHandle, listeners: Any
) -> None:
    listener = listeners(always(200, ACK))
    salesforce.server.set_outbound_messages([closed_won_definition(listener.url, include_session_id=True)])
    sf = connect(salesforce)
    opportunity_id = sf.Opportunity.create(
        {"Name": "Won", "StageName": "Closed Won", "CloseDate": "2026-06-01"}
    )["id"]

    message = parse_message(listener.wait_for(1)[0].body)

    assert message.session_id
    callback = connect(salesforce, access_token=message.session_id)
    assert callback.Opportunity.get(opportunity_id)["IsWon"] is True


def test_retry_sends_the_latest_values_with_the_same_notification_id(
    salesforce: SalesforceSandboxHandle, listeners: Any
) -> None:
    listener = listeners(lambda index: (503, b"busy") if index == 0 else (200, ACK))
    salesforce.server.set_outbound_messages([closed_won_definition(listener.url)])
    sf = connect(salesforce)
    opportunity_id = sf.Opportunity.create(
        {"Name": "First name", "StageName": "Closed Won", "CloseDate": "2026-06-01"}
    )["id"]
    listener.wait_for(1)
    wait_until(lambda: salesforce.admin.outbound()[0]["attempts"] == 1)
    pending = salesforce.admin.outbound()[0]

    sf.Opportunity.update(opportunity_id, {"Name": "Renamed"})
    deliveries = salesforce.admin.flush_outbound()

    first, second = (parse_message(item.body).notifications[0] for item in listener.received)
    assert (pending["status"], pending["last_http_status"]) == ("pending", 503)
    assert pending["next_attempt_at"] is not None
    assert first.notification_id == second.notification_id
    assert (first.fields["Name"], second.fields["Name"]) == ("First name", "Renamed")
    assert (deliveries[0]["status"], deliveries[0]["attempts"]) == ("delivered", 2)


def test_an_acknowledged_message_is_sometimes_delivered_again(
    start_salesforce: Callable[..., SalesforceSandboxHandle], listeners: Any
) -> None:
    # Salesforce: "usually delivered one time, sometimes more than one time". At rate 1 every message
    # is sent once more after its ack, like a retry: same notification id, values at the later send.
    listener = listeners(always(200, ACK))
    handle = start_salesforce(time_factor=0.002, outbound_duplicate_rate=1.0)
    handle.server.set_outbound_messages([account_definition(listener.url)])
    sf = connect(handle)

    account_id = sf.Account.create({"Name": "Twice told"})["id"]
    listener.wait_for(1)
    sf.Account.update(account_id, {"Name": "Twice told, renamed"})  # a second notification, later
    wait_until(lambda: all(delivery["status"] == "delivered" for delivery in handle.admin.outbound()))
    received = listener.wait_for(4)
    time.sleep(0.2)

    first_message = handle.admin.outbound()[0]
    assert (first_message["attempts"], first_message["acknowledged"]) == (2, 2)
    assert first_message["duplicated"] is True
    assert len(listener.received) == 4  # each of the two messages twice, never a third time
    notifications = [parse_message(item.body).notifications[0] for item in received]
    by_id: dict[str, list[ParsedNotification]] = {}
    for notification in notifications:
        by_id.setdefault(notification.notification_id, []).append(notification)
    assert sorted(len(copies) for copies in by_id.values()) == [2, 2]
    assert {copy.fields["Id"] for copies in by_id.values() for copy in copies} == {account_id}
    assert notifications[-1].fields["Name"] == "Twice told, renamed"


def test_duplicate_rate_is_set_through_the_admin_api_and_a_flush_sends_the_copy(
    salesforce: SalesforceSandboxHandle, listeners: Any
) -> None:
    listener = listeners(always(200, ACK))
    salesforce.server.set_outbound_messages([account_definition(listener.url)])
    sf = connect(salesforce)
    assert salesforce.admin.config()["outbound_duplicate_rate"] == 0.0
    sf.Account.create({"Name": "Once"})
    listener.wait_for(1)
    wait_until(lambda: salesforce.admin.outbound()[0]["status"] == "delivered")

    salesforce.admin.set_config(outbound_duplicate_rate=1)
    sf.Account.create({"Name": "Twice"})
    listener.wait_for(2)
    wait_until(lambda: salesforce.admin.outbound()[1]["acknowledged"] == 1)
    waiting = salesforce.admin.outbound()[1]  # the copy waits for the retry schedule (15 s)
    deliveries = salesforce.admin.flush_outbound()
    with pytest.raises(SalesforceAdminError, match="outbound_duplicate_rate"):
        salesforce.admin.set_config(outbound_duplicate_rate=1.5)
    salesforce.admin.reset()

    assert (waiting["status"], waiting["duplicated"]) == ("pending", True)
    assert waiting["next_attempt_at"] is not None
    assert [(item["status"], item["attempts"], item["duplicated"]) for item in deliveries] == [
        ("delivered", 1, False),
        ("delivered", 2, True),
    ]
    names = [parse_message(item.body).notifications[0].fields["Name"] for item in listener.received]
    assert names == ["Once", "Twice", "Twice"]
    assert salesforce.admin.config()["outbound_duplicate_rate"] == 0.0


def test_deleted_record_is_sent_without_data(salesforce: SalesforceSandboxHandle, listeners: Any) -> None:
    listener = listeners(lambda index: (500, b"") if index == 0 else (200, ACK))
    salesforce.server.set_outbound_messages([account_definition(listener.url)])
    sf = connect(salesforce)
    account_id = sf.Account.create({"Name": "Gone soon"})["id"]
    listener.wait_for(1)
    wait_until(lambda: salesforce.admin.outbound()[0]["attempts"] == 1)

    sf.Account.delete(account_id)
    salesforce.admin.flush_outbound()

    assert parse_message(listener.received[1].body).notifications[0].fields == {"Id": account_id}


@pytest.mark.parametrize(
    "answer",
    [
        (500, ACK),
        (200, NACK),
        (200, b"OK"),
        (200, b"<notificationsResponse><Ack>true</Ack></notificationsResponse>"),
    ],
    ids=["http-500", "ack-false", "not-xml-soap", "no-envelope"],
)
def test_anything_but_an_ack_is_retried_with_growing_intervals(
    start_salesforce: Callable[..., SalesforceSandboxHandle], listeners: Any, answer: tuple[int, bytes]
) -> None:
    listener = listeners(always(*answer))
    time_factor = 0.006  # 15 s, 30 s, 60 s ... become 90 ms, 180 ms, 360 ms ...
    handle = start_salesforce(time_factor=time_factor)
    handle.server.set_outbound_messages([account_definition(listener.url)])

    connect(handle).Account.create({"Name": "Unlucky"})
    received = listener.wait_for(4)
    wait_until(lambda: handle.admin.outbound()[0]["attempts"] >= 4)
    delivery = handle.admin.outbound()[0]

    intervals = [later.at - earlier.at for earlier, later in itertools.pairwise(received[:4])]
    for expected, interval in zip((90, 180, 360), intervals, strict=True):
        assert interval >= expected / 1000 * 0.9
    assert intervals[1] > intervals[0] * 1.4
    assert intervals[2] > intervals[1] * 1.4
    assert delivery["status"] == "pending"
    assert delivery["last_http_status"] == answer[0]
    scheduled = datetime.fromisoformat(delivery["next_attempt_at"]) - datetime.fromisoformat(
        delivery["attempted_at"][-1]
    )
    backoff = min(15 * 2 ** (delivery["attempts"] - 1), 7200) * time_factor
    assert abs(scheduled.total_seconds() - backoff) < 0.02


def test_undeliverable_message_is_dropped_after_24_hours(
    start_salesforce: Callable[..., SalesforceSandboxHandle], listeners: Any
) -> None:
    listener = listeners(always(500, b""))
    # 24 h scaled to 1.7 s; retries after 0.3 ms, doubling up to a 0.14 s cap.
    handle = start_salesforce(time_factor=0.00002)
    handle.server.set_outbound_messages([account_definition(listener.url)])

    connect(handle).Account.create({"Name": "Nobody home"})
    wait_until(lambda: handle.admin.outbound()[0]["status"] == "dropped", timeout=10)
    delivery = handle.admin.outbound()[0]
    attempts_when_dropped = len(listener.received)
    time.sleep(0.3)

    assert delivery["attempts"] == attempts_when_dropped >= 10
    assert delivery["next_attempt_at"] is None
    assert len(listener.received) == attempts_when_dropped


def test_many_changes_are_batched_at_most_100_per_message(
    salesforce: SalesforceSandboxHandle, listeners: Any
) -> None:
    release = threading.Event()

    def respond(index: int) -> tuple[int, bytes]:
        if index == 0:
            release.wait(timeout=30)  # hold the first message while the rest of the changes queue up
        return 200, ACK

    listener = listeners(respond)
    salesforce.server.set_outbound_messages([account_definition(listener.url)])
    sf = connect(salesforce)
    base = f"/services/data/v{salesforce.api_version}"

    sf.Account.create({"Name": "Account first"})
    listener.wait_for(1)
    for batch in range(6):
        sf.restful(
            "composite",
            method="POST",
            json={
                "compositeRequest": [
                    {
                        "method": "POST",
                        "url": f"{base}/sobjects/Account",
                        "referenceId": f"a{index}",
                        "body": {"Name": f"Account {batch}-{index}"},
                    }
                    for index in range(25)
                ]
            },
        )
    release.set()
    wait_until(lambda: all(delivery["status"] == "delivered" for delivery in salesforce.admin.outbound()))

    messages = [parse_message(item.body) for item in listener.received]
    sizes = [len(message.notifications) for message in messages]
    assert sizes == [1, 100, 50]
    record_ids = [notification.fields["Id"] for message in messages for notification in message.notifications]
    assert len(set(record_ids)) == 151
    assert len({message.action_id for message in messages}) == 1
