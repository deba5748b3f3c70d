"""The SQS side of the two workers: batch, idempotency, log keys and metrics around SyncService.

Each worker's handler module builds one SyncWorker at import (Powertools objects and the
idempotency table are per container) and hands it every SQS batch:

- every record is one SyncRequest (the queue body the intake wrote); a body that is not one, or is
  for the other worker's object type, fails alone (it is retried, then kept in the dead-letter queue);
- each piece of work runs at most once (Powertools idempotency keyed on what the work is: object type,
  record id and producer id): the same notification delivered again returns the first result without
  touching Intacct or Salesforce, while a repeated or forged envelope id on another record is other
  work and is done;
- transient failures are reported as batch item failures, so only those records come back;
- on the last receive (ApproximateReceiveCount = MAX_RECEIVE_COUNT) a transient failure is written to
  the record as Failed before the message moves to the dead-letter queue.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import boto3
from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from sfintacct.faults import CONFIGURATION_FAULT_METRIC, ConfigurationFault
from sfintacct.settings_sources import forget_secrets
from sfintacct.sync.outcome import NEEDS_ATTENTION, OutcomeStatus, SyncOutcome
from sfintacct.sync.runtime import QueueSettings
from sfintacct.sync.service import SyncService
from sfintacct.sync_request import SyncObjectType, SyncRequest

# What identifies one piece of work: never the envelope's id alone (ARCHITECTURE §2, invariant 6).
IDEMPOTENCY_KEY = "[object_type, record_id, producer_id]"


def metric_name(object_type: str, status: str) -> str:
    """OpportunitySynced, AccountFailed, OpportunityChangedAfterSync, ..."""
    return f"{object_type}{status.title().replace('_', '')}"


# The metrics (dimension: service only) that the template's alarms watch, one per worker and status.
ALARMED_METRICS = tuple(
    metric_name(object_type, status.value)
    for object_type in ("Account", "Opportunity")
    for status in OutcomeStatus
    if status in NEEDS_ATTENTION and (object_type, status) != ("Account", OutcomeStatus.CHANGED_AFTER_SYNC)
)


class UnexpectedRecord(Exception):
    """A queue message that is not a SyncRequest for this worker (kept for inspection in the DLQ)."""


class SyncWorker:
    def __init__(
        self,
        *,
        object_type: SyncObjectType,
        logger: Logger,
        service_factory: Callable[[], SyncService],
        settings: QueueSettings,
    ) -> None:
        self.object_type = object_type
        self.logger = logger
        self._service_factory = service_factory
        self._service: SyncService | None = None
        self._service_built_at = 0.0
        self.settings = settings
        self.max_receive_count = settings.max_receive_count
        # A batch whose records all failed is reported like any other, not raised (same retry, less noise).
        self.processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        self.idempotency = IdempotencyConfig(
            event_key_jmespath=IDEMPOTENCY_KEY,
            raise_on_no_idempotency_key=True,
            expires_after_seconds=settings.idempotency_expires_after_seconds,
        )
        persistence = DynamoDBPersistenceLayer(table_name=settings.idempotency_table)
        self._sync_once: Callable[..., dict[str, Any]] = idempotent_function(
            self._sync,
            data_keyword_argument="request",
            persistence_store=persistence,
            config=self.idempotency,
            key_prefix=f"sync-{object_type.lower()}",
        )

    @property
    def service(self) -> SyncService:
        """The sync service (cached clients), built on first use and again, from the secrets as they are
        then, when it is older than `service_max_age_seconds`: a fixed secret reaches a warm worker within
        minutes without a redeploy."""
        age = time.monotonic() - self._service_built_at
        if self._service is not None and age > self.settings.service_max_age_seconds:
            forget_secrets()  # the rebuilt clients read the secrets as they are now
            self._service = None
        if self._service is None:
            self._service = self._service_factory()
            self._service_built_at = time.monotonic()
        return self._service

    def forget_service(self) -> None:
        """The next record builds the service again: secrets and mapping are read afresh."""
        self._service = None

    def handle_batch(self, event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
        self.idempotency.register_lambda_context(context)
        return process_partial_response(
            event=event, record_handler=self.handle_record, processor=self.processor, context=context
        )

    def handle_record(self, record: SQSRecord) -> dict[str, Any]:
        try:
            request = SyncRequest.model_validate_json(record.body)
        except ValueError as error:
            self.logger.error("queue message is not a SyncRequest", extra={"message_id": record.message_id})
            raise UnexpectedRecord(f"message {record.message_id} is not a SyncRequest: {error}") from error
        if request.object_type != self.object_type:
            raise UnexpectedRecord(
                f"message {record.message_id} is for {request.object_type}; "
                f"this worker syncs {self.object_type}"
            )
        self.logger.append_keys(
            salesforce_id=request.record_id, producer_id=request.producer_id, source=request.source
        )
        receive_count = int(record.attributes.approximate_receive_count)
        try:
            return self._sync_once(request=request, final_attempt=receive_count >= self.max_receive_count)
        except Exception as error:
            self._hold(record, error, receive_count)
            raise
        finally:
            self.logger.remove_keys(["salesforce_id", "producer_id", "source"])

    def _hold(self, record: SQSRecord, error: Exception, receive_count: int) -> None:
        """The record goes back to the queue: say so at ERROR, and make it wait longer each time."""
        then = "retried later" if receive_count < self.max_receive_count else "kept in the dead-letter queue"
        self.logger.error(
            f"{self.object_type} sync failed on receive {receive_count} of {self.max_receive_count} and is "
            f"{then}: {type(error).__name__}: {error}"
        )
        if isinstance(error, ConfigurationFault):
            self.forget_service()  # build the clients and read the mapping again for the next record
            if error.reads_secrets_again:
                forget_secrets()
        delay = getattr(error, "retry_after", None) or self.settings.retry_delay(receive_count)
        if delay is None or self.settings.work_queue_url is None:
            return
        try:
            self._sqs().change_message_visibility(
                QueueUrl=self.settings.work_queue_url,
                ReceiptHandle=record.receipt_handle,
                VisibilityTimeout=int(delay),
            )
        except Exception:
            self.logger.exception("could not delay the retry; the queue's visibility timeout applies")

    @functools.cache  # noqa: B019 - one client per worker, which lives as long as the container
    def _sqs(self) -> Any:
        return boto3.client("sqs")

    def _sync(self, request: SyncRequest, final_attempt: bool) -> dict[str, Any]:
        try:
            outcome = self.service.handle(request, final_attempt=final_attempt)
        except ConfigurationFault as fault:
            self._count("dead_lettered" if final_attempt else "waiting", fault.kind)
            self._count_configuration_fault()
            raise
        except Exception:
            self._count("retrying" if not final_attempt else "dead_lettered", "transient")
            raise
        self._count(outcome.status.value, outcome.reason.value)
        self._log(outcome)
        return outcome.as_dict()

    def _count(self, status: str, reason: str) -> None:
        """One metric per outcome with its reason as a dimension (single_metric: its own EMF line); an
        outcome that needs attention is counted once more without the reason, the metric its alarm watches."""
        if is_metrics_disabled():  # single_metric does not check POWERTOOLS_METRICS_DISABLED itself
            return
        name = metric_name(self.object_type, status)
        with single_metric(name=name, unit=MetricUnit.Count, value=1) as metric:
            metric.add_dimension(name="reason", value=reason)
        if status in NEEDS_ATTENTION:
            with single_metric(name=name, unit=MetricUnit.Count, value=1):
                pass

    def _count_configuration_fault(self) -> None:
        """`ConfigurationFault` (service dimension only): work is held by a fault of the set-up."""
        if is_metrics_disabled():
            return
        with single_metric(name=CONFIGURATION_FAULT_METRIC, unit=MetricUnit.Count, value=1):
            pass

    def _log(self, outcome: SyncOutcome) -> None:
        details = {"outcome": {key: value for key, value in outcome.as_dict().items() if value}}
        if outcome.status.value == "failed":
            self.logger.error(f"sync failed: {outcome.message}", extra=details)
        else:
            self.logger.info(f"sync {outcome.status.value}: {outcome.message}", extra=details)
