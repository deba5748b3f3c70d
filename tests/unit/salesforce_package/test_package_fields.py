"""Every field the product reads or writes exists in the package, with room for what the workers write,
and the permission sets grant the access the integration user and the sales team need.

The field list is `sfintacct.salesforce_fields` (derived from the queries, the default mapping and the
write-back code); the package is read with sandbox/salesforce/package.py. The Salesforce sandbox is set
up from the same package: the last checks ask the sandbox itself (its describe, its store, the Outbound
Message definitions it builds) whether it shows each package field as Salesforce would and takes what
the workers write."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import pytest
from sfpkg_support import FORCE_APP, xml_root

from sandbox.salesforce.ids import IdGenerator
from sandbox.salesforce.limits import ApiAllowance
from sandbox.salesforce.org_setup import outbound_definitions, schema_from_package
from sandbox.salesforce.package import CustomField, SalesforcePackage, load_package
from sandbox.salesforce.rest import QueryCursors, RestApi
from sandbox.salesforce.store import SeedUser, Store
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
NUMBER_TYPES = {"Number", "Currency"}
# The package types that take each kind of value (sfintacct.salesforce_fields.WrittenField): decimal text
# ("600.00", the finance run's amounts) goes into a number or currency field (the REST API takes a number
# in a JSON string; each value is checked against the field's digits below) or into a text field.
TYPES_FOR_KIND = {
    "text": TEXT_TYPES,
    "decimal": TEXT_TYPES | NUMBER_TYPES,
    "number": NUMBER_TYPES,
    "boolean": {"Checkbox"},
    "datetime": {"DateTime"},
}
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
# What Salesforce's describe says of a custom field of each Metadata API type the package uses:
# its type, and its length when the metadata sets none (0: no length). The type names are the
# fieldType values of describeSObjects' Field (SOAP API Developer Guide, "Field"; the REST describe
# resource returns the same DescribeSObjectResult in JSON, REST API Developer Guide, "sObject
# Describe"): a custom Number field is a "double" whatever its scale, a Checkbox a "boolean" that is
# never nillable. A Text formula field is a "string" of length 1300, the most characters a formula's
# value shows (Salesforce Help, "Formula Field Limits and Restrictions").
DESCRIBED_TYPES = {
    "Text": "string",
    "LongTextArea": "textarea",
    "Picklist": "picklist",
    "DateTime": "datetime",
    "EncryptedText": "encryptedstring",
    "Currency": "currency",
    "Number": "double",
    "Checkbox": "boolean",
}
DESCRIBED_LENGTHS = {"Picklist": 255, "DateTime": 0, "Currency": 0, "Number": 0, "Checkbox": 0}
FORMULA_TEXT_LENGTH = 1300
API_VERSION = "62.0"
INTEGRATION_USER = SeedUser("005000000000001AAA", "sync@example.invalid", "Integration", "User")
SALES_REP = SeedUser("005000000000002AAA", "sales.rep@example.invalid", "Sam", "Seller")


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
            where = f"{update.object_type}.{name} = {value!r}"
            if isinstance(value, bool):
                assert spec.type == "Checkbox", where
            elif spec.type in NUMBER_TYPES:
                assert isinstance(value, (Decimal, int)), where  # a JSON number on the wire
                _assert_fits_the_digits(spec, value, where)
            elif isinstance(value, str) and spec.type == "Picklist":
                assert value in spec.picklist_values, where
            elif isinstance(value, str):
                assert spec.length is not None
                assert len(value) <= spec.length, f"{update.object_type}.{name}: {len(value)} > {spec.length}"


def _assert_fits_the_digits(spec: CustomField, value: str | int | Decimal, where: str) -> None:
    """A number (or text holding one) has no more digits before the point than precision - scale allows
    (more is NUMBER_OUTSIDE_VALID_RANGE) and no more decimals than the scale (the API would keep them
    unrounded, the page would not show them)."""
    try:
        number = Decimal(value)
    except InvalidOperation:
        pytest.fail(f"{where}: not a number, which a {spec.type} field refuses")
    assert spec.precision is not None, where
    assert spec.scale is not None, where
    assert number.is_finite(), where
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int), where
    assert -exponent <= spec.scale, where
    assert abs(number) < Decimal(10) ** (spec.precision - spec.scale), where


def test_a_text_that_is_no_number_does_not_fit_a_currency_field(package: SalesforcePackage) -> None:
    spec = _field(package, "Opportunity", "Intacct_Amount_Due__c")

    _assert_fits_the_digits(spec, "600.00", "a decimal")
    with pytest.raises(pytest.fail.Exception, match="not a number"):
        _assert_fits_the_digits(spec, "six hundred", "text")
    with pytest.raises(AssertionError):
        _assert_fits_the_digits(spec, "600.001", "three decimals")


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
    """Exactly what the workers write, and the formula fields made from it (the collections warning);
    fields people edit (Intacct Invoice Approved, finance's) are left to the org's own profiles."""
    grants = package.permission_sets[STATUS_PERMISSION_SET]
    written = {f"{field.object_type}.{field.name}" for field in written_fields()}
    formulas = {f"{spec.object_type}.{spec.name}" for spec in _package_fields() if spec.formula is not None}

    assert formulas == {"Opportunity.Intacct_Collections_Warning__c"}
    assert grants.readable_fields == written | formulas
    assert grants.editable_fields == frozenset()


def test_the_integration_user_reads_the_approval_finance_sets_but_never_edits_it(
    package: SalesforcePackage,
) -> None:
    """The mapping's order.transaction_type_when may read it (layers/sync/mapping.toml's example)."""
    grants = package.permission_sets[INTEGRATION_PERMISSION_SET]
    approval = "Opportunity.Intacct_Invoice_Approved__c"
    spec = _field(package, "Opportunity", "Intacct_Invoice_Approved__c")

    assert spec.type == "Checkbox"
    assert approval in grants.readable_fields
    assert approval not in grants.editable_fields
    assert approval not in {f"{field.object_type}.{field.name}" for field in written_fields()}


def test_only_the_collections_block_permission_set_turns_the_warning_into_a_block(
    package: SalesforcePackage,
) -> None:
    (block,) = package.custom_errors
    (grant,) = block.permissions

    assert (block.object_type, block.on_create, block.on_update) == ("Opportunity", True, True)
    assert grant.custom_permission == "Sfintacct_Block_Collections"
    assert grant.permission_sets == ("Sfintacct_Collections_Block",)
    assert package.permission_sets["Sfintacct_Collections_Block"].readable_fields == frozenset()
    assert "{!$Record.Account.Intacct_Days_Past_Due__c}" in block.message


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


def _sandbox_org(package: SalesforcePackage) -> tuple[Store, RestApi]:
    """The sandbox's store and REST API set up from the package, without a server."""
    ids = IdGenerator()
    store = Store(ids, [INTEGRATION_USER, SALES_REP], schema_from_package(package))
    rest = RestApi(
        store,
        QueryCursors(ids),
        ApiAllowance(15000),
        on_commit=lambda events: None,
        latest_version=API_VERSION,
    )
    return store, rest


def _package_fields() -> list[CustomField]:
    return [spec for fields in load_package().custom_fields.values() for spec in fields]


@pytest.mark.parametrize("spec", _package_fields(), ids=lambda spec: f"{spec.object_type}.{spec.name}")
def test_the_sandbox_describes_each_package_field_as_salesforce_would(
    package: SalesforcePackage, spec: CustomField
) -> None:
    store, rest = _sandbox_org(package)
    object_spec = store.schema.object(spec.object_type)
    assert object_spec is not None, f"the sandbox has no object {spec.object_type}"

    described = {item["name"]: item for item in rest.describe(object_spec, API_VERSION)["fields"]}

    assert spec.name in described, f"the sandbox does not describe {spec.object_type}.{spec.name}"
    field: dict[str, Any] = described[spec.name]
    assert field["type"] == DESCRIBED_TYPES[spec.type]
    if spec.formula is not None:
        assert field["length"] == FORMULA_TEXT_LENGTH
        assert (field["calculated"], field["calculatedFormula"]) == (True, spec.formula)
        assert (field["createable"], field["updateable"]) == (False, False)
    else:
        assert field["length"] == (spec.length if spec.length is not None else DESCRIBED_LENGTHS[spec.type])
        assert (field["calculated"], field["createable"], field["updateable"]) == (False, True, True)
    assert (field["precision"], field["scale"]) == (spec.precision or 0, spec.scale or 0)
    assert [value["value"] for value in field["picklistValues"]] == list(spec.picklist_values)
    assert field["restrictedPicklist"] is spec.restricted_picklist
    assert field["nillable"] is (not spec.required and spec.type != "Checkbox")
    assert field["label"] == spec.label
    assert field["custom"] is True


def test_the_sandbox_has_no_custom_field_the_package_lacks(package: SalesforcePackage) -> None:
    store, _ = _sandbox_org(package)

    for object_spec in store.schema.objects.values():
        custom = {spec.name for spec in object_spec.fields if spec.custom}
        in_package = {spec.name for spec in package.custom_fields.get(object_spec.name, ())}
        assert custom == in_package, object_spec.name


def test_the_sandbox_takes_what_the_workers_write(package: SalesforcePackage) -> None:
    store, _ = _sandbox_org(package)
    user = INTEGRATION_USER.user_id
    with store.lock:
        records = {
            "Account": store.create(store.schema["Account"], {"Name": "Acme"}, user),
            "Opportunity": store.create(
                store.schema["Opportunity"],
                {"Name": "Acme deal", "StageName": "Closed Won", "CloseDate": "2026-06-30"},
                user,
            ),
        }
        for update in write_back_updates(longest_error_message()):
            body = {  # as the client sends them: date-times as ISO text, amounts as JSON numbers
                name: value.isoformat()
                if isinstance(value, datetime)
                else float(value)
                if isinstance(value, Decimal)
                else value
                for name, value in update.fields.items()
            }
            store.update(store.schema[update.object_type], records[update.object_type], body, user)
            stored = store.get(update.object_type, records[update.object_type])
            assert stored is not None
            for name, value in update.fields.items():
                where = f"{update.object_type}.{name} = {value!r}"
                spec = _field(package, update.object_type, name)
                if spec.type in NUMBER_TYPES:  # stored as a number, read back as a JSON number
                    assert isinstance(value, (Decimal, int))
                    assert stored[name] == float(value), where
                elif isinstance(value, (str, bool, int)):
                    assert stored[name] == value, where


def test_the_sandbox_sends_the_package_outbound_messages_as_the_flows_say(package: SalesforcePackage) -> None:
    integration_user = SeedUser(
        INTEGRATION_USER.user_id,
        INTEGRATION_USER.username,
        "Integration",
        "User",
        (INTEGRATION_PERMISSION_SET,),
    )
    url = "http://127.0.0.1:3000/salesforce/outbound"

    definitions = {
        definition.name: definition
        for definition in outbound_definitions(
            package, variables={"SFINTACCT_OUTBOUND_URL": url}, users=[integration_user, SALES_REP]
        )
    }

    assert set(definitions) == {message.name for message in package.outbound_messages}
    for message in package.outbound_messages:
        definition = definitions[message.name]
        assert (definition.object_type, definition.fields) == (message.object_type, message.fields)
        assert definition.endpoint_url == url
        assert definition.include_session_id is message.include_session_id
    account = definitions["Account_Created_Or_Updated"]
    assert (account.condition, account.ignore_changes_by) == ("created_or_updated", integration_user.user_id)
    won = definitions["Opportunity_Closed_Won"]
    assert (won.condition, won.ignore_changes_by) == ("entry_formula", None)
    assert won.permission_holders == (("Sfintacct_Integration_User", (integration_user.user_id,)),)


def test_each_outbound_message_sends_what_the_intake_reads(package: SalesforcePackage) -> None:
    """The intake keeps only Id and LastModifiedDate of a notification (intake/outbound_message.py)."""
    for message in package.outbound_messages:
        assert {"Id", "LastModifiedDate"} <= set(message.fields), message.name
        assert not message.include_session_id, message.name
