"""The sync's rules (tests/unit/sync/test_sync_rules.py and test_after_sync_rules.py) again, with the
crosswalk and the sync log in real tables on DynamoDB Local made from template.yaml: the conditional
writes the rules rely on are DynamoDB's own here, not the in-memory fake's."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from sandbox.aws_local import create_tables, delete_tables
from sandbox.template_resources import load_template
from sfintacct.crosswalk import CrosswalkStore
from sfintacct.sync.sync_log import SyncLog
from tests.unit.sync.test_after_sync_rules import *  # noqa: F403 - and the rules after the first sync
from tests.unit.sync.test_setup_faults import *  # noqa: F403 - and faults of the set-up
from tests.unit.sync.test_sync_rules import *  # noqa: F403 - every rule, run here on DynamoDB
from tests.unit.sync.test_sync_rules import make_world

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tables(dynamodb: DynamoDBClient) -> Iterator[dict[str, str]]:
    created = create_tables(
        dynamodb,
        load_template(),
        f"test-{uuid.uuid4().hex[:12]}",
        logical_ids=["CrosswalkTable", "SyncLogTable"],
    )
    try:
        yield {logical_id: values.ref for logical_id, values in created.items()}
    finally:
        delete_tables(dynamodb, created)


@pytest.fixture
def world_factory(dynamodb: DynamoDBClient, tables: dict[str, str]) -> Any:
    return lambda **options: make_world(
        lambda clock: CrosswalkStore(dynamodb, tables["CrosswalkTable"], clock=clock),
        SyncLog(dynamodb, tables["SyncLogTable"]),
        **options,
    )
