"""Every field the product reads or writes exists in the package, with room for what the workers write,
and the permission sets grant the access the integration user and the sales team need.

The field list is `sfintacct.salesforce_fields` (derived from the queries, the default mapping and the
write-back code); the package is read with sandbox/salesforce/package.py. Until the sandbox reads the
package itself, its hand-kept schema and Outbound Messages are held to the package here too."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from sfpkg_support import FORCE_APP, xml_root

from sandbox.salesforce import schema as sandbox_schema
from sandbox.salesforce.package import CustomField, SalesforcePackage, load_package
from sfintacct.salesforce_fields import (
    WrittenField,
    longest_error_message,
    read_fields,
    write_back_updates,
    written_fields,
)

INTEGRATION_PERMISSION_SET = "Sfintacct_Integration"
STATUS_PERMISSION_SET = "Sfintacct_Sync_Status"
TEXT_TYPES = {"Text", "TextArea", "LongTextArea", "Picklist", "EncryptedText"}
TYPES_FOR_KIND = {"text": TEXT_TYPES, "datetime": {"DateTime"}}
# Fields no permission set can grant or withhold: ids, audit fields, required fields (Name, StageName,
# CloseDate, Quantity) and fields derived by Salesforce. Object read access makes them readable.
ALWAYS_READABLE: Mapping[str, frozenset[str]] = {
    "Account": frozenset({"Id", "Name", "LastModifiedDate"}),
    "Opportunity": frozenset(
        {"Id", "Name", "StageName", "CloseDate", "IsClosed", "IsWon", "LastModifiedDate"}
    ),
    "OpportunityLineItem": frozenset({"Id", "Name", "Quantity", "SortOrder"}),
    "Product2": frozenset({"Id", "Name"}),
}
ADDRESS_PARTS = ("Street", "City", "State", "PostalCode", "Country")
SANDBOX_TYPES = {
    "Text": sandbox_schema.FieldType.STRING,
    "LongTextArea": sandbox_schema.FieldType.TEXTAREA,
    "Picklist": sandbox_schema.FieldType.PICKLIST,
    "DateTime": sandbox_schema.FieldType.DATETIME,
}
SYNCED_OBJECTS = ("Account", "Opportunity")


@pytest.fixture(scope="module")
def package() -> SalesforcePackage:
    return load_package()


def _field(package: SalesforcePackage, object_type: str, name: str) -> CustomField:
    spec = package.field(object_type, name)
    assert spec is not None, f"the package has no field {object_type}.{name}"
    return spec


def _permission_name(object_type: str, name: str) -> str:
    """Field-level security of an address part is set on its compound field: BillingCity -> BillingAddress."""
    for prefix in ("Billing", "Shipping", "Mailing"):
        if name.startswith(prefix) and name.removeprefix(prefix) in ADDRESS_PARTS:
            return f"{object_type}.{prefix}Address"
    return f"{object_type}.{name}"


@pytest.mark.parametrize(
    "written", written_fields(), ids=lambda written: f"{written.object_type}.{written.name}"
)
def test_each_written_field_exists_with_a_type_for_its_values(
    package: SalesforcePackage, written: WrittenField
) -> None:
    spec = _field(package, written.object_type, written.name)

    for kind in written.value_kinds - {"null"}:
        assert spec.type in TYPES_FOR_KIND[kind], f"{spec.type} cannot hold {kind} values"
    if "null" in written.value_kinds:
        assert not spec.required
    if spec.type == "Picklist":
        assert written.constant_values <= set(spec.picklist_values)
        assert spec.restricted_picklist


def test_what_the_workers_write_fits_the_fields(package: SalesforcePackage) -> None:
    for update in write_back_updates(longest_error_message()):
        for name, value in update.fields.items():
            spec = _field(package, update.object_type, name)
            if isinstance(value, str) and spec.type == "Picklist":
                assert value in spec.picklist_values, f"{update.object_type}.{name} = {value!r}"
            elif isinstance(value, str):
                assert spec.length is not None
                assert len(value) <= spec.length, f"{update.object_type}.{name}: {len(value)} > {spec.length}"


def test_each_custom_field_the_workers_read_exists(package: SalesforcePackage) -> None:
    read_custom = [
        (object_type, name)
        for object_type, names in read_fields().items()
        for name in names
        if name.endswith("__c")
    ]
    assert read_custom  # the query reads the write-back ids and status
    for object_type, name in read_custom:
        _field(package, object_type, name)


def test_the_integration_user_may_read_what_the_workers_read(package: SalesforcePackage) -> None:
    grants = package.permission_sets[INTEGRATION_PERMISSION_SET]
    missing = sorted(
        _permission_name(object_type, name)
        for object_type, names in read_fields().items()
        for name in names
        if name not in ALWAYS_READABLE.get(object_type, frozenset())
        and _permission_name(object_type, name) not in grants.readable_fields
    )
    assert missing == []


def test_the_integration_user_may_edit_exactly_the_write_back_fields(package: SalesforcePackage) -> None:
    written = {f"{field.object_type}.{field.name}" for field in written_fields()}

    assert package.permission_sets[INTEGRATION_PERMISSION_SET].editable_fields == written


def test_the_sales_team_may_read_but_not_edit_the_write_back_fields(package: SalesforcePackage) -> None:
    grants = package.permission_sets[STATUS_PERMISSION_SET]
    written = {f"{field.object_type}.{field.name}" for field in written_fields()}

    assert grants.readable_fields == written
    assert grants.editable_fields == frozenset()


def test_only_the_integration_permission_set_marks_changes_that_send_no_message(
    package: SalesforcePackage,
) -> None:
    account_message = package.outbound_message("Account_Created_Or_Updated")
    (trigger,) = account_message.triggers

    assert trigger.skipped is not None
    assert trigger.skipped.permission_sets == (INTEGRATION_PERMISSION_SET,)


def test_the_external_client_app_admits_the_integration_permission_set() -> None:
    (policies,) = FORCE_APP.rglob("*.ecaOauthPlcy-meta.xml")
    root = xml_root(policies)
    namespace = "{http://soap.sforce.com/2006/04/metadata}"

    assert root.findtext(f"{namespace}commaSeparatedPermissionSet") == INTEGRATION_PERMISSION_SET
    assert root.findtext(f"{namespace}permittedUsersPolicyType") == "AdminApprovedPreAuthorized"


@pytest.mark.parametrize("object_type", SYNCED_OBJECTS)
def test_the_sandbox_schema_has_the_package_custom_fields(
    package: SalesforcePackage, object_type: str
) -> None:
    sandbox_object = sandbox_schema.OBJECTS[object_type]
    sandbox_custom = {spec.name for spec in sandbox_object.fields if spec.name.endswith("__c")}

    assert sandbox_custom == {spec.name for spec in package.custom_fields[object_type]}
    for spec in package.custom_fields[object_type]:
        sandbox_spec = sandbox_object.field(spec.name)
        assert sandbox_spec is not None
        assert sandbox_spec.type is SANDBOX_TYPES[spec.type], spec.name
        assert sandbox_spec.max_length == spec.length, spec.name
        assert sandbox_spec.picklist == spec.picklist_values, spec.name
        assert sandbox_spec.restricted == spec.restricted_picklist, spec.name


def test_the_sandbox_stack_sends_the_package_outbound_message_fields(package: SalesforcePackage) -> None:
    from sandbox import stack  # noqa: PLC0415 - the local stack is imported only for this comparison

    assert package.outbound_message("Account_Created_Or_Updated").fields == stack.ACCOUNT_OUTBOUND_FIELDS
    assert package.outbound_message("Opportunity_Closed_Won").fields == stack.OPPORTUNITY_OUTBOUND_FIELDS


def test_each_outbound_message_sends_what_the_intake_reads(package: SalesforcePackage) -> None:
    """The intake keeps only Id and LastModifiedDate of a notification (intake/outbound_message.py)."""
    for message in package.outbound_messages:
        assert {"Id", "LastModifiedDate"} <= set(message.fields), message.name
        assert not message.include_session_id, message.name
