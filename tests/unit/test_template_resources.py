"""The template reader: short tags, parameters, conditions, and the tables and queues of template.yaml."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sandbox.template_resources import (
    TEMPLATE_PATH,
    ResourceValues,
    Template,
    TemplateError,
    load_template,
    parse_template,
)

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "template_short_tags.yaml"


def created_queues(template: Template, prefix: str = "p") -> dict[str, ResourceValues]:
    """Fake Ref/GetAtt values for every queue, as the local stack would record them once created."""
    created: dict[str, ResourceValues] = {}
    for queue in template.queues():
        name = queue.queue_name(prefix)
        created[queue.logical_id] = ResourceValues(
            ref=f"http://127.0.0.1:1/123456789012/{name}",
            attributes={"Arn": f"arn:aws:sqs:us-east-1:123456789012:{name}", "QueueName": name},
        )
    return created


@pytest.fixture
def small() -> Template:
    return load_template(FIXTURE, parameter_overrides={"QueueSecretArn": "arn:local:secret"})


def test_short_tags_become_long_form_intrinsics() -> None:
    document = parse_template(FIXTURE.read_text(encoding="utf-8"))
    queue = document["Resources"]["WorkQueue"]["Properties"]

    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["WorkDeadLetterQueue", "Arn"]}
    assert queue["RedrivePolicy"]["maxReceiveCount"] == {"Ref": "MaxReceiveCount"}
    assert queue["VisibilityTimeout"] == {"Fn::If": ["IsProd", 900, 120]}
    assert document["Conditions"]["NotProd"] == {"Fn::Not": [{"Condition": "IsProd"}]}


def test_a_document_without_resources_is_refused() -> None:
    with pytest.raises(TemplateError, match="Resources"):
        parse_template("Parameters: {}\n")


def test_queues_come_after_the_queues_they_reference_and_skip_false_conditions(small: Template) -> None:
    order = [queue.logical_id for queue in small.queues()]

    assert order.index("WorkDeadLetterQueue") < order.index("WorkQueue")
    assert order.index("WorkDeadLetterQueue") < order.index("OrderedQueue")
    assert "AuditQueue" not in order
    assert "AuditQueue" in [q.logical_id for q in small.with_parameters({"EnableAudit": "yes"}).queues()]


def test_queue_attributes_resolve_redrive_policy_parameters_and_conditions(small: Template) -> None:
    created = created_queues(small)
    queues = {queue.logical_id: queue for queue in small.queues()}

    work = small.queue_attributes(queues["WorkQueue"], created)

    assert json.loads(work["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:aws:sqs:us-east-1:123456789012:p-WorkDeadLetterQueue",
        "maxReceiveCount": 3,
    }
    assert work["VisibilityTimeout"] == "120"
    assert work["SqsManagedSseEnabled"] == "true"
    assert "KmsMasterKeyId" not in work
    prod = small.with_parameters({"Stage": "prod"})
    assert prod.queue_attributes(queues["WorkQueue"], created)["VisibilityTimeout"] == "900"


def test_fifo_queues_get_a_fifo_name(small: Template) -> None:
    queues = {queue.logical_id: queue for queue in small.queues()}

    assert queues["OrderedQueue"].queue_name("p") == "p-OrderedQueue.fifo"
    assert queues["WorkQueue"].queue_name("p") == "p-WorkQueue"
    attributes = small.queue_attributes(queues["OrderedQueue"], created_queues(small))
    assert attributes["FifoQueue"] == "true"
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 7


def test_a_queue_referencing_a_queue_not_yet_created_is_an_error(small: Template) -> None:
    work = next(queue for queue in small.queues() if queue.logical_id == "WorkQueue")

    with pytest.raises(TemplateError, match="WorkDeadLetterQueue"):
        small.queue_attributes(work, {})


def test_tables_are_read_with_keys_indexes_capacity_and_ttl(small: Template) -> None:
    (table,) = small.tables()
    request = table.create_table_request("p-MappingTable")

    assert request["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    assert request["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "by-lookup",
            "KeySchema": [{"AttributeName": "lookup", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
            "ProvisionedThroughput": {"ReadCapacityUnits": 1, "WriteCapacityUnits": 1},
        }
    ]
    assert request["ProvisionedThroughput"] == {"ReadCapacityUnits": 2, "WriteCapacityUnits": 1}
    assert "SSESpecification" not in request
    assert table.ttl_attribute == "expires_at"
    assert small.with_parameters({"Stage": "prod"}).tables()[0].ttl_attribute is None


def test_function_environment_resolves_globals_refs_getatts_sub_and_join(small: Template) -> None:
    created = {
        **created_queues(small),
        "MappingTable": ResourceValues(ref="p-MappingTable", attributes={"Arn": "arn:table"}),
    }

    environment = small.function_environment("Worker", created)

    assert environment == {
        "STAGE": "dev",
        "REGION_NAME": "us-east-1",
        "QUEUE_URL": "http://127.0.0.1:1/123456789012/p-WorkQueue",
        "QUEUE_NAME": "p-WorkQueue",
        "TABLE": "p-MappingTable",
        "SECRET_ARN": "arn:local:secret",
        "DESCRIPTION": "dev-b",
        "ESCAPED": "${NotAVariable}/dev",
        "WITH_VARIABLES": "hello, sfintacct-local",
    }


def test_a_parameter_without_default_or_value_is_named_in_the_error() -> None:
    template = load_template(FIXTURE)
    created = {**created_queues(template), "MappingTable": ResourceValues(ref="p-MappingTable")}

    with pytest.raises(TemplateError, match="QueueSecretArn"):
        template.function_environment("Worker", created)


# ---------------------------------------------------------------------------- template.yaml itself


@pytest.fixture(scope="module")
def project() -> Template:
    return load_template(TEMPLATE_PATH)


def test_project_crosswalk_table_has_the_keys_and_reverse_index_the_store_uses(project: Template) -> None:
    tables = {table.logical_id: table for table in project.tables()}
    crosswalk = tables["CrosswalkTable"].create_table_request("t")

    assert crosswalk["KeySchema"] == [
        {"AttributeName": "pk", "KeyType": "HASH"},
        {"AttributeName": "sk", "KeyType": "RANGE"},
    ]
    (index,) = crosswalk["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by-intacct-id"
    assert index["KeySchema"] == [{"AttributeName": "intacct_key", "KeyType": "HASH"}]
    assert index["Projection"] == {"ProjectionType": "ALL"}
    assert {"AttributeName": "intacct_key", "AttributeType": "S"} in crosswalk["AttributeDefinitions"]
    assert crosswalk["BillingMode"] == "PAY_PER_REQUEST"


def test_project_idempotency_table_has_ttl_on_expiration(project: Template) -> None:
    tables = {table.logical_id: table for table in project.tables()}

    assert tables["IdempotencyTable"].ttl_attribute == "expiration"
    assert tables["IdempotencyTable"].key_schema == [{"AttributeName": "id", "KeyType": "HASH"}]


@pytest.mark.parametrize(
    ("queue_id", "dead_letter_id"),
    [
        ("CustomerUpsertQueue", "CustomerUpsertDeadLetterQueue"),
        ("OpportunityToOrderQueue", "OpportunityToOrderDeadLetterQueue"),
    ],
)
def test_project_work_queues_redrive_to_their_dead_letter_queue(
    project: Template, queue_id: str, dead_letter_id: str
) -> None:
    created = created_queues(project)
    queue = next(queue for queue in project.queues() if queue.logical_id == queue_id)

    attributes = project.queue_attributes(queue, created)

    redrive = json.loads(attributes["RedrivePolicy"])
    assert redrive["deadLetterTargetArn"] == created[dead_letter_id].attributes["Arn"]
    assert redrive["maxReceiveCount"] == project.parameter("MaxReceiveCount")
    assert int(attributes["VisibilityTimeout"]) > 0
