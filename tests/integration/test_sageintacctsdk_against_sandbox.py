"""sageintacctsdk, Fyle's Sage Intacct client from PyPI, unmodified, against the Intacct sandbox over HTTPS.

How the client is pointed at the sandbox, using only what it offers:
- It has no setting for the gateway URL: every API object keeps it in the instance attribute
  `_ApiBase__api_url` (name-mangled `__api_url`, default https://api.intacct.com/ia/xml/xmlgw.phtml). The
  tests set that attribute on the instances and change nothing else.
- `SageIntacctSDK(...)` logs in from its constructor, at that default URL, unless it is given a session id.
  So the client's own login (`ApiBase.get_session_id`: `<login>` plus getAPISession) runs first on an
  `ApiBase` pointed at the sandbox, and the session id it returns goes to the constructor's `session_id`
  argument. The constructor would do the same itself: only the object that logged in switches to the endpoint
  getAPISession returns; every API object calls with the session id at the URL the login used.
- requests trusts the sandbox's CA through REQUESTS_CA_BUNDLE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from sageintacctsdk import SageIntacctSDK, WrongParamsError
from sageintacctsdk.apis import ApiBase
from sageintacctsdk.apis.constants import dimensions_fields_mapping

from tests.integration.conftest import IntacctSandboxHandle

pytestmark = pytest.mark.integration

# Where every sageintacctsdk API object keeps its gateway URL (ApiBase.__api_url).
API_URL_ATTRIBUTE = "_ApiBase__api_url"

CUSTOMER_ID = "SDK-ACME"
CUSTOMER_NAME = "Acme Tools Ltd"
OPPORTUNITY_ID = "0065g00000SDKtest"


@dataclass
class SdkConnection:
    """A logged-in client: the SDK itself, the object that logged in, and the session id."""

    sdk: SageIntacctSDK
    login: ApiBase
    session_id: str


def point_at(api: ApiBase, url: str) -> None:
    setattr(api, API_URL_ATTRIBUTE, url)


def api_url(api: ApiBase) -> str:
    url: str = getattr(api, API_URL_ATTRIBUTE)
    return url


def connect(sandbox: IntacctSandboxHandle, entity_id: str | None = None) -> SdkConnection:
    """Log in with the client's own getAPISession call, then build the client on that session."""
    credentials = sandbox.credentials
    login = ApiBase()
    login.set_sender_id(credentials.sender_id)
    login.set_sender_password(credentials.sender_password)
    point_at(login, sandbox.gateway_url)
    session_id = login.get_session_id(
        credentials.user_id, credentials.company_id, credentials.user_password, entity_id
    )
    sdk = SageIntacctSDK(
        sender_id=credentials.sender_id,
        sender_password=credentials.sender_password,
        user_id=credentials.user_id,
        company_id=credentials.company_id,
        user_password=credentials.user_password,
        entity_id=entity_id,
        session_id=session_id,
    )
    apis = [api for api in vars(sdk).values() if isinstance(api, ApiBase)]
    for api in apis:
        point_at(api, sandbox.gateway_url)
    assert all(api_url(api) == sandbox.gateway_url for api in apis)
    return SdkConnection(sdk=sdk, login=login, session_id=session_id)


@pytest.fixture
def sandbox(intacct: IntacctSandboxHandle, monkeypatch: pytest.MonkeyPatch) -> IntacctSandboxHandle:
    """The reset sandbox, with requests trusting its CA (and only it) for this test."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(intacct.ca_file))
    return intacct


@pytest.fixture
def connection(sandbox: IntacctSandboxHandle) -> SdkConnection:
    return connect(sandbox)


def create_customer(connection: SdkConnection) -> dict[str, Any]:
    result: dict[str, Any] = connection.sdk.customers.post(
        {
            "CUSTOMERID": CUSTOMER_ID,
            "NAME": CUSTOMER_NAME,
            "DISPLAYCONTACT": {
                "PRINTAS": CUSTOMER_NAME,
                "EMAIL1": "billing@acme.example",
                "MAILADDRESS": {
                    "ADDRESS1": "1 Main Street",
                    "CITY": "Springfield",
                    "COUNTRY": "United States",
                },
            },
            "TERMNAME": "N30",
            "CURRENCY": "USD",
        }
    )
    return result


def as_list(value: Any) -> list[Any]:
    """xmltodict gives one element as a dict and several as a list."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------------------- log-in


def test_sdk_logs_in_with_get_api_session_and_calls_with_the_session_at_the_login_url(
    sandbox: IntacctSandboxHandle,
) -> None:
    connection = connect(sandbox)

    assert connection.session_id.endswith("..")
    # The object that logged in follows the endpoint getAPISession returned; the others stay at the login URL.
    assert api_url(connection.login) == sandbox.session_url
    assert api_url(connection.sdk.customers) == sandbox.gateway_url
    assert sandbox.admin.counts() == {
        "requests": 1,
        "functions": {"getAPISession": 1},
        "statuses": {"200": 1},
    }

    assert connection.sdk.customers.count() == 0

    counts = sandbox.admin.counts()
    assert counts["functions"] == {"getAPISession": 1, "query:CUSTOMER": 1}
    assert counts["statuses"] == {"200": 2}


# ---------------------------------------------------------------------------- customers


def test_sdk_creates_a_customer_and_reads_it_back(
    connection: SdkConnection, sandbox: IntacctSandboxHandle
) -> None:
    created = create_customer(connection)

    assert created["status"] == "success"
    assert created["function"] == "create"
    assert created["data"]["customer"] == {"RECORDNO": "1", "CUSTOMERID": CUSTOMER_ID}

    [stored] = sandbox.admin.records("CUSTOMER")
    assert stored["RECORDNO"] == "1"
    assert stored["CUSTOMERID"] == CUSTOMER_ID
    assert stored["NAME"] == CUSTOMER_NAME
    assert stored["STATUS"] == "active"
    assert stored["TERMNAME"] == "N30"
    assert stored["CURRENCY"] == "USD"
    assert stored["DISPLAYCONTACT"]["PRINTAS"] == CUSTOMER_NAME
    assert stored["DISPLAYCONTACT"]["EMAIL1"] == "billing@acme.example"
    assert stored["DISPLAYCONTACT"]["MAILADDRESS"]["CITY"] == "Springfield"
    assert stored["CREATEDBY"] == sandbox.credentials.user_id

    # readByQuery with every field
    read = connection.sdk.customers.get(field="CUSTOMERID", value=CUSTOMER_ID)
    assert read["@totalcount"] == "1"
    [customer] = as_list(read["customer"])
    assert customer["RECORDNO"] == "1"
    assert customer["CUSTOMERID"] == CUSTOMER_ID
    assert customer["NAME"] == CUSTOMER_NAME
    assert customer["STATUS"] == "active"
    assert customer["TERMNAME"] == "N30"
    assert customer["DISPLAYCONTACT"]["EMAIL1"] == "billing@acme.example"
    assert customer["DISPLAYCONTACT"]["MAILADDRESS"]["CITY"] == "Springfield"
    assert customer["DISPLAYCONTACT"]["CONTACTNAME"] == f"{CUSTOMER_NAME}(C{CUSTOMER_ID})"

    # query with a select list and a filter, paged by the client
    rows = connection.sdk.customers.get_by_query(
        fields=["RECORDNO", "CUSTOMERID", "NAME", "STATUS"],
        and_filter=[("equalto", "CUSTOMERID", CUSTOMER_ID)],
    )
    assert rows == [{"RECORDNO": "1", "CUSTOMERID": CUSTOMER_ID, "NAME": CUSTOMER_NAME, "STATUS": "active"}]
    assert connection.sdk.customers.count() == 1
    assert connection.sdk.customers.get(field="CUSTOMERID", value="NO-SUCH-CUSTOMER")["@totalcount"] == "0"

    counts = sandbox.admin.counts()
    assert counts["functions"]["create:CUSTOMER"] == 1
    assert counts["functions"]["readByQuery:CUSTOMER"] == 2
    assert set(counts["statuses"]) == {"200"}


# ---------------------------------------------------------------------------- sales orders


def test_sdk_creates_a_sales_order_with_create_sotransaction(
    connection: SdkConnection, sandbox: IntacctSandboxHandle
) -> None:
    create_customer(connection)
    # The seed data the order uses, read through the client.
    active_items = {
        item["ITEMID"]: item for item in as_list(connection.sdk.items.get("STATUS", "active")["item"])
    }
    assert active_items["SUB-PLATFORM"]["UOM"] == "Each"
    assert active_items["SVC-ONBOARD"]["BASEPRICE"] == "2500"
    assert connection.sdk.locations.get("LOCATIONID", "US")["@totalcount"] == "1"
    assert connection.sdk.departments.get("DEPARTMENTID", "SERVICES")["@totalcount"] == "1"

    # Elements in the order api-3.0.xsd gives create_sotransaction and sotransitem.
    created = connection.sdk.order_entry_transactions.post(
        {
            "transactiontype": "Sales Order",
            "datecreated": {"year": "2026", "month": "06", "day": "30"},
            "customerid": CUSTOMER_ID,
            "referenceno": OPPORTUNITY_ID,
            "termname": "N30",
            "message": "Closed-won in Salesforce",
            "externalid": OPPORTUNITY_ID,
            "customfields": {
                "customfield": [
                    {"customfieldname": "SALESFORCE_OPPORTUNITY_ID", "customfieldvalue": OPPORTUNITY_ID}
                ]
            },
            "sotransitems": {
                "sotransitem": [
                    {
                        "itemid": "SUB-PLATFORM",
                        "quantity": "1",
                        "unit": "Each",
                        "price": "12000",
                        "locationid": "US",
                        "memo": "Annual subscription",
                    },
                    {
                        "itemid": "SVC-ONBOARD",
                        "quantity": "2",
                        "discountpercent": "10",
                        "locationid": "US",
                        "departmentid": "SERVICES",
                    },
                ]
            },
        }
    )

    assert created["status"] == "success"
    assert created["function"] == "create_sotransaction"
    assert created["key"] == "Sales Order-SO0001"

    [header] = sandbox.admin.records("SODOCUMENT")
    assert header["DOCID"] == created["key"]
    assert header["DOCNO"] == "SO0001"
    assert header["DOCPARID"] == "Sales Order"
    assert header["STATE"] == "Pending"
    assert header["CUSTVENDID"] == CUSTOMER_ID
    assert header["CUSTVENDNAME"] == CUSTOMER_NAME
    assert header["WHENCREATED"] == "06/30/2026"
    assert header["WHENDUE"] == "07/30/2026"
    assert header["PONUMBER"] == OPPORTUNITY_ID
    assert header["EXTERNALID"] == OPPORTUNITY_ID
    assert header["SALESFORCE_OPPORTUNITY_ID"] == OPPORTUNITY_ID
    assert header["MESSAGE"] == "Closed-won in Salesforce"
    assert header["CURRENCY"] == "USD"
    assert header["TOTAL"] == "16500.00"
    lines = sandbox.admin.records("SODOCUMENTENTRY")
    assert [
        (line["LINE_NO"], line["ITEMID"], line["QUANTITY"], line["PRICE"], line["TOTAL"], line["LOCATIONID"])
        for line in lines
    ] == [
        ("0", "SUB-PLATFORM", "1", "12000", "12000.00", "US"),
        ("1", "SVC-ONBOARD", "2", "2500", "4500.00", "US"),
    ]
    assert [line["DOCHDRID"] for line in lines] == [created["key"]] * 2
    assert lines[0]["MEMO"] == "Annual subscription"
    assert lines[1]["DEPARTMENTID"] == "SERVICES"

    # Read back through the client.
    read = connection.sdk.order_entry_transactions.get(field="DOCID", value=created["key"])
    [document] = as_list(read["sodocument"])
    assert document["DOCID"] == created["key"]
    assert document["CUSTVENDID"] == CUSTOMER_ID
    assert document["STATE"] == "Pending"
    assert document["TOTAL"] == "16500.00"
    assert document["SALESFORCE_OPPORTUNITY_ID"] == OPPORTUNITY_ID
    assert connection.sdk.order_entry_transactions.count(field="DOCPARID", value="Sales Order") == 1

    counts = sandbox.admin.counts()
    assert counts["functions"]["create_sotransaction"] == 1
    assert set(counts["statuses"]) == {"200"}


def test_sdk_entity_login_puts_order_lines_in_that_entity(sandbox: IntacctSandboxHandle) -> None:
    """entity_id goes into `<login><locationid>`; lines sent without a location take the session's entity."""
    connection = connect(sandbox, entity_id="UK")
    create_customer(connection)

    created = connection.sdk.order_entry_transactions.post(
        {
            "transactiontype": "Sales Order",
            "datecreated": {"year": "2026", "month": "06", "day": "30"},
            "customerid": CUSTOMER_ID,
            "termname": "N30",
            "sotransitems": {"sotransitem": {"itemid": "SUP-PREMIUM", "quantity": "1"}},
        }
    )

    assert created["status"] == "success"
    [line] = sandbox.admin.records("SODOCUMENTENTRY")
    assert (line["ITEMID"], line["LOCATIONID"], line["TOTAL"]) == ("SUP-PREMIUM", "UK", "3000.00")


def test_sdk_errors_from_the_sandbox_reach_the_caller_as_sdk_exceptions(connection: SdkConnection) -> None:
    with pytest.raises(WrongParamsError) as refused:
        connection.sdk.order_entry_transactions.post(
            {
                "transactiontype": "Sales Order",
                "datecreated": {"year": "2026", "month": "06", "day": "30"},
                "customerid": "NO-SUCH-CUSTOMER",
                "termname": "N30",
                "sotransitems": {"sotransitem": {"itemid": "SUB-PLATFORM", "quantity": "1"}},
            }
        )

    errors = refused.value.response["error"]
    assert errors[0]["errorno"] == "BL01001973"
    assert "NO-SUCH-CUSTOMER" in errors[0]["description2"]
    assert errors[-1]["description2"] == "Could not create Document record!"


# ---------------------------------------------------------------------------- default select lists


@pytest.mark.parametrize(
    ("attribute", "object_name", "expected_rows"),
    [
        ("customers", "CUSTOMER", 1),
        ("items", "ITEM", 6),
        ("locations", "LOCATION", 2),
        ("departments", "DEPARTMENT", 2),
    ],
)
def test_sdk_get_all_with_its_default_select_list(
    connection: SdkConnection, attribute: str, object_name: str, expected_rows: int
) -> None:
    """get_all() queries with the client's default select list (apis/constants.py), field names of the real
    objects that the client's publisher uses against Intacct. The sandbox refuses a field it does not define
    ("Query Failed", "Invalid field X in <select>"), so it must define every one of them."""
    if object_name == "CUSTOMER":
        create_customer(connection)
    api = getattr(connection.sdk, attribute)
    known = {field["ID"] for field in as_list(api.get_lookup()["Type"]["Fields"]["Field"])}
    unknown = [name for name in dimensions_fields_mapping[object_name] if name not in known]

    try:
        rows = api.get_all()
    except WrongParamsError as error:
        pytest.fail(
            f"the sandbox refused the SDK's default {object_name} select list; "
            f"fields the sandbox lacks: {unknown}; refusal: {error.response}"
        )

    assert len(rows) == expected_rows
