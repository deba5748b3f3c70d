"""Event Relay (EventBridge): custom platform events and Change Data Capture fan-out and filtering."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from intake_support import (
    CUSTOMER_QUEUE_URL,
    INTEGRATION_USER_ID,
    ORDER_QUEUE_URL,
    ORG_ID,
    OTHER_ORG_ID,
    REPO_ROOT,
    SYNC_REQUEST_KEYS,
    make_service,
    salesforce_id,
)

from sfintacct.intake.errors import MalformedRequest, SenderNotAllowed

SOURCE = f"aws.partner/salesforce.com/{ORG_ID}/0YL5g000000Rl4YGAS"
TRANSACTION_KEY = "0002a3b4-c5d6-e7f8-a9b0-c1d2e3f4a5b6"


def _sample(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((REPO_ROOT / "events" / name).read_text(encoding="utf-8"))
    return document


def _change_event(entity: str = "Account", change_type: str = "UPDATE", **header: Any) -> dict[str, Any]:
    header_values: dict[str, Any] = {
        "entityName": entity,
        "recordIds": [salesforce_id("001" if entity == "Account" else "006", 1)],
        "changeType": change_type,
        "changedFields": ["Name", "LastModifiedDate"],
        "changeOrigin": "com/salesforce/api/rest/62.0;client=SfdcInternalAPI/",
        "transactionKey": TRANSACTION_KEY,
        "sequenceNumber": 3,
        "commitTimestamp": 1795882811000,
        "commitNumber": 11893451229876,
        "commitUser": "0055g00000RepAbAAJ",
    }
    header_values.update(header)
    return {
        "version": "0",
        "id": "3e5f7a9b-1c2d-4e3f-a4b5-c6d7e8f9a0b1",
        "detail-type": f"{entity}ChangeEvent",
        "source": SOURCE,
        "account": "123456789012",
        "time": "2026-11-28T16:20:11Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {
            "payload": {
                "ChangeEventHeader": header_values,
                "Name": "Acme GmbH",
                "BillingAddress": {"City": "Köln"},
            },
            "schemaId": "Wd0TXkG1Fu6cPPoBD9Yv0A",
            "id": "e3a7c1b9-5d2f-4e6a-8b1c-9d0e2f4a6b8c",
        },
    }


def test_the_sample_opportunity_change_event_becomes_one_request() -> None:
    service, sender = make_service()

    accepted = service.accept_relayed_event(_sample("eventbridge_opportunity_change_event.json"))

    assert accepted.ignored == []
    [request] = sender.requests(ORDER_QUEUE_URL)
    assert request.source == "change_data_capture"
    assert request.org_id == ORG_ID
    assert request.record_id == "0065g00000Bq3RTAAZ"
    assert request.producer_id == f"{TRANSACTION_KEY}:1:0065g00000Bq3RTAAZ"
    assert request.last_modified == datetime(2026, 11, 28, 16, 20, 11, tzinfo=UTC)
    # The message says which record changed, not how: the worker reads the record itself.
    [message] = sender.messages(ORDER_QUEUE_URL)
    assert set(json.loads(message.body)) == SYNC_REQUEST_KEYS
    assert "Closed Won" not in message.body


def test_the_sample_relayed_platform_event_is_keyed_on_its_event_uuid() -> None:
    service, sender = make_service()

    service.accept_relayed_event(_sample("eventbridge_platform_event.json"))

    [request] = sender.requests(ORDER_QUEUE_URL)
    assert request.source == "event_relay"
    assert request.producer_id == "b6f1a3c2-9d4e-4c1b-8e2f-7a5d3c9b1e04"
    assert request.record_id == "0065g00000Bq3RTAAZ"


def test_a_relayed_platform_event_without_event_uuid_falls_back_to_the_detail_id() -> None:
    event = _sample("eventbridge_platform_event.json")
    del event["detail"]["payload"]["EventUuid"]
    service, sender = make_service()

    service.accept_relayed_event(event)

    assert [r.producer_id for r in sender.requests()] == [event["detail"]["id"]]


def test_a_change_naming_several_records_fans_out_to_one_request_per_record() -> None:
    record_ids = [salesforce_id("001", n) for n in range(1, 4)]
    service, sender = make_service()

    accepted = service.accept_relayed_event(_change_event(recordIds=[record_ids[0][:15], *record_ids[1:]]))

    requests = sender.requests(CUSTOMER_QUEUE_URL)
    assert [r.record_id for r in requests] == record_ids
    assert [r.producer_id for r in requests] == [f"{TRANSACTION_KEY}:3:{rid}" for rid in record_ids]
    assert len(set(accepted.producer_ids)) == 3
    assert all("Acme GmbH" not in message.body for message in sender.messages())


@pytest.mark.parametrize("commit_user", [INTEGRATION_USER_ID, INTEGRATION_USER_ID[:15]])
def test_changes_made_by_the_integration_user_are_ignored_so_write_backs_do_not_echo(
    commit_user: str,
) -> None:
    service, sender = make_service()

    accepted = service.accept_relayed_event(_change_event(commitUser=commit_user))

    assert accepted.requests == []
    assert "integration user" in accepted.ignored[0]
    assert sender.attempts == 0


def test_without_an_integration_user_configured_every_change_is_synced() -> None:
    service, sender = make_service(integration_user_id=None)
    service.accept_relayed_event(_change_event(commitUser=INTEGRATION_USER_ID))
    assert len(sender.requests()) == 1


@pytest.mark.parametrize(
    ("entity", "change_type", "reason"),
    [
        ("Opportunity", "DELETE", "not synced"),
        ("Opportunity", "GAP_DELETE", "not synced"),
        ("Account", "GAP_OVERFLOW", "reconcile"),
    ],
)
def test_deleted_deals_and_overflow_gaps_are_ignored_with_a_reason(
    entity: str, change_type: str, reason: str
) -> None:
    service, sender = make_service()

    accepted = service.accept_relayed_event(_change_event(entity=entity, change_type=change_type))

    assert accepted.requests == []
    assert reason in accepted.ignored[0]
    assert sender.attempts == 0


@pytest.mark.parametrize("change_type", ["DELETE", "GAP_DELETE"])
def test_a_deleted_account_becomes_a_request_so_the_worker_logs_it(change_type: str) -> None:
    service, sender = make_service()

    accepted = service.accept_relayed_event(_change_event(entity="Account", change_type=change_type))

    assert accepted.ignored == []
    [request] = sender.requests()
    assert (request.object_type, request.record_id) == ("Account", salesforce_id("001", 1))


@pytest.mark.parametrize("change_type", ["CREATE", "UNDELETE", "GAP_CREATE", "GAP_UPDATE", "GAP_UNDELETE"])
def test_creates_undeletes_and_gap_events_become_requests(change_type: str) -> None:
    event = _change_event(entity="Opportunity", change_type=change_type)
    if change_type.startswith("GAP_"):
        event["detail"]["payload"] = {"ChangeEventHeader": event["detail"]["payload"]["ChangeEventHeader"]}
    service, sender = make_service()

    service.accept_relayed_event(event)

    [request] = sender.requests(ORDER_QUEUE_URL)
    assert request.record_id == salesforce_id("006", 1)


def test_wildcard_record_ids_are_skipped_and_the_rest_synced() -> None:
    service, sender = make_service()

    accepted = service.accept_relayed_event(_change_event(recordIds=["001*", salesforce_id("001", 9)]))

    assert [r.record_id for r in sender.requests()] == [salesforce_id("001", 9)]
    assert "wildcard" in accepted.ignored[0]


def test_changes_to_objects_we_do_not_sync_are_ignored() -> None:
    event = _change_event(entity="Contact", recordIds=[salesforce_id("003", 1)])
    service, sender = make_service()

    accepted = service.accept_relayed_event(event)

    assert "Contact changes are not synced" in accepted.ignored[0]
    assert sender.attempts == 0


def test_a_custom_event_naming_no_record_is_ignored() -> None:
    event = _sample("eventbridge_platform_event.json")
    event["detail-type"] = "Carbon_Comparison__e"
    event["detail"]["payload"] = {"EventUuid": "u1", "Total__c": 12}
    service, sender = make_service()

    accepted = service.accept_relayed_event(event)

    assert "names no Account or Opportunity" in accepted.ignored[0]
    assert sender.attempts == 0


def test_an_event_from_another_org_is_refused() -> None:
    event = _change_event()
    event["source"] = f"aws.partner/salesforce.com/{OTHER_ORG_ID}/0YL5g000000Rl4YGAS"
    service, sender = make_service()

    with pytest.raises(SenderNotAllowed):
        service.accept_relayed_event(event)
    assert sender.attempts == 0


def _without_payload(event: dict[str, Any]) -> None:
    del event["detail"]["payload"]


def _foreign_source(event: dict[str, Any]) -> None:
    event["source"] = "aws.partner/example.com/123/abc"


def _bad_record_id(event: dict[str, Any]) -> None:
    event["detail"]["payload"]["ChangeEventHeader"]["recordIds"] = ["0065g00000Bq3RTAAZ"]


def _no_transaction_key(event: dict[str, Any]) -> None:
    del event["detail"]["payload"]["ChangeEventHeader"]["transactionKey"]


def _no_record_ids(event: dict[str, Any]) -> None:
    event["detail"]["payload"]["ChangeEventHeader"]["recordIds"] = []


def _header_not_an_object(event: dict[str, Any]) -> None:
    event["detail"]["payload"]["ChangeEventHeader"] = "UPDATE"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_without_payload, "detail.payload"),
        (_foreign_source, "not a Salesforce partner event source"),
        (_bad_record_id, "not an Account id"),
        (_no_transaction_key, "transactionKey"),
        (_no_record_ids, "recordIds"),
        (_header_not_an_object, "ChangeEventHeader"),
    ],
)
def test_malformed_relayed_events_are_refused_so_they_end_in_the_dead_letter_queue(
    mutate: Any, message: str
) -> None:
    event = copy.deepcopy(_change_event())
    mutate(event)
    service, sender = make_service()

    with pytest.raises(MalformedRequest, match=message):
        service.accept_relayed_event(event)
    assert sender.attempts == 0
