"""Lambda handler for the customer-upsert queue: each record a Salesforce Account to sync
as an Intacct customer.

Thin on purpose: the batch, idempotency, log keys and per-outcome metrics are
sfintacct.sync_worker, the sync itself is sfintacct.sync.service.
"""

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from sfintacct.sync.runtime import queue_settings, sync_service_from_environment
from sfintacct.sync_worker import SyncWorker

logger = Logger()  # service "sfintacct": the core's loggers (sfintacct.*) log through it
worker = SyncWorker(
    object_type="Account",
    logger=logger,
    service_factory=sync_service_from_environment,
    settings=queue_settings(),
)


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Sync every record of an SQS batch; report the ones to retry."""
    return worker.handle_batch(event, context)
