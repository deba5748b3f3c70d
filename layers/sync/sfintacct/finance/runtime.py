"""The finance run as the scheduled function runs it: clients from the secrets (read again every run, so a
fixed secret is used at the next run), the state table, the sync log, and how a run ends.

A run that cannot go on (Salesforce's allowance spent, Intacct rate-limited or unavailable, a fault of
the set-up) ends cleanly: it is logged and counted, nothing is lost (the watermark stays), and the next
scheduled run goes on from there. Records Salesforce refuses are logged in the sync log as failed.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime

import boto3

from sfintacct.crosswalk import CrosswalkStore
from sfintacct.faults import ConfigurationFault
from sfintacct.finance.fields import Change
from sfintacct.finance.run import FinanceSettings, RunSummary, run_finance
from sfintacct.finance.state import FinanceState, FinanceStateError
from sfintacct.intacct import IntacctClient, load_intacct_settings
from sfintacct.intacct.errors import TransientIntacctError
from sfintacct.salesforce.client import SalesforceClient
from sfintacct.salesforce.errors import TransientSalesforceError
from sfintacct.salesforce.settings import load_salesforce_settings
from sfintacct.settings_sources import forget_secrets
from sfintacct.sync.outcome import OutcomeStatus, Reason, SyncOutcome
from sfintacct.sync.runtime import positive_number_variable, required_variable
from sfintacct.sync.sync_log import DEFAULT_RETENTION_DAYS, SyncLog

logger = logging.getLogger(__name__)

# Metrics of the finance run (EMF, namespace and service dimension as the workers'); alarmed in template.yaml.
RUN_STOPPED_METRIC = "FinanceRunStopped"  # a run ended early by a fault that is no record's
REFUSED_METRIC = "FinanceRecordsRefused"  # records whose finance fields Salesforce refused
WRITTEN_METRIC = "FinanceRecordsWritten"
FINANCE_ALARMED_METRICS = (RUN_STOPPED_METRIC, REFUSED_METRIC)
DEFAULT_INVOICE_TRANSACTION_TYPE = "Sales Invoice"
DEFAULT_COLLECTIONS_THRESHOLD_DAYS = 120
SOURCE = "finance_run"
# Faults that end a run until the next schedule: they are not any record's, and nothing is lost.
STOPPING_FAULTS: tuple[type[Exception], ...] = (
    ConfigurationFault,
    TransientIntacctError,
    TransientSalesforceError,
    FinanceStateError,
)


@dataclass(frozen=True)
class RunResult:
    summary: RunSummary | None
    stopped_by: str = ""  # the fault that ended the run early (its kind, or its type's name)
    message: str = ""
    configuration_fault: bool = False  # the fault is the set-up's (a secret, a permission, the allowance)


def finance_settings(environment: Mapping[str, str]) -> FinanceSettings:
    return FinanceSettings(
        invoice_transaction_type=environment.get("INTACCT_INVOICE_TRANSACTION_TYPE", "").strip()
        or DEFAULT_INVOICE_TRANSACTION_TYPE,
        collections_threshold_days=positive_number_variable(
            environment, "COLLECTIONS_THRESHOLD_DAYS", DEFAULT_COLLECTIONS_THRESHOLD_DAYS
        ),
    )


def run_from_environment(
    environ: Mapping[str, str] | None = None, *, today: Callable[[], date] = lambda: datetime.now(UTC).date()
) -> RunResult:
    """One scheduled run with real clients; a fault that stops it is returned, not raised."""
    environment = os.environ if environ is None else environ
    forget_secrets()  # a secret fixed since the last run is read as it is now
    dynamodb = boto3.client("dynamodb")
    sync_log = SyncLog(
        dynamodb,
        required_variable(environment, "SYNC_LOG_TABLE"),
        retention_days=positive_number_variable(
            environment, "SYNC_LOG_RETENTION_DAYS", DEFAULT_RETENTION_DAYS
        ),
    )
    producer_id = f"finance-{uuid.uuid4()}"
    try:
        intacct = IntacctClient(load_intacct_settings(environment))
    except STOPPING_FAULTS as fault:
        return _stopped(fault)
    try:
        summary = run_finance(
            intacct=intacct,
            salesforce=SalesforceClient(load_salesforce_settings(environment)),
            crosswalk=CrosswalkStore(dynamodb, required_variable(environment, "CROSSWALK_TABLE")),
            state=FinanceState(dynamodb, required_variable(environment, "FINANCE_STATUS_TABLE")),
            today=today(),
            settings=finance_settings(environment),
            on_written=lambda change: sync_log.record(
                _written_outcome(change), producer_id=producer_id, source=SOURCE
            ),
        )
    except STOPPING_FAULTS as fault:
        return _stopped(fault)
    finally:
        intacct.close()
    for refused in summary.refused:
        sync_log.record(
            SyncOutcome(
                OutcomeStatus.FAILED,
                Reason.SALESFORCE_REJECTED,
                refused.object_type,
                refused.record_id,
                f"Salesforce refused the finance fields: {refused.message}",
            ),
            producer_id=producer_id,
            source=SOURCE,
        )
    return RunResult(summary)


def _written_outcome(change: Change) -> SyncOutcome:
    shown = ", ".join(f"{name}={value}" for name, value in change.values.items())
    return SyncOutcome(
        OutcomeStatus.SYNCED, Reason.FINANCE_UPDATED, change.object_type, change.record_id, shown
    )


def _stopped(fault: Exception) -> RunResult:
    kind = getattr(fault, "kind", "") or type(fault).__name__
    what_to_do = getattr(fault, "what_to_do", "")
    message = f"{fault}{f' ({what_to_do})' if what_to_do else ''}; the next scheduled run goes on from here"
    logger.error("the finance run stopped (%s): %s", kind, message)
    return RunResult(
        None, stopped_by=kind, message=message, configuration_fault=isinstance(fault, ConfigurationFault)
    )
