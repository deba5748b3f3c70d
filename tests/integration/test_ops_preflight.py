"""`sfintacct preflight` over the wire: the Intacct and Salesforce sandboxes, the secrets in moto.

The module runs on a stack of its own (the parts preflight talks to: moto with the secrets, DynamoDB Local
for stack.json, the two sandboxes; no workers). The session's stack cannot show "every check passes":
earlier tests leave active products there whose codes are deliberately not Intacct items (NO-SUCH-ITEM,
...). Each test restores what it changes, so the tests do not depend on their order.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import sys
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.aws_local import secretsmanager_client
from sandbox.intacct.admin_client import IntacctAdminClient
from sandbox.sales_rep import PRODUCTS, SalesRep
from sandbox.stack import DynamoDBPart, IntacctPart, LocalStack, MotoPart, SalesforcePart, start_local_stack
from sfintacct.mapping import DEFAULT_MAPPING_FILE, parse_mapping

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
# The command's package lives in ops/ (the launcher puts it on the import path; so does this module).
if str(REPO_ROOT / "ops") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "ops"))
ops_cli = importlib.import_module("sfintacct_ops.cli")
ops_deployment = importlib.import_module("sfintacct_ops.deployment")
ops_preflight = importlib.import_module("sfintacct_ops.preflight")


def run(stack: LocalStack, *arguments: str) -> tuple[int, str, str]:
    """`sfintacct --local <stack.json> preflight ...` in-process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    code = ops_cli.main(["--local", str(stack.stack_file), "preflight", *arguments], stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def checks(stack: LocalStack, expect: int) -> dict[str, dict[str, Any]]:
    """The checks of `preflight --json`, by name, after asserting the exit code."""
    code, out, err = run(stack, "--json")
    assert code == expect, f"exit {code}\n{out}\n{err}"
    report = json.loads(out)
    assert report["passed"] is (expect == 0)
    assert [check["name"] for check in report["checks"]] == list(ops_preflight.CHECKS)
    return {check["name"]: check for check in report["checks"]}


def failed(found: dict[str, dict[str, Any]]) -> list[str]:
    return [name for name, check in found.items() if not check["passed"]]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A fresh stack whose Salesforce org sells the demo's products (each an Intacct sandbox item)."""
    parts = [DynamoDBPart(), MotoPart(), IntacctPart(), SalesforcePart()]
    with start_local_stack(tmp_path_factory.mktemp("preflight"), ephemeral=True, parts=parts) as stack:
        rep = SalesRep(stack.info["salesforce"])
        try:
            rep.products()
        finally:
            rep.close()
        yield stack


@pytest.fixture(scope="module")
def intacct(stack: LocalStack) -> IntacctAdminClient:
    return IntacctAdminClient(stack.info["intacct"]["admin_url"], stack.info["intacct"]["ca_file"])


def test_every_check_passes_on_a_local_stack_as_make_stack_sets_it_up(stack: LocalStack) -> None:
    found = checks(stack, expect=0)
    assert failed(found) == []
    assert f"{len(PRODUCTS)} active product(s)" in found["intacct_items"]["detail"]
    assert "CUSTOMER.SALESFORCE_ID" in found["intacct_custom_fields"]["detail"]
    assert "'Sales Order' exists" in found["intacct_transaction_definition"]["detail"]
    assert "N30" in found["intacct_payment_terms"]["detail"]

    code, out, _ = run(stack)
    assert code == 0
    assert "PASS  intacct_login" in out
    assert "FAIL" not in out
    assert out.rstrip().endswith(f"{len(ops_preflight.CHECKS)} of {len(ops_preflight.CHECKS)} checks passed")


def test_a_missing_salesforce_id_field_on_customer_fails_with_what_to_create(
    stack: LocalStack, intacct: IntacctAdminClient
) -> None:
    intacct.configure(custom_fields={"CUSTOMER": []})
    try:
        found = checks(stack, expect=1)
        code, out, _ = run(stack)
    finally:
        intacct.configure(custom_fields={"CUSTOMER": ["SALESFORCE_ID"]})

    assert failed(found) == ["intacct_custom_fields"]
    check = found["intacct_custom_fields"]
    assert "no custom field CUSTOMER.SALESFORCE_ID" in check["detail"]
    assert check["fix"].startswith("create the custom field(s) CUSTOMER.SALESFORCE_ID in Intacct")
    assert "customer.salesforce_id_field" in check["fix"]
    assert code == 1
    assert "FAIL  intacct_custom_fields" in out
    assert "fix: create the custom field(s) CUSTOMER.SALESFORCE_ID" in out
    assert "failed: intacct_custom_fields" in out
    assert failed(checks(stack, expect=0)) == []  # restored


def test_an_active_product_without_an_intacct_item_fails_until_it_is_deactivated(stack: LocalStack) -> None:
    code = f"PREFLIGHT-{uuid.uuid4().hex[:8].upper()}"
    rep = SalesRep(stack.info["salesforce"])
    try:
        product_id = rep.create(
            "Product2", {"Name": "Not set up in Intacct", "ProductCode": code, "IsActive": True}
        )
        try:
            found = checks(stack, expect=1)
            exit_code, out, _ = run(stack)
        finally:
            rep.update("Product2", product_id, {"IsActive": False})
        assert failed(found) == ["intacct_items"]
        check = found["intacct_items"]
        assert f"no Intacct item {code} (product 'Not set up in Intacct' {product_id})" in check["detail"]
        assert check["fix"].startswith(f"create the Intacct item(s) {code}, or map the product codes")
        assert "[line.items]" in check["fix"]
        assert exit_code == 1
        assert "FAIL  intacct_items" in out
        assert f"fix: create the Intacct item(s) {code}" in out

        # Inactive products are not sold, so they need no item: the check passes again.
        assert failed(checks(stack, expect=0)) == []
    finally:
        rep.close()


def test_intacct_login_names_the_sender_or_the_user_that_was_refused(stack: LocalStack) -> None:
    secrets = secretsmanager_client(stack.info["secretsmanager_endpoint"], stack.info["region"])
    secret_id = stack.info["secrets"]["intacct"]
    original = secrets.get_secret_value(SecretId=secret_id)["SecretString"]
    intacct_checks = [name for name in ops_preflight.CHECKS if name.startswith("intacct_")]

    def refused(**wrong: str) -> dict[str, dict[str, Any]]:
        secrets.put_secret_value(
            SecretId=secret_id, SecretString=json.dumps({**json.loads(original), **wrong})
        )
        return checks(stack, expect=1)

    try:
        sender = refused(sender_password="not-the-sender-password")
        user = refused(user_password="not-the-user-password")
    finally:
        secrets.put_secret_value(SecretId=secret_id, SecretString=original)

    assert failed(sender) == intacct_checks
    login = sender["intacct_login"]
    assert "refused the Web Services sender" in login["detail"]
    assert "(control)" in login["detail"]
    assert "sender id or password" in login["fix"]
    assert sender["intacct_items"]["detail"] == "not checked: intacct_login failed"

    assert failed(user) == intacct_checks
    login = user["intacct_login"]
    assert "accepted the sender but refused the sign-in of user" in login["detail"]
    assert "(login)" in login["detail"]
    assert login["fix"].startswith("correct user_id, user_password, company_id")
    assert failed(checks(stack, expect=0)) == []  # restored


def test_a_payment_term_and_a_transaction_definition_intacct_lacks_are_named(stack: LocalStack) -> None:
    text = DEFAULT_MAPPING_FILE.read_text(encoding="utf-8").replace('{ value = "N30" }', '{ value = "N45" }')
    text = text.replace('transaction_type = "Sales Invoice"', 'transaction_type = "Sales Credit"', 1)
    mapping = parse_mapping(tomllib.loads(text))
    deployment = ops_deployment.from_local(stack.stack_file)
    deployment = dataclasses.replace(
        deployment,
        worker_environment={**deployment.worker_environment, "INTACCT_TRANSACTION_TYPE": "Sales Contract"},
    )
    try:
        results = {check.name: check for check in ops_preflight.preflight(deployment, mapping=mapping)}
    finally:
        deployment.close()

    assert [name for name, check in results.items() if not check.passed] == [
        "intacct_payment_terms",
        "intacct_transaction_definition",
    ]
    terms = results["intacct_payment_terms"]
    assert "no Intacct AR term N45 (ARTERM)" in terms.detail
    assert "customer.fields.term_name, order.fields.term_name" in terms.detail
    assert terms.fix.startswith("create the AR payment term(s) N45 in Intacct")
    definition = results["intacct_transaction_definition"]
    assert "no Order Entry transaction definition 'Sales Contract', 'Sales Credit'" in definition.detail
    assert "Sales Invoice, Sales Order, Sales Quote" in definition.detail
    assert "IntacctTransactionType" in definition.fix
