"""The gateway's functions: each takes the function's operation element and returns data or a key.

Functions raise `FunctionFailure` with Intacct-shaped errors; the gateway turns that into a failed result and
rolls back whatever the function changed.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from xml.etree.ElementTree import Element, SubElement

from sandbox.intacct.calls import CallContext, FunctionOutput, Handler
from sandbox.intacct.customers import update
from sandbox.intacct.errors import (
    FunctionFailure,
    business_error,
)
from sandbox.intacct.orders import create_sotransaction, delete_sotransaction, update_sotransaction
from sandbox.intacct.reads import lookup, query, read, read_by_name, read_by_query, read_more
from sandbox.intacct.receivables import create, create_arpayment
from sandbox.intacct.store import (
    ApiSession,
    SandboxState,
    find_record,
    utc_now,
)
from sandbox.intacct.xmlout import add_text, child_text

# ------------------------------------------------------------------ getAPISession


def get_api_session(context: CallContext, element: Element) -> FunctionOutput:
    """Open (or, for session auth, return) an API session bound to the session endpoint."""
    location_id = context.location_id
    location_element = element.find("locationid")
    if location_element is not None:
        location_id = (location_element.text or "").strip()
        if location_id and find_record(context.state.data, "LOCATION", "LOCATIONID", location_id) is None:
            raise FunctionFailure(business_error(f"Invalid entity {location_id}: no such location."))
    session_id = context.session_id
    if session_id is None or location_id != context.location_id:
        session_id = secrets.token_urlsafe(24) + ".."
        context.state.sessions[session_id] = ApiSession(
            session_id=session_id,
            company_id=context.company_id,
            user_id=context.user_id,
            location_id=location_id,
            # the wall clock, as the gateway checks it (context.now may be on a day a test moved to)
            expires_at=utc_now() + timedelta(seconds=context.state.config.session_seconds),
        )
    data = Element("data")
    api = SubElement(data, "api")
    add_text(api, "sessionid", session_id)
    add_text(api, "endpoint", context.session_endpoint)
    add_text(api, "locationid", location_id)
    return FunctionOutput(data=data)


# ------------------------------------------------------------------ registry

HANDLERS: dict[str, Handler] = {
    "getAPISession": get_api_session,
    "readByQuery": read_by_query,
    "readMore": read_more,
    "query": query,
    "read": read,
    "readByName": read_by_name,
    "lookup": lookup,
    "create": create,
    "update": update,
    "create_sotransaction": create_sotransaction,
    "update_sotransaction": update_sotransaction,
    "delete_sotransaction": delete_sotransaction,
    "create_arpayment": create_arpayment,
}
WRITE_FUNCTIONS = frozenset(
    {
        "create",
        "update",
        "create_sotransaction",
        "update_sotransaction",
        "delete_sotransaction",
        "create_arpayment",
    }
)


def count_key(state: SandboxState, operation: Element) -> str:
    """How the admin counts name a function: `<function>:<OBJECT>` for generic ones, else the name."""
    name = operation.tag
    if name in ("readByQuery", "read", "readByName", "query", "lookup", "inspect", "delete"):
        return f"{name}:{child_text(operation, 'object').upper()}"
    if name in ("create", "update"):
        first = next(iter(operation), None)
        return f"{name}:{first.tag.upper()}" if first is not None else name
    if name == "readMore":
        result_id = child_text(operation, "resultId") or child_text(operation, "resultid")
        result_set = state.result_sets.get(result_id)
        object_text = result_set.object_name if result_set else child_text(operation, "object").upper()
        return f"{name}:{object_text}" if object_text else name
    return name
