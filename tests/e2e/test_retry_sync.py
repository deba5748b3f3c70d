"""Retry Sync: a deal that failed on its data is fixed in Salesforce, sent again, and synced once.

The "Retry Sync" quick action runs SfintacctSyncCallout (salesforce/force-app/main/default/classes/),
which posts a signed JSON list of events to the intake's events URL. Apex runs only in an org, so
`SyncCalloutMirror` below is that class in Python, line by line; the first tests hold it to the known
answer of the Apex tests (SfintacctSyncCalloutTest, as tests/unit/salesforce_package reads it), the
answer the Apex tests hold the class itself to. The end-to-end test then sends its callouts to the
local API's /salesforce/events, signed with the stack's own event_signing_key.

The fix is made where the mistake was: the rep sold a stale duplicate of a product, whose code finance
never set up as an Intacct item, and replaces that line with the catalog's product that is one.
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import ssl
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.aws_local import secretsmanager_client
from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.sales_rep import Line, SalesRep
from sandbox.salesforce.admin_client import SalesforceAdminClient
from sandbox.stack import LocalStack
from sfintacct.salesforce_ids import ACCOUNT_KEY_PREFIX, OPPORTUNITY_KEY_PREFIX, to_case_safe_id
from sfintacct.sync.sync_log import SyncLog
from tests.e2e.conftest import orders_of, settle

pytestmark = pytest.mark.e2e

PACKAGE_CHECKS_DIR = Path(__file__).resolve().parents[1] / "unit" / "salesforce_package"


def _apex_constants() -> tuple[dict[str, str], dict[str, str]]:
    """The constants of SfintacctSyncCallout and the known answer of SfintacctSyncCalloutTest, as the
    package checks read them (the module is imported under the name pytest gives it, from its own
    directory, so a run of both suites shares one copy)."""
    if str(PACKAGE_CHECKS_DIR) not in sys.path:
        sys.path.insert(0, str(PACKAGE_CHECKS_DIR))
    checks = importlib.import_module("test_package_signed_callout")
    return dict(checks.APEX), dict(checks.KNOWN)


APEX, KNOWN = _apex_constants()


# ---------------------------------------------------------------------------- SfintacctSyncCallout


# public static final ... of the class
SIGNATURE_HEADER = "X-Signature"
SIGNATURE_TIMESTAMP_HEADER = "X-Signature-Timestamp"
EVENT_UUID_FIELD = "EventUuid"
ORGANIZATION_ID_FIELD = "OrganizationId"
OPPORTUNITY_ID_FIELD = "OpportunityId__c"
ACCOUNT_ID_FIELD = "AccountId__c"
MAX_EVENTS_PER_CALLOUT = 100
TIMEOUT_MILLISECONDS = 30000
MAX_MESSAGE_BODY = 500

ONLY_ACCOUNTS_AND_OPPORTUNITIES = "Only Accounts and Opportunities can be sent to Sage Intacct."
NO_SIGNING_KEY = (
    "The sync request could not be signed: no Sfintacct Intake Key record exists. Ask your Salesforce admin."
)
SENT = "Sent to Sage Intacct sync. Intacct Sync Status shows the outcome shortly."


@dataclass(frozen=True)
class Result:
    """SfintacctSyncCallout.Result: what the flow shows the person who clicked Retry Sync."""

    success: bool
    message: str


@dataclass(frozen=True)
class Callout:
    """One HttpRequest as post() sets it up, and the answer it got (status None: unreachable)."""

    url: str
    headers: dict[str, str]
    body: str
    status: int | None
    answer: str


def record_id_field(record_id: str) -> str | None:
    """recordIdField: Id.getSObjectType() is read from the id's key prefix."""
    if record_id.startswith(OPPORTUNITY_KEY_PREFIX):
        return OPPORTUNITY_ID_FIELD
    if record_id.startswith(ACCOUNT_KEY_PREFIX):
        return ACCOUNT_ID_FIELD
    return None


def events_body(record_ids: Sequence[str], event_uuids: Sequence[str], organization_id: str) -> str:
    """eventsBody: JSON.createGenerator(false) writes no whitespace; String.valueOf(Id) is 18 characters."""
    events = [
        {
            EVENT_UUID_FIELD: event_uuids[index],
            str(record_id_field(record_id)): to_case_safe_id(record_id),
            ORGANIZATION_ID_FIELD: organization_id,
        }
        for index, record_id in enumerate(record_ids)
    ]
    return json.dumps(events, separators=(",", ":"), ensure_ascii=False)


def signature(timestamp: str, body: str, key: bytes) -> str:
    """signature: Crypto.generateMac('hmacSHA256', Blob.valueOf(timestamp + '.' + body), key), then
    EncodingUtil.convertToHex (lower-case hex)."""
    return hmac.new(key, (timestamp + "." + body).encode("utf-8"), hashlib.sha256).digest().hex()


def unix_seconds(now_milliseconds: int) -> str:
    """String.valueOf(Datetime.now().getTime() / 1000): Long division of the milliseconds."""
    return str(now_milliseconds // 1000)


def abbreviate(text: str, max_width: int) -> str:
    """String.abbreviate(maxWidth): at most maxWidth characters, the last three '...' when cut."""
    return text if len(text) <= max_width else text[: max_width - 3] + "..."


def clock_milliseconds() -> int:
    return time.time_ns() // 1_000_000


def random_uuid() -> str:
    return str(uuid.uuid4())


class SyncCalloutMirror:
    """SfintacctSyncCallout.send for `organization_id`'s org, whose newest Sfintacct_Intake_Key__c
    holds `signing_key` (None: no record); `events_url` is what the named credential Sfintacct_Intake
    holds. Like the Apex tests' IntakeMock, it keeps every callout it made."""

    def __init__(
        self,
        events_url: str,
        signing_key: str | None,
        organization_id: str,
        *,
        now_milliseconds: Callable[[], int] = clock_milliseconds,
        new_uuid: Callable[[], str] = random_uuid,
        transport: httpx.BaseTransport | None = None,
        verify: ssl.SSLContext | bool = True,
    ) -> None:
        self.events_url = events_url
        self.signing_key = signing_key
        self.organization_id = organization_id
        self.now_milliseconds = now_milliseconds
        self.new_uuid = new_uuid
        self.http = httpx.Client(transport=transport, verify=verify, timeout=TIMEOUT_MILLISECONDS / 1000)
        self.callouts: list[Callout] = []

    def close(self) -> None:
        self.http.close()

    def send(self, record_ids: Sequence[str | None]) -> list[Result | None]:
        results: list[Result | None] = []
        pending: list[int] = []
        for position, record_id in enumerate(record_ids):
            if record_id is None or record_id_field(record_id) is None:
                results.append(Result(False, ONLY_ACCOUNTS_AND_OPPORTUNITIES))
            else:
                results.append(None)
                pending.append(position)
        if not pending:
            return results
        if not (self.signing_key or "").strip():
            for position in pending:
                results[position] = Result(False, NO_SIGNING_KEY)
            return results
        key = str(self.signing_key).encode("utf-8")
        for start in range(0, len(pending), MAX_EVENTS_PER_CALLOUT):
            stop = min(start + MAX_EVENTS_PER_CALLOUT, len(pending))
            batch = [str(record_ids[pending[index]]) for index in range(start, stop)]
            outcome = self._post(batch, key)
            for index in range(start, stop):
                results[pending[index]] = outcome
        return results

    def _post(self, record_ids: Sequence[str], key: bytes) -> Result:
        event_uuids = [self.new_uuid() for _ in record_ids]
        body = events_body(record_ids, event_uuids, self.organization_id)
        timestamp = unix_seconds(self.now_milliseconds())
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: signature(timestamp, body, key),
        }
        try:
            response = self.http.post(self.events_url, content=body.encode("utf-8"), headers=headers)
        except httpx.TransportError as error:
            self.callouts.append(Callout(self.events_url, headers, body, None, str(error)))
            return Result(False, f"The sync service could not be reached: {error}")
        self.callouts.append(Callout(self.events_url, headers, body, response.status_code, response.text))
        if 200 <= response.status_code < 300:
            return Result(True, SENT)
        answer = abbreviate(response.text or "", MAX_MESSAGE_BODY)
        return Result(False, f"The sync service refused the request (HTTP {response.status_code}): {answer}")


# ---------------------------------------------------------------------------- the mirror is the Apex


def known_answer_mirror(transport: httpx.BaseTransport) -> SyncCalloutMirror:
    """The mirror in the Apex tests' org and moment: their key, organization, clock and EventUuid."""
    return SyncCalloutMirror(
        "https://intake.example.invalid/prod/salesforce/events",
        KNOWN["KNOWN_KEY"],
        KNOWN["KNOWN_ORGANIZATION_ID"],
        now_milliseconds=lambda: int(KNOWN["KNOWN_TIMESTAMP"]) * 1000 + 999,
        new_uuid=lambda: KNOWN["KNOWN_EVENT_UUID"],
        transport=transport,
    )


def test_the_mirror_uses_the_names_and_limits_of_the_apex_class() -> None:
    mirrored = {
        "SIGNATURE_HEADER": SIGNATURE_HEADER,
        "SIGNATURE_TIMESTAMP_HEADER": SIGNATURE_TIMESTAMP_HEADER,
        "EVENT_UUID_FIELD": EVENT_UUID_FIELD,
        "ORGANIZATION_ID_FIELD": ORGANIZATION_ID_FIELD,
        "OPPORTUNITY_ID_FIELD": OPPORTUNITY_ID_FIELD,
        "ACCOUNT_ID_FIELD": ACCOUNT_ID_FIELD,
        "MAX_EVENTS_PER_CALLOUT": str(MAX_EVENTS_PER_CALLOUT),
        "TIMEOUT_MILLISECONDS": str(TIMEOUT_MILLISECONDS),
        "MAX_MESSAGE_BODY": str(MAX_MESSAGE_BODY),
    }
    assert {name: APEX[name] for name in mirrored} == mirrored


def test_the_mirror_builds_the_known_body_and_signs_it_with_the_known_signature() -> None:
    body = events_body(
        [KNOWN["KNOWN_OPPORTUNITY_ID"]], [KNOWN["KNOWN_EVENT_UUID"]], KNOWN["KNOWN_ORGANIZATION_ID"]
    )

    assert body == KNOWN["KNOWN_BODY"]
    assert signature(KNOWN["KNOWN_TIMESTAMP"], body, KNOWN["KNOWN_KEY"].encode()) == KNOWN["KNOWN_SIGNATURE"]


def test_a_callout_of_the_mirror_carries_the_known_answer_in_its_headers_and_body() -> None:
    received: list[httpx.Request] = []

    def intake(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(202, json={"accepted": 1})

    mirror = known_answer_mirror(httpx.MockTransport(intake))
    try:
        results = mirror.send([KNOWN["KNOWN_OPPORTUNITY_ID"]])
    finally:
        mirror.close()

    assert results == [Result(True, SENT)]
    [request] = received
    assert request.method == "POST"
    assert request.content.decode() == KNOWN["KNOWN_BODY"]
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers[SIGNATURE_TIMESTAMP_HEADER] == KNOWN["KNOWN_TIMESTAMP"]  # whole seconds, cut
    assert request.headers[SIGNATURE_HEADER] == KNOWN["KNOWN_SIGNATURE"]


def test_the_mirror_refuses_other_records_reports_refusals_and_sends_a_hundred_events_at_most() -> None:
    def refusing_intake(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "signature rejected " + "x" * 600})

    mirror = known_answer_mirror(httpx.MockTransport(refusing_intake))
    try:
        results = mirror.send(["003000000000008AAA", None, *[KNOWN["KNOWN_OPPORTUNITY_ID"]] * 150])
    finally:
        mirror.close()

    assert results[:2] == [Result(False, ONLY_ACCOUNTS_AND_OPPORTUNITIES)] * 2
    assert [len(json.loads(callout.body)) for callout in mirror.callouts] == [100, 50]
    refused = results[2]
    assert refused is not None
    assert not refused.success
    assert refused.message.startswith('The sync service refused the request (HTTP 401): {"error":"signature')
    assert refused.message.endswith("...")
    assert len(refused.message) == len("The sync service refused the request (HTTP 401): ") + MAX_MESSAGE_BODY
    without_key = SyncCalloutMirror(
        "https://intake.example.invalid/events", None, KNOWN["KNOWN_ORGANIZATION_ID"]
    )
    try:
        assert without_key.send([KNOWN["KNOWN_OPPORTUNITY_ID"]]) == [Result(False, NO_SIGNING_KEY)]
    finally:
        without_key.close()
    assert without_key.callouts == []


# ---------------------------------------------------------------------------- Retry Sync end to end

STALE_CODE = "SUP-PREMIUM-2025"  # a duplicate in the Salesforce catalog; never an Intacct item
RIGHT_CODE = "SUP-PREMIUM"  # an item of the Intacct sandbox's seed data
PRICE = Decimal(3000)


@pytest.fixture
def retry_sync(stack: LocalStack) -> Iterator[SyncCalloutMirror]:
    """Retry Sync in the stack's org: the events URL of the local API (trusting the stack's CA when it
    serves HTTPS), and the key an admin put into Sfintacct_Intake_Key__c: the intake secret's
    event_signing_key."""
    secrets = secretsmanager_client(stack.info["secretsmanager_endpoint"], stack.info["region"])
    secret = json.loads(secrets.get_secret_value(SecretId=stack.info["secrets"]["intake"])["SecretString"])
    mirror = SyncCalloutMirror(
        f"{stack.info['api_url']}/salesforce/events",
        str(secret["event_signing_key"]),
        stack.info["salesforce"]["org_id"],
        verify=ssl.create_default_context(cafile=stack.info["ca_file"]),
    )
    yield mirror
    mirror.close()


def function_count(intacct: IntacctAdminClient, name: str) -> int:
    return int(intacct.counts()["functions"].get(name, 0))


def line_items(rep: SalesRep, opportunity_id: str) -> list[dict[str, Any]]:
    return rep.query(
        "SELECT Id, ProductCode, Quantity, UnitPrice FROM OpportunityLineItem "
        f"WHERE OpportunityId = '{opportunity_id}'"
    )


def replace_line(
    rep: SalesRep,
    opportunity_id: str,
    wrong_code: str,
    price_book_entry_id: str,
    quantity: Decimal,
    price: Decimal,
) -> None:
    """The rep's fix: Salesforce does not let a line change its product, so the line with the wrong
    product is deleted and one with the right product added."""
    [wrong] = [item for item in line_items(rep, opportunity_id) if item["ProductCode"] == wrong_code]
    response = rep.http.delete(f"/sobjects/OpportunityLineItem/{wrong['Id']}")
    assert response.status_code == httpx.codes.NO_CONTENT, response.text
    rep.create(
        "OpportunityLineItem",
        {
            "OpportunityId": opportunity_id,
            "PricebookEntryId": price_book_entry_id,
            "Quantity": str(quantity),
            "UnitPrice": str(price),
        },
    )


def order_lines(intacct: IntacctAdminClient, doc_id: str) -> list[tuple[str, Decimal, Decimal]]:
    lines = [line for line in intacct.records("SODOCUMENTENTRY") if line.get("DOCHDRID") == doc_id]
    return [
        (line["ITEMID"], Decimal(line["QUANTITY"]), Decimal(line["PRICE"]))
        for line in sorted(lines, key=lambda line: int(line["LINE_NO"]))
    ]


def event_uuid_of(callout: Callout) -> str:
    [event] = json.loads(callout.body)
    return str(event[EVENT_UUID_FIELD])


@pytest.fixture
def salesforce_admin(stack: LocalStack) -> Iterator[SalesforceAdminClient]:
    salesforce = stack.info["salesforce"]
    admin = SalesforceAdminClient(salesforce["admin_url"], salesforce["ca_file"])
    earlier = admin.config()["amount_rollup_fires_flows"]
    yield admin
    admin.set_config(amount_rollup_fires_flows=earlier)


def test_a_deal_that_failed_on_a_product_is_fixed_and_sent_again_with_retry_sync_and_syncs_once(
    stack: LocalStack,
    rep: SalesRep,
    intacct: IntacctAdminClient,
    sync_log: SyncLog,
    retry_sync: SyncCalloutMirror,
    salesforce_admin: SalesforceAdminClient,
) -> None:
    # Whether Salesforce runs record-triggered flows when a line change recomputes Amount is not
    # documented (sandbox/salesforce/README.md): here it does not, so the fix needs Retry Sync. (When it
    # does, the line change itself sends the deal again; tests/e2e/test_after_sync.py covers that.)
    salesforce_admin.set_config(amount_rollup_fires_flows=False)
    rep.product(STALE_CODE, "Premium support (2025 price list)", PRICE)
    right_product = rep.product(RIGHT_CODE, "Premium support", PRICE)
    account_id = rep.create("Account", {"Name": "Trey Research", "BillingCity": "Denver"})
    opportunity_id = rep.deal(account_id, "Trey Research support", [Line(STALE_CODE, Decimal(1), PRICE)])
    settle(stack)

    rep.close_won(opportunity_id)
    settle(stack)

    # Intacct refused the order; the rep sees why on the Opportunity.
    assert orders_of(intacct, opportunity_id) == []
    failed = rep.read("Opportunity", opportunity_id)
    assert failed["Intacct_Sync_Status__c"] == "Failed"
    assert STALE_CODE in failed["Intacct_Sync_Error__c"]
    assert [(entry.status, entry.reason) for entry in sync_log.history(opportunity_id)] == [
        ("failed", "intacct_rejected")
    ]

    # The fix alone sends nothing: the deal was already won, and its Amount roll-up runs no flow.
    replace_line(rep, opportunity_id, STALE_CODE, right_product, Decimal(1), PRICE)
    settle(stack)
    assert orders_of(intacct, opportunity_id) == []
    assert rep.read("Opportunity", opportunity_id)["Intacct_Sync_Status__c"] == "Failed"
    orders_tried = function_count(intacct, "create_sotransaction")

    # Retry Sync.
    assert retry_sync.send([opportunity_id]) == [Result(True, SENT)]
    [retried] = retry_sync.callouts
    assert retried.status == httpx.codes.ACCEPTED
    assert json.loads(retried.answer) == {"accepted": 1, "producer_ids": [event_uuid_of(retried)]}
    settle(stack)

    [order] = orders_of(intacct, opportunity_id)
    assert order_lines(intacct, order["DOCID"]) == [(RIGHT_CODE, Decimal(1), PRICE)]
    assert function_count(intacct, "create_sotransaction") - orders_tried == 1
    synced = rep.read("Opportunity", opportunity_id)
    assert synced["Intacct_Sync_Status__c"] == "Synced"
    assert synced["Intacct_Order_Id__c"] == order["DOCID"]
    assert synced["Intacct_Sync_Error__c"] is None
    history = sync_log.history(opportunity_id)
    assert [(entry.status, entry.reason) for entry in history] == [
        ("failed", "intacct_rejected"),
        ("synced", "created"),
    ]
    assert (history[-1].producer_id, history[-1].intacct_order_id) == (event_uuid_of(retried), order["DOCID"])

    # Retry Sync again, on a deal that is synced: a new event, and no second order.
    assert retry_sync.send([opportunity_id]) == [Result(True, SENT)]
    again = retry_sync.callouts[-1]
    assert again.status == httpx.codes.ACCEPTED
    assert event_uuid_of(again) != event_uuid_of(retried)
    settle(stack)

    assert [record["DOCID"] for record in orders_of(intacct, opportunity_id)] == [order["DOCID"]]
    assert function_count(intacct, "create_sotransaction") - orders_tried == 1
    still = rep.read("Opportunity", opportunity_id)
    assert (still["Intacct_Sync_Status__c"], still["Intacct_Order_Id__c"]) == ("Synced", order["DOCID"])
    last = sync_log.history(opportunity_id)[-1]
    assert (last.producer_id, last.status, last.reason) == (
        event_uuid_of(again),
        "already_synced",
        "order_exists",
    )
