"""Outbound Messages: the corpus parses into the right SyncRequests; hostile input is refused, unsent."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from intake_support import (
    CUSTOMER_QUEUE_URL,
    FIXTURES,
    NOW,
    ORDER_QUEUE_URL,
    ORG_ID,
    OTHER_ORG_ID,
    OUTBOUND_TOKEN,
    SYNC_REQUEST_KEYS,
    RecordingQueueSender,
    StaticSecret,
    large_outbound_message,
    make_service,
    outbound_message_xml,
    salesforce_id,
)

from sfintacct.intake.errors import (
    EnqueueFailed,
    IntakeError,
    MalformedRequest,
    RequestTooLarge,
    SecretUnavailable,
    SenderNotAllowed,
    UnsupportedObject,
)
from sfintacct.intake.limits import MAX_REQUEST_BODY_BYTES
from sfintacct.sync_request import SyncRequest

SOAP = "text/xml; charset=utf-8"


def _fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


# ---------------------------------------------------------------- the corpus Salesforce sends


def test_closed_won_opportunity_becomes_one_request_on_the_order_queue() -> None:
    service, sender = make_service()

    accepted = service.accept_outbound_message(
        _fixture("valid/opportunity_closed_won.xml"), SOAP, OUTBOUND_TOKEN
    )

    assert [r.producer_id for r in accepted.requests] == ["04l5g00000Q7mPaAAJ"]
    assert sender.messages(CUSTOMER_QUEUE_URL) == []
    [request] = sender.requests(ORDER_QUEUE_URL)
    assert request.source == "outbound_message"
    assert request.org_id == ORG_ID
    assert request.object_type == "Opportunity"
    assert request.record_id == "0065g00000Bq3RTAAZ"
    assert request.producer_id == "04l5g00000Q7mPaAAJ"
    assert request.last_modified == datetime(2026, 11, 28, 16, 20, 11, tzinfo=UTC)
    assert request.received_at == NOW
    # Ids and timestamps only: the worker reads the Opportunity itself.
    [message] = sender.messages(ORDER_QUEUE_URL)
    assert set(json.loads(message.body)) == SYNC_REQUEST_KEYS
    assert "Müller" not in message.body


def test_several_accounts_with_non_ascii_text_become_one_request_each_on_the_customer_queue() -> None:
    service, sender = make_service()

    service.accept_outbound_message(_fixture("valid/accounts_several_non_ascii.xml"), SOAP, OUTBOUND_TOKEN)

    requests = sender.requests(CUSTOMER_QUEUE_URL)
    assert sender.messages(ORDER_QUEUE_URL) == []
    assert [r.record_id for r in requests] == [
        "0015g00000Nt4XaAAJ",
        "0015g00000Nt4XbAAJ",
        "0015g00000Nt4XcAAJ",
    ]
    assert [r.producer_id for r in requests] == [
        "04l5g00000Q7mPbAAJ",
        "04l5g00000Q7mPcAAJ",
        "04l5g00000Q7mPdAAJ",
    ]
    assert requests[2].last_modified == datetime(2026, 11, 28, 9, 17, 45, tzinfo=UTC)
    # Each queue message says what it is about, for observability.
    assert [m.attributes["object_type"] for m in sender.messages()] == ["Account"] * 3
    assert [m.attributes["producer_id"] for m in sender.messages()] == [r.producer_id for r in requests]


def test_any_namespace_prefixes_and_fifteen_character_ids_are_understood() -> None:
    service, sender = make_service()

    service.accept_outbound_message(
        _fixture("valid/other_prefixes.xml"), "application/soap+xml", OUTBOUND_TOKEN
    )

    [request] = sender.requests(ORDER_QUEUE_URL)
    assert request.org_id == ORG_ID  # sent as 00D5g000004ZxYt
    assert request.record_id == "0065g00000Bq3RUAAZ"  # sent as 0065g00000Bq3RU
    assert request.producer_id == "04l5g00000Q7mPeAAJ"  # sent as 04l5g00000Q7mPe
    assert request.last_modified is None


def test_nil_empty_and_omitted_fields_are_accepted_and_the_session_id_is_dropped() -> None:
    service, sender = make_service()

    service.accept_outbound_message(_fixture("valid/nil_and_omitted_fields.xml"), SOAP, OUTBOUND_TOKEN)

    [message] = sender.messages(ORDER_QUEUE_URL)
    [request] = sender.requests(ORDER_QUEUE_URL)
    assert request.record_id == "0065g00000Bq3RTAAZ"
    assert "SessionValueThatMustNeverBeKept" not in message.body
    assert "SessionId" not in message.body


def test_one_hundred_notifications_give_one_hundred_requests_in_batches_of_ten() -> None:
    record_ids = [salesforce_id("006", n) for n in range(100)]
    notification_ids = [salesforce_id("04l", n) for n in range(100)]
    body = outbound_message_xml(
        [
            (nid, "Opportunity", {"Id": rid, "Name": f"Deal №{n}"})
            for n, (nid, rid) in enumerate(zip(notification_ids, record_ids, strict=True))
        ]
    )
    service, sender = make_service()

    accepted = service.accept_outbound_message(body, SOAP, OUTBOUND_TOKEN)

    assert len(accepted.requests) == 100
    assert [len(batch) for _, batch in sender.batches] == [10] * 10
    requests = sender.requests(ORDER_QUEUE_URL)
    assert [r.record_id for r in requests] == record_ids
    assert [r.producer_id for r in requests] == notification_ids


def test_a_token_is_required_when_configured_and_accepted_when_right() -> None:
    service, sender = make_service(secret=StaticSecret(token=OUTBOUND_TOKEN))

    service.accept_outbound_message(_fixture("valid/opportunity_closed_won.xml"), SOAP, OUTBOUND_TOKEN)

    assert len(sender.requests(ORDER_QUEUE_URL)) == 1


# ---------------------------------------------------------------- hostile and wrong messages

HOSTILE_CORPUS = [
    ("hostile/billion_laughs.xml", MalformedRequest, 400, "DTD"),
    ("hostile/external_entity.xml", MalformedRequest, 400, "DTD"),
    ("hostile/external_dtd.xml", MalformedRequest, 400, "DTD"),
    ("hostile/parameter_entity.xml", MalformedRequest, 400, "DTD"),
    ("hostile/not_xml.txt", MalformedRequest, 400, "not well-formed XML"),
    ("hostile/truncated.xml", MalformedRequest, 400, "not well-formed XML"),
    ("hostile/soap12_envelope.xml", MalformedRequest, 400, "SOAP 1.2"),
    ("hostile/wrong_body_element.xml", MalformedRequest, 400, "one notifications element"),
    ("hostile/missing_organization_id.xml", MalformedRequest, 400, "no OrganizationId"),
    ("hostile/no_notifications.xml", MalformedRequest, 400, "no Notification"),
    ("hostile/missing_notification_id.xml", MalformedRequest, 400, "Notification 1 has no Id"),
    ("hostile/missing_sobject_id.xml", MalformedRequest, 400, "sObject has no Id"),
    ("hostile/bad_record_id_prefix.xml", MalformedRequest, 400, "not an Opportunity id"),
    ("hostile/bad_record_id_suffix.xml", MalformedRequest, 400, "suffix that does not match"),
    ("hostile/second_notification_bad_id.xml", MalformedRequest, 400, "Notification 2"),
    ("hostile/unsupported_object_contact.xml", UnsupportedObject, 400, "object 'Contact' is not synced"),
    ("hostile/wrong_org.xml", SenderNotAllowed, 403, "organization 00D5g000009QwErEAK is not allowed"),
]


@pytest.mark.parametrize(("name", "error_type", "status", "message"), HOSTILE_CORPUS)
def test_hostile_corpus_is_refused_with_a_clear_reason_and_nothing_is_enqueued(
    name: str, error_type: type[IntakeError], status: int, message: str
) -> None:
    service, sender = make_service()

    with pytest.raises(error_type) as refused:
        service.accept_outbound_message(_fixture(name), SOAP, OUTBOUND_TOKEN)

    assert refused.value.http_status == status
    assert message in refused.value.message
    assert sender.attempts == 0


def test_external_entity_content_never_reaches_an_error_message() -> None:
    service, _ = make_service()
    with pytest.raises(MalformedRequest) as refused:
        service.accept_outbound_message(_fixture("hostile/external_entity.xml"), SOAP, OUTBOUND_TOKEN)
    assert "root:" not in refused.value.message


def test_more_than_one_hundred_notifications_are_refused() -> None:
    body = outbound_message_xml(
        [(salesforce_id("04l", n), "Account", {"Id": salesforce_id("001", n)}) for n in range(101)]
    )
    service, sender = make_service()

    with pytest.raises(MalformedRequest, match="101 notifications; Salesforce sends at most 100") as refused:
        service.accept_outbound_message(body, SOAP, OUTBOUND_TOKEN)
    assert refused.value.http_status == 400
    assert sender.attempts == 0


def test_a_body_larger_than_lambda_takes_is_refused_with_413_before_parsing() -> None:
    padding = "x" * MAX_REQUEST_BODY_BYTES
    body = outbound_message_xml(
        [(salesforce_id("04l", 1), "Account", {"Id": salesforce_id("001", 1), "Description": padding})]
    )
    service, sender = make_service()

    with pytest.raises(RequestTooLarge) as refused:
        service.accept_outbound_message(body, SOAP, OUTBOUND_TOKEN)

    assert refused.value.http_status == 413
    assert f"at most {MAX_REQUEST_BODY_BYTES} bytes (6 MiB, the AWS Lambda request limit)" in (
        refused.value.message
    )
    assert sender.attempts == 0


def test_a_body_of_exactly_the_lambda_limit_is_not_refused_for_its_size() -> None:
    template = outbound_message_xml(
        [(salesforce_id("04l", 1), "Account", {"Id": salesforce_id("001", 1), "Description": "{pad}"})]
    )
    body = template.replace("{pad}", "x" * (MAX_REQUEST_BODY_BYTES - len(template.encode()) + len("{pad}")))
    assert len(body.encode()) == MAX_REQUEST_BODY_BYTES
    service, sender = make_service()

    service.accept_outbound_message(body, SOAP, OUTBOUND_TOKEN)

    assert len(sender.requests(CUSTOMER_QUEUE_URL)) == 1


def test_one_hundred_opportunities_with_full_descriptions_are_accepted_and_stay_small_on_the_queue() -> None:
    """An admin added Description (32,000 characters) to the message: 3.2 MB, as Salesforce sends it."""
    body, notification_ids, record_ids = large_outbound_message(100, description_length=32_000)
    assert len(body.encode()) > 3_200_000
    service, sender = make_service()

    accepted = service.accept_outbound_message(body, SOAP, OUTBOUND_TOKEN)

    assert accepted.producer_ids == notification_ids
    messages = sender.messages(ORDER_QUEUE_URL)
    assert [SyncRequest.model_validate_json(m.body).record_id for m in messages] == record_ids
    assert max(len(m.body.encode()) for m in messages) < 512
    assert max(m.size() for m in messages) < 1024
    assert [len(batch) for _, batch in sender.batches] == [10] * 10


def test_an_unsupported_object_anywhere_in_the_message_refuses_all_of_it() -> None:
    body = outbound_message_xml(
        [
            (salesforce_id("04l", 1), "Account", {"Id": salesforce_id("001", 1)}),
            (salesforce_id("04l", 2), "Lead", {"Id": salesforce_id("00Q", 2)}),
        ]
    )
    service, sender = make_service()

    with pytest.raises(UnsupportedObject, match="object 'Lead' is not synced"):
        service.accept_outbound_message(body, SOAP, OUTBOUND_TOKEN)
    assert sender.attempts == 0


@pytest.mark.parametrize("token", [None, "", "wrong-token", OUTBOUND_TOKEN[:-1], OUTBOUND_TOKEN + "x"])
def test_a_missing_or_wrong_token_is_refused_with_403(token: str | None) -> None:
    service, sender = make_service(secret=StaticSecret(token=OUTBOUND_TOKEN))

    with pytest.raises(SenderNotAllowed, match="token") as refused:
        service.accept_outbound_message(_fixture("valid/opportunity_closed_won.xml"), SOAP, token)

    assert refused.value.http_status == 403
    assert OUTBOUND_TOKEN not in refused.value.message
    assert sender.attempts == 0


@pytest.mark.parametrize(
    "content_type",
    [None, "", "application/json", "text/plain", "application/x-www-form-urlencoded", "text/xmlx"],
)
def test_a_wrong_content_type_is_refused_with_400(content_type: str | None) -> None:
    service, sender = make_service()

    with pytest.raises(MalformedRequest, match="Content-Type must be text/xml or application/soap"):
        service.accept_outbound_message(
            _fixture("valid/opportunity_closed_won.xml"), content_type, OUTBOUND_TOKEN
        )
    assert sender.attempts == 0


@pytest.mark.parametrize(
    "content_type", ["text/xml", "TEXT/XML; charset=UTF-8", "application/soap+xml; charset=utf-8; action=x"]
)
def test_soap_content_types_with_parameters_are_accepted(content_type: str) -> None:
    service, sender = make_service()
    service.accept_outbound_message(
        _fixture("valid/opportunity_closed_won.xml"), content_type, OUTBOUND_TOKEN
    )
    assert len(sender.requests()) == 1


def test_an_org_on_a_multi_org_allow_list_is_accepted_in_its_fifteen_character_form() -> None:
    service, sender = make_service(org_ids=(OTHER_ORG_ID, ORG_ID))
    body = _fixture("valid/opportunity_closed_won.xml").replace(ORG_ID, ORG_ID[:15])

    accepted = service.accept_outbound_message(body, SOAP, OUTBOUND_TOKEN)

    assert accepted.org_id == ORG_ID
    assert sender.requests()[0].org_id == ORG_ID


def test_a_failed_enqueue_is_reported_so_salesforce_retries_the_whole_message() -> None:
    body = outbound_message_xml(
        [(salesforce_id("04l", n), "Account", {"Id": salesforce_id("001", n)}) for n in range(15)]
    )
    service, sender = make_service(sender=RecordingQueueSender(fail_on_batch=2))

    with pytest.raises(EnqueueFailed) as failed:
        service.accept_outbound_message(body, SOAP, OUTBOUND_TOKEN)

    assert failed.value.http_status == 503
    assert failed.value.fault_code == "Server"
    # The first batch is already queued: the retried message makes duplicates the workers drop.
    assert len(sender.messages()) == 10


def test_an_unreadable_secret_is_a_retryable_server_error() -> None:
    service, sender = make_service(secret=StaticSecret(unavailable=True))

    with pytest.raises(SecretUnavailable) as failed:
        service.accept_outbound_message(_fixture("valid/opportunity_closed_won.xml"), SOAP, OUTBOUND_TOKEN)

    assert failed.value.http_status == 503
    assert sender.attempts == 0
