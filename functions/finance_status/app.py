"""Lambda handler of the scheduled finance run: invoices, payments and AR status from Intacct onto the
Salesforce records (sfintacct.finance).

Thin on purpose: the run is sfintacct.finance.run, its clients and how it ends sfintacct.finance.runtime.
A run stopped by a fault that is no record's (allowance spent, Intacct unavailable, a secret to fix) ends
without an error, counted in FinanceRunStopped, and the next scheduled run goes on from where it was.
"""

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from sfintacct.faults import CONFIGURATION_FAULT_METRIC
from sfintacct.finance.runtime import REFUSED_METRIC, RUN_STOPPED_METRIC, WRITTEN_METRIC, run_from_environment

logger = Logger()  # service "sfintacct": the core's loggers (sfintacct.*) log through it
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "SfIntacct"))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """One run; answers what it did (the schedule ignores it; people invoking it by hand read it)."""
    result = run_from_environment()
    if result.summary is None:
        metrics.add_metric(name=RUN_STOPPED_METRIC, unit=MetricUnit.Count, value=1)
        if result.configuration_fault:
            metrics.add_metric(name=CONFIGURATION_FAULT_METRIC, unit=MetricUnit.Count, value=1)
        return {"stopped_by": result.stopped_by, "message": result.message}
    summary = result.summary
    metrics.add_metric(name=WRITTEN_METRIC, unit=MetricUnit.Count, value=summary.written)
    metrics.add_metric(name=REFUSED_METRIC, unit=MetricUnit.Count, value=len(summary.refused))
    logger.info("finance run done", extra={"summary": summary.as_dict()})
    return summary.as_dict()
