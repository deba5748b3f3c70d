"""One Outbound Message of 100 won deals, each with a 32,000-character Description, syncs all 100.

Salesforce documents no size limit for an Outbound Message: it sends up to 100 notifications in one
message, each with every field the admin chose, and an Opportunity Description holds 32,000
characters. Such a message (about 3.3 MB) must be acknowledged and every deal must become an Intacct
order; a refused message would be retried for 24 hours and then dropped, deals and all.

The message is built here as Salesforce writes it and POSTed over the wire to the local API, for 100
Opportunities that exist and are won in the Salesforce sandbox. While they are closed, the sandbox's
own closed-won Outbound Message is switched off, so every order can only come from this message (the
sync log says so: each Opportunity's outcome carries this message's notification id). The queue
messages it makes stay small whatever the Description: see the intake's unit and integration tests.
"""

from __future__ import annotations

import secrets
import ssl
import string
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from decimal import Decimal
from typing import Any
from xml.sax.saxutils import escape

import httpx
import pytest
from defusedxml.ElementTree import fromstring

from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.sales_rep import Line, SalesRep
from sandbox.salesforce.schema import format_soap_datetime
from sandbox.stack import LocalStack
from sfintacct.intake.field_values import parse_salesforce_timestamp
from sfintacct.salesforce_ids import case_safe_suffix
from sfintacct.sync.sync_log import SyncLog
from tests.e2e.conftest import settle

pytestmark = pytest.mark.e2e

DEALS = 100  # the most Salesforce puts in one Outbound Message
DESCRIPTION_LENGTH = 32_000  # Opportunity.Description: Long Text Area(32000)
CLOSED_WON_MESSAGE = "Opportunity_Closed_Won"
SETTLE_SECONDS = 300.0
SOAP_ENVELOPE_NS = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
HEADERS = {
    "Content-Type": "text/xml; charset=utf-8",
    "SOAPAction": '""',
    "User-Agent": "Jakarta Commons-HttpClient/3.1",
}


@pytest.mark.timeout(SETTLE_SECONDS + 300)
def test_one_outbound_message_of_100_deals_with_full_descriptions_syncs_all_100(
    stack: LocalStack, rep: SalesRep, intacct: IntacctAdminClient, sync_log: SyncLog
) -> None:
    salesforce = stack.info["salesforce"]
    account_id = rep.create(
        "Account", {"Name": f"Großkunde {secrets.token_hex(3)} AG", "BillingCity": "Köln"}
    )
    with outbound_message_switched_off(salesforce, CLOSED_WON_MESSAGE) as closed_won:
        opportunity_ids = [
            rep.deal(account_id, f"Fleet deal {n}", (Line("SUB-PLATFORM", Decimal(1), Decimal(12000)),))
            for n in range(DEALS)
        ]
        for n, opportunity_id in enumerate(opportunity_ids):
            rep.update(
                "Opportunity", opportunity_id, {"StageName": "Closed Won", "Description": description(n)}
            )
    records = rep.query(
        "SELECT Id, Name, AccountId, StageName, IsWon, LastModifiedDate, Description FROM Opportunity "
        f"WHERE AccountId = '{account_id}'"
    )
    assert sorted(record["Id"] for record in records) == sorted(opportunity_ids)
    assert all(record["IsWon"] is True for record in records)
    assert all(len(record["Description"]) == DESCRIPTION_LENGTH for record in records)
    notification_ids = {record["Id"]: new_id("04l") for record in records}
    body = outbound_message(salesforce, closed_won["action_id"], records, notification_ids)
    assert len(body) > DEALS * DESCRIPTION_LENGTH

    response = httpx.post(stack.info["outbound_url"], content=body, headers=HEADERS, timeout=60)

    assert response.status_code == 200, response.text[:1000]
    assert is_acknowledgement(response.text)
    settle(stack, SETTLE_SECONDS)
    orders = Counter(record.get("PONUMBER") for record in intacct.records("SODOCUMENT"))
    assert {opportunity_id: orders[opportunity_id] for opportunity_id in opportunity_ids} == dict.fromkeys(
        opportunity_ids, 1
    )
    for opportunity_id in opportunity_ids:
        entries = sync_log.history(opportunity_id)
        # Only this message's notification for the deal reached a worker, and it synced it once.
        assert {(entry.source, entry.producer_id) for entry in entries} == {
            ("outbound_message", notification_ids[opportunity_id])
        }, opportunity_id
        assert [entry.status for entry in entries].count("synced") == 1, opportunity_id
    # Both sides know: the order id and status were written back onto every Opportunity.
    written_back = rep.query(
        "SELECT Id, Intacct_Order_Id__c, Intacct_Sync_Status__c FROM Opportunity "
        f"WHERE AccountId = '{account_id}'"
    )
    assert {record["Intacct_Sync_Status__c"] for record in written_back} == {"Synced"}
    assert all(record["Intacct_Order_Id__c"] for record in written_back)
    # Nothing else told the workers about these deals.
    sent_by_salesforce = {
        record_id
        for delivery in rep.admin.outbound()
        if delivery["definition"] == CLOSED_WON_MESSAGE
        for record_id in delivery["record_ids"]
    }
    assert sent_by_salesforce.isdisjoint(opportunity_ids)


@contextmanager
def outbound_message_switched_off(salesforce: Mapping[str, Any], name: str) -> Iterator[dict[str, Any]]:
    """Take one Outbound Message definition out of the sandbox (admin API) and put it back after."""
    with httpx.Client(
        base_url=salesforce["admin_url"].rstrip("/"),
        verify=ssl.create_default_context(cafile=salesforce["ca_file"]),
        timeout=30,
    ) as admin:
        definitions: list[dict[str, Any]] = admin.get("/outbound/definitions").raise_for_status().json()
        [switched_off] = [definition for definition in definitions if definition["name"] == name]
        others = [definition for definition in definitions if definition["name"] != name]
        admin.put("/outbound/definitions", json=others).raise_for_status()
        try:
            yield switched_off
        finally:
            admin.put("/outbound/definitions", json=definitions).raise_for_status()


def description(number: int) -> str:
    """Exactly DESCRIPTION_LENGTH characters, with text XML escapes and letters outside ASCII."""
    paragraph = f"Deal {number}: fleet rollout & terms <phase 2> for Zürich, Köln and São Paulo. "
    return (paragraph * (DESCRIPTION_LENGTH // len(paragraph) + 1))[:DESCRIPTION_LENGTH]


def new_id(key_prefix: str) -> str:
    """A fresh 18-character Salesforce id with this key prefix."""
    body = key_prefix + "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))
    return body + case_safe_suffix(body)


def outbound_message(
    salesforce: Mapping[str, Any],
    action_id: str,
    records: list[dict[str, Any]],
    notification_ids: Mapping[str, str],
) -> bytes:
    """The SOAP 1.1 `notifications` request Salesforce POSTs, one Notification per Opportunity."""
    org_id = salesforce["org_id"]
    soap_base = f"{salesforce['instance_url']}/services/Soap"
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENVELOPE_NS}" xmlns:xsd="http://www.w3.org/2001/XMLSchema"'
        ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">',
        " <soapenv:Body>",
        f'  <notifications xmlns="{OUTBOUND_NS}">',
        f"   <OrganizationId>{org_id}</OrganizationId>",
        f"   <ActionId>{action_id}</ActionId>",
        '   <SessionId xsi:nil="true"/>',
        f"   <EnterpriseUrl>{escape(soap_base)}/c/{salesforce['api_version']}/{org_id[:15]}</EnterpriseUrl>",
        f"   <PartnerUrl>{escape(soap_base)}/u/{salesforce['api_version']}/{org_id[:15]}</PartnerUrl>",
    ]
    for record in records:
        fields = {
            "Id": record["Id"],
            "AccountId": record["AccountId"],
            "Description": record["Description"],
            "IsWon": "true",
            "LastModifiedDate": format_soap_datetime(parse_salesforce_timestamp(record["LastModifiedDate"])),
            "Name": record["Name"],
            "StageName": record["StageName"],
        }
        lines += [
            "   <Notification>",
            f"    <Id>{notification_ids[record['Id']]}</Id>",
            '    <sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">',
            *(f"     <sf:{name}>{escape(value)}</sf:{name}>" for name, value in fields.items()),
            "    </sObject>",
            "   </Notification>",
        ]
    lines += ["  </notifications>", " </soapenv:Body>", "</soapenv:Envelope>"]
    return "\n".join(lines).encode("utf-8")


def is_acknowledgement(text: str) -> bool:
    ack = fromstring(text).find(
        f"{{{SOAP_ENVELOPE_NS}}}Body/{{{OUTBOUND_NS}}}notificationsResponse/{{{OUTBOUND_NS}}}Ack"
    )
    return ack is not None and (ack.text or "").strip() == "true"
