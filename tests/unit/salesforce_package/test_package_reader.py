"""sandbox/salesforce/package.py reads the package: custom fields, Outbound Messages with the flows that
send them, permission sets and deploy-time replacements; it refuses what it does not understand."""

from __future__ import annotations

from pathlib import Path

import pytest
from sfpkg_support import write_package_project

from sandbox.salesforce.flow_formula import parse_formula
from sandbox.salesforce.package import (
    BlankOnCreate,
    CustomErrorFlow,
    CustomField,
    CustomObject,
    FlowTrigger,
    PackageError,
    PermissionGrant,
    SkippedChanges,
    load_package,
)
from sfintacct.finance.invoices import PaymentState
from sfintacct.salesforce_fields import written_fields

NS = 'xmlns="http://soap.sforce.com/2006/04/metadata"'
# "The error message can have up to 255 characters" (Salesforce Help, "Custom Error Element").
CUSTOM_ERROR_MESSAGE_LENGTH = 255
OPPORTUNITY_MESSAGE = f"""<?xml version="1.0" encoding="UTF-8"?>
<Workflow {NS}>
    <outboundMessages>
        <fullName>Deal_Won</fullName>
        <apiVersion>65.0</apiVersion>
        <endpointUrl>%%ENDPOINT%%</endpointUrl>
        <fields>Id</fields>
        <fields>IsWon</fields>
        <includeSessionId>false</includeSessionId>
        <integrationUser>someone@example.invalid</integrationUser>
        <name>Deal_Won</name>
        <protected>false</protected>
        <useDeadLetterQueue>false</useDeadLetterQueue>
    </outboundMessages>
</Workflow>
"""


def _flow(start: str, action: str = "Opportunity.Deal_Won", extra: str = "") -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Flow {NS}>
    <actionCalls>
        <name>Send</name>
        <label>Send</label>
        <actionName>{action}</actionName>
        <actionType>outboundMessage</actionType>
    </actionCalls>{extra}
    <start>
        <connector>
            <targetReference>Send</targetReference>
        </connector>
{start}
        <triggerType>RecordAfterSave</triggerType>
    </start>
</Flow>
"""


def _before_save(
    start: str,
    *,
    value: str = "",
    reference: str = "$Record.Name",
    operator: str = "Assign",
    extra: str = "",
) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Flow {NS}>
    <assignments>
        <name>Clear</name>
        <label>Clear</label>
        <assignmentItems>
            <assignToReference>{reference}</assignToReference>
            <operator>{operator}</operator>{value}
        </assignmentItems>
    </assignments>{extra}
    <start>
        <connector>
            <targetReference>Clear</targetReference>
        </connector>
        <object>Account</object>
        {start}
        <triggerType>RecordBeforeSave</triggerType>
    </start>
    <status>Active</status>
</Flow>
"""


WON_START = """        <doesRequireRecordChangedToMeetCriteria>true</doesRequireRecordChangedToMeetCriteria>
        <filterLogic>and</filterLogic>
        <filters>
            <field>IsWon</field>
            <operator>EqualTo</operator>
            <value>
                <booleanValue>true</booleanValue>
            </value>
        </filters>
        <object>Opportunity</object>
        <recordTriggerType>Update</recordTriggerType>"""


def _custom_error(
    start: str = "<filterFormula>ISNEW()</filterFormula><recordTriggerType>Create</recordTriggerType>",
    *,
    message: str = "No: {!$Record.Name}",
    field_error: str = "false",
    extra: str = "",
    trigger: str = "RecordBeforeSave",
) -> str:
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Flow {NS}>
    <customErrors>
        <name>Refuse</name>
        <label>Refuse</label>
        <customErrorMessages>
            <errorMessage>{message}</errorMessage>
            <isFieldError>{field_error}</isFieldError>
        </customErrorMessages>{extra}
    </customErrors>
    <start>
        <connector>
            <targetReference>Refuse</targetReference>
        </connector>
        <object>Account</object>
{start}
        <triggerType>{trigger}</triggerType>
    </start>
    <status>Active</status>
</Flow>
"""


def _field(name: str, body: str) -> str:
    return f"<CustomField {NS}><fullName>{name}</fullName><label>x</label>{body}</CustomField>"


def _project(root: Path, files: dict[str, str]) -> Path:
    return write_package_project(root, files, workflow_object="Opportunity")


def test_reads_the_custom_fields_of_the_package() -> None:
    package = load_package()

    assert package.field("Opportunity", "Intacct_Sync_Status__c") == CustomField(
        object_type="Opportunity",
        name="Intacct_Sync_Status__c",
        type="Picklist",
        label="Intacct Sync Status",
        picklist_values=(
            "Pending",
            "Synced",
            "Failed",
            "Skipped",
            "Changed after sync",
            "Order closed",
            "Synced with warnings",
            "Waiting",
        ),
        restricted_picklist=True,
    )
    error = package.field("Account", "Intacct_Sync_Error__c")
    assert error is not None
    assert (error.type, error.length) == ("LongTextArea", 32768)
    assert [spec.name for spec in package.custom_fields["Account"]] == [
        "Intacct_AR_Balance__c",
        "Intacct_Customer_Id__c",
        "Intacct_Days_Past_Due__c",
        "Intacct_In_Collections__c",
        "Intacct_Last_Synced__c",
        "Intacct_Sync_Error__c",
        "Intacct_Sync_Status__c",
    ]
    assert package.field("Account", "Missing__c") is None


def test_reads_the_finance_fields_and_the_collections_warning_formula() -> None:
    package = load_package()

    def described(object_type: str, name: str) -> tuple[object, ...]:
        spec = package.field(object_type, name)
        assert spec is not None, name
        return (
            spec.type,
            spec.length,
            spec.precision,
            spec.scale,
            spec.picklist_values,
            spec.restricted_picklist,
        )

    assert described("Opportunity", "Intacct_Invoice_Number__c") == ("Text", 255, None, None, (), False)
    assert described("Opportunity", "Intacct_Invoice_State__c") == (
        "Picklist",
        None,
        None,
        None,
        ("Open", "Partially paid", "Paid"),
        True,
    )
    assert described("Opportunity", "Intacct_Amount_Due__c") == ("Currency", None, 18, 2, (), False)
    assert described("Opportunity", "Intacct_Invoice_Approved__c") == (
        "Checkbox",
        None,
        None,
        None,
        (),
        False,
    )
    assert described("Account", "Intacct_AR_Balance__c") == ("Currency", None, 18, 2, (), False)
    assert described("Account", "Intacct_Days_Past_Due__c") == ("Number", None, 18, 0, (), False)
    assert described("Account", "Intacct_In_Collections__c") == ("Checkbox", None, None, None, (), False)
    warning = package.field("Opportunity", "Intacct_Collections_Warning__c")
    assert warning is not None
    assert (warning.type, warning.formula_blanks_as_zero) == ("Text", True)
    assert warning.formula == (
        'IF(Account.Intacct_In_Collections__c, "In collections: " & '
        'TEXT(Account.Intacct_Days_Past_Due__c) & " days past due in Sage Intacct", "")'
    )
    # The finance run's picklist values are its PaymentState's.
    assert set(described("Opportunity", "Intacct_Invoice_State__c")[4]) == {
        state.value for state in PaymentState
    }


def test_reads_the_collections_block_flow() -> None:
    (block,) = load_package().custom_errors

    assert block == CustomErrorFlow(
        flow="Sfintacct_Opportunity_Collections_Block",
        object_type="Opportunity",
        on_create=True,
        on_update=True,
        formula=block.formula,
        message=(
            "This deal's Account is in collections in Sage Intacct: "
            "{!$Record.Account.Intacct_Days_Past_Due__c} days past due. Ask finance before you create "
            "the deal or change its stage."
        ),
        permissions=(PermissionGrant("Sfintacct_Block_Collections", ("Sfintacct_Collections_Block",)),),
    )
    formula = parse_formula(block.formula)
    assert formula.fields == {"StageName", "Account.Intacct_In_Collections__c"}
    assert formula.changed_fields == {"StageName"}
    assert formula.permissions == {"Sfintacct_Block_Collections"}
    assert len(block.message) <= CUSTOM_ERROR_MESSAGE_LENGTH


def test_reads_the_custom_objects_of_the_package() -> None:
    package = load_package()

    assert package.custom_objects == {
        "Sfintacct_Intake_Key__c": CustomObject(
            name="Sfintacct_Intake_Key__c",
            label="Sfintacct Intake Key",
            name_field_label="Key Name",
            name_field_type="Text",
        )
    }
    signing_key = package.field("Sfintacct_Intake_Key__c", "Signing_Key__c")
    assert signing_key is not None
    assert (signing_key.type, signing_key.length, signing_key.required) == ("EncryptedText", 175, True)


def test_reads_the_outbound_messages_and_their_triggers() -> None:
    package = load_package()

    won = package.outbound_message("Opportunity_Closed_Won")
    assert won.object_type == "Opportunity"
    assert won.fields == ("Id", "Name", "AccountId", "StageName", "IsWon", "LastModifiedDate")
    assert (won.endpoint_variable, won.integration_user_variable) == (
        "SFINTACCT_OUTBOUND_URL",
        "SFINTACCT_INTEGRATION_USERNAME",
    )
    # The sandbox's entry_formula: the flow's entry formula, evaluated on each save.
    (trigger,) = won.triggers
    assert trigger == FlowTrigger(
        flow="Sfintacct_Opportunity_Closed_Won",
        object_type="Opportunity",
        on_create=True,
        on_update=True,
        formula=trigger.formula,
        permissions=(PermissionGrant("Sfintacct_Integration_User", ("Sfintacct_Integration",)),),
    )
    assert trigger.formula is not None
    assert parse_formula(trigger.formula).permissions == {"Sfintacct_Integration_User"}
    account = package.outbound_message("Account_Created_Or_Updated")
    assert account.fields == ("Id", "Name", "LastModifiedDate")
    # The sandbox's created_or_updated, skipping the integration user's changes.
    assert account.triggers == (
        FlowTrigger(
            flow="Sfintacct_Account_Created_Or_Updated",
            object_type="Account",
            on_create=True,
            on_update=True,
            skipped=SkippedChanges("Sfintacct_Integration_User", ("Sfintacct_Integration",)),
        ),
    )
    with pytest.raises(KeyError):
        package.outbound_message("Nope")


def test_reads_the_before_save_flows_that_blank_the_intacct_fields_of_new_records() -> None:
    package = load_package()

    assert package.blank_on_create == (
        BlankOnCreate(
            flow="Sfintacct_Account_New_Starts_Unsynced",
            object_type="Account",
            fields=(
                "Intacct_Customer_Id__c",
                "Intacct_Sync_Status__c",
                "Intacct_Sync_Error__c",
                "Intacct_Last_Synced__c",
                "Intacct_AR_Balance__c",
                "Intacct_Days_Past_Due__c",
                "Intacct_In_Collections__c",
            ),
        ),
        BlankOnCreate(
            flow="Sfintacct_Opportunity_New_Starts_Unsynced",
            object_type="Opportunity",
            fields=(
                "Intacct_Order_Id__c",
                "Intacct_Sync_Status__c",
                "Intacct_Sync_Error__c",
                "Intacct_Synced_At__c",
                "Intacct_Invoice_Number__c",
                "Intacct_Invoice_State__c",
                "Intacct_Amount_Due__c",
            ),
        ),
    )
    # Every field the workers and the finance run write: a clone keeps none of the original's sync or
    # finance state. Intacct Invoice Approved (set by finance, also on new deals) and the collections
    # warning (a formula) are not blanked.
    for flow in package.blank_on_create:
        written = {field.name for field in written_fields() if field.object_type == flow.object_type}
        assert set(flow.fields) == written


def test_a_blank_text_value_reads_as_blank(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        {
            "flows/Blank.flow-meta.xml": _before_save(
                "<recordTriggerType>Create</recordTriggerType>",
                value="<value><stringValue></stringValue></value>",
            )
        },
    )

    assert load_package(root).blank_on_create == (BlankOnCreate("Blank", "Account", ("Name",)),)


def test_reads_permission_sets_and_replacements() -> None:
    package = load_package()

    integration = package.permission_sets["Sfintacct_Integration"]
    assert "Opportunity.Intacct_Order_Id__c" in integration.editable_fields
    assert "Account.BillingAddress" in integration.readable_fields
    assert integration.custom_permissions == {"Sfintacct_Integration_User"}
    assert package.replacements["%%SFINTACCT_EVENTS_URL%%"] == "SFINTACCT_EVENTS_URL"


def test_a_small_package(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        {
            "workflows/Opportunity.workflow-meta.xml": OPPORTUNITY_MESSAGE,
            "flows/Deal_Won.flow-meta.xml": _flow(WON_START),
            "objects/Opportunity/fields/Score__c.field-meta.xml": f"""<?xml version="1.0" encoding="UTF-8"?>
<CustomField {NS}>
    <fullName>Score__c</fullName>
    <label>Score</label>
    <precision>5</precision>
    <scale>2</scale>
    <type>Number</type>
</CustomField>
""",
        },
    )

    package = load_package(root)

    assert package.field("Opportunity", "Score__c") == CustomField(
        object_type="Opportunity", name="Score__c", type="Number", label="Score", precision=5, scale=2
    )
    message = package.outbound_message("Deal_Won")
    assert (message.endpoint_url, message.endpoint_variable) == ("%%ENDPOINT%%", "ENDPOINT_URL")
    assert (message.integration_user, message.integration_user_variable) == ("someone@example.invalid", None)
    (trigger,) = message.triggers
    assert (trigger.on_create, trigger.on_update, trigger.only_when_changed_to_meet) == (False, True, True)


def test_a_text_formula_field_and_a_custom_error_flow(tmp_path: Path) -> None:
    root = _project(
        tmp_path,
        {
            "objects/Account/fields/Shout__c.field-meta.xml": _field(
                "Shout__c",
                '<formula>IF(ISBLANK(Name), "", Name &amp; "!")</formula>'
                "<formulaTreatBlanksAs>BlankAsBlank</formulaTreatBlanksAs><type>Text</type>",
            ),
            "flows/Refuse.flow-meta.xml": _custom_error(),
        },
    )

    package = load_package(root)

    shout = package.field("Account", "Shout__c")
    assert shout is not None
    assert (shout.formula, shout.formula_blanks_as_zero) == ('IF(ISBLANK(Name), "", Name & "!")', False)
    assert package.custom_errors == (
        CustomErrorFlow("Refuse", "Account", True, False, "ISNEW()", "No: {!$Record.Name}"),
    )
    assert package.blank_on_create == ()


@pytest.mark.parametrize(
    ("files", "complaint"),
    [
        ({"flows/Deal_Won.flow-meta.xml": _flow(WON_START)}, "does not define: Opportunity.Deal_Won"),
        (
            {"flows/Refuse.flow-meta.xml": _custom_error(field_error="true")},
            "a Custom Error on a field is not read",
        ),
        (
            {"flows/Refuse.flow-meta.xml": _custom_error(trigger="RecordAfterSave")},
            "a Custom Error is read only in a before-save record-triggered flow",
        ),
        (
            {"flows/Refuse.flow-meta.xml": _custom_error(message="No: {!$User.Name}")},
            "the error message is not read: the merge field",
        ),
        (
            {"flows/Refuse.flow-meta.xml": _custom_error("<recordTriggerType>Create</recordTriggerType>")},
            "missing filterFormula",
        ),
        (
            {
                "flows/Refuse.flow-meta.xml": _custom_error(
                    extra="<connector><targetReference>Refuse</targetReference></connector>"
                )
            },
            "nothing is read after the Custom Error Refuse",
        ),
        (
            {
                "flows/Refuse.flow-meta.xml": _custom_error(
                    "<filterFormula>{!$Permission.Nobody}</filterFormula>"
                    "<recordTriggerType>Update</recordTriggerType>"
                )
            },
            "no permission set grants the custom permission Nobody",
        ),
        (
            {"flows/Deal_Won.flow-meta.xml": _flow(WON_START.replace("EqualTo", "NotEqualTo"))},
            "only EqualTo is read",
        ),
        (
            {"flows/Deal_Won.flow-meta.xml": _flow(WON_START.replace("<filterLogic>and", "<filterLogic>or"))},
            "filterLogic or",
        ),
        (
            {
                "flows/Deal_Won.flow-meta.xml": _flow(
                    '<filterFormula>ISPICKVAL({!$Record.StageName}, "Closed Won")</filterFormula>\n'
                    "<object>Opportunity</object><recordTriggerType>Update</recordTriggerType>"
                )
            },
            "the function ISPICKVAL() is not read",
        ),
        (
            {
                "flows/Deal_Won.flow-meta.xml": _flow(
                    "<filterFormula>{!$Record.Amount} &gt; 100</filterFormula>\n"
                    "<object>Opportunity</object><recordTriggerType>Update</recordTriggerType>"
                )
            },
            "unsupported formula syntax",
        ),
        (
            {
                "flows/Deal_Won.flow-meta.xml": _flow(
                    "<doesRequireRecordChangedToMeetCriteria>true</doesRequireRecordChangedToMeetCriteria>\n"
                    "<filterFormula>ISCHANGED({!$Record.IsWon})</filterFormula>\n"
                    "<object>Opportunity</object><recordTriggerType>CreateAndUpdate</recordTriggerType>"
                )
            },
            "doesRequireRecordChangedToMeetCriteria true is not read",
        ),
        (
            {
                "flows/Deal_Won.flow-meta.xml": _flow(
                    "<filterFormula>AND({!$Record.IsWon}, NOT({!$Permission.Nobody}))</filterFormula>\n"
                    "<object>Opportunity</object><recordTriggerType>CreateAndUpdate</recordTriggerType>"
                )
            },
            "no permission set grants the custom permission Nobody",
        ),
        (
            {
                "flows/Blank.flow-meta.xml": _before_save(
                    "<recordTriggerType>CreateAndUpdate</recordTriggerType>"
                )
            },
            "a before-save flow on CreateAndUpdate is not read (Create only)",
        ),
        (
            {
                "flows/Blank.flow-meta.xml": _before_save(
                    "<recordTriggerType>Create</recordTriggerType>",
                    value="<value><stringValue>X</stringValue></value>",
                )
            },
            "assigns a value; only blank (no value) or false is read",
        ),
        (
            {
                "flows/Blank.flow-meta.xml": _before_save(
                    "<recordTriggerType>Create</recordTriggerType>", reference="Other.Name"
                )
            },
            "the assignment to Other.Name is not read",
        ),
        (
            {
                "flows/Blank.flow-meta.xml": _before_save(
                    "<recordTriggerType>Create</recordTriggerType>", operator="Add"
                )
            },
            "uses Add; only Assign is read",
        ),
        (
            {
                "flows/Blank.flow-meta.xml": _before_save(
                    "<recordTriggerType>Create</recordTriggerType><filterFormula>ISNEW()</filterFormula>"
                )
            },
            "a before-save flow with filterFormula is not read",
        ),
        (
            {
                "flows/Blank.flow-meta.xml": _before_save(
                    "<recordTriggerType>Create</recordTriggerType>",
                    extra="<decisions><name>D</name></decisions>",
                )
            },
            "a before-save flow with decisions is not read",
        ),
        (
            {
                "flows/Deal_Won.flow-meta.xml": _flow(
                    "<filterFormula>NOT({!$Permission.Nobody})</filterFormula>\n"
                    "<object>Opportunity</object><recordTriggerType>Update</recordTriggerType>"
                )
            },
            "no permission set grants the custom permission Nobody",
        ),
        (
            {
                "flows/Deal_Won.flow-meta.xml": _flow(
                    WON_START,
                    extra="\n    <decisions><name>Check</name></decisions>",
                ).replace(
                    "<targetReference>Send</targetReference>", "<targetReference>Check</targetReference>"
                )
            },
            "Check is not an action",
        ),
        (
            {"flows/Deal_Won.flow-meta.xml": _flow(WON_START.replace(">Update<", ">Delete<"))},
            "recordTriggerType Delete",
        ),
        (
            {"flows/Deal_Won.flow-meta.xml": _flow(WON_START, action="Account.Deal_Won")},
            "sends Account.Deal_Won from a flow on Opportunity",
        ),
        ({"objects/Account/fields/Broken__c.field-meta.xml": "<CustomField"}, "not well-formed XML"),
        (
            {"objects/Account/fields/Wrong__c.field-meta.xml": f"<CustomObject {NS}/>"},
            "expected a CustomField",
        ),
        (
            {"objects/Account/fields/Named__c.field-meta.xml": _field("Other__c", "<type>Text</type>")},
            "does not match the file name",
        ),
        (
            {
                "objects/Account/fields/Long__c.field-meta.xml": _field(
                    "Long__c", "<type>Text</type><length>long</length>"
                )
            },
            "length is not a whole number",
        ),
        (
            {
                "objects/Account/fields/Twice__c.field-meta.xml": _field(
                    "Twice__c", "<formula>AnnualRevenue * 2</formula><type>Currency</type>"
                )
            },
            "a formula field returning Currency is not read (Text only)",
        ),
        (
            {
                "objects/Account/fields/Twice__c.field-meta.xml": _field(
                    "Twice__c", '<formula>IF(AnnualRevenue &gt; 2, "big", "")</formula><type>Text</type>'
                )
            },
            "the formula is not read: unsupported formula syntax",
        ),
        (
            {
                "objects/Account/fields/Total__c.field-meta.xml": _field(
                    "Total__c", "<summaryOperation>count</summaryOperation><type>Summary</type>"
                )
            },
            "roll-up summary fields are not read",
        ),
        (
            {
                "objects/Widget__c/Widget__c.object-meta.xml": (
                    f"<CustomObject {NS}><label>W</label></CustomObject>"
                )
            },
            "missing nameField",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_refuses_what_it_does_not_understand(tmp_path: Path, files: dict[str, str], complaint: str) -> None:
    with_message = (
        {"workflows/Opportunity.workflow-meta.xml": OPPORTUNITY_MESSAGE}
        if "does not define" not in complaint
        else {}
    )
    root = _project(tmp_path, {**with_message, **files})

    with pytest.raises(PackageError, match=complaint.replace("(", r"\(").replace(")", r"\)")):
        load_package(root)


def test_refuses_a_project_without_package_directories(tmp_path: Path) -> None:
    (tmp_path / "sfdx-project.json").write_text("{}")

    with pytest.raises(PackageError, match="no packageDirectories"):
        load_package(tmp_path)
