"""Lambda handler for the opportunity-to-order queue: one SQS record per closed-won Opportunity.

The sync itself is not wired in yet, so every record is reported as failed: it stays on the queue,
is retried, and ends in the dead-letter queue. Nothing is acknowledged without being done.
"""

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def record_handler(record: SQSRecord) -> None:
    """Refuse the record so it is retried and, after the last receive, moved to the dead-letter queue."""
    logger.error(
        "opportunity to order is not implemented yet; record left for retry",
        extra={"message_id": record.message_id},
    )
    metrics.add_metric(name="RecordsNotProcessed", unit=MetricUnit.Count, value=1)
    raise NotImplementedError("opportunity to order is not implemented yet")


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics(raise_on_empty_metrics=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Process an SQS batch and report the records that failed."""
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
