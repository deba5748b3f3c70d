"""The Salesforce sandbox set up from the Salesforce package: started from a modified copy of salesforce/,
it has the copy's fields and Outbound Messages, and a write-back of a field the copy lacks fails the way
it would in an org deployed without that field (INVALID_FIELD), which the workers take as permanent."""

from __future__ import annotations

import re
import shutil
import ssl
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from sandbox.salesforce.package import PACKAGE_DIR
from sfintacct.salesforce import auth
from sfintacct.salesforce.client import SalesforceClient
from sfintacct.salesforce.errors import PermanentSalesforceError, RecordNotFound, SalesforceError
from sfintacct.salesforce.settings import SalesforceSettings
from sfintacct.sync import write_back
from sfintacct.sync.outcome import Reason
from sfintacct.sync.service import PERMANENT_ERRORS, _permanent_reason
from tests.integration.salesforce_fixtures import SalesforceSandboxHandle

pytestmark = pytest.mark.integration

REMOVED_OBJECT, REMOVED_FIELD = "Opportunity", "Intacct_Synced_At__c"
UNREACHABLE_LISTENER = "http://127.0.0.1:9/salesforce/outbound"  # the discard port: nothing listens


def copy_package(destination: Path) -> Path:
    """A copy of salesforce/ to change in a test."""
    shutil.copytree(PACKAGE_DIR, destination, ignore=shutil.ignore_patterns(".sf", ".sfdx"))
    return destination


def remove_field(package_dir: Path, object_type: str, name: str) -> None:
    """Take a custom field out of the package: its file, every permission set's grant of it and every
    before-save flow's assignment to it (a flow naming a field the org lacks does not deploy)."""
    default = package_dir / "force-app" / "main" / "default"
    (default / "objects" / object_type / "fields" / f"{name}.field-meta.xml").unlink()
    grant = re.compile(
        rf"\s*<fieldPermissions>\s*<editable>\w+</editable>\s*<field>{object_type}\.{name}</field>\s*"
        r"<readable>\w+</readable>\s*</fieldPermissions>"
    )
    for path in (default / "permissionsets").glob("*.permissionset-meta.xml"):
        text = path.read_text(encoding="utf-8")
        path.write_text(grant.sub("", text), encoding="utf-8")
        assert f"{object_type}.{name}<" not in path.read_text(encoding="utf-8")
    assignment = re.compile(
        rf"\s*<assignmentItems>\s*<assignToReference>\$Record\.{name}</assignToReference>.*?</assignmentItems>",
        re.DOTALL,
    )
    for path in (default / "flows").glob("*.flow-meta.xml"):
        text = path.read_text(encoding="utf-8")
        if f"<object>{object_type}</object>" in text and "RecordBeforeSave" in text:
            path.write_text(assignment.sub("", text), encoding="utf-8")
            assert f"$Record.{name}<" not in path.read_text(encoding="utf-8")


def client_for(handle: SalesforceSandboxHandle) -> SalesforceClient:
    """The project's Salesforce client, signed in to the sandbox as the integration user."""
    settings = SalesforceSettings.model_validate(
        {
            "auth_flow": "client_credentials",
            "login_url": handle.instance_url,
            "client_id": handle.credentials.client_id,
            "client_secret": handle.credentials.client_secret,
            "api_version": handle.api_version,
            "ca_file": str(handle.ca_file),
            "timeout_seconds": 10,
        }
    )
    return SalesforceClient(settings)


def rest(handle: SalesforceSandboxHandle, token: str | None = None) -> httpx.Client:
    """Plain REST calls as the integration user (or as the holder of `token`)."""
    trust = ssl.create_default_context(cafile=str(handle.ca_file))
    if token is None:
        token = httpx.post(
            handle.token_url,
            data={"grant_type": "client_credentials"},
            auth=(handle.credentials.client_id, handle.credentials.client_secret),
            verify=trust,
        ).json()["access_token"]
    return httpx.Client(
        base_url=f"{handle.instance_url}/services/data/v{handle.api_version}",
        headers={"Authorization": f"Bearer {token}"},
        verify=trust,
    )


def create(client: httpx.Client, object_type: str, body: dict[str, Any]) -> str:
    response = client.post(f"/sobjects/{object_type}/", json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def seed_deal(handle: SalesforceSandboxHandle) -> tuple[str, str]:
    """An Account and a won Opportunity on it; (account id, opportunity id)."""
    with rest(handle) as client:
        account_id = create(client, "Account", {"Name": "Vandelay Industries"})
        opportunity_id = create(
            client,
            "Opportunity",
            {"Name": "Latex", "AccountId": account_id, "StageName": "Closed Won", "CloseDate": "2026-06-30"},
        )
    return account_id, opportunity_id


def record(handle: SalesforceSandboxHandle, object_type: str, record_id: str) -> dict[str, Any]:
    (found,) = [item for item in handle.admin.records(object_type) if item["Id"] == record_id]
    return found


@pytest.fixture(autouse=True)
def no_cached_token() -> Iterator[None]:
    auth.clear_token_cache()
    yield
    auth.clear_token_cache()


@pytest.fixture
def without_synced_at(
    tmp_path: Path, start_salesforce: Callable[..., SalesforceSandboxHandle]
) -> SalesforceSandboxHandle:
    """A sandbox set up from a copy of the package without Opportunity.Intacct_Synced_At__c."""
    package_dir = copy_package(tmp_path / "salesforce")
    remove_field(package_dir, REMOVED_OBJECT, REMOVED_FIELD)
    return start_salesforce(package_dir=package_dir)


# --- a write-back field the package lacks ----------------------------------------------------------------


def test_a_write_back_of_a_field_the_package_lacks_is_invalid_field_and_permanent(
    without_synced_at: SalesforceSandboxHandle,
) -> None:
    handle = without_synced_at
    _, opportunity_id = seed_deal(handle)
    update = write_back.opportunity_synced(opportunity_id, "SO-0042", datetime(2026, 7, 1, 9, 30, tzinfo=UTC))
    assert REMOVED_FIELD in update.fields

    with pytest.raises(SalesforceError) as raised:
        client_for(handle).write_back([update])

    error = raised.value
    assert type(error) is PermanentSalesforceError  # neither transient nor "record not found"
    assert not error.transient
    assert error.status == 400
    (detail,) = error.details
    assert detail.error_code == "INVALID_FIELD"
    assert detail.message == f"No such column '{REMOVED_FIELD}' on sobject of type {REMOVED_OBJECT}"
    assert detail.fields == ()
    assert detail.reference == f"Opportunity {opportunity_id}"
    # The sync service fails the request for good, as Salesforce's refusal, without retrying it.
    assert isinstance(error, PERMANENT_ERRORS)
    assert _permanent_reason(error) is Reason.SALESFORCE_REJECTED
    # allOrNone: nothing of the update was saved.
    saved = record(handle, "Opportunity", opportunity_id)
    assert (saved["Intacct_Order_Id__c"], saved["Intacct_Sync_Status__c"]) == (None, None)


def test_the_other_records_of_the_write_back_are_rolled_back_and_only_the_cause_is_reported(
    without_synced_at: SalesforceSandboxHandle,
) -> None:
    handle = without_synced_at
    account_id, opportunity_id = seed_deal(handle)
    now = datetime(2026, 7, 1, 9, 30, tzinfo=UTC)

    with pytest.raises(PermanentSalesforceError) as raised:
        client_for(handle).write_back(
            [
                write_back.account_synced(account_id, "C-0042", now),
                write_back.opportunity_synced(opportunity_id, "SO-0042", now),
            ]
        )

    assert not isinstance(raised.value, RecordNotFound)
    assert raised.value.error_codes == ("INVALID_FIELD",)  # the account's PROCESSING_HALTED is not the cause
    assert record(handle, "Account", account_id)["Intacct_Customer_Id__c"] is None


def test_the_failure_is_still_written_back_to_the_fields_the_package_has(
    without_synced_at: SalesforceSandboxHandle,
) -> None:
    handle = without_synced_at
    _, opportunity_id = seed_deal(handle)
    client = client_for(handle)
    with pytest.raises(PermanentSalesforceError) as raised:
        client.write_back([write_back.opportunity_synced(opportunity_id, "SO-0042", datetime.now(UTC))])

    client.write_back([write_back.failed("Opportunity", opportunity_id, str(raised.value), None)])

    saved = record(handle, "Opportunity", opportunity_id)
    assert saved["Intacct_Sync_Status__c"] == "Failed"
    assert f"INVALID_FIELD: No such column '{REMOVED_FIELD}'" in saved["Intacct_Sync_Error__c"]


def test_the_same_write_back_is_taken_by_a_sandbox_of_the_whole_package(
    salesforce: SalesforceSandboxHandle,
) -> None:
    _, opportunity_id = seed_deal(salesforce)

    client_for(salesforce).write_back(
        [write_back.opportunity_synced(opportunity_id, "SO-0042", datetime(2026, 7, 1, 9, 30, tzinfo=UTC))]
    )

    saved = record(salesforce, "Opportunity", opportunity_id)
    assert (saved["Intacct_Order_Id__c"], saved[REMOVED_FIELD]) == ("SO-0042", "2026-07-01T09:30:00.000+0000")


def test_describe_and_soql_know_only_the_fields_of_the_package_copy(
    without_synced_at: SalesforceSandboxHandle,
) -> None:
    with rest(without_synced_at) as client:
        described = client.get(f"/sobjects/{REMOVED_OBJECT}/describe").json()
        query = client.get("/query", params={"q": f"SELECT {REMOVED_FIELD} FROM {REMOVED_OBJECT}"})

    names = {item["name"] for item in described["fields"]}
    assert "Intacct_Order_Id__c" in names
    assert REMOVED_FIELD not in names
    assert query.status_code == 400
    assert query.json()[0]["errorCode"] == "INVALID_FIELD"


# --- the package's other set-up -----------------------------------------------------------------------------


def test_a_field_added_to_the_package_copy_is_in_the_sandbox_with_its_type(
    tmp_path: Path, start_salesforce: Callable[..., SalesforceSandboxHandle]
) -> None:
    package_dir = copy_package(tmp_path / "salesforce")
    fields = package_dir / "force-app" / "main" / "default" / "objects" / "Account" / "fields"
    (fields / "Credit_Limit__c.field-meta.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<CustomField xmlns="http://soap.sforce.com/2006/04/metadata">\n'
        "    <fullName>Credit_Limit__c</fullName>\n    <label>Credit Limit</label>\n"
        "    <precision>8</precision>\n    <scale>2</scale>\n    <type>Currency</type>\n"
        "</CustomField>\n",
        encoding="utf-8",
    )
    handle = start_salesforce(package_dir=package_dir)

    with rest(handle) as client:
        (described,) = [
            item
            for item in client.get("/sobjects/Account/describe").json()["fields"]
            if item["name"] == "Credit_Limit__c"
        ]
        too_big = client.post("/sobjects/Account/", json={"Name": "A", "Credit_Limit__c": 1_000_000})
        account_id = create(client, "Account", {"Name": "B", "Credit_Limit__c": 2500.125})

    assert (described["type"], described["precision"], described["scale"]) == ("currency", 8, 2)
    assert too_big.status_code == 400
    assert too_big.json()[0]["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE"
    assert record(handle, "Account", account_id)["Credit_Limit__c"] == 2500.125  # decimals kept, as sent


def test_the_package_outbound_messages_skip_the_integration_user_as_the_flow_says(
    start_salesforce: Callable[..., SalesforceSandboxHandle],
) -> None:
    handle = start_salesforce(
        outbound_variables={"SFINTACCT_OUTBOUND_URL": UNREACHABLE_LISTENER}, time_factor=0.001
    )
    integration_user_id = handle.credentials.integration_user_id
    (rep,) = [user for user in handle.admin.users() if user["id"] != integration_user_id]
    rep_token = handle.admin.log_in(rep["username"])["access_token"]
    (integration_user,) = [user for user in handle.admin.users() if user["id"] == integration_user_id]
    assert integration_user["permission_sets"] == ["Sfintacct_Integration"]

    with rest(handle) as integration, rest(handle, rep_token) as sales_rep:
        by_integration = create(integration, "Account", {"Name": "Written by the workers"})
        by_rep = create(sales_rep, "Account", {"Name": "Entered by sales"})
        won_by_integration = create(
            integration,
            "Opportunity",
            {"Name": "Won", "AccountId": by_rep, "StageName": "Closed Won", "CloseDate": "2026-06-30"},
        )
        won_by_rep = create(
            sales_rep,
            "Opportunity",
            {"Name": "Won too", "AccountId": by_rep, "StageName": "Closed Won", "CloseDate": "2026-06-30"},
        )

    sent = {
        (delivery["definition"], record_id)
        for delivery in handle.admin.outbound()
        for record_id in delivery["record_ids"]
    }
    assert ("Account_Created_Or_Updated", by_rep) in sent
    assert ("Account_Created_Or_Updated", by_integration) not in sent
    # Both flows skip the changes of the holders of Sfintacct_Integration_User.
    assert ("Opportunity_Closed_Won", won_by_rep) in sent
    assert ("Opportunity_Closed_Won", won_by_integration) not in sent
    assert {delivery["endpoint_url"] for delivery in handle.admin.outbound()} == {UNREACHABLE_LISTENER}


def test_the_sandbox_refuses_to_start_from_a_package_it_cannot_hold(
    tmp_path: Path, start_salesforce: Callable[..., SalesforceSandboxHandle]
) -> None:
    package_dir = copy_package(tmp_path / "salesforce")
    fields = package_dir / "force-app" / "main" / "default" / "objects" / "Account" / "fields"
    (fields / "Parent_Account__c.field-meta.xml").write_text(
        '<CustomField xmlns="http://soap.sforce.com/2006/04/metadata"><fullName>Parent_Account__c</fullName>'
        "<label>Parent</label><referenceTo>Account</referenceTo><type>Lookup</type></CustomField>",
        encoding="utf-8",
    )

    with pytest.raises(ValueError, match="does not support fields of type Lookup"):
        start_salesforce(package_dir=package_dir)
    with pytest.raises(ValueError, match="the package has no permission set Nobody"):
        start_salesforce(integration_permission_sets=("Nobody",))
