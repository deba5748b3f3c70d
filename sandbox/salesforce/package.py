"""Reads the Salesforce package in salesforce/ (SFDX source format), so the sandbox can be set up from
the same definitions that are deployed to a real org.

What it reads:

- custom fields per object (`objects/<Object>/fields/*.field-meta.xml`): API name, Metadata API type,
  length, precision and scale, picklist values; Text formula fields with their formula in the subset
  `flow_formula.py` reads (other formula fields and roll-up summary fields are refused);
- custom objects (`objects/<Name>__c/<Name>__c.object-meta.xml`): label and name field;
- Outbound Messages (`workflows/<Object>.workflow-meta.xml`) with the record-triggered flows that send
  them (`flows/*.flow-meta.xml`, an `outboundMessage` action), in a simple form: object, on create
  and/or update, conditions `field = value`, whether a record must change to meet them, and whose
  changes are skipped (a custom permission, held through the permission sets that grant it), or an
  entry-condition formula in the subset `flow_formula.py` reads (its custom permissions resolved to
  the permission sets that grant them);
- before-save record-triggered flows on create (`RecordBeforeSave`, `Create`) whose only elements are
  assignments of blank to fields of `$Record` (false to a checkbox): the fields a new record starts
  without;
- before-save record-triggered flows whose start, with an entry formula, leads to one Custom Error
  (`customErrors`) shown in a window: the saves they refuse, and the message (merge fields of `$Record`
  allowed);
- permission sets: the fields they let read or edit and the custom permissions they grant;
- `replacements` of sfdx-project.json: which environment variable fills each %%PLACEHOLDER%% at deploy
  time (the Outbound Message endpoint, the integration user's username).

In the sandbox's own terms, a trigger on create and update with no condition is `created_or_updated`;
one on create and update with the single condition IsWon = true that the record must change to meet
is `is_won_becomes_true`; one with any other entry formula is `entry_formula`. Anything this module
does not understand raises `PackageError` naming the file, rather than being read wrongly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from xml.etree.ElementTree import Element

from defusedxml import ElementTree as SafeElementTree

from sandbox.salesforce.flow_formula import (
    FormulaError,
    merge_text_fields,
    parse_field_formula,
    parse_formula,
)

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "salesforce"
METADATA_NS = "http://soap.sforce.com/2006/04/metadata"
_NS = {"md": METADATA_NS}
_PERMISSION_FORMULA = re.compile(r"^\s*NOT\(\s*\{!\$Permission\.([A-Za-z][A-Za-z0-9_]*)\}\s*\)\s*$")
_TRIGGER_TYPES = {"Create": (True, False), "Update": (False, True), "CreateAndUpdate": (True, True)}


class PackageError(ValueError):
    """The package holds something this reader does not understand; the message names the file."""


@dataclass(frozen=True)
class CustomField:
    """One custom field. `type` is the Metadata API type: Text, LongTextArea, Picklist, DateTime, ..."""

    object_type: str
    name: str
    type: str
    label: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    picklist_values: tuple[str, ...] = ()
    restricted_picklist: bool = False
    required: bool = False
    formula: str | None = None  # a formula field's formula (its `type` is what it returns: Text)
    formula_blanks_as_zero: bool = False  # formulaTreatBlanksAs BlankAsZero


@dataclass(frozen=True)
class CustomObject:
    """A custom object defined by the package. `name_field_type` is Text or AutoNumber."""

    name: str
    label: str
    name_field_label: str
    name_field_type: str


@dataclass(frozen=True)
class Condition:
    """`field = value`, as in a flow's entry conditions."""

    field: str
    value: str | bool | float


@dataclass(frozen=True)
class SkippedChanges:
    """Changes saved by users holding `custom_permission` (granted by `permission_sets`) send nothing."""

    custom_permission: str
    permission_sets: tuple[str, ...]


@dataclass(frozen=True)
class PermissionGrant:
    """A custom permission an entry formula names, and the permission sets that grant it."""

    custom_permission: str
    permission_sets: tuple[str, ...]


@dataclass(frozen=True)
class FlowTrigger:
    """When a record-triggered flow sends its Outbound Message."""

    flow: str
    object_type: str
    on_create: bool
    on_update: bool
    conditions: tuple[Condition, ...] = ()  # all must hold
    only_when_changed_to_meet: bool = False  # an update sends only if the record did not meet them before
    skipped: SkippedChanges | None = None
    formula: str | None = None  # an entry formula other than NOT({!$Permission.X}), as written
    permissions: tuple[PermissionGrant, ...] = ()  # the custom permissions `formula` names


@dataclass(frozen=True)
class BlankOnCreate:
    """A before-save flow on create that assigns blank to `fields` of the new record."""

    flow: str
    object_type: str
    fields: tuple[str, ...]


@dataclass(frozen=True)
class CustomErrorFlow:
    """A before-save flow that refuses the save with `message` (a Custom Error shown in a window) when
    its entry formula holds."""

    flow: str
    object_type: str
    on_create: bool
    on_update: bool
    formula: str
    message: str  # may merge fields of $Record, e.g. {!$Record.Account.Intacct_Days_Past_Due__c}
    permissions: tuple[PermissionGrant, ...] = ()  # the custom permissions `formula` names


@dataclass(frozen=True)
class OutboundMessage:
    """One Outbound Message. Values filled in at deploy time are kept as their placeholders; the
    `*_variable` attributes name the environment variable that replaces each one."""

    name: str
    object_type: str
    fields: tuple[str, ...]
    endpoint_url: str
    endpoint_variable: str | None
    integration_user: str
    integration_user_variable: str | None
    include_session_id: bool
    triggers: tuple[FlowTrigger, ...]


@dataclass(frozen=True)
class PermissionSet:
    name: str
    label: str
    readable_fields: frozenset[str]  # "Object.Field"
    editable_fields: frozenset[str]
    custom_permissions: frozenset[str]


@dataclass(frozen=True)
class SalesforcePackage:
    root: Path
    custom_fields: Mapping[str, tuple[CustomField, ...]]  # object -> its custom fields, by name
    custom_objects: Mapping[str, CustomObject]
    outbound_messages: tuple[OutboundMessage, ...]
    permission_sets: Mapping[str, PermissionSet]
    replacements: Mapping[str, str]  # "%%PLACEHOLDER%%" -> environment variable
    blank_on_create: tuple[BlankOnCreate, ...] = ()
    custom_errors: tuple[CustomErrorFlow, ...] = ()
    _fields_by_key: dict[tuple[str, str], CustomField] = field(
        default_factory=dict, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        for fields in self.custom_fields.values():
            for spec in fields:
                self._fields_by_key[spec.object_type, spec.name] = spec

    def field(self, object_type: str, name: str) -> CustomField | None:
        """The custom field `name` of `object_type` (exact API names), or None."""
        return self._fields_by_key.get((object_type, name))

    def outbound_message(self, name: str) -> OutboundMessage:
        for message in self.outbound_messages:
            if message.name == name:
                return message
        raise KeyError(name)


def load_package(root: Path = PACKAGE_DIR) -> SalesforcePackage:
    """Read the SFDX project at `root` (the directory holding sfdx-project.json)."""
    project = _project(root)
    replacements = _replacements(project)
    directories = [root / path for path in _package_paths(project, root)]
    files = sorted(path for directory in directories for path in directory.rglob("*-meta.xml"))
    permission_sets = _permission_sets(files)
    triggers = _flow_triggers(files, permission_sets)
    return SalesforcePackage(
        root=root,
        custom_fields=_custom_fields(files),
        custom_objects=_custom_objects(files),
        outbound_messages=_outbound_messages(files, triggers, replacements),
        permission_sets=permission_sets,
        replacements=replacements,
        blank_on_create=_blank_on_create(files),
        custom_errors=_custom_error_flows(files, permission_sets),
    )


# --- sfdx-project.json --------------------------------------------------------------------------------


def _project(root: Path) -> dict[str, object]:
    path = root / "sfdx-project.json"
    try:
        project = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise PackageError(f"{path}: {error}") from error
    if not isinstance(project, dict) or not isinstance(project.get("packageDirectories"), list):
        raise PackageError(f"{path}: no packageDirectories")
    return project


def _package_paths(project: Mapping[str, object], root: Path) -> list[str]:
    entries = project["packageDirectories"]
    paths = (
        [entry.get("path") for entry in entries if isinstance(entry, dict)]
        if isinstance(entries, list)
        else []
    )
    if not paths or not all(isinstance(path, str) for path in paths):
        raise PackageError(f"{root / 'sfdx-project.json'}: every packageDirectories entry needs a path")
    return [str(path) for path in paths]


def _replacements(project: Mapping[str, object]) -> Mapping[str, str]:
    entries = project.get("replacements") or []
    if not isinstance(entries, list):
        raise PackageError("sfdx-project.json: replacements must be a list")
    placeholders: dict[str, str] = {}
    for entry in entries:
        if isinstance(entry, dict) and "stringToReplace" in entry and "replaceWithEnv" in entry:
            placeholders[str(entry["stringToReplace"])] = str(entry["replaceWithEnv"])
    return MappingProxyType(placeholders)


# --- XML helpers --------------------------------------------------------------------------------------


def _parse(path: Path, root_tag: str) -> Element:
    try:
        root: Element | None = SafeElementTree.parse(path).getroot()
    except SafeElementTree.ParseError as error:
        raise PackageError(f"{path}: not well-formed XML ({error})") from error
    if root is None or root.tag != f"{{{METADATA_NS}}}{root_tag}":
        found = "nothing" if root is None else root.tag
        raise PackageError(f"{path}: expected a {root_tag} in the metadata namespace, found {found}")
    return root


def _text(element: Element, path: str, default: str | None = None) -> str | None:
    found = element.find(path, _NS)
    if found is None or found.text is None:
        return default
    return found.text.strip()


def _required_text(element: Element, path: str, where: Path) -> str:
    value = _text(element, path)
    if not value:
        raise PackageError(f"{where}: missing {path.removeprefix('md:')}")
    return value


def _int(element: Element, path: str, where: Path) -> int | None:
    value = _text(element, path)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError as error:
        raise PackageError(f"{where}: {path.removeprefix('md:')} is not a whole number: {value!r}") from error


def _bool(element: Element, path: str) -> bool:
    return _text(element, path, "false") == "true"


def _with_suffix(files: list[Path], suffix: str) -> Iterator[Path]:
    return (path for path in files if path.name.endswith(suffix))


def _stem(path: Path, suffix: str) -> str:
    return path.name.removesuffix(suffix)


# --- custom fields ------------------------------------------------------------------------------------


def _custom_fields(files: list[Path]) -> Mapping[str, tuple[CustomField, ...]]:
    by_object: dict[str, list[CustomField]] = {}
    for path in _with_suffix(files, ".field-meta.xml"):
        if path.parent.name != "fields":
            raise PackageError(f"{path}: a field file belongs in objects/<Object>/fields/")
        object_type = path.parent.parent.name
        by_object.setdefault(object_type, []).append(_custom_field(path, object_type))
    return MappingProxyType(
        {
            name: tuple(sorted(fields, key=lambda spec: spec.name))
            for name, fields in sorted(by_object.items())
        }
    )


def _custom_field(path: Path, object_type: str) -> CustomField:
    element = _parse(path, "CustomField")
    name = _required_text(element, "md:fullName", path)
    if name != _stem(path, ".field-meta.xml"):
        raise PackageError(f"{path}: fullName {name} does not match the file name")
    field_type = _required_text(element, "md:type", path)
    if field_type == "Summary":
        raise PackageError(f"{path}: roll-up summary fields are not read")
    formula = _text(element, "md:formula")
    if formula is not None:
        if field_type != "Text":
            raise PackageError(f"{path}: a formula field returning {field_type} is not read (Text only)")
        try:
            parse_field_formula(formula)
        except FormulaError as error:
            raise PackageError(f"{path}: the formula is not read: {error}") from error
    return CustomField(
        object_type=object_type,
        name=name,
        type=field_type,
        label=_required_text(element, "md:label", path),
        length=_int(element, "md:length", path),
        precision=_int(element, "md:precision", path),
        scale=_int(element, "md:scale", path),
        picklist_values=tuple(
            value.text.strip()
            for value in element.findall("md:valueSet/md:valueSetDefinition/md:value/md:fullName", _NS)
            if value.text
        ),
        restricted_picklist=_bool(element, "md:valueSet/md:restricted"),
        required=_bool(element, "md:required"),
        formula=formula,
        formula_blanks_as_zero=formula is not None
        and _text(element, "md:formulaTreatBlanksAs", "BlankAsZero") == "BlankAsZero",
    )


def _custom_objects(files: list[Path]) -> Mapping[str, CustomObject]:
    """The package's custom objects; a standard object's .object-meta.xml (its settings) is not read."""
    objects: dict[str, CustomObject] = {}
    for path in _with_suffix(files, ".object-meta.xml"):
        name = _stem(path, ".object-meta.xml")
        if path.parent.name != name:
            raise PackageError(f"{path}: an object file belongs in objects/<Object>/<Object>.object-meta.xml")
        if "__" not in name:
            continue
        element = _parse(path, "CustomObject")
        name_field = element.find("md:nameField", _NS)
        if name_field is None:
            raise PackageError(f"{path}: missing nameField")
        objects[name] = CustomObject(
            name=name,
            label=_required_text(element, "md:label", path),
            name_field_label=_required_text(name_field, "md:label", path),
            name_field_type=_required_text(name_field, "md:type", path),
        )
    return MappingProxyType(dict(sorted(objects.items())))


# --- permission sets ----------------------------------------------------------------------------------


def _permission_sets(files: list[Path]) -> Mapping[str, PermissionSet]:
    sets: dict[str, PermissionSet] = {}
    for path in _with_suffix(files, ".permissionset-meta.xml"):
        element = _parse(path, "PermissionSet")
        readable: set[str] = set()
        editable: set[str] = set()
        for grant in element.findall("md:fieldPermissions", _NS):
            name = _required_text(grant, "md:field", path)
            if _bool(grant, "md:readable"):
                readable.add(name)
            if _bool(grant, "md:editable"):
                editable.add(name)
        name = _stem(path, ".permissionset-meta.xml")
        sets[name] = PermissionSet(
            name=name,
            label=_required_text(element, "md:label", path),
            readable_fields=frozenset(readable),
            editable_fields=frozenset(editable),
            custom_permissions=frozenset(
                _required_text(grant, "md:name", path)
                for grant in element.findall("md:customPermissions", _NS)
                if _bool(grant, "md:enabled")
            ),
        )
    return MappingProxyType(dict(sorted(sets.items())))


# --- flows --------------------------------------------------------------------------------------------


def _flow_triggers(
    files: list[Path], permission_sets: Mapping[str, PermissionSet]
) -> dict[str, list[FlowTrigger]]:
    """The record-triggered flows that send each Outbound Message, by "Object.MessageName"."""
    triggers: dict[str, list[FlowTrigger]] = {}
    for path in _with_suffix(files, ".flow-meta.xml"):
        element = _parse(path, "Flow")
        messages = [
            _required_text(action, "md:actionName", path)
            for action in element.findall("md:actionCalls", _NS)
            if _text(action, "md:actionType") == "outboundMessage"
        ]
        if not messages:
            continue
        start = element.find("md:start", _NS)
        if start is not None and _text(start, "md:triggerType") == "RecordBeforeSave":
            raise PackageError(f"{path}: a before-save flow cannot send an Outbound Message")
        if start is None or _text(start, "md:triggerType") != "RecordAfterSave":
            raise PackageError(
                f"{path}: an Outbound Message is read only from an after-save record-triggered flow"
            )
        _check_only_actions_follow_start(element, start, path)
        trigger = _trigger(_stem(path, ".flow-meta.xml"), start, path, permission_sets)
        for message in messages:
            if message.split(".", 1)[0] != trigger.object_type:
                raise PackageError(f"{path}: sends {message} from a flow on {trigger.object_type}")
            triggers.setdefault(message, []).append(trigger)
    return triggers


def _check_only_actions_follow_start(flow: Element, start: Element, path: Path) -> None:
    """The flow runs straight from its start through actions; decisions and other elements are not read."""
    actions = {
        _required_text(action, "md:name", path): action for action in flow.findall("md:actionCalls", _NS)
    }
    target = _text(start, "md:connector/md:targetReference")
    seen: set[str] = set()
    while target is not None:
        if target not in actions:
            raise PackageError(f"{path}: {target} is not an action; only start -> actions flows are read")
        if target in seen:
            raise PackageError(f"{path}: the actions connect in a loop at {target}")
        seen.add(target)
        target = _text(actions[target], "md:connector/md:targetReference")
    if seen != set(actions):
        raise PackageError(f"{path}: actions not reached from the start: {sorted(set(actions) - seen)}")


def _trigger(
    flow: str, start: Element, path: Path, permission_sets: Mapping[str, PermissionSet]
) -> FlowTrigger:
    object_type = _required_text(start, "md:object", path)
    trigger_type = _required_text(start, "md:recordTriggerType", path)
    if trigger_type not in _TRIGGER_TYPES:
        raise PackageError(
            f"{path}: recordTriggerType {trigger_type} is not read (create and/or update only)"
        )
    on_create, on_update = _TRIGGER_TYPES[trigger_type]
    filters = start.findall("md:filters", _NS)
    logic = _text(start, "md:filterLogic")
    if filters and logic not in (None, "and"):
        raise PackageError(f"{path}: filterLogic {logic} is not read (and only)")
    formula = _text(start, "md:filterFormula")
    if formula is not None and filters:
        raise PackageError(f"{path}: both filters and a filterFormula")
    only_when_changed = _bool(start, "md:doesRequireRecordChangedToMeetCriteria")
    if formula is not None and _PERMISSION_FORMULA.match(formula) is None:
        if only_when_changed:
            raise PackageError(
                f"{path}: an entry formula with doesRequireRecordChangedToMeetCriteria true is not read"
            )
        return FlowTrigger(
            flow=flow,
            object_type=object_type,
            on_create=on_create,
            on_update=on_update,
            formula=formula,
            permissions=_formula_permissions(formula, path, permission_sets),
        )
    return FlowTrigger(
        flow=flow,
        object_type=object_type,
        on_create=on_create,
        on_update=on_update,
        conditions=tuple(_condition(item, path) for item in filters),
        only_when_changed_to_meet=only_when_changed,
        skipped=_skipped(formula, path, permission_sets) if formula is not None else None,
    )


def _formula_permissions(
    formula: str, path: Path, permission_sets: Mapping[str, PermissionSet]
) -> tuple[PermissionGrant, ...]:
    try:
        parsed = parse_formula(formula)
    except FormulaError as error:
        raise PackageError(f"{path}: the entry formula is not read: {error}") from error
    grants = []
    for permission in sorted(parsed.permissions):
        grants.append(PermissionGrant(permission, _holders(permission, path, permission_sets)))
    return tuple(grants)


def _holders(permission: str, path: Path, permission_sets: Mapping[str, PermissionSet]) -> tuple[str, ...]:
    holders = tuple(name for name, spec in permission_sets.items() if permission in spec.custom_permissions)
    if not holders:
        raise PackageError(f"{path}: no permission set grants the custom permission {permission}")
    return holders


def _condition(item: Element, path: Path) -> Condition:
    name = _required_text(item, "md:field", path)
    operator = _required_text(item, "md:operator", path)
    if operator != "EqualTo":
        raise PackageError(f"{path}: the condition on {name} uses {operator}; only EqualTo is read")
    if (text := _text(item, "md:value/md:stringValue")) is not None:
        return Condition(name, text)
    if (text := _text(item, "md:value/md:booleanValue")) is not None:
        return Condition(name, text == "true")
    if (text := _text(item, "md:value/md:numberValue")) is not None:
        return Condition(name, float(text))
    raise PackageError(f"{path}: the condition on {name} has no string, boolean or number value")


def _skipped(formula: str, path: Path, permission_sets: Mapping[str, PermissionSet]) -> SkippedChanges:
    match = _PERMISSION_FORMULA.match(formula)
    if match is None:
        raise PackageError(
            f"{path}: the entry formula {formula!r} is not read (only NOT({{!$Permission.X}}))"
        )
    permission = match.group(1)
    return SkippedChanges(
        custom_permission=permission, permission_sets=_holders(permission, path, permission_sets)
    )


# --- before-save flows: blank on create -------------------------------------------------------------

_RECORD_FIELD = re.compile(r"^\$Record\.([A-Za-z][A-Za-z0-9_]*)$")
_BEFORE_SAVE_ELEMENTS = frozenset(
    {
        "apiVersion",
        "assignments",
        "description",
        "environments",
        "interviewLabel",
        "label",
        "processMetadataValues",
        "processType",
        "start",
        "status",
    }
)


def _blank_on_create(files: list[Path]) -> tuple[BlankOnCreate, ...]:
    """The before-save flows without a Custom Error: each must be on create only, with nothing but
    assignments of blank to fields of $Record, run in a line from the start."""
    flows = []
    for path in _with_suffix(files, ".flow-meta.xml"):
        element = _parse(path, "Flow")
        start = element.find("md:start", _NS)
        if start is None or _text(start, "md:triggerType") != "RecordBeforeSave":
            continue
        if element.find("md:customErrors", _NS) is not None:
            continue  # read by _custom_error_flows
        flows.append(_blank_on_create_flow(path, element, start))
    return tuple(sorted(flows, key=lambda flow: (flow.object_type, flow.flow)))


def _blank_on_create_flow(path: Path, flow: Element, start: Element) -> BlankOnCreate:
    for child in flow:
        tag = child.tag.removeprefix(f"{{{METADATA_NS}}}")
        if tag not in _BEFORE_SAVE_ELEMENTS:
            raise PackageError(f"{path}: a before-save flow with {tag} is not read (assignments only)")
    if _text(flow, "md:status") != "Active":
        raise PackageError(f"{path}: a before-save flow that is not Active is not read")
    trigger_type = _required_text(start, "md:recordTriggerType", path)
    if trigger_type != "Create":
        raise PackageError(f"{path}: a before-save flow on {trigger_type} is not read (Create only)")
    for tag in ("filters", "filterFormula", "filterLogic", "scheduledPaths"):
        if start.find(f"md:{tag}", _NS) is not None:
            raise PackageError(f"{path}: a before-save flow with {tag} is not read (no entry conditions)")
    assignments = {
        _required_text(item, "md:name", path): item for item in flow.findall("md:assignments", _NS)
    }
    fields: list[str] = []
    seen: set[str] = set()
    target = _text(start, "md:connector/md:targetReference")
    while target is not None:
        if target not in assignments:
            raise PackageError(f"{path}: {target} is not an assignment; only start -> assignments is read")
        if target in seen:
            raise PackageError(f"{path}: the assignments connect in a loop at {target}")
        seen.add(target)
        fields.extend(_blank_assignments(assignments[target], path))
        target = _text(assignments[target], "md:connector/md:targetReference")
    if seen != set(assignments):
        raise PackageError(
            f"{path}: assignments not reached from the start: {sorted(set(assignments) - seen)}"
        )
    if not fields:
        raise PackageError(f"{path}: a before-save flow that assigns nothing")
    return BlankOnCreate(
        flow=_stem(path, ".flow-meta.xml"),
        object_type=_required_text(start, "md:object", path),
        fields=tuple(fields),
    )


def _blank_assignments(assignment: Element, path: Path) -> Iterator[str]:
    """The fields an assignment sets to blank: `$Record.Field`, operator Assign, no value, an empty text
    value, or false (a checkbox's blank)."""
    items = assignment.findall("md:assignmentItems", _NS)
    if not items:
        raise PackageError(f"{path}: an assignment without assignmentItems")
    for item in items:
        reference = _required_text(item, "md:assignToReference", path)
        match = _RECORD_FIELD.match(reference)
        if match is None:
            raise PackageError(f"{path}: the assignment to {reference} is not read (only $Record.Field)")
        operator = _required_text(item, "md:operator", path)
        if operator != "Assign":
            raise PackageError(f"{path}: the assignment to {reference} uses {operator}; only Assign is read")
        value = item.find("md:value", _NS)
        if value is not None:
            parts = list(value)
            blank_text = (
                len(parts) == 1
                and parts[0].tag == f"{{{METADATA_NS}}}stringValue"
                and not (parts[0].text or "").strip()
            )
            false = (
                len(parts) == 1
                and parts[0].tag == f"{{{METADATA_NS}}}booleanValue"
                and (parts[0].text or "").strip() == "false"
            )
            if not (blank_text or false):
                raise PackageError(
                    f"{path}: the assignment to {reference} assigns a value; only blank (no value) or "
                    "false is read"
                )
        yield match.group(1)


# --- before-save flows: Custom Errors -----------------------------------------------------------------

_CUSTOM_ERROR_ELEMENTS = (_BEFORE_SAVE_ELEMENTS - {"assignments"}) | {"customErrors"}


def _custom_error_flows(
    files: list[Path], permission_sets: Mapping[str, PermissionSet]
) -> tuple[CustomErrorFlow, ...]:
    """The before-save flows with a Custom Error: an entry formula, then the one Custom Error."""
    flows = []
    for path in _with_suffix(files, ".flow-meta.xml"):
        element = _parse(path, "Flow")
        if element.find("md:customErrors", _NS) is None:
            continue
        start = element.find("md:start", _NS)
        if start is None or _text(start, "md:triggerType") != "RecordBeforeSave":
            raise PackageError(f"{path}: a Custom Error is read only in a before-save record-triggered flow")
        flows.append(_custom_error_flow(path, element, start, permission_sets))
    return tuple(sorted(flows, key=lambda flow: (flow.object_type, flow.flow)))


def _custom_error_flow(
    path: Path, flow: Element, start: Element, permission_sets: Mapping[str, PermissionSet]
) -> CustomErrorFlow:
    for child in flow:
        tag = child.tag.removeprefix(f"{{{METADATA_NS}}}")
        if tag not in _CUSTOM_ERROR_ELEMENTS:
            raise PackageError(f"{path}: a flow with a Custom Error and {tag} is not read")
    if _text(flow, "md:status") != "Active":
        raise PackageError(f"{path}: a flow with a Custom Error that is not Active is not read")
    trigger_type = _required_text(start, "md:recordTriggerType", path)
    if trigger_type not in _TRIGGER_TYPES:
        raise PackageError(
            f"{path}: recordTriggerType {trigger_type} is not read (create and/or update only)"
        )
    for tag in ("filters", "filterLogic", "scheduledPaths"):
        if start.find(f"md:{tag}", _NS) is not None:
            raise PackageError(f"{path}: a flow with a Custom Error and {tag} is not read (an entry formula)")
    if _bool(start, "md:doesRequireRecordChangedToMeetCriteria"):
        raise PackageError(
            f"{path}: an entry formula with doesRequireRecordChangedToMeetCriteria true is not read"
        )
    formula = _required_text(start, "md:filterFormula", path)
    (error,) = _only(flow.findall("md:customErrors", _NS), "customErrors", path)
    name = _required_text(error, "md:name", path)
    if _text(start, "md:connector/md:targetReference") != name:
        raise PackageError(f"{path}: the start must lead to the Custom Error {name}")
    if error.find("md:connector", _NS) is not None:
        raise PackageError(f"{path}: nothing is read after the Custom Error {name}")
    (message,) = _only(error.findall("md:customErrorMessages", _NS), "customErrorMessages", path)
    if _bool(message, "md:isFieldError"):
        raise PackageError(f"{path}: a Custom Error on a field is not read (a window on the record only)")
    text = _required_text(message, "md:errorMessage", path)
    try:
        merge_text_fields(text)
    except FormulaError as problem:
        raise PackageError(f"{path}: the error message is not read: {problem}") from problem
    on_create, on_update = _TRIGGER_TYPES[trigger_type]
    return CustomErrorFlow(
        flow=_stem(path, ".flow-meta.xml"),
        object_type=_required_text(start, "md:object", path),
        on_create=on_create,
        on_update=on_update,
        formula=formula,
        message=text,
        permissions=_formula_permissions(formula, path, permission_sets),
    )


def _only(elements: list[Element], tag: str, path: Path) -> list[Element]:
    if len(elements) != 1:
        raise PackageError(f"{path}: {len(elements)} {tag}; one is read")
    return elements


# --- Outbound Messages --------------------------------------------------------------------------------


def _outbound_messages(
    files: list[Path], triggers: Mapping[str, list[FlowTrigger]], replacements: Mapping[str, str]
) -> tuple[OutboundMessage, ...]:
    messages: list[OutboundMessage] = []
    for path in _with_suffix(files, ".workflow-meta.xml"):
        object_type = _stem(path, ".workflow-meta.xml")
        for element in _parse(path, "Workflow").findall("md:outboundMessages", _NS):
            name = _required_text(element, "md:fullName", path)
            endpoint = _required_text(element, "md:endpointUrl", path)
            user = _required_text(element, "md:integrationUser", path)
            messages.append(
                OutboundMessage(
                    name=name,
                    object_type=object_type,
                    fields=tuple(
                        item.text.strip() for item in element.findall("md:fields", _NS) if item.text
                    ),
                    endpoint_url=endpoint,
                    endpoint_variable=replacements.get(endpoint),
                    integration_user=user,
                    integration_user_variable=replacements.get(user),
                    include_session_id=_bool(element, "md:includeSessionId"),
                    triggers=tuple(triggers.get(f"{object_type}.{name}", ())),
                )
            )
    known = {f"{message.object_type}.{message.name}" for message in messages}
    unknown = sorted(set(triggers) - known)
    if unknown:
        raise PackageError(f"flows send Outbound Messages the package does not define: {', '.join(unknown)}")
    return tuple(sorted(messages, key=lambda message: (message.object_type, message.name)))
