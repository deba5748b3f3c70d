"""Parsing gateway responses (with defusedxml only) into control, authentication and result blocks.

This module only reads structure: a response that is not XML, uses DTDs or entities, or lacks a block
the protocol requires raises IntacctProtocolError / HostileXmlError. Whether a failure status is
transient or permanent is decided in classify.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote
from xml.etree.ElementTree import Element, ParseError

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring

from sfintacct.intacct.errors import ErrorDetail, HostileXmlError, IntacctProtocolError

Record = dict[str, Any]

SUCCESS = "success"
FAILURE = "failure"
ABORTED = "aborted"
_RESULT_STATUSES = frozenset({SUCCESS, FAILURE, ABORTED})
_BLOCK_STATUSES = frozenset({SUCCESS, FAILURE})
_PERCENT_ESCAPE = re.compile(r"%[0-9A-Fa-f]{2}")


@dataclass(frozen=True)
class ControlBlock:
    status: str
    sender_id: str = ""
    control_id: str = ""
    unique_id: str = ""
    dtd_version: str = ""


@dataclass(frozen=True)
class AuthenticationBlock:
    status: str
    user_id: str = ""
    company_id: str = ""
    location_id: str = ""
    session_timestamp: datetime | None = None
    session_timeout: datetime | None = None


@dataclass(frozen=True)
class FunctionResult:
    """One `<result>`: status, function, control id, and `<key>` or `<data>` or errors."""

    status: str
    function: str
    control_id: str
    key: str | None = None
    data: Element | None = field(default=None, repr=False, compare=False)
    errors: tuple[ErrorDetail, ...] = ()

    @property
    def succeeded(self) -> bool:
        return self.status == SUCCESS

    def data_attribute(self, name: str) -> str:
        """An attribute of `<data>` (count, totalcount, numremaining, resultId, ...); "" if absent."""
        if self.data is None:
            return ""
        return self.data.get(name, "").strip()

    def data_number(self, name: str) -> int | None:
        """A numeric `<data>` attribute, or None when absent or not a number."""
        text = self.data_attribute(name)
        return int(text) if text.isascii() and text.isdigit() else None

    def records(self) -> list[Record]:
        """The records under `<data>`, each a dict of field -> text (or a nested dict for groups)."""
        if self.data is None:
            return []
        return [element_to_record(child) for child in self.data]


@dataclass(frozen=True)
class GatewayResponse:
    """A parsed response. `errors` holds the top-level (control) or operation-level (sign-in) errors."""

    control: ControlBlock
    authentication: AuthenticationBlock | None = None
    results: tuple[FunctionResult, ...] = ()
    errors: tuple[ErrorDetail, ...] = ()


def parse_xml(body: bytes) -> Element:
    """Parse a response body with defusedxml, refusing DTDs, entities and external references."""
    try:
        root: Element = fromstring(body, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as error:
        raise HostileXmlError(
            f"The response was refused: it uses forbidden XML features ({type(error).__name__})"
        ) from None
    except ParseError as error:
        raise IntacctProtocolError(f"The response is not well-formed XML ({error})") from None
    return root


def parse_response(body: bytes) -> GatewayResponse:
    """Parse the three levels of a gateway response; IntacctProtocolError if a required block is missing."""
    root = parse_xml(body)
    if root.tag != "response":
        raise IntacctProtocolError(f"The response root element is <{root.tag}>, not <response>")
    control_element = _required(root, "control", "the response has no <control> block")
    control = ControlBlock(
        status=_status(control_element, _BLOCK_STATUSES, "control"),
        sender_id=_text(control_element, "senderid"),
        control_id=_text(control_element, "controlid"),
        unique_id=_text(control_element, "uniqueid"),
        dtd_version=_text(control_element, "dtdversion"),
    )
    if control.status != SUCCESS:
        return GatewayResponse(control=control, errors=parse_errors(root))

    operation = _required(root, "operation", "the response has no <operation> block")
    auth_element = _required(operation, "authentication", "the response has no <authentication> block")
    authentication = AuthenticationBlock(
        status=_status(auth_element, _BLOCK_STATUSES, "authentication"),
        user_id=_text(auth_element, "userid"),
        company_id=_text(auth_element, "companyid"),
        location_id=_text(auth_element, "locationid"),
        session_timestamp=_timestamp(auth_element, "sessiontimestamp"),
        session_timeout=_timestamp(auth_element, "sessiontimeout"),
    )
    if authentication.status != SUCCESS:
        return GatewayResponse(control=control, authentication=authentication, errors=parse_errors(operation))
    results = tuple(parse_result(element) for element in operation.findall("result"))
    return GatewayResponse(control=control, authentication=authentication, results=results)


def parse_result(element: Element) -> FunctionResult:
    key = element.find("key")
    return FunctionResult(
        status=_status(element, _RESULT_STATUSES, "result"),
        function=_text(element, "function"),
        control_id=_text(element, "controlid"),
        key=(key.text or "").strip() if key is not None else None,
        data=element.find("data"),
        errors=parse_errors(element),
    )


def parse_errors(parent: Element) -> tuple[ErrorDetail, ...]:
    """The `<errormessage><error>` children of `parent`."""
    errors: list[ErrorDetail] = []
    for error in parent.findall("errormessage/error"):
        info = error.find("additionalinfo")
        errors.append(
            ErrorDetail(
                errorno=_text(error, "errorno"),
                description=_decoded(_text(error, "description")),
                description2=_decoded(_text(error, "description2")),
                correction=_decoded(_text(error, "correction")),
                error_id=_text(info, "errorid") if info is not None else "",
                category=_text(info, "category") if info is not None else "",
                message_id=_message_id(info),
            )
        )
    return tuple(errors)


def element_to_record(element: Element) -> Record:
    """A record element as a dict: leaf fields -> stripped text, groups (DISPLAYCONTACT) -> nested dicts."""
    record: Record = {}
    for child in element:
        record[child.tag] = element_to_record(child) if len(child) > 0 else (child.text or "").strip()
    return record


def _message_id(info: Element | None) -> str:
    if info is None:
        return ""
    for path in ("description/messageid", "cdescription/messageid", "messageid"):
        text = _text(info, path)
        if text:
            return text
    return ""


def _decoded(text: str) -> str:
    """URL-decode texts that carry %XX escapes (e.g. "[Support ID: abc%7Edef]")."""
    return unquote(text) if _PERCENT_ESCAPE.search(text) else text


def _required(parent: Element, tag: str, problem: str) -> Element:
    child = parent.find(tag)
    if child is None:
        raise IntacctProtocolError(f"Malformed response: {problem}")
    return child


def _status(element: Element, allowed: frozenset[str], block: str) -> str:
    status = _text(element, "status").lower()
    if not status:
        raise IntacctProtocolError(f"Malformed response: the <{block}> block has no <status>")
    if status not in allowed:
        raise IntacctProtocolError(f"Malformed response: unknown {block} status {status!r}")
    return status


def _text(element: Element, path: str) -> str:
    return (element.findtext(path) or "").strip()


def _timestamp(element: Element, tag: str) -> datetime | None:
    text = _text(element, tag)
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None
