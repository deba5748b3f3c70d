"""Building gateway requests: the control block, one operation, authentication and functions.

Element order follows the 3.0 schema. Values are escaped by ElementTree; characters XML 1.0 cannot
carry at all are refused with IntacctRequestError rather than sent as a malformed request.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, SubElement, tostring

from pydantic import SecretStr

from sfintacct.intacct.errors import IntacctRequestError

DTD_VERSION = "3.0"
MAX_CONTROL_ID_LENGTH = 256
XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'
# Characters outside the XML 1.0 Char production.
_INVALID_XML_CHARACTERS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


@dataclass(frozen=True)
class IntacctFunction:
    """One `<function controlid="...">` holding one operation element (create, query, ...).

    `writes` says whether the function changes data: writes go out with uniqueid=true so a repeated
    control id is refused instead of applied twice; reads go out with uniqueid=false.
    """

    control_id: str
    operation: Element = field(repr=False, compare=False)
    writes: bool

    @property
    def name(self) -> str:
        """The function name as Intacct reports it in results (`create`, `readByQuery`, ...)."""
        return self.operation.tag

    @property
    def label(self) -> str:
        """A short description for logs: `create:CUSTOMER`, `query:ITEM`, `create_sotransaction`."""
        if self.name in ("create", "update", "delete") and len(self.operation) > 0:
            return f"{self.name}:{self.operation[0].tag.upper()}"
        object_name = self.operation.findtext("object")
        return f"{self.name}:{object_name.strip().upper()}" if object_name else self.name


@dataclass(frozen=True)
class LoginAuthentication:
    """Company credentials: `<login>` with userid, companyid, password and an optional locationid."""

    user_id: str
    company_id: str
    password: SecretStr
    location_id: str | None = None


@dataclass(frozen=True)
class SessionAuthentication:
    """An API session from getAPISession: `<sessionid>`."""

    session_id: str = field(repr=False)


Authentication = LoginAuthentication | SessionAuthentication


def check_control_id(control_id: str) -> str:
    """A control id must have 1 to 256 characters XML can carry."""
    if not 1 <= len(control_id) <= MAX_CONTROL_ID_LENGTH:
        raise IntacctRequestError(f"A control id must have 1 to {MAX_CONTROL_ID_LENGTH} characters")
    if _INVALID_XML_CHARACTERS.search(control_id):
        raise IntacctRequestError("A control id contains characters XML cannot carry")
    return control_id


def request_control_id(functions: Sequence[IntacctFunction]) -> str:
    """The request-level control id, derived from the function control ids.

    A retry of the same logical call therefore sends the same request control id as the first attempt.
    """
    digest = hashlib.sha256("\n".join(function.control_id for function in functions).encode("utf-8"))
    return "req-" + digest.hexdigest()[:40]


def build_request(
    *,
    sender_id: str,
    sender_password: SecretStr,
    authentication: Authentication,
    functions: Sequence[IntacctFunction],
    unique_id: bool,
    transaction: bool = False,
) -> bytes:
    """The request document (UTF-8 bytes with an XML declaration)."""
    if not functions:
        raise IntacctRequestError("A request needs at least one function")
    control_ids = [check_control_id(function.control_id) for function in functions]
    if len(set(control_ids)) != len(control_ids):
        raise IntacctRequestError("Function control ids must be unique within a request")

    request = Element("request")
    control = SubElement(request, "control")
    _text(control, "senderid", sender_id)
    _text(control, "password", sender_password.get_secret_value())
    _text(control, "controlid", request_control_id(functions))
    _text(control, "uniqueid", _boolean(unique_id))
    _text(control, "dtdversion", DTD_VERSION)
    _text(control, "includewhitespace", "false")
    _text(control, "showadditionalerrorinfo", "true")

    operation = SubElement(request, "operation", {"transaction": _boolean(transaction)})
    auth = SubElement(operation, "authentication")
    if isinstance(authentication, LoginAuthentication):
        login = SubElement(auth, "login")
        _text(login, "userid", authentication.user_id)
        _text(login, "companyid", authentication.company_id)
        _text(login, "password", authentication.password.get_secret_value())
        if authentication.location_id:
            _text(login, "locationid", authentication.location_id)
    else:
        _text(auth, "sessionid", authentication.session_id)

    content = SubElement(operation, "content")
    for function in functions:
        wrapper = SubElement(content, "function", {"controlid": function.control_id})
        wrapper.append(function.operation)
    check_xml_characters(request)
    return (XML_DECLARATION + tostring(request, encoding="unicode", short_empty_elements=True)).encode(
        "utf-8"
    )


def check_xml_characters(root: Element) -> None:
    """Refuse text or attribute values XML 1.0 cannot represent (naming the element, not the value)."""
    for element in root.iter():
        values = [element.text or "", element.tail or "", *element.attrib.values()]
        if any(_INVALID_XML_CHARACTERS.search(value) for value in values):
            raise IntacctRequestError(f"The value of <{element.tag}> contains characters XML cannot carry")


def _text(parent: Element, tag: str, value: str) -> Element:
    child = SubElement(parent, tag)
    child.text = value
    return child


def _boolean(value: bool) -> str:
    return "true" if value else "false"
