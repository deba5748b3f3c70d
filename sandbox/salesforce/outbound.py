"""Outbound Messages: definitions, the delivery queue, the SOAP 1.1 message and the background sender.

Like Salesforce: a definition fires when a record of its object changes through the API and its
condition holds; notifications wait in a queue and a background sender POSTs them, up to 100 of one
definition per SOAP message, with the record's values at send time (not at change time). Only an HTTP
200 whose body is a SOAP notificationsResponse with Ack=true counts as delivered; anything else is
retried with exponential backoff (15 s doubling, at most 2 h between tries) and dropped after 24 h. All
those durations are multiplied by `time_factor` so tests can run them in milliseconds.

Salesforce delivers a message "usually one time, sometimes more than one time". With a
`duplicate_rate` above 0, that share of acknowledged messages is sent once more, as when Salesforce
does not register an ack: the message stays pending and goes out again on the retry schedule (or at
the next flush) with the same notification ids and the records' values at that time.
"""

from __future__ import annotations

import logging
import random
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from xml.etree.ElementTree import Element
from xml.sax.saxutils import escape

import httpx
from defusedxml import ElementTree as SafeElementTree

from sandbox.salesforce.flow_formula import FormulaError, holders_from_json, holders_json, parse_formula
from sandbox.salesforce.ids import IdGenerator, MalformedIdError, to_15, to_18
from sandbox.salesforce.schema import ObjectSpec, Schema, format_soap_datetime
from sandbox.salesforce.store import ChangeEvent, Record, Store

SOAP_ENVELOPE_NS = "http://schemas.xmlsoap.org/soap/envelope/"
OUTBOUND_NS = "http://soap.sforce.com/2005/09/outbound"
SOBJECT_NS = "urn:sobject.enterprise.soap.sforce.com"
XSD_NS = "http://www.w3.org/2001/XMLSchema"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
CONDITIONS = ("created_or_updated", "is_won_becomes_true", "entry_formula")
OUTBOUND_OBJECTS = ("Account", "Opportunity")
ACTION_PREFIX = "04k"
NOTIFICATION_PREFIX = "04l"
MAX_NOTIFICATIONS_PER_MESSAGE = 100
FIRST_RETRY_SECONDS = 15.0
MAX_RETRY_INTERVAL_SECONDS = 2 * 60 * 60.0
MAX_AGE_SECONDS = 24 * 60 * 60.0
DELIVERY_TIMEOUT_SECONDS = 60.0
BATCH_WINDOW_SECONDS = 0.01
IDLE_WAIT_SECONDS = 0.5
MAX_FINISHED_DELIVERIES = 2000
USER_AGENT = "Jakarta Commons-HttpClient/3.1"

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutboundMessageDefinition:
    """One Outbound Message and the rule that fires it."""

    name: str
    object_type: str
    fields: tuple[str, ...]
    endpoint_url: str
    condition: str
    include_session_id: bool = False
    # Changes saved by this user (e.g. the integration user's write-backs) do not fire the message,
    # like a Flow entry condition on the running user.
    ignore_changes_by: str | None = None
    # condition "entry_formula": the flow's entry formula (flow_formula.py), evaluated on every create
    # and update; {!$Permission.X} is true for the users listed for X here.
    entry_formula: str | None = None
    permission_holders: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def permissions_of(self, user_id: str | None) -> frozenset[str]:
        """The custom permissions the formula names that `user_id` holds."""
        return frozenset(permission for permission, users in self.permission_holders if user_id in users)


def checked_definition(
    definition: OutboundMessageDefinition, schema: Schema | None = None
) -> OutboundMessageDefinition:
    """The definition with Id first and, given the org's schema, its fields checked and named as the
    schema spells them; ValueError says what is wrong."""
    if not definition.name:
        raise ValueError("an outbound message needs a name")
    if definition.object_type not in OUTBOUND_OBJECTS:
        raise ValueError(
            f"outbound messages are supported on {', '.join(OUTBOUND_OBJECTS)}, not {definition.object_type}"
        )
    if definition.condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {', '.join(CONDITIONS)}, not {definition.condition!r}")
    if definition.condition == "is_won_becomes_true" and definition.object_type != "Opportunity":
        raise ValueError("is_won_becomes_true only applies to Opportunity")
    if (definition.condition == "entry_formula") != (definition.entry_formula is not None):
        raise ValueError("entry_formula is given with, and only with, condition entry_formula")
    if definition.ignore_changes_by:
        try:
            to_18(definition.ignore_changes_by)
        except MalformedIdError as error:
            raise ValueError(
                f"ignore_changes_by must be a user id: {definition.ignore_changes_by!r}"
            ) from error
    if not definition.endpoint_url.startswith(("http://", "https://")):
        raise ValueError(f"the endpoint URL must be http(s): {definition.endpoint_url!r}")
    spec = schema.object(definition.object_type) if schema is not None else None
    if schema is not None and spec is None:
        raise ValueError(f"the org has no object {definition.object_type}")
    fields = ["Id"]
    for name in definition.fields:
        field_spec = spec.field(name) if spec is not None else None
        if spec is not None and field_spec is None:
            raise ValueError(f"{definition.object_type} has no field {name!r}")
        canonical = field_spec.name if field_spec is not None else name
        if canonical not in fields:
            fields.append(canonical)
    try:
        holders = tuple(
            (permission, tuple(to_18(user) for user in users))
            for permission, users in definition.permission_holders
        )
    except MalformedIdError as error:
        raise ValueError(f"permission_holders must hold user ids: {error}") from error
    if definition.entry_formula is not None:
        try:
            formula = parse_formula(definition.entry_formula)
            if spec is not None:
                formula.check_fields(lambda name: _field_type(spec, name))
        except FormulaError as error:
            raise ValueError(f"{definition.name}: the entry formula is not read: {error}") from error
    return OutboundMessageDefinition(
        name=definition.name,
        object_type=definition.object_type,
        fields=tuple(fields),
        endpoint_url=definition.endpoint_url,
        condition=definition.condition,
        include_session_id=definition.include_session_id,
        ignore_changes_by=to_18(definition.ignore_changes_by) if definition.ignore_changes_by else None,
        entry_formula=definition.entry_formula,
        permission_holders=holders,
    )


def _field_type(spec: ObjectSpec, name: str) -> str | None:
    field_spec = spec.field(name)
    return None if field_spec is None else field_spec.type.value


def definition_from_json(payload: Any, schema: Schema | None = None) -> OutboundMessageDefinition:
    if not isinstance(payload, dict):
        raise ValueError("each outbound message definition must be a JSON object")
    fields = payload.get("fields", [])
    if not isinstance(fields, list) or not all(isinstance(name, str) for name in fields):
        raise ValueError("fields must be a list of field names")
    try:
        return checked_definition(
            OutboundMessageDefinition(
                name=str(payload["name"]),
                object_type=str(payload["object_type"]),
                fields=tuple(fields),
                endpoint_url=str(payload["endpoint_url"]),
                condition=str(payload["condition"]),
                include_session_id=bool(payload.get("include_session_id", False)),
                ignore_changes_by=payload.get("ignore_changes_by"),
                entry_formula=_optional_text(payload.get("entry_formula"), "entry_formula"),
                permission_holders=holders_from_json(payload.get("permission_holders")),
            ),
            schema,
        )
    except KeyError as error:
        raise ValueError(f"missing {error.args[0]!r} in an outbound message definition") from error


def _optional_text(value: Any, name: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name} must be text or null")
    return value


def definition_json(definition: OutboundMessageDefinition) -> dict[str, Any]:
    return {
        "name": definition.name,
        "object_type": definition.object_type,
        "fields": list(definition.fields),
        "endpoint_url": definition.endpoint_url,
        "condition": definition.condition,
        "include_session_id": definition.include_session_id,
        "ignore_changes_by": definition.ignore_changes_by,
        "entry_formula": definition.entry_formula,
        "permission_holders": holders_json(definition.permission_holders),
    }


def fires(definition: OutboundMessageDefinition, event: ChangeEvent) -> bool:
    """Whether a committed change triggers the definition."""
    if event.object_type != definition.object_type or event.kind == "deleted" or event.after is None:
        return False
    running_user = event.after.get("LastModifiedById")
    if definition.ignore_changes_by and running_user == definition.ignore_changes_by:
        return False
    if definition.condition == "created_or_updated":
        return True
    if definition.condition == "entry_formula" and definition.entry_formula is not None:
        return parse_formula(definition.entry_formula).evaluate(
            event.after,
            event.before,
            is_new=event.kind == "created",
            permissions=definition.permissions_of(running_user),
        )
    was_won = bool(event.before and event.before.get("IsWon"))
    return bool(event.after.get("IsWon")) and not was_won


def retry_delay(attempts: int) -> float:
    """Seconds before the next try after `attempts` failed ones (before scaling by the time factor)."""
    return float(min(FIRST_RETRY_SECONDS * 2.0 ** (attempts - 1), MAX_RETRY_INTERVAL_SECONDS))


# --- the SOAP message ----------------------------------------------------------------------------------


def soap_value(value: Any) -> str:
    """A stored value as the SOAP message carries it (ints are stored as int, other numbers as float)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_soap_datetime(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(value)


@dataclass(frozen=True)
class MessageContext:
    org_id: str
    action_id: str
    session_id: str | None
    instance_url: str
    api_version: str


def build_notifications_envelope(
    context: MessageContext,
    definition: OutboundMessageDefinition,
    notifications: Sequence[tuple[str, str, Record | None]],
) -> bytes:
    """The SOAP 1.1 request Salesforce POSTs; notifications are (notification id, record id, record).
    The definition's fields are the record's keys (checked against the org's schema when it was set)."""
    org15 = to_15(context.org_id)
    soap_base = f"{escape(context.instance_url)}/services/Soap"
    session = (
        f"<SessionId>{escape(context.session_id)}</SessionId>"
        if context.session_id
        else '<SessionId xsi:nil="true"/>'
    )
    lines = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<soapenv:Envelope xmlns:soapenv="{SOAP_ENVELOPE_NS}" xmlns:xsd="{XSD_NS}" xmlns:xsi="{XSI_NS}">',
        " <soapenv:Body>",
        f'  <notifications xmlns="{OUTBOUND_NS}">',
        f"   <OrganizationId>{context.org_id}</OrganizationId>",
        f"   <ActionId>{context.action_id}</ActionId>",
        f"   {session}",
        f"   <EnterpriseUrl>{soap_base}/c/{context.api_version}/{org15}</EnterpriseUrl>",
        f"   <PartnerUrl>{soap_base}/u/{context.api_version}/{org15}</PartnerUrl>",
    ]
    for notification_id, record_id, record in notifications:
        lines.append("   <Notification>")
        lines.append(f"    <Id>{notification_id}</Id>")
        lines.append(f'    <sObject xsi:type="sf:{definition.object_type}" xmlns:sf="{SOBJECT_NS}">')
        lines.append(f"     <sf:Id>{record_id}</sf:Id>")
        if record is not None:
            for name in definition.fields:
                value = record.get(name)
                if name == "Id" or value is None:
                    continue
                lines.append(f"     <sf:{name}>{escape(soap_value(value))}</sf:{name}>")
        lines.append("    </sObject>")
        lines.append("   </Notification>")
    lines += ["  </notifications>", " </soapenv:Body>", "</soapenv:Envelope>"]
    return "\n".join(lines).encode("utf-8")


def is_acknowledgement(body: bytes) -> bool:
    """True when the body is a SOAP notificationsResponse whose Ack is true."""
    try:
        root: Element = SafeElementTree.fromstring(body)
    except Exception:  # defusedxml raises several types for hostile or broken XML
        return False
    if root.tag != f"{{{SOAP_ENVELOPE_NS}}}Envelope":
        return False
    soap_body = root.find(f"{{{SOAP_ENVELOPE_NS}}}Body")
    if soap_body is None:
        return False
    response = soap_body.find(f"{{{OUTBOUND_NS}}}notificationsResponse")
    if response is None:
        return False
    ack = response.find(f"{{{OUTBOUND_NS}}}Ack")
    return ack is not None and (ack.text or "").strip() == "true"


# --- the queue -----------------------------------------------------------------------------------------


@dataclass
class Notification:
    notification_id: str
    record_id: str


@dataclass
class Delivery:
    """One SOAP message: notifications of one definition, sent and retried together."""

    definition: OutboundMessageDefinition
    action_id: str
    notifications: list[Notification]
    created_at: float
    next_attempt_at: float | None
    attempts: int = 0
    status: str = "pending"
    last_http_status: int | None = None
    last_error: str | None = None
    last_attempt_wall: datetime | None = None
    in_flight: bool = False
    attempt_walls: list[datetime] = field(default_factory=list)
    acknowledged: int = 0  # attempts the listener acknowledged
    duplicated: bool = False  # an acknowledged message chosen to be sent once more


def wall_time(monotonic_at: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=monotonic_at - time.monotonic())


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class OutboundQueue:
    """Queued Outbound Message deliveries and the thread that sends them."""

    def __init__(
        self,
        *,
        store: Store,
        ids: IdGenerator,
        org_id: str,
        instance_url: str,
        api_version: str,
        time_factor: float,
        issue_session: Callable[[], str],
        ca_file: str | None = None,
        duplicate_rate: float = 0.0,
    ) -> None:
        self.store = store
        self.ids = ids
        self.org_id = org_id
        self.instance_url = instance_url
        self.api_version = api_version
        self.time_factor = time_factor
        self.issue_session = issue_session
        self.duplicate_rate = duplicate_rate
        # Whether an Opportunity's Amount recomputed from its line items runs its flows like an update.
        self.amount_rollup_fires_flows = True
        self._random = random.Random()
        self._lock = threading.Lock()
        self._wakeup = threading.Condition(self._lock)
        self._sending = threading.Lock()
        self._definitions: list[OutboundMessageDefinition] = []
        self._action_ids: dict[str, str] = {}
        self._deliveries: list[Delivery] = []
        self._stopping = False
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file else True
        self._client = httpx.Client(verify=verify, timeout=DELIVERY_TIMEOUT_SECONDS, follow_redirects=False)
        self._thread = threading.Thread(target=self._run, name="salesforce-outbound", daemon=True)

    # --- configuration ----------------------------------------------------------------------------

    def set_definitions(self, definitions: Sequence[OutboundMessageDefinition]) -> None:
        checked = [checked_definition(definition, self.store.schema) for definition in definitions]
        names = [definition.name for definition in checked]
        if len(set(names)) != len(names):
            raise ValueError("outbound message names must be unique")
        with self._lock:
            self._definitions = checked
            for definition in checked:
                self._action_ids.setdefault(definition.name, self.ids.new_id(ACTION_PREFIX))

    @property
    def definitions(self) -> list[OutboundMessageDefinition]:
        with self._lock:
            return list(self._definitions)

    def action_id(self, name: str) -> str | None:
        with self._lock:
            return self._action_ids.get(name)

    def clear(self) -> None:
        """Forget every delivery (sent, pending or in flight)."""
        with self._lock:
            self._deliveries = []

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopping = True
            self._wakeup.notify_all()
        self._thread.join(timeout=5)
        self._client.close()

    # --- queueing -----------------------------------------------------------------------------------

    def notify(self, events: Sequence[ChangeEvent]) -> None:
        """Queue a notification for every definition a committed change fires."""
        now = time.monotonic()
        queued = False
        with self._lock:
            for event in events:
                if event.cause == "reparent" or (
                    event.cause == "rollup" and not self.amount_rollup_fires_flows
                ):
                    continue  # children re-parented by a merge run no automation; see the README
                for definition in self._definitions:
                    if not fires(definition, event):
                        continue
                    notification = Notification(self.ids.new_id(NOTIFICATION_PREFIX), event.record_id)
                    self._open_delivery(definition, now).notifications.append(notification)
                    queued = True
            if queued:
                self._wakeup.notify_all()

    def _open_delivery(self, definition: OutboundMessageDefinition, now: float) -> Delivery:
        """A delivery not yet tried that still has room, or a new one due now."""
        for delivery in self._deliveries:
            if (
                delivery.definition == definition
                and delivery.status == "pending"
                and delivery.attempts == 0
                and not delivery.in_flight
                and len(delivery.notifications) < MAX_NOTIFICATIONS_PER_MESSAGE
            ):
                return delivery
        delivery = Delivery(
            definition=definition,
            action_id=self._action_ids[definition.name],
            notifications=[],
            created_at=now,
            next_attempt_at=now,
        )
        self._deliveries.append(delivery)
        self._trim_finished()
        return delivery

    def _trim_finished(self) -> None:
        finished = [delivery for delivery in self._deliveries if delivery.status != "pending"]
        excess = len(finished) - MAX_FINISHED_DELIVERIES
        if excess > 0:
            dropped = {id(delivery) for delivery in finished[:excess]}
            self._deliveries = [delivery for delivery in self._deliveries if id(delivery) not in dropped]

    # --- sending ------------------------------------------------------------------------------------

    def flush(self) -> None:
        """Send every pending delivery now, in the calling thread, ignoring retry schedules."""
        with self._sending:
            now = time.monotonic()
            with self._lock:
                for delivery in self._deliveries:
                    if delivery.status == "pending" and not delivery.in_flight:
                        delivery.next_attempt_at = now
            self._send_due()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._stopping:
                    return
                wait = self._seconds_until_due()
                if wait > 0:
                    self._wakeup.wait(timeout=min(wait, IDLE_WAIT_SECONDS))
                if self._stopping:
                    return
            time.sleep(BATCH_WINDOW_SECONDS)
            try:
                with self._sending:
                    self._send_due()
            except Exception:
                logger.exception("the outbound message sender failed")

    def _seconds_until_due(self) -> float:
        now = time.monotonic()
        due_times = [
            delivery.next_attempt_at
            for delivery in self._deliveries
            if delivery.status == "pending"
            and not delivery.in_flight
            and delivery.next_attempt_at is not None
        ]
        return IDLE_WAIT_SECONDS if not due_times else max(min(due_times) - now, 0.0)

    def _send_due(self) -> None:
        now = time.monotonic()
        with self._lock:
            due = [
                delivery
                for delivery in self._deliveries
                if delivery.status == "pending"
                and not delivery.in_flight
                and delivery.next_attempt_at is not None
                and delivery.next_attempt_at <= now
            ]
            for delivery in due:
                delivery.in_flight = True
        for delivery in due:
            self._attempt(delivery)

    def _attempt(self, delivery: Delivery) -> None:
        with self._lock:
            if not any(item is delivery for item in self._deliveries):
                delivery.in_flight = False
                return
        body = self._envelope(delivery)
        status: int | None = None
        error: str | None = None
        acknowledged = False
        try:
            response = self._client.post(
                delivery.definition.endpoint_url,
                content=body,
                headers={
                    "Content-Type": "text/xml; charset=utf-8",
                    "SOAPAction": '""',
                    "User-Agent": USER_AGENT,
                },
            )
            status = response.status_code
            acknowledged = status == 200 and is_acknowledgement(response.content)
            if not acknowledged:
                error = f"HTTP {status}" if status != 200 else "the response is not a SOAP Ack=true"
        except httpx.HTTPError as failure:
            error = f"{type(failure).__name__}: {failure}"
        self._record_attempt(delivery, acknowledged, status, error)

    def _record_attempt(
        self, delivery: Delivery, acknowledged: bool, status: int | None, error: str | None
    ) -> None:
        now = time.monotonic()
        with self._lock:
            delivery.in_flight = False
            if not any(item is delivery for item in self._deliveries):
                return
            delivery.attempts += 1
            delivery.last_http_status = status
            delivery.last_error = error
            delivery.last_attempt_wall = datetime.now(UTC)
            delivery.attempt_walls.append(delivery.last_attempt_wall)
            if acknowledged:
                delivery.acknowledged += 1
                if delivery.duplicated or self._random.random() >= self.duplicate_rate:
                    delivery.status = "delivered"
                    delivery.next_attempt_at = None
                    return
                # Salesforce did not register the ack: the message goes out once more.
                delivery.duplicated = True
            next_attempt = now + retry_delay(delivery.attempts) * self.time_factor
            if next_attempt - delivery.created_at > MAX_AGE_SECONDS * self.time_factor:
                delivery.status = "delivered" if delivery.acknowledged else "dropped"
                delivery.next_attempt_at = None
            else:
                delivery.next_attempt_at = next_attempt
            self._wakeup.notify_all()

    def _envelope(self, delivery: Delivery) -> bytes:
        """The message with each record's values as they are now."""
        with self.store.lock:
            rows: list[tuple[str, str, Record | None]] = []
            for notification in delivery.notifications:
                record = self.store.get(delivery.definition.object_type, notification.record_id)
                current = None if record is None or record["IsDeleted"] else dict(record)
                rows.append((notification.notification_id, notification.record_id, current))
        context = MessageContext(
            org_id=self.org_id,
            action_id=delivery.action_id,
            session_id=self.issue_session() if delivery.definition.include_session_id else None,
            instance_url=self.instance_url,
            api_version=self.api_version,
        )
        return build_notifications_envelope(context, delivery.definition, rows)

    # --- admin view ---------------------------------------------------------------------------------

    def deliveries_json(self) -> list[dict[str, Any]]:
        with self._lock:
            return [
                {
                    "definition": delivery.definition.name,
                    "endpoint_url": delivery.definition.endpoint_url,
                    "action_id": delivery.action_id,
                    "notification_ids": [item.notification_id for item in delivery.notifications],
                    "record_ids": [item.record_id for item in delivery.notifications],
                    "attempts": delivery.attempts,
                    "acknowledged": delivery.acknowledged,
                    "duplicated": delivery.duplicated,
                    "status": delivery.status,
                    "last_http_status": delivery.last_http_status,
                    "last_error": delivery.last_error,
                    "attempted_at": [iso(moment) for moment in delivery.attempt_walls],
                    "next_attempt_at": (
                        iso(wall_time(delivery.next_attempt_at))
                        if delivery.status == "pending" and delivery.next_attempt_at is not None
                        else None
                    ),
                }
                for delivery in self._deliveries
            ]
