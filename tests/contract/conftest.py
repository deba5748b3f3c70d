"""Contract fixtures: the Intacct and Salesforce targets, the project's clients on them, and cleanup.

Without SFINTACCT_CONTRACT_* variables both targets are the local sandboxes (127.0.0.1, reset before use).
With a side's variables set (see targets.py and README.md here), that side is the real service: records
carry a run id, customers are inactivated and Salesforce records deleted at the end.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from typing import TypeVar

import pytest

from sfintacct.intacct import IntacctClient, IntacctSettings, SessionCache
from sfintacct.mapping import SyncMapping, load_mapping
from sfintacct.salesforce import auth
from sfintacct.salesforce.models import OpportunityQueryFields
from sfintacct.salesforce.settings import SalesforceSettings
from tests.contract.support import REPORT, IntacctCleanup, SalesforceOrg, SeededDeal
from tests.contract.targets import (
    ContractSetupError,
    IntacctTarget,
    SalesforceTarget,
    intacct_target_from_environment,
    salesforce_target_from_environment,
)
from tests.integration import conftest as integration_fixtures
from tests.integration.conftest import IntacctSandboxHandle
from tests.integration.salesforce_fixtures import SalesforceSandboxHandle

# The integration suite's Intacct sandbox fixture, made available here (an instance of its own).
intacct_sandbox = integration_fixtures.intacct_sandbox

T = TypeVar("T")

SANDBOX_ITEM_ID = "SUB-PLATFORM"  # an active item of the sandbox's seed data
REAL_TARGETS_SWITCH = "SFINTACCT_CONTRACT_REAL"


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"contract targets: {describe_targets()}"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REPORT:
        terminalreporter.section("contract suite: real targets")
        for line in REPORT:
            terminalreporter.write_line(line)


def contract_environment() -> Mapping[str, str]:
    """The variables that name real targets, read only when `make contract` runs the suite
    (SFINTACCT_CONTRACT_REAL=1): `make test` always runs it against the sandboxes, whatever is exported."""
    return os.environ if os.environ.get(REAL_TARGETS_SWITCH) == "1" else {}


def describe_targets() -> str:
    parts = []
    for side, load in (
        ("Intacct", intacct_target_from_environment),
        ("Salesforce", salesforce_target_from_environment),
    ):
        try:
            target = load(contract_environment())
        except ContractSetupError as error:
            parts.append(f"{side}: not usable ({error})")
            continue
        parts.append(target.describe() if target else f"the local {side} sandbox")
    return "; ".join(parts)


def _target_or_fail(load: Callable[[Mapping[str, str]], T]) -> T:
    """The target the environment names; if it is unusable the test fails with the reason."""
    problem = ""
    try:
        return load(contract_environment())
    except ContractSetupError as error:
        problem = str(error)
    pytest.fail(problem, pytrace=False)


@pytest.fixture(scope="session")
def run_id() -> str:
    """Unique to this run; part of every name and id the suite writes."""
    return uuid.uuid4().hex[:8].upper()


@pytest.fixture(scope="session")
def sync_mapping() -> SyncMapping:
    """The mapping the sync uses ($SFINTACCT_MAPPING_FILE or the default file)."""
    return load_mapping()


# ---------------------------------------------------------------------------- Intacct


@pytest.fixture(scope="session")
def intacct_target(request: pytest.FixtureRequest) -> IntacctTarget:
    target = _target_or_fail(intacct_target_from_environment)
    if target is not None:
        REPORT.append(f"Intacct: {target.describe()}")
        return target
    sandbox: IntacctSandboxHandle = request.getfixturevalue("intacct_sandbox")
    sandbox.admin.reset()
    credentials = sandbox.credentials
    settings = IntacctSettings.model_validate(
        {
            "endpoint_url": sandbox.gateway_url,
            "sender_id": credentials.sender_id,
            "sender_password": credentials.sender_password,
            "company_id": credentials.company_id,
            "user_id": credentials.user_id,
            "user_password": credentials.user_password,
            "ca_file": str(sandbox.ca_file),
            "timeout_seconds": 10,
            "retry_budget_seconds": 5,
            "retry_base_delay_seconds": 0.02,
            "retry_max_delay_seconds": 0.2,
        }
    )
    return IntacctTarget(
        settings=settings, item_id=SANDBOX_ITEM_ID, transaction_type="Sales Order", real=False
    )


@pytest.fixture(scope="module")
def intacct_cleanup(intacct_target: IntacctTarget, run_id: str) -> Iterator[IntacctCleanup]:
    """Register customers and orders as they are written; customers are inactivated after the module."""
    cleanup = IntacctCleanup(intacct_target, run_id)
    yield cleanup
    problems = cleanup.run()
    assert not problems, "; ".join(problems)


@pytest.fixture
def intacct_client(intacct_target: IntacctTarget) -> Iterator[IntacctClient]:
    """The project's Intacct client, signed out at the start (a session cache of its own)."""
    with IntacctClient(intacct_target.settings, sessions=SessionCache()) as client:
        yield client


# ---------------------------------------------------------------------------- Salesforce


@pytest.fixture(scope="session")
def salesforce_target(request: pytest.FixtureRequest) -> SalesforceTarget:
    target = _target_or_fail(salesforce_target_from_environment)
    if target is not None:
        REPORT.append(f"Salesforce: {target.describe()}")
        return target
    sandbox: SalesforceSandboxHandle = request.getfixturevalue("salesforce_sandbox")
    settings = SalesforceSettings.model_validate(
        {
            "auth_flow": "jwt_bearer",
            "login_url": sandbox.instance_url,
            "client_id": sandbox.credentials.client_id,
            "username": sandbox.credentials.username,
            "private_key": sandbox.jwt_private_key_pem,
            "api_version": sandbox.api_version,
            "ca_file": str(sandbox.ca_file),
            "timeout_seconds": 10,
        }
    )
    return SalesforceTarget(settings=settings, real=False)


@pytest.fixture(scope="module")
def salesforce_org(
    request: pytest.FixtureRequest, salesforce_target: SalesforceTarget, sync_mapping: SyncMapping
) -> Iterator[SalesforceOrg]:
    """The org with no access token cached; the sandbox (shared with other suites) is reset first.

    Records created through it are deleted at the end of the module.
    """
    if not salesforce_target.real:
        sandbox: SalesforceSandboxHandle = request.getfixturevalue("salesforce_sandbox")
        sandbox.admin.reset()
    mapped = sync_mapping.query_fields()
    query_fields = OpportunityQueryFields.from_environment(os.environ).with_extra(
        opportunity_fields=mapped.opportunity_fields,
        account_fields=mapped.account_fields,
        line_fields=mapped.line_fields,
    )
    auth.clear_token_cache()
    org = SalesforceOrg(salesforce_target, query_fields)
    try:
        yield org
    finally:
        problems = org.delete_created()
        auth.clear_token_cache()
    assert not problems, "; ".join(problems)


@pytest.fixture(scope="module")
def deal(salesforce_org: SalesforceOrg, run_id: str) -> SeededDeal:
    """An Account and an Opportunity with two line items, created for this module."""
    return salesforce_org.seed_deal(run_id)
