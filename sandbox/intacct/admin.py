"""The admin API (JSON under /admin): reset, faults, counts, records and configuration. No Intacct auth."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from datetime import date
from typing import Any

from sandbox.intacct.faults import FaultConfigError, FaultState, apply_fault_update
from sandbox.intacct.lengths import LENGTH_OBJECTS
from sandbox.intacct.receivables import with_derived_fields
from sandbox.intacct.store import (
    CONVERSION_STATES,
    DUPLICATE_CONTROLID_ANSWERS,
    OBJECTS,
    SandboxState,
    find_record,
    format_datetime,
)

ADMIN_PREFIX = "/admin"
CUSTOM_FIELD_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")
CONFIGURABLE_OBJECTS = ("CUSTOMER", "SODOCUMENT", "SODOCUMENTENTRY")


@dataclass
class AdminReply:
    status: int
    payload: Any = None

    def body(self) -> bytes:
        return b"" if self.payload is None else json.dumps(self.payload).encode()


class AdminError(ValueError):
    """A bad admin request; answered 400 with {"error": message}."""


def handle_admin(state: SandboxState, method: str, path: str, body: bytes) -> AdminReply:
    """Route one admin request. The caller does not hold the lock; each route takes it."""
    route = path[len(ADMIN_PREFIX) :].rstrip("/")
    try:
        if route == "/reset" and method == "POST":
            state.reset()
            return AdminReply(204)
        if route == "/faults":
            return faults(state, method, body)
        if route == "/counts" and method == "GET":
            with state.lock:
                return AdminReply(200, state.counts.to_json())
        if route.startswith("/records/") and method == "GET":
            return records(state, route.removeprefix("/records/"))
        if route == "/config":
            return config(state, method, body)
        if route == "/sales-documents/convert" and method == "POST":
            return convert_sales_document(state, body)
    except AdminError as error:
        return AdminReply(400, {"error": str(error)})
    return AdminReply(404, {"error": f"no admin route {method} {path}"})


def json_object(body: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(body or b"{}")
    except ValueError as error:
        raise AdminError(f"the body is not JSON: {error}") from error
    if not isinstance(payload, dict):
        raise AdminError("the body must be a JSON object")
    return payload


def faults(state: SandboxState, method: str, body: bytes) -> AdminReply:
    if method == "GET":
        with state.lock:
            return AdminReply(200, state.faults.to_json())
    if method == "DELETE":
        with state.lock:
            state.faults = FaultState()
            return AdminReply(200, state.faults.to_json())
    if method == "POST":
        update = json_object(body)
        with state.lock:
            try:
                expire_sessions = apply_fault_update(state.faults, update)
            except FaultConfigError as error:
                raise AdminError(str(error)) from error
            if expire_sessions:
                state.sessions.clear()
            return AdminReply(200, state.faults.to_json())
    return AdminReply(405, {"error": f"{method} is not allowed on /admin/faults"})


def records(state: SandboxState, object_name: str) -> AdminReply:
    name = object_name.upper()
    if name not in OBJECTS:
        return AdminReply(404, {"error": f"unknown object {object_name}"})
    with state.lock:
        listed = with_derived_fields(name, state.data.records[name], state.now().date())
        return AdminReply(200, copy.deepcopy(listed))


def config(state: SandboxState, method: str, body: bytes) -> AdminReply:
    if method == "GET":
        with state.lock:
            return AdminReply(200, state.config.to_json())
    if method != "PUT":
        return AdminReply(405, {"error": f"{method} is not allowed on /admin/config"})
    update = json_object(body)
    flags = (
        "remember_failed_controlids",
        "repeats_in_flight_apply",
        "closed_orders_reopen",
        "empty_element_clears",
        "conversion_copies_reference",
    )
    unknown = set(update) - {
        "custom_fields",
        "session_seconds",
        "duplicate_controlid_answer",
        "extra_field_lengths",
        "today",
        *flags,
    }
    if unknown:
        raise AdminError(f"unknown config keys: {sorted(unknown)}")
    custom_fields = validate_custom_fields(update.get("custom_fields", {}))
    session_seconds = update.get("session_seconds")
    if session_seconds is not None and (
        isinstance(session_seconds, bool) or not isinstance(session_seconds, int) or session_seconds < 1
    ):
        raise AdminError("session_seconds must be a positive integer")
    for flag in flags:
        if flag in update and not isinstance(update[flag], bool):
            raise AdminError(f"{flag} must be true or false")
    answer = update.get("duplicate_controlid_answer")
    if answer is not None and answer not in DUPLICATE_CONTROLID_ANSWERS:
        raise AdminError(
            f"duplicate_controlid_answer must be one of {', '.join(DUPLICATE_CONTROLID_ANSWERS)}"
        )
    extra_lengths = validate_field_lengths(update.get("extra_field_lengths", {}))
    today = validate_today(update.get("today"))
    with state.lock:
        if "today" in update:
            state.config.today = today
        if "extra_field_lengths" in update:
            state.config.extra_field_lengths = extra_lengths
        if answer is not None:
            state.config.duplicate_controlid_answer = answer
        for flag in flags:
            if flag in update:
                setattr(state.config, flag, update[flag])
        state.config.custom_fields.update(custom_fields)
        if session_seconds is not None:
            state.config.session_seconds = session_seconds
        return AdminReply(200, state.config.to_json())


def validate_custom_fields(value: Any) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise AdminError("custom_fields must be an object of OBJECT -> [FIELD, ...]")
    result: dict[str, list[str]] = {}
    for object_name, names in value.items():
        if object_name not in CONFIGURABLE_OBJECTS:
            raise AdminError(
                f"custom fields can be set on {', '.join(CONFIGURABLE_OBJECTS)}, not {object_name}"
            )
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise AdminError(f"custom_fields.{object_name} must be a list of field names")
        for name in names:
            if not CUSTOM_FIELD_NAME.fullmatch(name):
                raise AdminError(f"invalid custom field name {name!r}: use UPPER_CASE letters, digits, _")
            if name in OBJECTS[object_name].fields:
                raise AdminError(f"{name} is a standard field of {object_name}")
        result[object_name] = list(dict.fromkeys(names))
    return result


def validate_today(value: Any) -> date | None:
    """`"YYYY-MM-DD"`: the sandbox's current day from now on; null: the wall clock's day again."""
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        raise AdminError('today must be a date "YYYY-MM-DD" or null')
    try:
        return date.fromisoformat(value)
    except ValueError as error:
        raise AdminError(f"today {value!r} is not a calendar date") from error


def validate_field_lengths(value: Any) -> dict[str, int]:
    """`{"CUSTOMER.DISPLAYCONTACT.COMPANYNAME": 100, "SODOCUMENT.referenceno": 30, ...}` (lengths.py)."""
    if not isinstance(value, dict):
        raise AdminError("extra_field_lengths must be an object of OBJECT.path -> length")
    for key, length in value.items():
        object_name, _, path = str(key).partition(".")
        if object_name not in LENGTH_OBJECTS or not path:
            raise AdminError(
                f"extra_field_lengths key {key!r}: use <OBJECT>.<path> with OBJECT one of {LENGTH_OBJECTS}"
            )
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise AdminError(f"extra_field_lengths[{key!r}] must be a positive integer")
    return dict(value)


def convert_sales_document(state: SandboxState, body: bytes) -> AdminReply:
    """Play finance: give a document the state converting it (to an invoice, a shipper) would give it."""
    payload = json_object(body)
    doc_id, new_state = payload.get("docid"), payload.get("state")
    if not isinstance(doc_id, str) or not doc_id:
        raise AdminError("docid must be the document's DOCID, e.g. Sales Order-SO0001")
    if new_state not in CONVERSION_STATES:
        raise AdminError(f"state must be one of {', '.join(CONVERSION_STATES)}")
    with state.lock:
        document = find_record(state.data, "SODOCUMENT", "DOCID", doc_id)
        if document is None:
            return AdminReply(404, {"error": f"no sales document {doc_id}"})
        document["STATE"] = new_state
        document["WHENMODIFIED"] = format_datetime(state.now())
        return AdminReply(200, {"DOCID": doc_id, "STATE": new_state})
