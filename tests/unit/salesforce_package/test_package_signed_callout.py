"""The Apex action signs and shapes its callouts exactly as the intake checks them.

Apex runs only in an org, so the link is a known answer: the Apex tests assert that the class signs
KNOWN_BODY at KNOWN_TIMESTAMP with KNOWN_KEY as KNOWN_SIGNATURE and builds KNOWN_BODY from the known
ids; here the intake's own code (sfintacct.intake.platform_event) checks those same values."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from sfpkg_support import CLASSES_DIR, FORCE_APP, xml_root

from sfintacct.intake.platform_event import (
    EVENT_UUID_FIELD,
    MAX_EVENTS_PER_REQUEST,
    ORGANIZATION_ID_FIELD,
    RECORD_ID_FIELDS,
    SIGNATURE_HEADER,
    SIGNATURE_TIMESTAMP_HEADER,
    event_org_id,
    parse_event_callout,
    sync_request_from_platform_event,
    verify_event_signature,
)

METADATA_NS = "{http://soap.sforce.com/2006/04/metadata}"
CONSTANT = re.compile(r"static final (?:String|Integer) ([A-Z_]+) =\s*'?([^';]*)'?;")


def _constants(class_name: str) -> dict[str, str]:
    return dict(CONSTANT.findall((CLASSES_DIR / f"{class_name}.cls").read_text()))


APEX = _constants("SfintacctSyncCallout")
KNOWN = _constants("SfintacctSyncCalloutTest")


def test_the_known_signature_is_the_one_the_intake_expects() -> None:
    verify_event_signature(
        body=KNOWN["KNOWN_BODY"].encode(),
        timestamp_header=KNOWN["KNOWN_TIMESTAMP"],
        signature_header=KNOWN["KNOWN_SIGNATURE"],
        signing_key=KNOWN["KNOWN_KEY"].encode("utf-8"),
        now=float(KNOWN["KNOWN_TIMESTAMP"]),
        max_age_seconds=300,
    )


def test_the_known_body_is_an_event_the_intake_turns_into_a_sync_request() -> None:
    (event,) = parse_event_callout(KNOWN["KNOWN_BODY"].encode())

    assert event_org_id(event) == KNOWN["KNOWN_ORGANIZATION_ID"]
    request = sync_request_from_platform_event(
        event,
        source="platform_event",
        org_id=KNOWN["KNOWN_ORGANIZATION_ID"],
        received_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    assert (request.object_type, request.record_id) == ("Opportunity", KNOWN["KNOWN_OPPORTUNITY_ID"])
    assert request.producer_id == KNOWN["KNOWN_EVENT_UUID"]


def test_the_apex_class_uses_the_intake_names() -> None:
    assert APEX["SIGNATURE_HEADER"] == SIGNATURE_HEADER
    assert APEX["SIGNATURE_TIMESTAMP_HEADER"] == SIGNATURE_TIMESTAMP_HEADER
    assert APEX["EVENT_UUID_FIELD"] == EVENT_UUID_FIELD
    assert APEX["ORGANIZATION_ID_FIELD"] == ORGANIZATION_ID_FIELD
    assert {APEX["OPPORTUNITY_ID_FIELD"]: "Opportunity", APEX["ACCOUNT_ID_FIELD"]: "Account"} == dict(
        RECORD_ID_FIELDS
    )
    assert int(APEX["MAX_EVENTS_PER_CALLOUT"]) == MAX_EVENTS_PER_REQUEST


def test_the_apex_class_posts_through_the_named_credential_of_the_package() -> None:
    (named_credential,) = FORCE_APP.rglob("*.namedCredential-meta.xml")
    name = named_credential.name.removesuffix(".namedCredential-meta.xml")
    assert APEX["ENDPOINT"] == f"callout:{name}"
    root = xml_root(named_credential)
    url = root.find(f"{METADATA_NS}namedCredentialParameters[{METADATA_NS}parameterType='Url']")
    assert url is not None
    assert url.findtext(f"{METADATA_NS}parameterValue") == "%%SFINTACCT_EVENTS_URL%%"


def test_the_retry_flow_calls_the_apex_action_with_the_record_id() -> None:
    path = next(FORCE_APP.rglob("Sfintacct_Retry_Sync.flow-meta.xml"))
    flow = xml_root(path)
    (action,) = flow.findall(f"{METADATA_NS}actionCalls")
    assert action.findtext(f"{METADATA_NS}actionType") == "apex"
    assert action.findtext(f"{METADATA_NS}actionName") == "SfintacctSyncCallout"
    assert action.findtext(f"{METADATA_NS}inputParameters/{METADATA_NS}name") == "recordId"
    apex = (CLASSES_DIR / "SfintacctSyncCallout.cls").read_text()
    assert "public Id recordId;" in apex
    assert "public String message;" in apex
    assert "{!Send_Sync_Request.message}" in path.read_text()
