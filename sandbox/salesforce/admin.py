"""The admin API beside the protocol (JSON under /admin, no Salesforce auth; the server binds 127.0.0.1).

POST   /admin/reset                      back to the seed org; deliveries, faults and counts cleared
GET    /admin/faults                     current faults
POST   /admin/faults                     {"latency_ms", "fail_next": {"count", "status"},
                                          "expire_tokens": true, "spend_api_allowance": true}
DELETE /admin/faults                     faults off
GET    /admin/counts                     {"requests", "by_kind": {...}}
GET    /admin/outbound                   Outbound Message deliveries
POST   /admin/outbound/flush             send everything pending now (synchronously)
GET    /admin/outbound/definitions       the Outbound Message definitions
PUT    /admin/outbound/definitions       replace them (list of definitions)
GET    /admin/config                     {"query_page_size", "child_batch_size", "outbound_duplicate_rate",
                                          "community_urls", "amount_rollup_fires_flows",
                                          "daily_api_allowance", "api_usage"}
POST   /admin/config                     any of {"query_page_size": n, "child_batch_size": n or null,
                                          "outbound_duplicate_rate": 0..1, "community_urls": [url],
                                          "amount_rollup_fires_flows": true/false}
POST   /admin/merge                      {"master_id", "merged_ids": [1 or 2 ids], "fields": {...},
                                          "username": optional, default the sales rep}: merge Accounts
                                          (or Contacts) as Salesforce's merge() does
GET    /admin/validation_rules           custom validation rules
PUT    /admin/validation_rules           replace them: [{"object_type", "message", "error_field", "when"}]
GET    /admin/records/<Object>           every record of an object (deleted ones included), as REST JSON
GET    /admin/users                      the org's users (integration user, a sales rep), with the
                                          package's permission sets each holds
POST   /admin/login                      {"username"} -> {"access_token", "instance_url", "user_id"}
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sandbox.salesforce.errors import ApiError
from sandbox.salesforce.faults import FaultConfigError
from sandbox.salesforce.oauth import checked_community_url
from sandbox.salesforce.outbound import definition_from_json, definition_json
from sandbox.salesforce.store import ValidationRule, record_json

if TYPE_CHECKING:
    from sandbox.salesforce.server import SandboxState

ADMIN_PREFIX = "/admin"


@dataclass
class AdminReply:
    status: int
    payload: Any = None

    def body(self) -> bytes:
        return b"" if self.payload is None else json.dumps(self.payload).encode()


class AdminError(ValueError):
    """A bad admin request; answered 400 with {"error": message}."""


def handle_admin(state: SandboxState, method: str, path: str, body: bytes) -> AdminReply:
    route = path[len(ADMIN_PREFIX) :].rstrip("/")
    try:
        if route == "/reset" and method == "POST":
            state.reset()
            return AdminReply(200, {"reset": True})
        if route == "/faults":
            return faults(state, method, body)
        if route == "/counts" and method == "GET":
            return AdminReply(200, state.counts.to_json())
        if route == "/outbound" and method == "GET":
            return AdminReply(200, state.outbound.deliveries_json())
        if route == "/outbound/flush" and method == "POST":
            state.outbound.flush()
            return AdminReply(200, state.outbound.deliveries_json())
        if route == "/outbound/definitions":
            return outbound_definitions(state, method, body)
        if route == "/config":
            return config(state, method, body)
        if route == "/validation_rules":
            return validation_rules(state, method, body)
        if route == "/merge" and method == "POST":
            return merge(state, body)
        if route.startswith("/records/") and method == "GET":
            return records(state, route.removeprefix("/records/"))
        if route == "/users" and method == "GET":
            return AdminReply(
                200,
                [
                    {
                        "id": user.user_id,
                        "username": user.username,
                        "name": f"{user.first_name} {user.last_name}",
                        "permission_sets": list(user.permission_sets),
                    }
                    for user in state.users
                ],
            )
        if route == "/login" and method == "POST":
            username = json_object(body).get("username")
            try:
                return AdminReply(200, state.log_in(str(username)))
            except KeyError as error:
                raise AdminError(f"no user {username!r}") from error
    except AdminError as error:
        return AdminReply(400, {"error": str(error)})
    return AdminReply(404, {"error": f"no admin route {method} {path}"})


def json_body(body: bytes) -> Any:
    try:
        return json.loads(body or b"null")
    except ValueError as error:
        raise AdminError(f"the body is not JSON: {error}") from error


def json_object(body: bytes) -> dict[str, Any]:
    payload = json_body(body or b"{}")
    if not isinstance(payload, dict):
        raise AdminError("the body must be a JSON object")
    return payload


def faults(state: SandboxState, method: str, body: bytes) -> AdminReply:
    if method == "GET":
        return AdminReply(200, state.faults.to_json())
    if method == "DELETE":
        state.faults.clear()
        return AdminReply(200, state.faults.to_json())
    if method == "POST":
        try:
            actions = state.faults.update(json_object(body))
        except FaultConfigError as error:
            raise AdminError(str(error)) from error
        if actions.expire_tokens:
            state.sessions.expire_all()
        if actions.spend_api_allowance:
            state.allowance.spend_all()
        return AdminReply(200, state.faults.to_json())
    return AdminReply(405, {"error": f"{method} is not allowed on /admin/faults"})


def outbound_definitions(state: SandboxState, method: str, body: bytes) -> AdminReply:
    if method == "PUT":
        payload = json_body(body)
        if not isinstance(payload, list):
            raise AdminError("the body must be a JSON list of outbound message definitions")
        try:
            state.outbound.set_definitions([definition_from_json(item) for item in payload])
        except ValueError as error:
            raise AdminError(str(error)) from error
    elif method != "GET":
        return AdminReply(405, {"error": f"{method} is not allowed on /admin/outbound/definitions"})
    return AdminReply(
        200,
        [
            {**definition_json(definition), "action_id": state.outbound.action_id(definition.name)}
            for definition in state.outbound.definitions
        ],
    )


CONFIG_KEYS = frozenset(
    {
        "query_page_size",
        "child_batch_size",
        "outbound_duplicate_rate",
        "community_urls",
        "amount_rollup_fires_flows",
        "api_usage",
    }
)


def config(state: SandboxState, method: str, body: bytes) -> AdminReply:
    if method == "POST":
        update = json_object(body)
        unknown = set(update) - CONFIG_KEYS
        if unknown:
            raise AdminError(f"unknown settings: {', '.join(sorted(unknown))}")
        apply_config(state, update)
    elif method != "GET":
        return AdminReply(405, {"error": f"{method} is not allowed on /admin/config"})
    return AdminReply(
        200,
        {
            "query_page_size": state.rest.page_size,
            "child_batch_size": state.rest.child_batch_size,
            "outbound_duplicate_rate": state.outbound.duplicate_rate,
            "community_urls": list(state.token_endpoint.community_urls),
            "amount_rollup_fires_flows": state.outbound.amount_rollup_fires_flows,
            "daily_api_allowance": state.allowance.allowance,
            "api_usage": state.allowance.used,
        },
    )


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def apply_config(state: SandboxState, update: dict[str, Any]) -> None:
    """Check every setting of the update first, then apply them all (a bad one changes nothing)."""
    page_size = update.get("query_page_size")
    if page_size is not None and not (is_int(page_size) and 1 <= page_size <= 2000):
        raise AdminError("query_page_size must be an integer from 1 to 2000")
    child_batch_size = update.get("child_batch_size")
    if child_batch_size is not None and not (is_int(child_batch_size) and 1 <= child_batch_size <= 2000):
        raise AdminError("child_batch_size must be null (no child batches) or an integer from 1 to 2000")
    rate = update.get("outbound_duplicate_rate")
    if rate is not None and (
        isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 1
    ):
        raise AdminError("outbound_duplicate_rate must be a number from 0 to 1")
    community_urls = update.get("community_urls")
    if community_urls is not None:
        if not isinstance(community_urls, list):
            raise AdminError("community_urls must be a list of https URLs")
        try:
            community_urls = [checked_community_url(url) for url in community_urls]
        except ValueError as error:
            raise AdminError(str(error)) from error
    rollup = update.get("amount_rollup_fires_flows")
    if rollup is not None and not isinstance(rollup, bool):
        raise AdminError("amount_rollup_fires_flows must be true or false")
    usage = update.get("api_usage")
    if usage is not None and usage != 0:
        raise AdminError("api_usage can only be set to 0 (the next day's allowance)")
    if page_size is not None:
        state.rest.page_size = page_size
    if "child_batch_size" in update:
        state.rest.child_batch_size = child_batch_size
    if rate is not None:
        state.outbound.duplicate_rate = float(rate)
    if community_urls is not None:
        state.token_endpoint.community_urls = community_urls
    if rollup is not None:
        state.outbound.amount_rollup_fires_flows = rollup
    if usage == 0:
        state.allowance.reset()


def merge(state: SandboxState, body: bytes) -> AdminReply:
    payload = json_object(body)
    master_id = payload.get("master_id")
    merged_ids = payload.get("merged_ids")
    fields = payload.get("fields", {})
    username = payload.get("username")
    if not isinstance(master_id, str):
        raise AdminError("master_id must be a record id")
    if not isinstance(merged_ids, list) or not all(isinstance(item, str) for item in merged_ids):
        raise AdminError("merged_ids must be a list of record ids")
    if not isinstance(fields, dict):
        raise AdminError("fields must be an object of field -> value")
    if username is not None and not isinstance(username, str):
        raise AdminError("username must be a username")
    try:
        return AdminReply(200, state.merge(master_id, merged_ids, fields, username))
    except ValueError as error:
        raise AdminError(str(error)) from error
    except ApiError as error:
        raise AdminError(
            "; ".join(f"{item['errorCode']}: {item['message']}" for item in error.items)
        ) from error


def validation_rules(state: SandboxState, method: str, body: bytes) -> AdminReply:
    if method == "PUT":
        payload = json_body(body)
        if not isinstance(payload, list):
            raise AdminError("the body must be a JSON list of validation rules")
        rules = [validation_rule(state, item) for item in payload]
        with state.store.lock:
            state.store.validation_rules = rules
    elif method != "GET":
        return AdminReply(405, {"error": f"{method} is not allowed on /admin/validation_rules"})
    with state.store.lock:
        return AdminReply(
            200,
            [
                {
                    "object_type": rule.object_type,
                    "message": rule.message,
                    "error_field": rule.error_field,
                    "when": rule.when,
                }
                for rule in state.store.validation_rules
            ],
        )


def validation_rule(state: SandboxState, item: Any) -> ValidationRule:
    if not isinstance(item, dict):
        raise AdminError("each validation rule must be a JSON object")
    spec = state.store.schema.object(str(item.get("object_type", "")))
    if spec is None or not spec.writable:
        raise AdminError(f"unknown or read-only object: {item.get('object_type')!r}")
    message = item.get("message")
    if not isinstance(message, str) or not message:
        raise AdminError("a validation rule needs a message")
    error_field = item.get("error_field")
    if error_field is not None:
        field_spec = spec.field(str(error_field))
        if field_spec is None:
            raise AdminError(f"{spec.name} has no field {error_field!r}")
        error_field = field_spec.name
    when = item.get("when", {})
    if not isinstance(when, dict):
        raise AdminError("when must be an object of field -> value")
    for name in when:
        if spec.field(name) is None:
            raise AdminError(f"{spec.name} has no field {name!r}")
    return ValidationRule(spec.name, message, error_field, dict(when))


def records(state: SandboxState, object_name: str) -> AdminReply:
    spec = state.store.schema.object(object_name)
    if spec is None:
        raise AdminError(f"unknown object: {object_name!r}")
    with state.store.lock:
        rows = [record_json(spec, record, state.api_version) for record in state.store.every(spec.name)]
    return AdminReply(200, rows)
