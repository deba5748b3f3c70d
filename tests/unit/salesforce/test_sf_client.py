"""The client against a fake Salesforce: one-query reads, re-authentication, error types, write-back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import requests
from pydantic import ValidationError
from sf_fake_http import API, TOKEN_PATH, FakeSalesforceHttp

from sfintacct.salesforce.client import SalesforceClient
from sfintacct.salesforce.errors import (
    PermanentSalesforceError,
    RecordNotFound,
    SalesforceApiLimitExceeded,
    SalesforceAuthenticationError,
    TransientSalesforceError,
)
from sfintacct.salesforce.models import OpportunityQueryFields, RecordUpdate, field_value
from sfintacct.salesforce.session import RETRY_STATUSES, SalesforceSession, read_retry_policy
from sfintacct.salesforce.settings import SalesforceSettings

QUERY_PATH = f"{API}/query/"
COMPOSITE_PATH = f"{API}/composite"
OPPORTUNITY_ID = "006Dn00000AbCdEIAV"
ACCOUNT_ID = "001Dn00000XyZabIAB"


def attributes(object_type: str, record_id: str) -> dict[str, str]:
    return {"type": object_type, "url": f"{API}/sobjects/{object_type}/{record_id}"}


def line(record_id: str, code: str, quantity: float, price: float) -> dict[str, Any]:
    return {
        "attributes": attributes("OpportunityLineItem", record_id),
        "Id": record_id,
        "Quantity": quantity,
        "UnitPrice": price,
        "Product2": {"attributes": attributes("Product2", "01tDn000001"), "ProductCode": code},
    }


def opportunity_page(lines: Any, account: Any = "default") -> tuple[int, dict[str, Any]]:
    if account == "default":
        account = {
            "attributes": attributes("Account", ACCOUNT_ID),
            "Id": ACCOUNT_ID,
            "Name": "Acme Ltd",
            "BillingCity": "Zürich",
        }
    record = {
        "attributes": attributes("Opportunity", OPPORTUNITY_ID),
        "Id": OPPORTUNITY_ID,
        "Name": "Acme renewal",
        "AccountId": ACCOUNT_ID if account else None,
        "Amount": 1234.56,
        "IsWon": True,
        "Account": account,
        "OpportunityLineItems": lines,
    }
    return 200, {"totalSize": 1, "done": True, "records": [record]}


def child_page(records: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    page: dict[str, Any] = {"totalSize": len(records), "done": next_url is None, "records": records}
    if next_url:
        page["nextRecordsUrl"] = next_url
    return page


def sf_error(status: int, code: str, message: str = "problem", fields: list[str] | None = None) -> Any:
    return status, [{"errorCode": code, "message": message, "fields": fields or []}]


# -- fetch_opportunity ---------------------------------------------------------------------------------


def test_fetch_opportunity_reads_everything_with_one_query(
    fake_http: FakeSalesforceHttp, client: SalesforceClient
) -> None:
    lines = child_page(
        [line("00kDn0000001AAA", "SKU-1", 2.0, 100.5), line("00kDn0000002AAA", "SKU-2", 1.0, 0.0)]
    )
    fake_http.reply("GET", QUERY_PATH, opportunity_page(lines))

    snapshot = client.fetch_opportunity(OPPORTUNITY_ID)

    [query_call] = fake_http.calls("GET", QUERY_PATH)
    soql = query_call.query["q"][0]
    assert soql.startswith("SELECT Id, ")
    assert soql.endswith(f"WHERE Id = '{OPPORTUNITY_ID}'")
    assert "FROM OpportunityLineItems" in soql
    assert snapshot.opportunity == {
        "Id": OPPORTUNITY_ID,
        "Name": "Acme renewal",
        "AccountId": ACCOUNT_ID,
        "Amount": Decimal("1234.56"),
        "IsWon": True,
    }
    assert snapshot.account == {"Id": ACCOUNT_ID, "Name": "Acme Ltd", "BillingCity": "Zürich"}
    assert snapshot.lines == [
        {
            "Id": "00kDn0000001AAA",
            "Quantity": Decimal("2.0"),
            "UnitPrice": Decimal("100.5"),
            "Product2": {"ProductCode": "SKU-1"},
        },
        {
            "Id": "00kDn0000002AAA",
            "Quantity": Decimal("1.0"),
            "UnitPrice": Decimal("0.0"),
            "Product2": {"ProductCode": "SKU-2"},
        },
    ]
    assert field_value(snapshot.lines[0], "Product2.ProductCode") == "SKU-1"
    assert (snapshot.opportunity_id, snapshot.account_id) == (OPPORTUNITY_ID, ACCOUNT_ID)


def test_an_opportunity_without_lines_or_account(
    fake_http: FakeSalesforceHttp, client: SalesforceClient
) -> None:
    fake_http.reply("GET", QUERY_PATH, opportunity_page(lines=None, account=None))

    snapshot = client.fetch_opportunity(OPPORTUNITY_ID)

    assert snapshot.lines == []
    assert snapshot.account is None
    assert snapshot.account_id is None
    assert len(fake_http.calls("GET", QUERY_PATH)) == 1


def test_line_items_beyond_the_first_page_are_followed(
    fake_http: FakeSalesforceHttp, client: SalesforceClient
) -> None:
    next_path = f"{QUERY_PATH}01gDn000000abcd-200"
    first = child_page([line("00kDn0000001AAA", "SKU-1", 1.0, 1.0)], next_url=next_path)
    fake_http.reply("GET", QUERY_PATH, opportunity_page(first))
    fake_http.reply("GET", next_path, (200, child_page([line("00kDn0000002AAA", "SKU-2", 1.0, 2.0)])))

    snapshot = client.fetch_opportunity(OPPORTUNITY_ID)

    assert [item["Id"] for item in snapshot.lines] == ["00kDn0000001AAA", "00kDn0000002AAA"]


def test_a_missing_opportunity_is_record_not_found(
    fake_http: FakeSalesforceHttp, client: SalesforceClient
) -> None:
    fake_http.reply("GET", QUERY_PATH, (200, {"totalSize": 0, "done": True, "records": []}))

    with pytest.raises(RecordNotFound, match=OPPORTUNITY_ID) as raised:
        client.fetch_opportunity(OPPORTUNITY_ID)

    assert isinstance(raised.value, PermanentSalesforceError)


def test_configured_custom_fields_are_requested(
    fake_http: FakeSalesforceHttp, make_client: Callable[..., SalesforceClient]
) -> None:
    fields = OpportunityQueryFields().with_extra(
        line_fields=["Free_Addon__c"], account_fields=["Credit_Hold__c"]
    )
    client = make_client(query_fields=fields)
    fake_http.reply("GET", QUERY_PATH, opportunity_page(None))

    client.fetch_opportunity(OPPORTUNITY_ID)

    soql = fake_http.calls("GET", QUERY_PATH)[0].query["q"][0]
    assert "Free_Addon__c FROM OpportunityLineItems" in soql
    assert "Account.Credit_Hold__c" in soql


def test_fetch_account(fake_http: FakeSalesforceHttp, client: SalesforceClient) -> None:
    record = {"attributes": attributes("Account", ACCOUNT_ID), "Id": ACCOUNT_ID, "Name": "Acme Ltd"}
    fake_http.reply("GET", QUERY_PATH, (200, {"totalSize": 1, "done": True, "records": [record]}))

    assert client.fetch_account(ACCOUNT_ID) == {"Id": ACCOUNT_ID, "Name": "Acme Ltd"}
    assert (
        fake_http.calls("GET", QUERY_PATH)[0]
        .query["q"][0]
        .endswith(f"FROM Account WHERE Id = '{ACCOUNT_ID}'")
    )


# -- sessions and re-authentication --------------------------------------------------------------------


def test_an_expired_session_is_renewed_once_and_the_call_repeated(
    fake_http: FakeSalesforceHttp, client: SalesforceClient
) -> None:
    fake_http.reply("GET", QUERY_PATH, opportunity_page(None), opportunity_page(None))
    client.fetch_opportunity(OPPORTUNITY_ID)

    fake_http.expire_tokens()
    snapshot = client.fetch_opportunity(OPPORTUNITY_ID)

    assert snapshot.opportunity_id == OPPORTUNITY_ID
    assert len(fake_http.calls("POST", TOKEN_PATH)) == 2
    authorizations = [call.headers["Authorization"] for call in fake_http.calls("GET", QUERY_PATH)]
    assert len(authorizations) == 3  # ok, refused, repeated with the new token
    assert authorizations[1] == authorizations[0] != authorizations[2]


def test_a_session_refused_again_after_renewal_is_not_retried_forever(
    fake_http: FakeSalesforceHttp, client: SalesforceClient
) -> None:
    refused = (401, [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}])
    fake_http.reply("GET", QUERY_PATH, refused, refused, opportunity_page(None))

    with pytest.raises(SalesforceAuthenticationError, match="INVALID_SESSION_ID"):
        client.fetch_opportunity(OPPORTUNITY_ID)

    assert len(fake_http.calls("GET", QUERY_PATH)) == 2
    assert len(fake_http.calls("POST", TOKEN_PATH)) == 2


def test_every_call_has_a_timeout(fake_http: FakeSalesforceHttp, client: SalesforceClient) -> None:
    fake_http.reply("GET", QUERY_PATH, opportunity_page(None))
    fake_http.reply("POST", COMPOSITE_PATH, (200, {"compositeResponse": []}))

    client.fetch_opportunity(OPPORTUNITY_ID)
    client.write_back([RecordUpdate(object_type="Account", record_id=ACCOUNT_ID, fields={"Name": "x"})])

    assert [call.timeout for call in fake_http.requests] == [client.settings.timeout_seconds] * 3


def test_the_configured_ca_bundle_wins_over_the_environment(
    fake_http: FakeSalesforceHttp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/other-bundle.pem")
    session = SalesforceSession(timeout_seconds=3, ca_file="/etc/sfintacct/ca.pem")
    session.mount("https://", fake_http)

    session.get("https://acme.my.salesforce.com/services/oauth2/token")
    requests_session_default = SalesforceSession(timeout_seconds=3, ca_file=None)
    requests_session_default.mount("https://", fake_http)
    requests_session_default.get("https://acme.my.salesforce.com/services/oauth2/token", timeout=1)

    assert [(call.verify, call.timeout) for call in fake_http.requests] == [
        ("/etc/sfintacct/ca.pem", 3),
        ("/etc/ssl/other-bundle.pem", 1),
    ]


def test_only_reads_are_retried_on_server_errors() -> None:
    policy = read_retry_policy(2)

    for status in sorted(RETRY_STATUSES):
        assert policy.is_retry("GET", status)
        assert not policy.is_retry("POST", status)
        assert not policy.is_retry("PATCH", status)
    assert not policy.is_retry("GET", 400)
    assert not policy.is_retry("GET", 403)


# -- error types ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "error_type", "code"),
    [
        (
            sf_error(400, "MALFORMED_QUERY", "unexpected token: FROM"),
            PermanentSalesforceError,
            "MALFORMED_QUERY",
        ),
        (
            sf_error(400, "INVALID_FIELD", "No such column 'Foo__c'"),
            PermanentSalesforceError,
            "INVALID_FIELD",
        ),
        (
            sf_error(400, "INVALID_TYPE", "sObject type 'Foo' is not supported"),
            PermanentSalesforceError,
            "INVALID_TYPE",
        ),
        (
            sf_error(404, "NOT_FOUND", "The requested resource does not exist"),
            PermanentSalesforceError,
            "NOT_FOUND",
        ),
        (sf_error(403, "INSUFFICIENT_ACCESS", "no access"), PermanentSalesforceError, "INSUFFICIENT_ACCESS"),
        (
            sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."),
            SalesforceApiLimitExceeded,  # a fault of the set-up: the work waits for the allowance
            "REQUEST_LIMIT_EXCEEDED",
        ),
        (
            sf_error(400, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access"),
            TransientSalesforceError,
            "UNABLE_TO_LOCK_ROW",
        ),
        (
            sf_error(503, "SERVER_UNAVAILABLE", "Server unavailable"),
            TransientSalesforceError,
            "SERVER_UNAVAILABLE",
        ),
        ((500, "<html>Internal Server Error</html>"), TransientSalesforceError, "HTTP_500"),
        ((502, None), TransientSalesforceError, "HTTP_502"),
    ],
)
def test_salesforce_errors_are_typed_transient_or_permanent(
    fake_http: FakeSalesforceHttp,
    client: SalesforceClient,
    reply: tuple[int, Any],
    error_type: type[Exception],
    code: str,
) -> None:
    fake_http.reply("GET", QUERY_PATH, reply)

    with pytest.raises(error_type) as raised:
        client.query("SELECT Id FROM Opportunity")

    error = raised.value
    assert isinstance(error, PermanentSalesforceError | TransientSalesforceError | SalesforceApiLimitExceeded)
    assert error.error_codes == (code,)
    assert error.status == reply[0]
    assert code in str(error)
    assert error.transient is (error_type is TransientSalesforceError)


@pytest.mark.parametrize(
    "failure",
    [
        requests.ConnectionError("connection reset"),
        requests.ReadTimeout("read timed out"),
        requests.ConnectTimeout("x"),
    ],
)
def test_network_failures_are_transient(
    fake_http: FakeSalesforceHttp, client: SalesforceClient, failure: Exception
) -> None:
    fake_http.reply("GET", QUERY_PATH, failure)

    with pytest.raises(TransientSalesforceError, match=type(failure).__name__):
        client.fetch_opportunity(OPPORTUNITY_ID)


def test_an_untrusted_certificate_is_permanent(
    fake_http: FakeSalesforceHttp, client: SalesforceClient
) -> None:
    fake_http.reply(
        "GET",
        QUERY_PATH,
        requests.exceptions.SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] self-signed certificate"),
    )

    with pytest.raises(PermanentSalesforceError, match="CA bundle"):
        client.query("SELECT Id FROM Account")


# -- write_back ----------------------------------------------------------------------------------------

SUCCESS = (
    200,
    {
        "compositeResponse": [
            {"body": None, "httpHeaders": {}, "httpStatusCode": 204, "referenceId": "update0"},
            {"body": None, "httpHeaders": {}, "httpStatusCode": 204, "referenceId": "update1"},
        ]
    },
)


def write_back_updates() -> list[RecordUpdate]:
    synced_at = datetime(2026, 3, 31, 23, 30, 5, 120000, tzinfo=timezone(timedelta(hours=2)))
    return [
        RecordUpdate(
            object_type="Account",
            record_id=ACCOUNT_ID,
            fields={"Intacct_Customer_Id__c": "C-00042", "Intacct_Sync_Status__c": "Synced"},
        ),
        RecordUpdate(
            object_type="Opportunity",
            record_id=OPPORTUNITY_ID,
            fields={"Intacct_Order_Id__c": "Sales Order-SO0042", "Intacct_Synced_At__c": synced_at},
        ),
        RecordUpdate(
            object_type="Account", record_id=ACCOUNT_ID, fields={"Intacct_Last_Synced__c": synced_at}
        ),
        RecordUpdate(
            object_type="Opportunity",
            record_id=OPPORTUNITY_ID,
            fields={
                "Intacct_Sync_Error__c": None,
                "Amount": Decimal("1234.50"),
                "CloseDate": date(2026, 3, 31),
            },
        ),
    ]


def test_write_back_sends_one_all_or_none_composite_call(
    fake_http: FakeSalesforceHttp, client: SalesforceClient
) -> None:
    fake_http.reply("POST", COMPOSITE_PATH, SUCCESS)

    client.write_back(write_back_updates())

    [call] = fake_http.calls("POST", COMPOSITE_PATH)
    assert call.headers["Content-Type"] == "application/json"
    assert call.json() == {
        "allOrNone": True,
        "compositeRequest": [
            {
                "method": "PATCH",
                "url": f"{API}/sobjects/Account/{ACCOUNT_ID}",
                "referenceId": "update0",
                "body": {
                    "Intacct_Customer_Id__c": "C-00042",
                    "Intacct_Sync_Status__c": "Synced",
                    "Intacct_Last_Synced__c": "2026-03-31T21:30:05.120Z",
                },
            },
            {
                "method": "PATCH",
                "url": f"{API}/sobjects/Opportunity/{OPPORTUNITY_ID}",
                "referenceId": "update1",
                "body": {
                    "Intacct_Order_Id__c": "Sales Order-SO0042",
                    "Intacct_Synced_At__c": "2026-03-31T21:30:05.120Z",
                    "Intacct_Sync_Error__c": None,
                    "Amount": 1234.5,
                    "CloseDate": "2026-03-31",
                },
            },
        ],
    }
    assert len(fake_http.requests) == 2  # the token and the composite call


def test_write_back_of_nothing_calls_nothing(fake_http: FakeSalesforceHttp, client: SalesforceClient) -> None:
    client.write_back([])

    assert fake_http.requests == []


def test_a_failed_subrequest_reports_the_record_and_salesforce_error(
    fake_http: FakeSalesforceHttp, client: SalesforceClient
) -> None:
    halted = [{"errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled back."}]
    invalid = [
        {
            "errorCode": "FIELD_CUSTOM_VALIDATION_EXCEPTION",
            "message": "Closed opportunities cannot change",
            "fields": ["Intacct_Order_Id__c"],
        }
    ]
    fake_http.reply(
        "POST",
        COMPOSITE_PATH,
        (
            200,
            {
                "compositeResponse": [
                    {"body": halted, "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "update0"},
                    {"body": invalid, "httpHeaders": {}, "httpStatusCode": 400, "referenceId": "update1"},
                ]
            },
        ),
    )

    with pytest.raises(PermanentSalesforceError) as raised:
        client.write_back(write_back_updates())

    error = raised.value
    assert type(error) is PermanentSalesforceError
    assert error.error_codes == ("FIELD_CUSTOM_VALIDATION_EXCEPTION",)
    assert error.details[0].reference == f"Opportunity {OPPORTUNITY_ID}"
    assert error.details[0].fields == ("Intacct_Order_Id__c",)
    assert "nothing was saved" in str(error)
    assert f"Opportunity {OPPORTUNITY_ID}: FIELD_CUSTOM_VALIDATION_EXCEPTION: Closed opportunities" in str(
        error
    )


@pytest.mark.parametrize(
    ("code", "status", "error_type"),
    [
        ("UNABLE_TO_LOCK_ROW", 400, TransientSalesforceError),
        ("ENTITY_IS_DELETED", 400, RecordNotFound),
        ("NOT_FOUND", 404, RecordNotFound),
        ("INVALID_FIELD_FOR_INSERT_UPDATE", 400, PermanentSalesforceError),
    ],
)
def test_composite_failures_are_typed(
    fake_http: FakeSalesforceHttp,
    client: SalesforceClient,
    code: str,
    status: int,
    error_type: type[Exception],
) -> None:
    body = [{"errorCode": code, "message": "problem"}]
    fake_http.reply(
        "POST",
        COMPOSITE_PATH,
        (
            200,
            {
                "compositeResponse": [
                    {"body": body, "httpHeaders": {}, "httpStatusCode": status, "referenceId": "update0"}
                ]
            },
        ),
    )

    with pytest.raises(error_type) as raised:
        client.write_back(write_back_updates()[:1])

    assert getattr(raised.value, "error_codes", None) == (code,)


def test_a_composite_call_refused_as_a_whole_is_typed(
    fake_http: FakeSalesforceHttp, client: SalesforceClient
) -> None:
    fake_http.reply(
        "POST", COMPOSITE_PATH, sf_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
    )

    with pytest.raises(SalesforceApiLimitExceeded, match="REQUEST_LIMIT_EXCEEDED"):
        client.write_back(write_back_updates())


def test_write_back_input_is_checked() -> None:
    with pytest.raises(ValidationError, match="record id"):
        RecordUpdate(object_type="Account", record_id="001' OR 1=1", fields={"Name": "x"})
    with pytest.raises(ValidationError, match="time zone"):
        RecordUpdate(
            object_type="Account",
            record_id=ACCOUNT_ID,
            fields={"Intacct_Last_Synced__c": datetime(2026, 1, 1)},
        )
    with pytest.raises(ValidationError, match="not an updatable field name"):
        RecordUpdate(object_type="Account", record_id=ACCOUNT_ID, fields={"Id": ACCOUNT_ID})
    with pytest.raises(ValidationError, match="at least one field"):
        RecordUpdate(object_type="Account", record_id=ACCOUNT_ID, fields={})


def test_more_than_25_records_do_not_fit_one_composite_call(client: SalesforceClient) -> None:
    updates = [
        RecordUpdate(object_type="Account", record_id=f"001Dn00000XyZ{index:02d}", fields={"Name": "x"})
        for index in range(26)
    ]

    with pytest.raises(ValueError, match="at most 25"):
        client.write_back(updates)


def test_client_repr_has_no_secrets(
    client: SalesforceClient, client_credentials_settings: SalesforceSettings
) -> None:
    assert client_credentials_settings.client_secret is not None
    assert client_credentials_settings.client_secret.get_secret_value() not in repr(client)
    assert "acme.my.salesforce.com" in repr(client)
