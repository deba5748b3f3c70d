"""Salesforce Outbound Messages (SOAP 1.1 `notifications`): parse, check and turn into SyncRequests.

Parsing is namespace-aware (any prefixes) and done only with defusedxml, with DTDs, entities and
external references refused. `parse_outbound_message` checks the structure; the caller checks the
organization, then `sync_requests_from_outbound_message` checks objects, ids and timestamps. The
SessionId is never kept: it is a live Salesforce session. Of the sObject's fields only Id and
LastModifiedDate are used; the rest are checked for shape and dropped (the workers read the record).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import cast
from xml.etree.ElementTree import Element

from defusedxml import DefusedXmlException, DTDForbidden, EntitiesForbidden, ExternalReferenceForbidden
from defusedxml.ElementTree import ParseError, fromstring
from pydantic import ValidationError

from sfintacct.intake.errors import MalformedRequest, UnsupportedObject
from sfintacct.intake.field_values import InvalidTimestamp, first_problem, parse_salesforce_timestamp
from sfintacct.intake.limits import check_body_size
from sfintacct.intake.soap import OUTBOUND_NAMESPACE, SOAP_ENVELOPE_NAMESPACE
from sfintacct.salesforce_ids import InvalidSalesforceId, to_case_safe_id
from sfintacct.sync_request import (
    KEY_PREFIX_BY_OBJECT_TYPE,
    SYNCED_OBJECT_TYPES,
    SyncObjectType,
    SyncRequest,
)

MAX_NOTIFICATIONS = 100  # Salesforce sends at most 100 notifications in one message
SOBJECT_NAMESPACE = "urn:sobject.enterprise.soap.sforce.com"
XSI_NAMESPACE = "http://www.w3.org/2001/XMLSchema-instance"
SOAP_12_ENVELOPE_NAMESPACE = "http://www.w3.org/2003/05/soap-envelope"
ACCEPTED_CONTENT_TYPES = ("text/xml", "application/soap+xml")

_ENVELOPE = f"{{{SOAP_ENVELOPE_NAMESPACE}}}Envelope"
_BODY = f"{{{SOAP_ENVELOPE_NAMESPACE}}}Body"
_NOTIFICATIONS = f"{{{OUTBOUND_NAMESPACE}}}notifications"
_ORGANIZATION_ID = f"{{{OUTBOUND_NAMESPACE}}}OrganizationId"
_ACTION_ID = f"{{{OUTBOUND_NAMESPACE}}}ActionId"
_NOTIFICATION = f"{{{OUTBOUND_NAMESPACE}}}Notification"
_NOTIFICATION_ID = f"{{{OUTBOUND_NAMESPACE}}}Id"
_SOBJECT = f"{{{OUTBOUND_NAMESPACE}}}sObject"
_XSI_TYPE = f"{{{XSI_NAMESPACE}}}type"
_XSI_NIL = f"{{{XSI_NAMESPACE}}}nil"


@dataclass(frozen=True)
class OutboundNotification:
    """One Notification: its id (the dedupe key) and the sObject as sent."""

    position: int  # 1-based, for error messages
    notification_id: str
    object_type: str  # local part of xsi:type, e.g. "Opportunity"
    fields: dict[str, str | None]

    def describe(self) -> str:
        return f"Notification {self.position} ({_printable(self.notification_id)})"


@dataclass(frozen=True)
class OutboundMessage:
    """The parts of a `notifications` message the intake uses (the SessionId is left out on purpose)."""

    organization_id: str  # as sent; checked against the allow-list by the caller
    action_id: str | None
    notifications: tuple[OutboundNotification, ...]


def check_outbound_content_type(content_type: str | None) -> None:
    """Refuse anything but a SOAP content type (text/xml or application/soap+xml, any parameters)."""
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in ACCEPTED_CONTENT_TYPES:
        shown = _printable(media_type) if media_type else "none"
        raise MalformedRequest(
            f"Content-Type must be text/xml or application/soap+xml for an Outbound Message, not {shown}"
        )


def check_outbound_size(body_size: int) -> None:
    """Refuse only bodies that could not have reached the function (see `sfintacct.intake.limits`)."""
    check_body_size(body_size, "the Outbound Message")


def parse_outbound_message(body: str | bytes) -> OutboundMessage:
    """Parse and structurally check a SOAP 1.1 Outbound Message."""
    root = _parse_xml(body)
    if root.tag == f"{{{SOAP_12_ENVELOPE_NAMESPACE}}}Envelope":
        raise MalformedRequest("SOAP 1.2 envelopes are not accepted; Outbound Messages use SOAP 1.1")
    if root.tag != _ENVELOPE:
        raise MalformedRequest(
            f"the document is not a SOAP 1.1 Envelope (root element {_printable(root.tag)})"
        )
    body_element = _single_child(root, _BODY, "the SOAP Envelope", "Body")
    payload = [child for child in body_element if isinstance(child.tag, str)]
    if len(payload) != 1 or payload[0].tag != _NOTIFICATIONS:
        raise MalformedRequest(
            f"the SOAP Body must hold one notifications element in namespace {OUTBOUND_NAMESPACE}"
        )
    notifications_element = payload[0]
    organization_id = _required_text(
        notifications_element, _ORGANIZATION_ID, "the notifications element", "OrganizationId"
    )
    action_element = notifications_element.find(_ACTION_ID)
    action_id = (action_element.text or "").strip() if action_element is not None else None

    notification_elements = notifications_element.findall(_NOTIFICATION)
    if not notification_elements:
        raise MalformedRequest("the message holds no Notification")
    if len(notification_elements) > MAX_NOTIFICATIONS:
        raise MalformedRequest(
            f"the message holds {len(notification_elements)} notifications; Salesforce sends at most "
            f"{MAX_NOTIFICATIONS} in one Outbound Message"
        )
    notifications = tuple(
        _parse_notification(position, element)
        for position, element in enumerate(notification_elements, start=1)
    )
    return OutboundMessage(organization_id=organization_id, action_id=action_id, notifications=notifications)


def sync_requests_from_outbound_message(
    message: OutboundMessage, org_id: str, received_at: datetime
) -> list[SyncRequest]:
    """One SyncRequest per notification; refuses the whole message on the first bad notification.

    `org_id` is the message's organization, already checked and in its 18-character form.
    """
    unsupported = sorted(
        {n.object_type for n in message.notifications if n.object_type not in SYNCED_OBJECT_TYPES}
    )
    if unsupported:
        names = ", ".join(_printable(name) for name in unsupported)
        raise UnsupportedObject(
            f"object {names} is not synced; Outbound Messages must be for Account or Opportunity"
        )
    return [_sync_request(notification, org_id, received_at) for notification in message.notifications]


def _sync_request(notification: OutboundNotification, org_id: str, received_at: datetime) -> SyncRequest:
    object_type = cast(SyncObjectType, notification.object_type)
    where = notification.describe()
    notification_id = _case_safe(notification.notification_id, f"{where}: Id")
    raw_record_id = notification.fields.get("Id")
    if not raw_record_id:
        raise MalformedRequest(f"{where}: the {object_type} sObject has no Id")
    record_id = _case_safe(raw_record_id, f"{where}: {object_type} Id")
    key_prefix = KEY_PREFIX_BY_OBJECT_TYPE[object_type]
    if not record_id.startswith(key_prefix):
        raise MalformedRequest(
            f"{where}: {_printable(raw_record_id)} is not an {object_type} id (those start with {key_prefix})"
        )
    last_modified = None
    raw_last_modified = notification.fields.get("LastModifiedDate")
    if raw_last_modified:
        try:
            last_modified = parse_salesforce_timestamp(raw_last_modified)
        except InvalidTimestamp as error:
            raise MalformedRequest(f"{where}: LastModifiedDate {error}") from None
    try:
        return SyncRequest(
            source="outbound_message",
            org_id=org_id,
            object_type=object_type,
            record_id=record_id,
            producer_id=notification_id,
            last_modified=last_modified,
            received_at=received_at,
        )
    except ValidationError as error:
        raise MalformedRequest(f"{where}: {first_problem(error)}") from None


def _parse_xml(body: str | bytes) -> Element:
    if not body or not body.strip():
        raise MalformedRequest("the request body is empty; expected a SOAP Outbound Message")
    try:
        return fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except UnicodeEncodeError:
        raise MalformedRequest("the body is not UTF-8 text (it holds an unpaired surrogate)") from None
    except DTDForbidden:
        raise MalformedRequest(
            "XML with a document type declaration (DTD) is not accepted: no DTDs, entities or external "
            "references"
        ) from None
    except EntitiesForbidden:
        raise MalformedRequest("XML entity declarations are not accepted") from None
    except ExternalReferenceForbidden:
        raise MalformedRequest("XML external references are not accepted") from None
    except DefusedXmlException:
        raise MalformedRequest("XML with forbidden constructs is not accepted") from None
    except ParseError as error:
        raise MalformedRequest(f"the body is not well-formed XML ({error})") from None


def _parse_notification(position: int, element: Element) -> OutboundNotification:
    where = f"Notification {position}"
    notification_id = _required_text(element, _NOTIFICATION_ID, where, "Id")
    where = f"{where} ({_printable(notification_id)})"
    sobject = _single_child(element, _SOBJECT, where, "sObject")
    xsi_type = sobject.get(_XSI_TYPE)
    if not xsi_type or not xsi_type.strip():
        raise MalformedRequest(f"{where}: the sObject has no xsi:type naming its object")
    object_type = xsi_type.strip().rsplit(":", 1)[-1]
    return OutboundNotification(
        position=position,
        notification_id=notification_id,
        object_type=object_type,
        fields=dict(_sobject_fields(sobject, where)),
    )


def _sobject_fields(sobject: Element, where: str) -> Iterator[tuple[str, str | None]]:
    seen: set[str] = set()
    for field in sobject:
        if not isinstance(field.tag, str):
            continue
        namespace, _, name = (
            field.tag[1:].partition("}") if field.tag.startswith("{") else ("", "", field.tag)
        )
        if namespace != SOBJECT_NAMESPACE:
            raise MalformedRequest(
                f"{where}: sObject field {_printable(name)} is not in namespace {SOBJECT_NAMESPACE}"
            )
        if name in seen:
            raise MalformedRequest(f"{where}: sObject field {_printable(name)} appears twice")
        seen.add(name)
        if len(field):
            raise MalformedRequest(f"{where}: sObject field {_printable(name)} has child elements")
        if (field.get(_XSI_NIL) or "").strip() in ("true", "1"):
            yield name, None
        else:
            yield name, field.text or ""


def _single_child(parent: Element, tag: str, where: str, name: str) -> Element:
    children = parent.findall(tag)
    if len(children) != 1:
        problem = "has no" if not children else "has more than one"
        raise MalformedRequest(f"{where} {problem} {name} element")
    return children[0]


def _required_text(parent: Element, tag: str, where: str, name: str) -> str:
    element = _single_child(parent, tag, where, name)
    text = (element.text or "").strip()
    if not text:
        raise MalformedRequest(f"{where}: {name} is empty")
    return text


def _case_safe(value: str, what: str) -> str:
    try:
        return to_case_safe_id(value.strip())
    except InvalidSalesforceId as error:
        raise MalformedRequest(f"{what} {error}") from None


def _printable(text: str, limit: int = 80) -> str:
    shown = "".join(character if character.isprintable() else "?" for character in text[:limit])
    return f"'{shown}{'...' if len(text) > limit else ''}'"
