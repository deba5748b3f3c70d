"""CUSTOMER through the generic create and update functions."""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any
from xml.etree.ElementTree import Element, SubElement

from sandbox.intacct.calls import CallContext, FunctionOutput
from sandbox.intacct.errors import (
    SCHEMA_ERROR,
    FunctionFailure,
    IntacctError,
    business_error,
)
from sandbox.intacct.lengths import first_too_long, length_limits
from sandbox.intacct.store import (
    CURRENCIES,
    NESTED_GROUPS,
    OBJECTS,
    TERM_DAYS,
    Record,
    SandboxState,
    add_record,
    find_record,
    format_datetime,
)
from sandbox.intacct.xmlout import add_text

BOOLEAN_VALUES = ("true", "false")


def create(context: CallContext, element: Element) -> FunctionOutput:
    """Generic create: one or more objects; only CUSTOMER is writable here."""
    objects = list(element)
    if not objects:
        raise FunctionFailure(IntacctError(SCHEMA_ERROR, "", "<create> must contain at least one object."))
    data = Element("data", {"listtype": "objects", "count": "0"})
    for node in objects:
        name = node.tag.upper()
        if name != "CUSTOMER":
            raise FunctionFailure(unsupported_object_error("create", node.tag))
        record = create_customer(context, node)
        created = SubElement(data, "customer")
        add_text(created, "RECORDNO", record["RECORDNO"])
        add_text(created, "CUSTOMERID", record["CUSTOMERID"])
    data.set("count", str(len(objects)))
    return FunctionOutput(data=data)


def update(context: CallContext, element: Element) -> FunctionOutput:
    """Generic update by RECORDNO or CUSTOMERID; only CUSTOMER is writable here."""
    objects = list(element)
    if not objects:
        raise FunctionFailure(IntacctError(SCHEMA_ERROR, "", "<update> must contain at least one object."))
    data = Element("data", {"listtype": "objects", "count": str(len(objects))})
    for node in objects:
        if node.tag.upper() != "CUSTOMER":
            raise FunctionFailure(unsupported_object_error("update", node.tag))
        record = update_customer(context, node)
        updated = SubElement(data, "customer")
        add_text(updated, "RECORDNO", record["RECORDNO"])
        add_text(updated, "CUSTOMERID", record["CUSTOMERID"])
    return FunctionOutput(data=data)


def unsupported_object_error(function: str, tag: str) -> IntacctError:
    name = tag.upper()
    if name in OBJECTS:
        hint = " Use create_sotransaction." if name == "SODOCUMENT" else ""
        return business_error(f"Generic {function} is not available for object {name}.{hint}")
    return business_error(f"Object definition {name} not found")


def customer_failure(action: str, *errors: IntacctError) -> FunctionFailure:
    return FunctionFailure(*errors, business_error(f"Could not {action} Customer record!"))


def parse_customer_fields(state: SandboxState, node: Element, action: str) -> Record:
    """Read a CUSTOMER element into a record dict, refusing fields the object does not have."""
    allowed = OBJECTS["CUSTOMER"].writable_fields | set(state.custom_fields("CUSTOMER"))
    if action == "update":
        allowed = allowed | {"RECORDNO"}
    values: Record = {}
    for child in node:
        name = child.tag
        if name not in allowed:
            raise customer_failure(
                action,
                business_error(
                    f"The field {name} is not a valid field of object CUSTOMER.",
                    correction="Check the field name (custom fields use their integration name).",
                ),
            )
        values[name] = (
            parse_group(child, name, action) if name in NESTED_GROUPS else (child.text or "").strip()
        )
    return values


def parse_group(node: Element, path: str, action: str) -> Record:
    allowed = NESTED_GROUPS[node.tag]
    group: Record = {}
    for child in node:
        if child.tag not in allowed:
            raise customer_failure(
                action,
                business_error(f"The field {path}.{child.tag} is not a valid field of object CUSTOMER."),
            )
        if child.tag in NESTED_GROUPS:
            group[child.tag] = parse_group(child, f"{path}.{child.tag}", action)
        else:
            group[child.tag] = (child.text or "").strip()
    return group


def check_customer_values(state: SandboxState, values: Record, action: str) -> None:
    """Field-level rules shared by create and update."""
    too_long = first_too_long(length_limits(state, "CUSTOMER"), values)
    if too_long is not None:
        raise customer_failure(action, too_long)
    status = values.get("STATUS")
    if status is not None and status not in ("active", "inactive"):
        raise customer_failure(action, business_error(f"Invalid STATUS '{status}': use active or inactive."))
    term = values.get("TERMNAME")
    if term and term not in TERM_DAYS:
        raise customer_failure(action, business_error(f"Invalid term '{term}' specified."))
    currency = values.get("CURRENCY")
    if currency and currency not in CURRENCIES:
        raise customer_failure(action, business_error(f"Invalid currency '{currency}' specified."))
    for flag in ("ONETIME", "ONHOLD", "HIDEDISPLAYCONTACT"):
        value = values.get(flag)
        if value and value not in BOOLEAN_VALUES:
            raise customer_failure(action, business_error(f"Invalid {flag} '{value}': use true or false."))
    credit_limit = values.get("CREDITLIMIT")
    if credit_limit:
        try:
            Decimal(credit_limit)
        except InvalidOperation as error:
            raise customer_failure(
                action, business_error(f"Invalid CREDITLIMIT '{credit_limit}'.")
            ) from error


def create_customer(context: CallContext, node: Element) -> Record:
    state, data = context.state, context.state.data
    values = parse_customer_fields(state, node, "create")
    check_customer_values(state, values, "create")
    name = values.get("NAME", "")
    if not name:
        raise customer_failure(
            "create", business_error("Required field NAME is missing.", correction="Set NAME.")
        )
    contact = values.get("DISPLAYCONTACT")
    if not isinstance(contact, dict) or not contact.get("PRINTAS"):
        raise customer_failure(
            "create",
            business_error(
                "Required field DISPLAYCONTACT.PRINTAS (Print as) is missing.",
                correction="Send DISPLAYCONTACT with PRINTAS.",
            ),
        )
    customer_id = values.get("CUSTOMERID", "")
    if customer_id:
        if find_record(data, "CUSTOMER", "CUSTOMERID", customer_id) is not None:
            raise customer_failure(
                "create",
                IntacctError(
                    "BL34000061",
                    "",
                    f"Another Customer with the given value(s) {customer_id} already exists",
                    "Use a unique value instead.",
                ),
            )
    else:
        customer_id = next_customer_id(state)
    delivery = values.get("DELIVERY_OPTIONS", "")
    if "E-Mail" in delivery.split("#~#") and not contact.get("EMAIL1"):
        raise customer_failure(
            "create",
            business_error("An email address (DISPLAYCONTACT.EMAIL1) is required for E-Mail delivery."),
        )
    if not contact.get("CONTACTNAME"):
        contact["CONTACTNAME"] = f"{name}(C{customer_id})"
    stamp = format_datetime(context.now)
    fields: Record = {
        "CUSTOMERID": customer_id,
        "NAME": name,
        "ENTITY": context.location_id,
        "STATUS": "active",
        "ONETIME": "false",
        "ONHOLD": "false",
        "HIDEDISPLAYCONTACT": "false",
        "TOTALDUE": "0",
        **{key: value for key, value in values.items() if key not in ("CUSTOMERID", "NAME")},
        "WHENCREATED": stamp,
        "WHENMODIFIED": stamp,
        "CREATEDBY": context.user_id,
        "MODIFIEDBY": context.user_id,
    }
    record = add_record(data, "CUSTOMER", fields)
    derive_read_only_fields(state, record)
    return record


def derive_read_only_fields(state: SandboxState, record: Record) -> None:
    """The read-only CUSTOMER fields that follow from others: the parent's key and name.

    CUSTREPNAME and GLGRPKEY name an employee and a GL account group, which the sandbox does not hold:
    they stay empty.
    """
    parent_id = record.get("PARENTID") or ""
    parent = find_record(state.data, "CUSTOMER", "CUSTOMERID", parent_id) if parent_id else None
    record["PARENTKEY"] = parent["RECORDNO"] if parent is not None else ""
    record["PARENTNAME"] = parent["NAME"] if parent is not None else ""
    record.setdefault("CUSTREPNAME", "")
    record.setdefault("GLGRPKEY", "")


def next_customer_id(state: SandboxState) -> str:
    """The next free id of the customer sequence C-00001, C-00002, ..."""
    while True:
        candidate = f"C-{state.data.next_customer_number:05d}"
        state.data.next_customer_number += 1
        if find_record(state.data, "CUSTOMER", "CUSTOMERID", candidate) is None:
            return candidate


def update_customer(context: CallContext, node: Element) -> Record:
    data = context.state.data
    values = parse_customer_fields(context.state, node, "update")
    if not context.state.config.empty_element_clears:
        values = without_empty_values(values)
    check_customer_values(context.state, values, "update")
    recordno = values.pop("RECORDNO", "")
    customer_id = values.get("CUSTOMERID", "")
    if recordno:
        record = find_record(data, "CUSTOMER", "RECORDNO", recordno)
        if record is None:
            raise customer_failure(
                "update", business_error(f"Cannot update non-existing CUSTOMER with RECORDNO={recordno}.")
            )
        if customer_id and customer_id != record["CUSTOMERID"]:
            raise customer_failure(
                "update",
                business_error(
                    f"CUSTOMERID cannot be changed (record {recordno} is {record['CUSTOMERID']}).",
                ),
            )
    elif customer_id:
        record = find_record(data, "CUSTOMER", "CUSTOMERID", customer_id)
        if record is None:
            raise customer_failure(
                "update",
                business_error(f"Cannot update non-existing CUSTOMER with CUSTOMERID={customer_id}."),
            )
    else:
        raise customer_failure(
            "update", business_error("RECORDNO or CUSTOMERID is required to update a Customer.")
        )
    if "NAME" in values and not values["NAME"]:
        raise customer_failure("update", business_error("NAME cannot be empty."))
    for name, value in values.items():
        if isinstance(value, dict):
            record[name] = merge_group(record.get(name), value)
        else:
            record[name] = value
    record["WHENMODIFIED"] = format_datetime(context.now)
    record["MODIFIEDBY"] = context.user_id
    derive_read_only_fields(context.state, record)
    return record


def without_empty_values(values: Record) -> Record:
    """The update's values less its empty elements, for `empty_element_clears: false` (an empty element
    then leaves the stored value as it is)."""
    kept: Record = {}
    for name, value in values.items():
        if isinstance(value, dict):
            kept[name] = without_empty_values(value)
        elif value != "":
            kept[name] = value
    return kept


def merge_group(current: Any, changes: Record) -> Record:
    """A group field after an update: each field sent replaces the stored one (an empty element stores
    an empty value, so clears it); a field not sent keeps its value."""
    merged: Record = dict(current) if isinstance(current, dict) else {}
    for name, value in changes.items():
        merged[name] = merge_group(merged.get(name), value) if isinstance(value, dict) else value
    return merged
