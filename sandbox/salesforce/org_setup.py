"""The sandbox org's set-up taken from the Salesforce package (read by sandbox/salesforce/package.py):
the custom fields and custom objects of its schema, and its Outbound Messages.

Custom fields become `FieldSpec`s of the standard objects (or of the package's custom objects) with the
package's type, length, precision and scale, picklist values and restriction. Metadata API types the
sandbox has no counterpart for are refused with a ValueError naming the field, never guessed. A Text
formula field is a read-only string of length 1300 (what describe reports for one) whose formula must
name fields the objects have.

Outbound Messages become `OutboundMessageDefinition`s: the object and fields of the workflow file, the
endpoint from the deploy-time variable that replaces its placeholder (the caller gives the value, e.g.
the local API's URL), and the rule of the record-triggered flow that sends it in the sandbox's terms:

- created and updated records, no condition: `created_or_updated`;
- created and updated records, the one condition IsWon = true, sent only when a record changes to meet
  it: `is_won_becomes_true`;
- changes saved by users holding a custom permission are skipped: the sandbox skips the changes of the
  seeded user who holds a permission set granting it (`ignore_changes_by`);
- created and updated records, any other entry formula (the subset `flow_formula.py` reads, not
  requiring the record to change to meet it): `entry_formula`, the formula evaluated on each save,
  with `{!$Permission.X}` true for the seeded users holding a permission set that grants X
  (`permission_holders`).

A message no flow sends is never sent, so it gets no definition. Anything else raises ValueError.

Before-save flows on create that assign blank to fields of `$Record` become `blank_on_create`: object ->
the fields every new record of it starts without (the store clears them on insert). Before-save flows
with a Custom Error become `custom_error_rules`: the store refuses the saves their entry formula holds
for, with `{!$Permission.X}` true for the seeded users holding a permission set that grants X.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sandbox.salesforce.flow_formula import (
    FormulaError,
    merge_text_fields,
    parse_field_formula,
    parse_formula,
)
from sandbox.salesforce.ids import KEY_PREFIXES, encode_base62
from sandbox.salesforce.outbound import OutboundMessageDefinition
from sandbox.salesforce.package import (
    Condition,
    CustomField,
    CustomObject,
    FlowTrigger,
    OutboundMessage,
    PermissionGrant,
    SalesforcePackage,
)
from sandbox.salesforce.schema import (
    STANDARD_OBJECTS,
    FieldSpec,
    FieldType,
    ObjectSpec,
    Schema,
    path_field,
    system_fields,
)
from sandbox.salesforce.store import CustomErrorRule, SeedUser

# Metadata API field types the sandbox stores, and what they are in describe.
FIELD_TYPES: Mapping[str, FieldType] = {
    "Text": FieldType.STRING,
    "TextArea": FieldType.TEXTAREA,
    "LongTextArea": FieldType.TEXTAREA,
    "Picklist": FieldType.PICKLIST,
    "Checkbox": FieldType.BOOLEAN,
    "Number": FieldType.DOUBLE,
    "Currency": FieldType.CURRENCY,
    "Percent": FieldType.PERCENT,
    "Date": FieldType.DATE,
    "DateTime": FieldType.DATETIME,
    "Email": FieldType.EMAIL,
    "Phone": FieldType.PHONE,
    "Url": FieldType.URL,
    "EncryptedText": FieldType.ENCRYPTEDSTRING,
}
# Lengths Salesforce gives the types whose length is not set in the metadata.
FIXED_LENGTHS: Mapping[str, int] = {"TextArea": 255, "Picklist": 255, "Email": 80, "Phone": 40, "Url": 255}
NAME_FIELD_LENGTH = 80  # a custom object's text Name
# The length describe reports for a Text formula field: the most characters its value can show.
FORMULA_TEXT_LENGTH = 1300
CUSTOM_OBJECT_PREFIX = "a0"  # custom objects get key prefixes a00, a01, ... in name order
WON = Condition("IsWon", True)


def schema_from_package(package: SalesforcePackage) -> Schema:
    """The standard objects with the package's custom fields, plus the package's custom objects."""
    objects = dict(STANDARD_OBJECTS)
    custom_objects = sorted(package.custom_objects.values(), key=lambda spec: spec.name)
    for index, custom_object in enumerate(custom_objects):
        objects[custom_object.name] = _custom_object(custom_object, index)
    for object_type, fields in package.custom_fields.items():
        base = objects.get(object_type)
        if base is None:
            raise ValueError(
                f"the package has fields on {object_type}, which is neither a standard object of the "
                "sandbox nor a custom object of the package"
            )
        objects[object_type] = _with_fields(base, tuple(custom_field_spec(spec) for spec in fields))
    schema = Schema(objects)
    for fields in package.custom_fields.values():
        for spec in fields:
            if spec.formula is not None:
                _check_formula(schema, spec.object_type, f"{spec.object_type}.{spec.name}", spec.formula)
    return schema


def _check_formula(schema: Schema, object_type: str, where: str, formula: str, *, field: bool = True) -> None:
    """The fields a formula names exist (through lookups), with the types its functions need."""

    def field_type(path: str) -> str | None:
        found = path_field(schema, object_type, path)
        return found.type.value if found is not None else None

    try:
        (parse_field_formula(formula) if field else parse_formula(formula)).check_fields(field_type)
    except FormulaError as error:
        raise ValueError(f"{where}: {error}") from error


def custom_field_spec(spec: CustomField) -> FieldSpec:
    """The sandbox field for a custom field of the package."""
    where = f"{spec.object_type}.{spec.name}"
    if spec.formula is not None:
        if spec.type != "Text":
            raise ValueError(f"{where}: the sandbox supports Text formula fields only, not {spec.type}")
        return FieldSpec(
            spec.name,
            FieldType.STRING,
            createable=False,
            updateable=False,
            max_length=FORMULA_TEXT_LENGTH,
            label=spec.label,
            formula=spec.formula,
            formula_blanks_as_zero=spec.formula_blanks_as_zero,
        )
    field_type = FIELD_TYPES.get(spec.type)
    if field_type is None:
        raise ValueError(f"{where}: the sandbox does not support fields of type {spec.type}")
    length = spec.length if spec.length is not None else FIXED_LENGTHS.get(spec.type)
    if field_type in (FieldType.STRING, FieldType.TEXTAREA, FieldType.ENCRYPTEDSTRING) and length is None:
        raise ValueError(f"{where}: a {spec.type} field needs a length")
    if field_type is FieldType.PICKLIST and not spec.picklist_values:
        raise ValueError(f"{where}: a picklist needs values")
    numeric = field_type in (FieldType.DOUBLE, FieldType.CURRENCY, FieldType.PERCENT)
    if numeric and (spec.precision is None or spec.scale is None):
        raise ValueError(f"{where}: a {spec.type} field needs a precision and a scale")
    return FieldSpec(
        spec.name,
        field_type,
        required=spec.required,
        max_length=length,
        picklist=spec.picklist_values,
        restricted=spec.restricted_picklist,
        label=spec.label,
        precision=spec.precision if numeric else None,
        scale=spec.scale if numeric else None,
    )


def _custom_object(spec: CustomObject, index: int) -> ObjectSpec:
    if not spec.name.endswith("__c"):
        raise ValueError(f"{spec.name}: the sandbox supports custom objects (__c) only")
    if spec.name_field_type != "Text":
        raise ValueError(
            f"{spec.name}: the sandbox supports a Text name field only, not {spec.name_field_type}"
        )
    prefix = CUSTOM_OBJECT_PREFIX + encode_base62(index, 1)
    if index >= 62 or prefix in KEY_PREFIXES.values():
        raise ValueError(f"{spec.name}: no key prefix left for another custom object")
    return ObjectSpec(
        spec.name,
        (
            *system_fields(),
            FieldSpec(
                "Name",
                FieldType.STRING,
                required=True,
                max_length=NAME_FIELD_LENGTH,
                label=spec.name_field_label,
            ),
            FieldSpec(
                "OwnerId",
                FieldType.REFERENCE,
                reference_to="User",
                relationship_name="Owner",
                max_length=18,
                label="Owner ID",
            ),
        ),
        label=spec.label,
        prefix=prefix,
    )


def _with_fields(base: ObjectSpec, fields: tuple[FieldSpec, ...]) -> ObjectSpec:
    clashes = [spec.name for spec in fields if base.field(spec.name) is not None]
    if clashes:
        raise ValueError(f"{base.name} already has the fields {', '.join(clashes)}")
    return ObjectSpec(
        base.name,
        (*base.fields, *fields),
        children=base.children,
        writable=base.writable,
        label=base.label,
        prefix=base.prefix,
    )


# --- Outbound Messages --------------------------------------------------------------------------------


def outbound_definitions(
    package: SalesforcePackage,
    *,
    variables: Mapping[str, str],
    users: Sequence[SeedUser],
) -> list[OutboundMessageDefinition]:
    """The package's Outbound Messages as sandbox definitions.

    `variables` are the deploy-time values of the package's replacement variables (e.g.
    {"SFINTACCT_OUTBOUND_URL": "http://127.0.0.1:3000/salesforce/outbound"}); an endpoint that is a
    placeholder takes the value of its variable. The integration user a message is sent as must be one
    of `users` (a placeholder for it stands for the first of them, the sandbox's integration user).
    """
    definitions = []
    for message in package.outbound_messages:
        if not message.triggers:
            continue  # nothing sends it
        if len(message.triggers) > 1:
            flows = ", ".join(trigger.flow for trigger in message.triggers)
            raise ValueError(f"{message.name} is sent by several flows ({flows}); the sandbox takes one")
        _check_sender(message, users)
        (trigger,) = message.triggers
        definitions.append(
            OutboundMessageDefinition(
                name=message.name,
                object_type=message.object_type,
                fields=message.fields,
                endpoint_url=_endpoint(message, variables),
                condition=_condition(message, trigger),
                include_session_id=message.include_session_id,
                ignore_changes_by=_skipped_user(message, trigger, users),
                entry_formula=trigger.formula,
                permission_holders=_permission_holders(trigger, users),
            )
        )
    return definitions


def _endpoint(message: OutboundMessage, variables: Mapping[str, str]) -> str:
    if message.endpoint_variable is None:
        return message.endpoint_url
    value = variables.get(message.endpoint_variable)
    if not value:
        raise ValueError(
            f"{message.name}: its endpoint is {message.endpoint_url}; give {message.endpoint_variable}"
        )
    return value


def _check_sender(message: OutboundMessage, users: Sequence[SeedUser]) -> None:
    if message.integration_user_variable is not None:
        return  # filled in at deploy time with the integration user's username
    if not any(user.username == message.integration_user for user in users):
        raise ValueError(
            f"{message.name} is sent as {message.integration_user}, who is not a user of the org"
        )


def _condition(message: OutboundMessage, trigger: FlowTrigger) -> str:
    if trigger.on_create and trigger.on_update:
        if trigger.formula is not None:
            return "entry_formula"
        if not trigger.conditions and not trigger.only_when_changed_to_meet:
            return "created_or_updated"
        if (
            trigger.conditions == (WON,)
            and trigger.only_when_changed_to_meet
            and trigger.object_type == ("Opportunity")
        ):
            return "is_won_becomes_true"
    raise ValueError(
        f"{message.name}: the sandbox cannot send on the rule of flow {trigger.flow} (created or updated, "
        "with no condition, with IsWon = true that the record changes to meet, or with an entry formula, are "
        "supported)"
    )


def _skipped_user(message: OutboundMessage, trigger: FlowTrigger, users: Sequence[SeedUser]) -> str | None:
    if trigger.skipped is None:
        return None
    holders = [user for user in users if set(user.permission_sets) & set(trigger.skipped.permission_sets)]
    if len(holders) > 1:
        names = ", ".join(user.username for user in holders)
        raise ValueError(
            f"{message.name}: several users hold {trigger.skipped.custom_permission} ({names}); "
            "the sandbox skips the changes of one user"
        )
    return holders[0].user_id if holders else None


def _permission_holders(
    trigger: FlowTrigger, users: Sequence[SeedUser]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """Each custom permission the entry formula names -> the seeded users holding a permission set that
    grants it."""
    return _holders(trigger.permissions, users)


def _holders(
    grants: Sequence[PermissionGrant], users: Sequence[SeedUser]
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    return tuple(
        (
            grant.custom_permission,
            tuple(user.user_id for user in users if set(user.permission_sets) & set(grant.permission_sets)),
        )
        for grant in grants
    )


# --- before-save flows ----------------------------------------------------------------------------------


def blank_on_create(package: SalesforcePackage, schema: Schema) -> dict[str, tuple[str, ...]]:
    """Object -> the fields the package's before-save flows blank on every new record, checked against
    the schema: each must exist, be writable on create and not required."""
    fields: dict[str, list[str]] = {}
    for flow in package.blank_on_create:
        spec = schema.object(flow.object_type)
        if spec is None:
            raise ValueError(f"{flow.flow}: the sandbox has no object {flow.object_type}")
        for name in flow.fields:
            field_spec = spec.field(name)
            if field_spec is None:
                raise ValueError(f"{flow.flow}: {flow.object_type} has no field {name}")
            if field_spec.required or not field_spec.createable:
                raise ValueError(f"{flow.flow}: {flow.object_type}.{name} cannot be blanked on create")
            names = fields.setdefault(flow.object_type, [])
            if field_spec.name not in names:
                names.append(field_spec.name)
    return {object_type: tuple(names) for object_type, names in fields.items()}


def custom_error_rules(
    package: SalesforcePackage, schema: Schema, users: Sequence[SeedUser]
) -> tuple[CustomErrorRule, ...]:
    """The package's before-save flows with a Custom Error as the store's rules, their formulas and
    messages checked against the schema (every field they name exists; a condition is a checkbox)."""
    rules = []
    for flow in package.custom_errors:
        if schema.object(flow.object_type) is None:
            raise ValueError(f"{flow.flow}: the sandbox has no object {flow.object_type}")
        _check_formula(schema, flow.object_type, flow.flow, flow.formula, field=False)
        for path in merge_text_fields(flow.message):
            if path_field(schema, flow.object_type, path) is None:
                raise ValueError(
                    f"{flow.flow}: the error message names {{!$Record.{path}}}, which does not exist"
                )
        rules.append(
            CustomErrorRule(
                flow=flow.flow,
                object_type=flow.object_type,
                on_create=flow.on_create,
                on_update=flow.on_update,
                formula=flow.formula,
                message=flow.message,
                permission_holders=_holders(flow.permissions, users),
            )
        )
    return tuple(rules)
