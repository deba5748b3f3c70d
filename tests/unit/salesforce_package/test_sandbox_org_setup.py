"""sandbox/salesforce/org_setup.py sets the sandbox org up from a package: custom fields with their
types, lengths, precision and scale, picklists; custom objects; Outbound Messages with the rule of the
flow that sends them. What it cannot do the way Salesforce does is refused, never guessed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sfpkg_support import write_package_project

from sandbox.salesforce.errors import ApiError
from sandbox.salesforce.ids import IdGenerator
from sandbox.salesforce.org_setup import blank_on_create, outbound_definitions, schema_from_package
from sandbox.salesforce.outbound import checked_definition, fires
from sandbox.salesforce.package import SalesforcePackage, load_package
from sandbox.salesforce.schema import FieldType
from sandbox.salesforce.store import ChangeEvent, SeedUser, Store

NS = 'xmlns="http://soap.sforce.com/2006/04/metadata"'
INTEGRATION_USER = SeedUser(
    "005000000000001AAA", "sync@example.invalid", "Integration", "User", ("Integration_Set",)
)
SALES_REP = SeedUser("005000000000002AAA", "rep@example.invalid", "Sam", "Seller")
ENDPOINT = "http://127.0.0.1:3000/salesforce/outbound"


def _field(name: str, body: str) -> str:
    return f"<CustomField {NS}><fullName>{name}</fullName><label>{name[:-3]}</label>{body}</CustomField>"


def _package(root: Path, files: dict[str, str]) -> SalesforcePackage:
    return load_package(write_package_project(root, files, workflow_object="Account"))


def _store(package: SalesforcePackage) -> Store:
    return Store(IdGenerator(), [INTEGRATION_USER, SALES_REP], schema_from_package(package))


def _saved(store: Store, object_type: str, body: dict[str, Any]) -> dict[str, Any]:
    with store.lock:
        record_id = store.create(store.schema[object_type], body, INTEGRATION_USER.user_id)
        record = store.get(object_type, record_id)
    assert record is not None
    return record


def _api_error(store: Store, object_type: str, body: dict[str, Any]) -> ApiError:
    with store.lock, pytest.raises(ApiError) as caught:
        store.create(store.schema[object_type], body, INTEGRATION_USER.user_id)
    return caught.value


# --- custom fields --------------------------------------------------------------------------------------


def test_custom_fields_get_the_package_types_lengths_and_digits(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "objects/Account/fields/Score__c.field-meta.xml": _field(
                "Score__c", "<precision>5</precision><scale>2</scale><type>Number</type>"
            ),
            "objects/Account/fields/Vip__c.field-meta.xml": _field("Vip__c", "<type>Checkbox</type>"),
            "objects/Account/fields/Code__c.field-meta.xml": _field(
                "Code__c", "<length>4</length><required>true</required><type>Text</type>"
            ),
            "objects/Account/fields/Contact__c.field-meta.xml": _field("Contact__c", "<type>Email</type>"),
        },
    )

    account = schema_from_package(package)["Account"]

    described = {
        name: (spec.type, spec.max_length, spec.precision, spec.scale, spec.required)
        for name in ("Score__c", "Vip__c", "Code__c", "Contact__c")
        if (spec := account.field(name)) is not None
    }

    assert described == {
        "Score__c": (FieldType.DOUBLE, None, 5, 2, False),
        "Vip__c": (FieldType.BOOLEAN, None, None, None, False),
        "Code__c": (FieldType.STRING, 4, None, None, True),
        "Contact__c": (FieldType.EMAIL, 80, None, None, False),
    }
    assert account.field("Name") is not None  # the standard fields stay


def test_numbers_keep_their_decimals_and_are_refused_beyond_the_digits_before_the_point(
    tmp_path: Path,
) -> None:
    package = _package(
        tmp_path,
        {
            "objects/Account/fields/Score__c.field-meta.xml": _field(
                "Score__c", "<precision>5</precision><scale>2</scale><type>Number</type>"
            )
        },
    )
    store = _store(package)

    # Salesforce keeps the decimals an API call sends, beyond the scale (Help article 000387302).
    assert _saved(store, "Account", {"Name": "a", "Score__c": 1.005})["Score__c"] == 1.005
    assert _saved(store, "Account", {"Name": "b", "Score__c": -999.994})["Score__c"] == -999.994
    error = _api_error(store, "Account", {"Name": "c", "Score__c": 1000})
    assert error.items == [
        {
            "message": "Score: value outside of valid range on numeric field: 1000",
            "errorCode": "NUMBER_OUTSIDE_VALID_RANGE",
            "fields": ["Score__c"],
        }
    ]


def test_texts_longer_than_the_package_length_are_refused(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "objects/Account/fields/Code__c.field-meta.xml": _field(
                "Code__c", "<length>4</length><type>Text</type>"
            )
        },
    )

    error = _api_error(_store(package), "Account", {"Name": "a", "Code__c": "ABCDE"})

    assert error.error_code == "STRING_TOO_LONG"


@pytest.mark.parametrize(
    ("files", "complaint"),
    [
        (
            {
                "objects/Account/fields/Parent__c.field-meta.xml": _field(
                    "Parent__c", "<referenceTo>Account</referenceTo><type>Lookup</type>"
                )
            },
            "Account.Parent__c: the sandbox does not support fields of type Lookup",
        ),
        (
            {
                "objects/Case/fields/Level__c.field-meta.xml": _field(
                    "Level__c", "<length>5</length><type>Text</type>"
                )
            },
            "fields on Case, which is neither a standard object of the sandbox nor a custom object",
        ),
        (
            {"objects/Account/fields/Score__c.field-meta.xml": _field("Score__c", "<type>Number</type>")},
            "needs a precision and a scale",
        ),
    ],
    ids=["unsupported type", "unknown object", "number without digits"],
)
def test_what_the_sandbox_cannot_hold_is_refused(
    tmp_path: Path, files: dict[str, str], complaint: str
) -> None:
    package = _package(tmp_path, files)

    with pytest.raises(ValueError, match=complaint):
        schema_from_package(package)


# --- custom objects -------------------------------------------------------------------------------------


def test_a_custom_object_of_the_package_is_an_object_of_the_sandbox(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "objects/Widget__c/Widget__c.object-meta.xml": f"""<CustomObject {NS}>
    <label>Widget</label><pluralLabel>Widgets</pluralLabel>
    <nameField><label>Widget Name</label><type>Text</type></nameField>
</CustomObject>""",
            "objects/Widget__c/fields/Size__c.field-meta.xml": _field(
                "Size__c", "<precision>3</precision><scale>0</scale><type>Number</type>"
            ),
        },
    )
    store = _store(package)

    widget = store.schema["Widget__c"]
    record = _saved(store, "Widget__c", {"Name": "Sprocket", "Size__c": 12})

    assert (widget.label, widget.custom, widget.key_prefix) == ("Widget", True, "a00")
    assert record["Id"].startswith("a00")
    assert (record["Name"], record["Size__c"], record["OwnerId"]) == (
        "Sprocket",
        12.0,
        INTEGRATION_USER.user_id,
    )
    assert _api_error(store, "Widget__c", {"Size__c": 1}).error_code == "REQUIRED_FIELD_MISSING"


def test_the_package_intake_key_object_is_in_the_sandbox() -> None:
    schema = schema_from_package(load_package())

    key = schema.object("sfintacct_intake_key__c")

    assert key is not None
    signing_key = key.field("Signing_Key__c")
    assert signing_key is not None
    assert (signing_key.type, signing_key.max_length, signing_key.required) == (
        FieldType.ENCRYPTEDSTRING,
        175,
        True,
    )
    assert not signing_key.filterable


# --- Outbound Messages ----------------------------------------------------------------------------------

ACCOUNT_MESSAGE = f"""<Workflow {NS}>
    <outboundMessages>
        <fullName>Account_Changed</fullName>
        <apiVersion>65.0</apiVersion>
        <endpointUrl>%%ENDPOINT%%</endpointUrl>
        <fields>Id</fields>
        <fields>Name</fields>
        <includeSessionId>false</includeSessionId>
        <integrationUser>{{user}}</integrationUser>
        <name>Account_Changed</name>
        <protected>false</protected>
        <useDeadLetterQueue>false</useDeadLetterQueue>
    </outboundMessages>
</Workflow>"""
PERMISSION_SET = f"""<PermissionSet {NS}>
    <customPermissions><enabled>true</enabled><name>Quiet</name></customPermissions>
    <label>Integration set</label>
</PermissionSet>"""
CUSTOM_PERMISSION = f"<CustomPermission {NS}><label>Quiet</label></CustomPermission>"


def _flow(start: str) -> str:
    return f"""<Flow {NS}>
    <actionCalls>
        <name>Send</name><label>Send</label>
        <actionName>Account.Account_Changed</actionName><actionType>outboundMessage</actionType>
    </actionCalls>
    <start>
        <connector><targetReference>Send</targetReference></connector>
        <object>Account</object>
{start}
        <triggerType>RecordAfterSave</triggerType>
    </start>
</Flow>"""


def _messages(tmp_path: Path, flow: str | None, *, user: str = "sync@example.invalid") -> SalesforcePackage:
    files = {
        "workflows/Account.workflow-meta.xml": ACCOUNT_MESSAGE.replace("{user}", user),
        "permissionsets/Integration_Set.permissionset-meta.xml": PERMISSION_SET,
        "customPermissions/Quiet.customPermission-meta.xml": CUSTOM_PERMISSION,
    }
    if flow is not None:
        files["flows/Account_Changed.flow-meta.xml"] = flow
    return _package(tmp_path, files)


def test_changes_skipped_for_holders_of_the_custom_permission_skip_the_integration_user(
    tmp_path: Path,
) -> None:
    package = _messages(
        tmp_path,
        _flow(
            "<filterFormula>NOT({!$Permission.Quiet})</filterFormula>\n"
            "<recordTriggerType>CreateAndUpdate</recordTriggerType>"
        ),
    )

    (definition,) = outbound_definitions(
        package, variables={"ENDPOINT_URL": ENDPOINT}, users=[INTEGRATION_USER, SALES_REP]
    )

    assert definition.condition == "created_or_updated"
    assert definition.ignore_changes_by == INTEGRATION_USER.user_id
    assert (definition.endpoint_url, definition.fields) == (ENDPOINT, ("Id", "Name"))
    without_the_set = SeedUser(INTEGRATION_USER.user_id, INTEGRATION_USER.username, "I", "U")
    (unskipped,) = outbound_definitions(
        package, variables={"ENDPOINT_URL": ENDPOINT}, users=[without_the_set, SALES_REP]
    )
    assert unskipped.ignore_changes_by is None


def test_a_message_no_flow_sends_gets_no_definition(tmp_path: Path) -> None:
    package = _messages(tmp_path, None)

    assert outbound_definitions(package, variables={"ENDPOINT_URL": ENDPOINT}, users=[INTEGRATION_USER]) == []


@pytest.mark.parametrize(
    ("start", "variables", "user", "complaint"),
    [
        (
            "<recordTriggerType>Update</recordTriggerType>",
            {"ENDPOINT_URL": ENDPOINT},
            "sync@example.invalid",
            "cannot send on the rule of flow Account_Changed",
        ),
        (
            "<recordTriggerType>CreateAndUpdate</recordTriggerType>",
            {},
            "sync@example.invalid",
            "its endpoint is %%ENDPOINT%%; give ENDPOINT_URL",
        ),
        (
            "<recordTriggerType>CreateAndUpdate</recordTriggerType>",
            {"ENDPOINT_URL": ENDPOINT},
            "someone.else@example.invalid",
            "is sent as someone.else@example.invalid, who is not a user of the org",
        ),
    ],
    ids=["update only", "endpoint variable not given", "unknown sender"],
)
def test_outbound_messages_the_sandbox_cannot_send_as_salesforce_would_are_refused(
    tmp_path: Path, start: str, variables: dict[str, str], user: str, complaint: str
) -> None:
    package = _messages(tmp_path, _flow(start), user=user)

    with pytest.raises(ValueError, match=complaint):
        outbound_definitions(package, variables=variables, users=[INTEGRATION_USER, SALES_REP])


def test_an_entry_formula_is_evaluated_on_each_save_with_the_permissions_of_the_running_user(
    tmp_path: Path,
) -> None:
    package = _messages(
        tmp_path,
        _flow(
            "<doesRequireRecordChangedToMeetCriteria>false</doesRequireRecordChangedToMeetCriteria>\n"
            "<filterFormula>NOT({!$Permission.Quiet}) &amp;&amp; (ISNEW() || ISCHANGED({!$Record.Name}))"
            "</filterFormula>\n"
            "<recordTriggerType>CreateAndUpdate</recordTriggerType>"
        ),
    )

    (definition,) = outbound_definitions(
        package, variables={"ENDPOINT_URL": ENDPOINT}, users=[INTEGRATION_USER, SALES_REP]
    )
    definition = checked_definition(definition, schema_from_package(package))

    assert definition.condition == "entry_formula"
    assert definition.entry_formula is not None
    assert definition.ignore_changes_by is None
    assert definition.permission_holders == (("Quiet", (INTEGRATION_USER.user_id,)),)
    old = {"Id": "001000000000001AAA", "Name": "Old", "Phone": None, "LastModifiedById": SALES_REP.user_id}

    def saved(before: dict[str, Any] | None, changes: dict[str, Any], user: SeedUser) -> bool:
        after = {**(before or old), **changes, "LastModifiedById": user.user_id}
        kind = "created" if before is None else "updated"
        return fires(definition, ChangeEvent(kind, "Account", old["Id"], before, after))

    assert saved(None, {}, SALES_REP)  # new
    assert saved(old, {"Name": "New"}, SALES_REP)  # renamed
    assert not saved(old, {"Phone": "555"}, SALES_REP)  # another field
    assert not saved(old, {"Name": "New"}, INTEGRATION_USER)  # holds Quiet
    assert not saved(None, {}, INTEGRATION_USER)


def test_an_entry_formula_naming_a_field_the_object_lacks_is_refused(tmp_path: Path) -> None:
    package = _messages(
        tmp_path,
        _flow(
            "<filterFormula>ISCHANGED({!$Record.Nope__c})</filterFormula>\n"
            "<recordTriggerType>CreateAndUpdate</recordTriggerType>"
        ),
    )
    (definition,) = outbound_definitions(
        package, variables={"ENDPOINT_URL": ENDPOINT}, users=[INTEGRATION_USER]
    )

    with pytest.raises(ValueError, match="a field the object does not have"):
        checked_definition(definition, schema_from_package(package))


def test_the_package_before_save_flows_blank_the_intacct_fields_of_every_new_record() -> None:
    package = load_package()
    schema = schema_from_package(package)
    blanks = blank_on_create(package, schema)
    store = Store(IdGenerator(), [INTEGRATION_USER, SALES_REP], schema, blanks)

    assert set(blanks) == {"Account", "Opportunity"}
    account = _saved(
        store,
        "Account",
        {
            "Name": "Clone of Acme",
            "Intacct_Customer_Id__c": "C-1",
            "Intacct_Sync_Status__c": "Synced",
            "Intacct_Sync_Error__c": "old",
            "Intacct_Last_Synced__c": "2026-01-01T00:00:00.000+0000",
            "Intacct_AR_Balance__c": "13000.25",
            "Intacct_Days_Past_Due__c": 130,
            "Intacct_In_Collections__c": True,
        },
    )
    # A checkbox's blank is false (it is never null).
    assert {name: account[name] for name in blanks["Account"]} == {
        **dict.fromkeys(blanks["Account"]),
        "Intacct_In_Collections__c": False,
    }
    assert account["Name"] == "Clone of Acme"
    deal = _saved(
        store,
        "Opportunity",
        {
            "Name": "Clone of the big deal",
            "StageName": "Prospecting",
            "CloseDate": "2026-06-30",
            "Intacct_Invoice_Number__c": "INV-0001",
            "Intacct_Invoice_State__c": "Paid",
            "Intacct_Amount_Due__c": "0.00",
            "Intacct_Invoice_Approved__c": True,
        },
    )
    assert {name: deal[name] for name in blanks["Opportunity"]} == dict.fromkeys(blanks["Opportunity"])
    assert deal["Intacct_Invoice_Approved__c"] is True  # finance's approval is kept


def test_a_before_save_flow_blanking_a_required_field_is_refused(tmp_path: Path) -> None:
    flow = f"""<Flow {NS}>
    <assignments>
        <name>Clear</name>
        <label>Clear</label>
        <assignmentItems><assignToReference>$Record.Name</assignToReference><operator>Assign</operator></assignmentItems>
    </assignments>
    <start>
        <connector><targetReference>Clear</targetReference></connector>
        <object>Account</object>
        <recordTriggerType>Create</recordTriggerType>
        <triggerType>RecordBeforeSave</triggerType>
    </start>
    <status>Active</status>
</Flow>"""
    package = _package(tmp_path, {"flows/Clear.flow-meta.xml": flow})

    with pytest.raises(ValueError, match=r"Account\.Name cannot be blanked on create"):
        blank_on_create(package, schema_from_package(package))
