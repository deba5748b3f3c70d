"""Forged notifications change nothing: no queue message, no worker run, no Salesforce or Intacct call,
no DynamoDB item.

The stack is the local one minus its usual API part: DynamoDB Local, moto (SQS, Secrets Manager), the
Intacct and Salesforce sandboxes and the workers as Lambda runs them, with the intake behind two local
APIs: plain HTTP (a token or nothing) and HTTPS with mutual TLS (a custom domain whose truststore holds
a client CA; the intake trusts one subject from it). The forgeries name a real Account of the Salesforce
sandbox and the right org id, so one that got through would reach the workers, Salesforce, Intacct and
the crosswalk; a genuine message (the control) shows the counters move when something does.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import ssl
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.aws_local import dynamodb_client, sqs_client
from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.local_api import LocalApi, load_intake_handler, start_local_api
from sandbox.sales_rep import THREE_LINES, Line, SalesRep
from sandbox.salesforce.admin_client import SalesforceAdminClient
from sandbox.stack import (
    DynamoDBPart,
    EnvironmentChanges,
    IntacctPart,
    LocalStack,
    MotoPart,
    SalesforcePart,
    StackContext,
    StackPart,
    WorkersPart,
    start_local_stack,
)
from sandbox.tls import LocalClientCertificate, create_client_ca

pytestmark = pytest.mark.integration

FORGERIES = 200
VISIBILITY_SECONDS = 10
SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
TRUSTED_COMMON_NAME = "proxy.salesforce.local"
# As an admin would copy it: RFC 4514 order; the local API reports the certificate's own order.
TRUSTED_SUBJECT = f"CN={TRUSTED_COMMON_NAME}, OU=Outbound Messaging, O=Salesforce\\, Inc."


class IntakeBehindTwoApis:
    """A stack part: the intake with a token in its secret and mutual TLS configured, behind a plain
    HTTP local API and an HTTPS one that requires a client certificate from the local client CA."""

    name = "api"

    def __init__(self) -> None:
        self.token = secrets.token_urlsafe(32)
        self.signing_key = secrets.token_hex(32)
        self.plain: LocalApi | None = None
        self.mutual_tls: LocalApi | None = None
        self._environment = EnvironmentChanges()

    def start(self, context: StackContext) -> None:
        secret: dict[str, Any] = {
            "outbound_message_tokens": [self.token],
            "event_signing_key": self.signing_key,
        }
        arn = context.put_secret("intake", secret)
        client_ca = create_client_ca(context.state_dir / "client-ca", "Outbound client CA (local)")
        self.trusted = client_ca.issue(
            "salesforce",
            common_name=TRUSTED_COMMON_NAME,
            organization_name="Salesforce, Inc.",
            organization_unit_name="Outbound Messaging",
        )
        self.wrong_subject = client_ca.issue("someone-else", common_name="someone.else.local")
        impostor_ca = create_client_ca(context.state_dir / "impostor-ca", "Outbound client CA (local)")
        self.impostor = impostor_ca.issue(  # the trusted subject, from a CA the truststore does not hold
            "impostor",
            common_name=TRUSTED_COMMON_NAME,
            organization_name="Salesforce, Inc.",
            organization_unit_name="Outbound Messaging",
        )
        self.server_ca_file = context.tls.ca_file
        environment = context.function_environment("IntakeFunction", {"IntakeSecretArn": arn})
        environment["OUTBOUND_CLIENT_CERT_SUBJECT"] = TRUSTED_SUBJECT
        self._environment.apply(environment)
        handler = load_intake_handler()
        self.plain = start_local_api(handler, port=0)
        self.mutual_tls = start_local_api(handler, port=0, tls=context.tls, client_ca_file=client_ca.ca_file)
        context.info["api_url"] = self.plain.url

    def stop(self) -> None:
        for api in (self.plain, self.mutual_tls):
            if api is not None:
                api.stop()
        self.plain = self.mutual_tls = None
        self._environment.restore()

    def summary(self) -> list[str]:
        return []

    def pids(self) -> list[int]:
        return []

    def client(self, certificate: LocalClientCertificate | None) -> httpx.Client:
        """A client of the mutual TLS API presenting `certificate` (or none)."""
        verify = (
            certificate.client_context(self.server_ca_file)
            if certificate is not None
            else ssl.create_default_context(cafile=str(self.server_ca_file))
        )
        return httpx.Client(verify=verify, timeout=30)


@dataclass
class Target:
    stack: LocalStack
    intake: IntakeBehindTwoApis
    org_id: str
    account_id: str
    salesforce: SalesforceAdminClient
    intacct: IntacctAdminClient

    @property
    def plain(self) -> LocalApi:
        assert self.intake.plain is not None
        return self.intake.plain

    @property
    def mutual_tls(self) -> LocalApi:
        assert self.intake.mutual_tls is not None
        return self.intake.mutual_tls

    def counters(self) -> dict[str, int]:
        """What would move if a notification got through, read from the stack's own counters."""
        info = self.stack.info
        sqs = sqs_client(info["sqs_endpoint"], info["region"])
        queue_messages = 0
        for queue_url in info["queues"].values():
            attributes = sqs.get_queue_attributes(
                QueueUrl=queue_url,
                AttributeNames=[
                    "ApproximateNumberOfMessages",
                    "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed",
                ],
            )["Attributes"]
            queue_messages += sum(int(value) for value in attributes.values())
        dynamodb = dynamodb_client(info["dynamodb_endpoint"], info["region"])
        dynamodb_items = sum(
            dynamodb.scan(TableName=table, Select="COUNT", ConsistentRead=True)["Count"]
            for table in info["tables"].values()
        )
        return {
            "queue_messages": queue_messages,
            "worker_invocations": sum(
                function["invocations"] for function in self.stack.poller.stats().values()
            ),
            "salesforce_calls": int(self.salesforce.counts()["requests"]),
            "intacct_calls": int(self.intacct.counts()["requests"]),
            "dynamodb_items": dynamodb_items,
        }

    def settle(self) -> None:
        assert self.stack.wait_until_settled(60), "the stack did not settle"

    def new_account(self, name: str) -> str:
        """An Account created in the Salesforce sandbox by a sales rep (Intacct has never seen it)."""
        rep = SalesRep(self.stack.info["salesforce"])
        try:
            return rep.create("Account", {"Name": name, "BillingCity": "Seattle"})
        finally:
            rep.close()

    def won_deal_nobody_notified(self, name: str) -> tuple[str, bytes]:
        """A won deal made by the integration user (whose changes send no Outbound Message), and the
        Outbound Message Salesforce would send for it; the Account id is returned with it."""
        salesforce = self.stack.info["salesforce"]
        integration = SalesRep(salesforce, username=salesforce["username"])
        try:
            integration.products()
            account_id = integration.create("Account", {"Name": name, "BillingCity": "Seattle"})
            opportunity_id = integration.deal(account_id, f"{name} deal", THREE_LINES[:1])
            integration.close_won(opportunity_id)
            return account_id, _opportunity_outbound_message(
                self, integration.read("Opportunity", opportunity_id)
            )
        finally:
            integration.close()

    def customers_of(self, account_id: str) -> list[dict[str, object]]:
        return [
            record for record in self.intacct.records("CUSTOMER") if record.get("SALESFORCE_ID") == account_id
        ]

    def outbound_message(self, account_id: str | None = None) -> bytes:
        """An Outbound Message about a real Account (the module's unless told), with the right org id."""
        account_id = account_id or self.account_id
        notification_id = _new_id("04l")
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
            '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
            f"<OrganizationId>{self.org_id}</OrganizationId><ActionId>04k5g000000Ab1CAAS</ActionId>"
            '<SessionId xsi:nil="true"/>'
            f"<Notification><Id>{notification_id}</Id>"
            '<sObject xsi:type="sf:Account" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
            f"<sf:Id>{account_id}</sf:Id><sf:Name>Forged Industries</sf:Name></sObject></Notification>"
            "</notifications></soapenv:Body></soapenv:Envelope>"
        ).encode()


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    intake = IntakeBehindTwoApis()
    parts: list[StackPart] = [
        DynamoDBPart(),
        MotoPart(),
        IntacctPart(),
        SalesforcePart(),
        intake,
        WorkersPart(),
    ]
    state_dir: Path = tmp_path_factory.mktemp("forged-stack")
    with start_local_stack(
        state_dir,
        ephemeral=True,
        parts=parts,
        write_stack_file=False,
        queue_visibility_seconds=VISIBILITY_SECONDS,
    ) as stack:
        info = stack.info
        target = Target(
            stack=stack,
            intake=intake,
            org_id=info["salesforce"]["org_id"],
            account_id="",
            salesforce=SalesforceAdminClient(info["salesforce"]["admin_url"], info["salesforce"]["ca_file"]),
            intacct=IntacctAdminClient(info["intacct"]["admin_url"], info["intacct"]["ca_file"]),
        )
        target.account_id = target.new_account("Forged Industries")
        yield target


def _new_id(prefix: str) -> str:
    """An 18-character id of the right shape (the intake checks the case-safe suffix)."""
    from sfintacct.salesforce_ids import case_safe_suffix  # noqa: PLC0415

    body = prefix + "".join(
        secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz0123456789") for _ in range(12)
    )
    return body + case_safe_suffix(body)


def _forged_tokens(token: str) -> list[dict[str, str]]:
    """Query strings of 200 forgeries: no token, empty, wrong ones of every length, near misses, and the
    right token under another name (the intake reads only `token`)."""
    near_misses = [
        token[:-1],
        token + "A",
        token[1:],
        token.upper(),
        token.swapcase(),
        token[::-1],
        token[:-1] + ("A" if token[-1] != "A" else "B"),
        " " + token,
    ]
    queries: list[dict[str, str]] = [{}, {"token": ""}]
    queries += [{"token": candidate} for candidate in near_misses]
    queries += [{"Token": token}, {"TOKEN": token}, {"token ": token}, {"t": token}]
    while len(queries) < FORGERIES:
        queries.append({"token": secrets.token_urlsafe(secrets.choice([8, 24, 32, 48]))})
        queries.append({})
    return queries[:FORGERIES]


def _wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _assert_nothing_moved(target: Target, before: dict[str, int]) -> None:
    target.settle()  # a message that got through would be picked up and worked on by now
    after = target.counters()
    assert after == before
    assert after["queue_messages"] == 0


def test_200_forged_outbound_messages_with_the_right_org_id_and_no_or_a_wrong_token_change_nothing(
    target: Target,
) -> None:
    target.settle()
    before = target.counters()
    statuses = []

    with httpx.Client(timeout=30) as client:
        for query in _forged_tokens(target.intake.token):
            response = client.post(
                f"{target.plain.url}/salesforce/outbound",
                params=query,
                content=target.outbound_message(),
                headers={**SOAP_HEADERS, "Authorization": f"Bearer {target.intake.token}"},
            )
            statuses.append(response.status_code)
            assert "Ack" not in response.text

    assert statuses == [403] * FORGERIES
    _assert_nothing_moved(target, before)


def test_200_forged_signed_events_with_bad_signatures_change_nothing(target: Target) -> None:
    target.settle()
    before = target.counters()
    key = target.intake.signing_key.encode()
    other_key = secrets.token_hex(32).encode()
    statuses = []

    with httpx.Client(timeout=30) as client:
        for number in range(FORGERIES):
            body = json.dumps({"EventUuid": f"forged-{number}", "AccountId__c": target.account_id}).encode()
            now = str(int(time.time()))
            stale = str(int(time.time()) - 3600)
            headers = {"Content-Type": "application/json", "X-Signature-Timestamp": now}
            match number % 5:
                case 0:  # random hex
                    headers["X-Signature"] = secrets.token_hex(32)
                case 1:  # signed with another key
                    headers["X-Signature"] = hmac.new(
                        other_key, now.encode() + b"." + body, hashlib.sha256
                    ).hexdigest()
                case 2:  # the right key over another body (a replayed signature)
                    headers["X-Signature"] = hmac.new(key, now.encode() + b".{}", hashlib.sha256).hexdigest()
                case 3:  # the right key, but an hour old
                    headers["X-Signature-Timestamp"] = stale
                    headers["X-Signature"] = hmac.new(
                        key, stale.encode() + b"." + body, hashlib.sha256
                    ).hexdigest()
                case _:  # no signature at all
                    pass
            response = client.post(f"{target.plain.url}/salesforce/events", content=body, headers=headers)
            statuses.append(response.status_code)

    assert statuses == [401] * FORGERIES
    _assert_nothing_moved(target, before)


def test_with_mutual_tls_200_forgeries_without_the_trusted_certificate_or_a_token_change_nothing(
    target: Target,
) -> None:
    target.settle()
    before = target.counters()
    handshake_failures = target.mutual_tls.handshake_failures
    intake = target.intake
    outcomes: dict[str, int] = {"handshake refused": 0, "403": 0, "other": 0}
    presenters = [None, intake.impostor, intake.wrong_subject, intake.wrong_subject]

    for number in range(FORGERIES):
        certificate = presenters[number % len(presenters)]
        query = {"token": secrets.token_urlsafe(32)} if number % 8 == 3 else {}
        with intake.client(certificate) as client:
            try:
                response = client.post(
                    f"{target.mutual_tls.url}/salesforce/outbound",
                    params=query,
                    content=target.outbound_message(),
                    headers=SOAP_HEADERS,
                )
            except httpx.TransportError:
                outcomes["handshake refused"] += 1
                continue
        outcomes["403" if response.status_code == 403 else "other"] += 1

    # No certificate, or one from a CA the truststore does not hold: refused in the TLS handshake.
    # The trusted CA's certificate for another subject, without the right token: refused by the intake.
    assert outcomes == {"handshake refused": FORGERIES // 2, "403": FORGERIES // 2, "other": 0}
    assert _wait_for(lambda: target.mutual_tls.handshake_failures == handshake_failures + FORGERIES // 2)
    _assert_nothing_moved(target, before)


def test_the_trusted_client_certificate_without_a_token_is_accepted_over_mutual_tls(target: Target) -> None:
    account_id, message = target.won_deal_nobody_notified("Certified Supplies")
    target.settle()
    assert target.customers_of(account_id) == []

    with target.intake.client(target.intake.trusted) as client:
        response = client.post(
            f"{target.mutual_tls.url}/salesforce/outbound", content=message, headers=SOAP_HEADERS
        )

    assert response.status_code == 200, response.text
    assert "<Ack>true</Ack>" in response.text
    target.settle()
    assert len(target.customers_of(account_id)) == 1


def test_the_counters_see_a_genuine_message_so_their_zeros_mean_something(target: Target) -> None:
    account_id, message = target.won_deal_nobody_notified("Genuine Goods")
    target.settle()
    before = target.counters()

    response = httpx.post(
        f"{target.plain.url}/salesforce/outbound",
        params={"token": target.intake.token},
        content=message,
        headers=SOAP_HEADERS,
        timeout=30,
    )

    assert response.status_code == 200, response.text
    target.settle()
    after = target.counters()
    # One genuine notification moves every counter the forgeries left alone (the queue is empty again
    # because the worker took and deleted the message).
    for counter in ("worker_invocations", "salesforce_calls", "intacct_calls", "dynamodb_items"):
        assert after[counter] > before[counter], counter
    assert after["queue_messages"] == 0
    assert len(target.customers_of(account_id)) == 1


def _opportunity_outbound_message(target: Target, opportunity: dict[str, Any]) -> bytes:
    """The Outbound Message Salesforce sent when the deal was closed won (a new notification id each)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
        'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
        '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
        f"<OrganizationId>{target.org_id}</OrganizationId><ActionId>04k5g000000Ab2CAAS</ActionId>"
        '<SessionId xsi:nil="true"/>'
        f"<Notification><Id>{_new_id('04l')}</Id>"
        '<sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
        f"<sf:Id>{opportunity['Id']}</sf:Id><sf:IsWon>true</sf:IsWon>"
        f"<sf:LastModifiedDate>{opportunity['LastModifiedDate']}</sf:LastModifiedDate>"
        "</sObject></Notification></notifications></soapenv:Body></soapenv:Envelope>"
    ).encode()


def test_replays_of_a_deal_intacct_refused_cost_no_salesforce_or_intacct_call(target: Target) -> None:
    """100 forged replays (no or a wrong token) are refused at the door; 10 replays with the right token
    get through to the worker, which answers them from the crosswalk: the deal has not changed since
    Intacct refused it, so nothing is read or sent again."""
    rep = SalesRep(target.stack.info["salesforce"])
    try:
        account_id = rep.create("Account", {"Name": "Refused Retail", "BillingCity": "Seattle"})
        rep.product("NOT-AN-ITEM", "A product Intacct does not know", Decimal(100))
        opportunity_id = rep.deal(account_id, "Refused deal", [Line("NOT-AN-ITEM", Decimal(1), Decimal(100))])
        rep.close_won(opportunity_id)
        closed = rep.read("Opportunity", opportunity_id)
        message = _opportunity_outbound_message(target, closed)
        with httpx.Client(timeout=30) as client:
            first = client.post(
                f"{target.plain.url}/salesforce/outbound",
                params={"token": target.intake.token},
                content=message,
                headers=SOAP_HEADERS,
            )
            assert first.status_code == 200, first.text
            target.settle()
            assert rep.read("Opportunity", opportunity_id)["Intacct_Sync_Status__c"] == "Failed"
            before = target.counters()

            forged = [
                client.post(
                    f"{target.plain.url}/salesforce/outbound",
                    params=query,
                    content=_opportunity_outbound_message(target, closed),
                    headers=SOAP_HEADERS,
                ).status_code
                for query in _forged_tokens(target.intake.token)[:100]
            ]
            assert forged == [403] * 100
            _assert_nothing_moved(target, before)

            replays = [
                client.post(
                    f"{target.plain.url}/salesforce/outbound",
                    params={"token": target.intake.token},
                    content=_opportunity_outbound_message(target, closed),
                    headers=SOAP_HEADERS,
                ).status_code
                for _ in range(10)
            ]
        assert replays == [200] * 10
        target.settle()
        after = target.counters()
        assert after["worker_invocations"] > before["worker_invocations"]  # they did reach the worker
        assert (after["salesforce_calls"], after["intacct_calls"]) == (
            before["salesforce_calls"],
            before["intacct_calls"],
        )
        assert rep.read("Opportunity", opportunity_id)["Intacct_Sync_Status__c"] == "Failed"
        assert not [
            order for order in target.intacct.records("SODOCUMENT") if order["PONUMBER"] == opportunity_id
        ]
    finally:
        rep.close()
