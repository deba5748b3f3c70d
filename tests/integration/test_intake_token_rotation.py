"""Replacing the Outbound Message token without dropping a message, through the local API, with the
intake secret in (moto's) Secrets Manager.

An execution environment keeps the secret it read for INTAKE_SECRET_CACHE_SECONDS (300 in AWS; a few
seconds here), so a change to the secret reaches a warm environment only once its copy is that old.
The test shows both sides of it: right after an update the environment still answers with the copy it
has, and it answers with the new secret within the cache age, never before it.

Rotation, as the README describes it: add the new token beside the old one; wait out the cache age;
point Salesforce's Outbound Messages at ?token=<new>; once nothing is sent with the old one any more,
remove it; after the cache age only the new token is accepted.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from sandbox.local_api import LocalApi, load_intake_handler, start_local_api

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

pytestmark = pytest.mark.integration

ORG_ID = "00D5g000004ZxYtEAK"
CACHE_SECONDS = 3
SOAP_HEADERS = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'}
MESSAGE = (
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>'
    '<notifications xmlns="http://soap.sforce.com/2005/09/outbound">'
    f"<OrganizationId>{ORG_ID}</OrganizationId><ActionId>04k5g000000Ab1CAAS</ActionId>"
    "<Notification><Id>04l5g00000Q7mPaAAJ</Id>"
    '<sObject xsi:type="sf:Opportunity" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">'
    "<sf:Id>0065g00000Bq3RTAAZ</sf:Id></sObject></Notification>"
    "</notifications></soapenv:Body></soapenv:Envelope>"
).encode()


@dataclass
class RotationStack:
    api: LocalApi
    sqs: SQSClient
    secretsmanager: SecretsManagerClient
    secret_arn: str
    order_queue_url: str
    signing_key: str

    def store(self, **tokens: Any) -> None:
        """Replace the intake secret: its token keys as given, the event signing key kept."""
        value = {"event_signing_key": self.signing_key, **tokens}
        self.secretsmanager.put_secret_value(SecretId=self.secret_arn, SecretString=json.dumps(value))

    def status(self, token: str) -> int:
        response = httpx.post(
            f"{self.api.url}/salesforce/outbound",
            params={"token": token},
            content=MESSAGE,
            headers=SOAP_HEADERS,
        )
        return response.status_code

    def timed_status(self, token: str) -> tuple[float, int, float]:
        """When the request started, its status, when it ended (monotonic seconds)."""
        started = time.monotonic()
        status = self.status(token)
        return started, status, time.monotonic()

    def queued(self) -> int:
        count = 0
        while True:
            batch = self.sqs.receive_message(QueueUrl=self.order_queue_url, MaxNumberOfMessages=10).get(
                "Messages", []
            )
            if not batch:
                return count
            for message in batch:
                self.sqs.delete_message(QueueUrl=self.order_queue_url, ReceiptHandle=message["ReceiptHandle"])
            count += len(batch)


@pytest.fixture
def rotation(monkeypatch: pytest.MonkeyPatch) -> Iterator[RotationStack]:
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    suffix = uuid.uuid4().hex[:8]  # moto's in-process state is shared by every server in this process
    try:
        sqs = boto3.client("sqs", endpoint_url=endpoint, region_name="us-east-1")
        secretsmanager = boto3.client("secretsmanager", endpoint_url=endpoint, region_name="us-east-1")
        customer_queue_url = sqs.create_queue(QueueName=f"customer-upsert-{suffix}")["QueueUrl"]
        order_queue_url = sqs.create_queue(QueueName=f"opportunity-to-order-{suffix}")["QueueUrl"]
        secret_arn = secretsmanager.create_secret(Name=f"intake-{suffix}", SecretString="{}")["ARN"]
        for name, value in {
            "AWS_ENDPOINT_URL_SQS": endpoint,
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": endpoint,
            "SALESFORCE_ORG_IDS": ORG_ID,
            "CUSTOMER_QUEUE_URL": customer_queue_url,
            "ORDER_QUEUE_URL": order_queue_url,
            "INTAKE_SECRET_ARN": secret_arn,
            "INTAKE_SECRET_CACHE_SECONDS": str(CACHE_SECONDS),
            "POWERTOOLS_METRICS_DISABLED": "true",
        }.items():
            monkeypatch.setenv(name, value)
        api = start_local_api(load_intake_handler(), port=0)
        try:
            yield RotationStack(
                api, sqs, secretsmanager, secret_arn, order_queue_url, signing_key=secrets.token_hex(32)
            )
        finally:
            api.stop()
    finally:
        moto.stop()


def _first_moment(stack: RotationStack, token: str, status: int, timeout: float) -> tuple[float, float]:
    """Ask with `token` until the answer is `status`; the start and end of the request that got it."""
    deadline = time.monotonic() + timeout
    while True:
        started, answered, ended = stack.timed_status(token)
        if answered == status:
            return started, ended
        assert time.monotonic() < deadline, f"the token still gets {answered}, not {status}"
        time.sleep(0.1)


def test_old_and_new_tokens_are_both_accepted_during_the_overlap_and_only_the_new_one_after(
    rotation: RotationStack,
) -> None:
    old_token, new_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    # Deployed before the rotation: the single key of earlier versions.
    rotation.store(outbound_message_token=old_token)
    read_at, status, _ = rotation.timed_status(old_token)  # the first request reads the secret
    assert status == 200
    assert rotation.status(new_token) == 403

    # 1. The new token goes beside the old one. The warm environment still has its copy...
    rotation.store(outbound_message_token=old_token, outbound_message_tokens=[new_token])
    started, status, _ = rotation.timed_status(new_token)
    if started < read_at + CACHE_SECONDS - 1:
        assert status == 403, "the copy read before the update is still in use"
    # ...and takes the new secret once that copy is as old as the cache age, not before.
    overlap_started, overlap_read_by = _first_moment(rotation, new_token, 200, timeout=CACHE_SECONDS + 10)
    assert overlap_read_by >= read_at + CACHE_SECONDS

    # 2. The overlap: Salesforce may send with either token (messages queued under the old URL, the
    #    switch of the endpoint URL); both are accepted, each as often as it comes.
    assert [rotation.status(token) for token in (old_token, new_token, old_token, new_token)] == [200] * 4

    # 3. The old token is removed. Until the environment's copy expires it is still accepted...
    rotation.store(outbound_message_tokens=[new_token])
    started, status, _ = rotation.timed_status(old_token)
    if started < overlap_started + CACHE_SECONDS - 1:
        assert status == 200, "the copy with both tokens is still in use"
    # ...then only the new token is.
    _, refused_by = _first_moment(rotation, old_token, 403, timeout=CACHE_SECONDS + 10)
    assert refused_by >= overlap_started + CACHE_SECONDS
    assert [rotation.status(token) for token in (new_token, old_token, new_token)] == [200, 403, 200]

    accepted = rotation.queued()
    assert accepted >= 1 + 4 + 2  # every 200 above put the notification on the queue


def test_removing_every_token_does_not_open_the_door(rotation: RotationStack) -> None:
    token = secrets.token_urlsafe(32)
    rotation.store(outbound_message_tokens=[token])
    assert rotation.status(token) == 200

    rotation.store(outbound_message_tokens=[])
    _first_moment(rotation, token, 500, timeout=CACHE_SECONDS + 10)  # accepted until the copy expires
    rotation.queued()  # what was accepted until then

    with_token = httpx.post(
        f"{rotation.api.url}/salesforce/outbound",
        params={"token": token},
        content=MESSAGE,
        headers=SOAP_HEADERS,
    )
    without = httpx.post(f"{rotation.api.url}/salesforce/outbound", content=MESSAGE, headers=SOAP_HEADERS)

    # An intake left with no token (and no mutual TLS) fails, saying which secret key is missing.
    assert (with_token.status_code, without.status_code) == (500, 500)
    assert "outbound_message_tokens" in without.text
    assert rotation.queued() == 0
