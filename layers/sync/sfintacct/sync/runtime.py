"""Building the sync service from the Lambda environment (the workers cache the result per container)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import boto3

from sfintacct.crosswalk import CrosswalkStore
from sfintacct.intacct import IntacctClient, load_intacct_settings
from sfintacct.mapping import load_mapping
from sfintacct.salesforce.client import SalesforceClient
from sfintacct.salesforce.models import OpportunityQueryFields
from sfintacct.salesforce.settings import load_salesforce_settings
from sfintacct.sync.service import SyncService
from sfintacct.sync.sync_log import DEFAULT_RETENTION_DAYS, SyncLog

DEFAULT_TRANSACTION_TYPE = "Sales Order"
DEFAULT_CLAIM_LEASE_SECONDS = 120
DEFAULT_MAX_RECEIVE_COUNT = 5
DEFAULT_IDEMPOTENCY_SECONDS = 172800
DEFAULT_RETRY_BACKOFF_FACTOR = 6.0
DEFAULT_SERVICE_MAX_AGE_SECONDS = 300
MAX_VISIBILITY_SECONDS = 43200  # SQS: a message's visibility timeout is at most 12 hours


class WorkerSettingsError(Exception):
    """A worker setting is missing or invalid (a deployment problem: the message names the variable)."""


def sync_service_from_environment(environ: Mapping[str, str] | None = None) -> SyncService:
    """The service with real clients: Intacct and Salesforce from their secrets, DynamoDB through boto3."""
    environment = os.environ if environ is None else environ
    mapping = load_mapping()
    query_fields = OpportunityQueryFields.from_environment(environment)
    mapped_fields = mapping.query_fields()
    salesforce = SalesforceClient(
        load_salesforce_settings(environment),
        query_fields=query_fields.with_extra(
            opportunity_fields=mapped_fields.opportunity_fields,
            account_fields=mapped_fields.account_fields,
            line_fields=mapped_fields.line_fields,
        ),
    )
    dynamodb = boto3.client("dynamodb")
    return SyncService(
        intacct=IntacctClient(load_intacct_settings(environment)),
        salesforce=salesforce,
        crosswalk=CrosswalkStore(dynamodb, required_variable(environment, "CROSSWALK_TABLE")),
        sync_log=SyncLog(
            dynamodb,
            required_variable(environment, "SYNC_LOG_TABLE"),
            retention_days=positive_number_variable(
                environment, "SYNC_LOG_RETENTION_DAYS", DEFAULT_RETENTION_DAYS
            ),
        ),
        mapping=mapping,
        transaction_type=environment.get("INTACCT_TRANSACTION_TYPE") or DEFAULT_TRANSACTION_TYPE,
        claim_lease_seconds=positive_number_variable(
            environment, "ORDER_CLAIM_LEASE_SECONDS", DEFAULT_CLAIM_LEASE_SECONDS
        ),
        lost_deal_order=_lost_deal_order(environment),
    )


def _lost_deal_order(environment: Mapping[str, str]) -> Literal["close", "delete"]:
    value = environment.get("LOST_DEAL_ORDER", "").strip() or "close"
    if value not in ("close", "delete"):
        raise WorkerSettingsError(f"LOST_DEAL_ORDER must be close or delete, not {value!r}")
    return "close" if value == "close" else "delete"


@dataclass(frozen=True)
class QueueSettings:
    """How the worker treats its queue's messages."""

    max_receive_count: int  # receives before the queue moves a message to the dead-letter queue
    idempotency_table: str
    idempotency_expires_after_seconds: int  # how long a producer id is remembered
    # A message that failed waits longer with each receive: first_retry_delay_seconds (the queue's own
    # visibility timeout), then times retry_backoff_factor each time, at most 12 hours (SQS's limit).
    # None (no WORK_QUEUE_URL): the queue's visibility timeout every time.
    work_queue_url: str | None = None
    first_retry_delay_seconds: int = 0
    retry_backoff_factor: float = DEFAULT_RETRY_BACKOFF_FACTOR
    # How long a worker keeps its clients (and the secrets they were built from) before reading the
    # secrets again; a fault of the set-up makes it read them again at once.
    service_max_age_seconds: int = DEFAULT_SERVICE_MAX_AGE_SECONDS

    def retry_delay(self, receive_count: int) -> int | None:
        """Seconds until a message that failed on its `receive_count`-th receive comes back (None: the
        queue's own visibility timeout)."""
        if self.work_queue_url is None or self.first_retry_delay_seconds <= 0:
            return None
        delay = self.first_retry_delay_seconds * self.retry_backoff_factor ** max(0, receive_count - 1)
        return int(min(MAX_VISIBILITY_SECONDS, delay))


def queue_settings(environ: Mapping[str, str] | None = None) -> QueueSettings:
    environment = os.environ if environ is None else environ
    return QueueSettings(
        max_receive_count=positive_number_variable(
            environment, "MAX_RECEIVE_COUNT", DEFAULT_MAX_RECEIVE_COUNT
        ),
        idempotency_table=required_variable(environment, "IDEMPOTENCY_TABLE"),
        idempotency_expires_after_seconds=positive_number_variable(
            environment, "IDEMPOTENCY_EXPIRES_AFTER_SECONDS", DEFAULT_IDEMPOTENCY_SECONDS
        ),
        work_queue_url=environment.get("WORK_QUEUE_URL", "").strip() or None,
        first_retry_delay_seconds=positive_number_variable(environment, "RETRY_FIRST_DELAY_SECONDS", 0),
        retry_backoff_factor=float(
            environment.get("RETRY_BACKOFF_FACTOR", "").strip() or DEFAULT_RETRY_BACKOFF_FACTOR
        ),
        service_max_age_seconds=positive_number_variable(
            environment, "SERVICE_MAX_AGE_SECONDS", DEFAULT_SERVICE_MAX_AGE_SECONDS
        ),
    )


def required_variable(environment: Mapping[str, str], name: str) -> str:
    value = environment.get(name, "").strip()
    if not value:
        raise WorkerSettingsError(f"{name} is not set; the template sets it for every worker")
    return value


def positive_number_variable(environment: Mapping[str, str], name: str, default: int) -> int:
    text = environment.get(name, "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise WorkerSettingsError(f"{name} must be a positive whole number, not {text!r}")
    return int(text)
