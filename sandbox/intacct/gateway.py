"""The XML gateway protocol: envelope, sender and user authentication, dispatch, uniqueid, transactions.

`Gateway.handle` takes a request path and body and returns the HTTP status and XML body Intacct would send.
The caller holds the sandbox lock for the whole call, so each request runs alone against the store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from xml.etree.ElementTree import Element, ParseError, SubElement, indent, tostring

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as parse_xml

from sandbox.intacct.calls import CallContext, FunctionOutput
from sandbox.intacct.credentials import IntacctSandboxCredentials
from sandbox.intacct.errors import (
    ROLLED_BACK,
    SCHEMA_ERROR,
    SIGN_IN_ERROR,
    FunctionFailure,
    IntacctError,
    business_error,
)
from sandbox.intacct.functions import HANDLERS, WRITE_FUNCTIONS, count_key
from sandbox.intacct.schema import schema_errors
from sandbox.intacct.store import SandboxState, find_record, utc_now
from sandbox.intacct.xmlout import add_errors, add_text, child_text

LOGIN_PATH = "/ia/xml/xmlgw.phtml"
SESSION_PATH = "/na1/ia/xml/xmlgw.phtml"
GATEWAY_PATHS = (LOGIN_PATH, SESSION_PATH)
XML_CONTENT_TYPE = 'text/xml; encoding="UTF-8"'
SUPPORTED_DTD_VERSION = "3.0"
MAX_SCHEMA_ERRORS_SHOWN = 3

logger = logging.getLogger(__name__)


@dataclass
class GatewayReply:
    """The HTTP answer to one gateway request, and the functions it contained (for fault matching)."""

    status: int
    body: bytes
    function_names: set[str] = field(default_factory=set)
    content_type: str = XML_CONTENT_TYPE


class ControlFailure(Exception):
    """The request is refused as a whole: control status failure and a top-level errormessage."""

    def __init__(self, error: IntacctError, http_status: int = 200) -> None:
        super().__init__(error.description2 or error.description)
        self.error = error
        self.http_status = http_status


def schema_failure(description2: str) -> ControlFailure:
    return ControlFailure(IntacctError(SCHEMA_ERROR, "", f"XML Parse schema error: {description2}"))


@dataclass
class ControlBlock:
    sender_id: str
    sender_password: str
    control_id: str
    unique_id: bool
    unique_id_text: str
    dtd_version: str
    pretty: bool


@dataclass
class Caller:
    """An authenticated operation's identity."""

    company_id: str
    user_id: str
    location_id: str
    session_id: str | None
    timeout: datetime


@dataclass
class FunctionResult:
    function: str
    control_id: str
    status: str
    output: FunctionOutput | None = None
    errors: list[IntacctError] = field(default_factory=list)


class Gateway:
    """Answers XML gateway requests for one company against a `SandboxState`."""

    def __init__(self, state: SandboxState, credentials: IntacctSandboxCredentials, base_url: str) -> None:
        self.state = state
        self.credentials = credentials
        self.session_endpoint = base_url + SESSION_PATH

    # ------------------------------------------------------------------ envelope

    def handle(self, path: str, body: bytes) -> GatewayReply:
        control: ControlBlock | None = None
        try:
            root = parse_request(body)
            control = read_control(root)
            check_schema(body)
            self.check_sender(control)
            check_dtd_version(control)
            operations = read_operations(root)
        except ControlFailure as failure:
            return control_failure_reply(failure, control)
        function_count = sum(len(functions) for _, functions in operations)
        response = Element("response")
        add_control(response, control, "success")
        names: set[str] = set()
        for operation, functions in operations:
            for function in functions:
                inner = function[0]
                names.update({inner.tag, count_key(self.state, inner)})
            self.run_operation(
                response=response,
                path=path,
                control=control,
                operation=operation,
                functions=functions,
                function_count=function_count,
            )
        return GatewayReply(200, serialize(response, control.pretty), names)

    def check_sender(self, control: ControlBlock) -> None:
        if (
            control.sender_id != self.credentials.sender_id
            or control.sender_password != self.credentials.sender_password
        ):
            raise ControlFailure(
                IntacctError(
                    "XMLGW_JPP0002", "Sign-in information is incorrect. Please check your request.", "", ""
                ),
                http_status=401,
            )

    # ------------------------------------------------------------------ operation

    def run_operation(
        self,
        *,
        response: Element,
        path: str,
        control: ControlBlock,
        operation: Element,
        functions: list[Element],
        function_count: int,
    ) -> None:
        node = SubElement(response, "operation")
        # Sessions live on the wall clock; the functions get the sandbox's clock (which a test may move
        # to another day, `PUT /admin/config {"today": ...}`), so moving the day expires no session.
        now = utc_now()
        authentication = operation.find("authentication")
        assert authentication is not None  # checked by read_operations
        caller, auth_error = self.authenticate(authentication, path, now)
        auth_node = SubElement(node, "authentication")
        if caller is None:
            assert auth_error is not None
            add_text(auth_node, "status", "failure")
            login = authentication.find("login")
            add_text(auth_node, "userid", child_text(login, "userid") if login is not None else "")
            add_text(auth_node, "companyid", child_text(login, "companyid") if login is not None else "")
            add_errors(node, [auth_error])
            return
        add_text(auth_node, "status", "success")
        add_text(auth_node, "userid", caller.user_id)
        add_text(auth_node, "companyid", caller.company_id)
        add_text(auth_node, "locationid", caller.location_id)
        add_text(auth_node, "sessiontimestamp", now.isoformat(timespec="seconds"))
        add_text(auth_node, "sessiontimeout", caller.timeout.isoformat(timespec="seconds"))

        context = CallContext(
            state=self.state,
            company_id=caller.company_id,
            user_id=caller.user_id,
            location_id=caller.location_id,
            session_id=caller.session_id,
            session_endpoint=self.session_endpoint,
            now=self.state.now(now),
        )
        for function in functions:
            self.state.counts.functions[count_key(self.state, function[0])] += 1
        if operation.get("transaction", "false").strip().lower() == "true":
            results = self.run_transaction(context, control, functions, function_count)
        else:
            results = [
                self.run_function(context, control, function, function_count) for function in functions
            ]
        for result in results:
            add_result(node, result)

    def authenticate(
        self, authentication: Element, path: str, now: datetime
    ) -> tuple[Caller | None, IntacctError | None]:
        expected = self.credentials
        login = authentication.find("login")
        if login is not None:
            location_id = child_text(login, "locationid")
            valid = (
                child_text(login, "userid").casefold() == expected.user_id.casefold()
                and child_text(login, "companyid").casefold() == expected.company_id.casefold()
                and child_text(login, "password") == expected.user_password
                and (
                    not location_id
                    or find_record(self.state.data, "LOCATION", "LOCATIONID", location_id) is not None
                )
            )
            if not valid:
                return None, IntacctError(SIGN_IN_ERROR, "", "Sign-in information is incorrect", "")
            timeout = now + timedelta(seconds=self.state.config.session_seconds)
            return Caller(expected.company_id, expected.user_id, location_id, None, timeout), None
        session_id = child_text(authentication, "sessionid")
        session = self.state.sessions.get(session_id)
        if session is not None and session.expires_at <= now:
            del self.state.sessions[session_id]
            session = None
        if session is None:
            return None, IntacctError(
                SIGN_IN_ERROR,
                "Sign-in information is incorrect",
                "The API session is invalid or has expired",
                "",
            )
        session.expires_at = now + timedelta(seconds=self.state.config.session_seconds)
        caller = Caller(
            session.company_id, session.user_id, session.location_id, session_id, session.expires_at
        )
        return caller, None

    # ------------------------------------------------------------------ functions

    def refusal(
        self, context: CallContext, control: ControlBlock, inner: Element, control_id: str, total: int
    ) -> list[IntacctError] | None:
        """Errors that stop a function before it runs: getAPISession not alone, known controlid, unknown."""
        if inner.tag == "getAPISession" and total > 1:
            return [
                business_error(
                    "getAPISession must be the only function in its request.",
                    correction="Send getAPISession in a request of its own.",
                )
            ]
        completed = self.state.data.completed_controlids.get(context.company_id.casefold(), set())
        if control.unique_id and control_id and control_id in completed:
            return [repeated_controlid_error(self.state.config.duplicate_controlid_answer, control_id)]
        if inner.tag not in HANDLERS:
            return [business_error(f"The function {inner.tag} is not available in this gateway.")]
        return None

    def execute(
        self, context: CallContext, control: ControlBlock, function: Element, total: int
    ) -> FunctionResult:
        """Run one function; a failed write leaves the store as it was before the function."""
        inner = function[0]
        control_id = function.get("controlid", "")
        result = FunctionResult(inner.tag, control_id, "success")
        refusal = self.refusal(context, control, inner, control_id, total)
        if refusal is not None:
            result.status, result.errors = "failure", refusal
            return result
        snapshot = self.state.data.snapshot() if inner.tag in WRITE_FUNCTIONS else None
        try:
            result.output = HANDLERS[inner.tag](context, inner)
        except FunctionFailure as failure:
            result.status, result.errors = "failure", failure.errors
        except Exception:
            logger.exception("function %s failed unexpectedly", inner.tag)
            result.status = "failure"
            result.errors = [business_error(f"An internal error occurred while running {inner.tag}.")]
        if result.status != "success" and snapshot is not None:
            self.state.data = snapshot
        return result

    def record_completed(self, context: CallContext, result: FunctionResult) -> None:
        if result.control_id:
            completed = self.state.data.completed_controlids.setdefault(context.company_id.casefold(), set())
            completed.add(result.control_id)

    def run_function(
        self, context: CallContext, control: ControlBlock, function: Element, total: int
    ) -> FunctionResult:
        result = self.execute(context, control, function, total)
        if result.status == "success" or self.state.config.remember_failed_controlids:
            self.record_completed(context, result)
        return result

    def run_transaction(
        self, context: CallContext, control: ControlBlock, functions: list[Element], total: int
    ) -> list[FunctionResult]:
        """All or nothing: on the first failure everything is rolled back and the other functions abort."""
        snapshot = self.state.data.snapshot()
        results: list[FunctionResult] = []
        for index, function in enumerate(functions):
            result = self.execute(context, control, function, total)
            if result.status != "success":
                self.state.data = snapshot
                result.errors = [*result.errors, ROLLED_BACK]
                aborted = [aborted_result(done.function, done.control_id) for done in results]
                rest = [aborted_result(f[0].tag, f.get("controlid", "")) for f in functions[index + 1 :]]
                if self.state.config.remember_failed_controlids:
                    for refused in (*aborted, result, *rest):
                        self.record_completed(context, refused)
                return [*aborted, result, *rest]
            results.append(result)
        for result in results:
            self.record_completed(context, result)
        return results


def repeated_controlid_error(answer: str, control_id: str) -> IntacctError:
    """The refusal of a control id that already completed, in the words the sandbox is configured to use.

    - already_recorded: the text third-party code handles ("A successful transaction has already been
      recorded with the control id X"), under the generic BL01001973 (its real errorno is not known);
    - other_wording: another errorno and other words, the control id still quoted (made up here);
    - generic_failure: BL01001973 and nothing that tells it from any other failure (made up here).
    """
    if answer == "other_wording":
        return IntacctError(
            "XL03000012",
            "Duplicate request",
            f"Control ID {control_id} belongs to a function that was executed before.",
            "Send a new control ID to execute the function again.",
        )
    if answer == "generic_failure":
        return business_error("Unable to complete the request.")
    return business_error(
        f"A successful transaction has already been recorded with the control id {control_id}.",
        correction="Use a new control id for a new transaction.",
    )


# ---------------------------------------------------------------------- request parsing


def parse_request(body: bytes) -> Element:
    try:
        root: Element = parse_xml(body, forbid_dtd=True)
    except (ParseError, DefusedXmlException, ValueError) as error:
        raise schema_failure(
            f"the request is not well-formed XML ({type(error).__name__}: {error})"
        ) from error
    if root.tag != "request":
        raise schema_failure(f"the root element must be <request>, not <{root.tag}>.")
    return root


def read_control(root: Element) -> ControlBlock:
    control = root.find("control")
    if control is None:
        raise schema_failure("the <control> element is required.")
    for required in ("senderid", "password", "controlid"):
        if control.find(required) is None:
            raise schema_failure(f"the <control> element requires <{required}>.")
    unique_text = child_text(control, "uniqueid", "true").lower() or "true"
    if unique_text not in ("true", "false"):
        raise schema_failure(f"<uniqueid> must be true or false, not {unique_text!r}.")
    dtd_version = child_text(control, "dtdversion", SUPPORTED_DTD_VERSION) or SUPPORTED_DTD_VERSION
    control_id = child_text(control, "controlid")
    if len(control_id) > 256:
        raise schema_failure("<controlid> is longer than 256 characters.")
    return ControlBlock(
        sender_id=child_text(control, "senderid"),
        sender_password=child_text(control, "password"),
        control_id=control_id,
        unique_id=unique_text == "true",
        unique_id_text=unique_text,
        dtd_version=dtd_version,
        pretty=child_text(control, "includewhitespace", "true").lower() != "false",
    )


def check_dtd_version(control: ControlBlock) -> None:
    if control.dtd_version != SUPPORTED_DTD_VERSION:
        raise ControlFailure(
            IntacctError(
                SCHEMA_ERROR,
                "",
                f"Unsupported dtdversion {control.dtd_version}: use {SUPPORTED_DTD_VERSION}.",
            )
        )


def check_schema(body: bytes) -> None:
    """Refuse the whole request when it breaks Intacct's published schema, quoting the parser."""
    errors = schema_errors(body)
    if errors:
        shown = "; ".join(str(error) for error in errors[:MAX_SCHEMA_ERRORS_SHOWN])
        more = len(errors) - MAX_SCHEMA_ERRORS_SHOWN
        raise schema_failure(shown + (f" (and {more} more)" if more > 0 else ""))


def read_operations(root: Element) -> list[tuple[Element, list[Element]]]:
    """Each operation with its functions (the structure is already checked against the schema)."""
    parsed: list[tuple[Element, list[Element]]] = []
    for operation in root.findall("operation"):
        functions = [function for content in operation.findall("content") for function in content]
        for function in functions:
            if len(function.get("controlid", "")) > 256:
                raise schema_failure("a function controlid is longer than 256 characters.")
        parsed.append((operation, functions))
    return parsed


# ---------------------------------------------------------------------- response building


def add_control(response: Element, control: ControlBlock | None, status: str) -> None:
    node = SubElement(response, "control")
    add_text(node, "status", status)
    add_text(node, "senderid", control.sender_id if control else "")
    add_text(node, "controlid", control.control_id if control else "")
    add_text(node, "uniqueid", control.unique_id_text if control else "")
    add_text(node, "dtdversion", control.dtd_version if control else "")


def add_result(operation: Element, result: FunctionResult) -> None:
    node = SubElement(operation, "result")
    add_text(node, "status", result.status)
    add_text(node, "function", result.function)
    add_text(node, "controlid", result.control_id)
    if result.status == "success" and result.output is not None:
        if result.output.key is not None:
            add_text(node, "key", result.output.key)
        if result.output.data is not None:
            node.append(result.output.data)
    if result.status == "failure" and result.function in ("create", "update"):
        SubElement(node, "data", {"listtype": "objects", "count": "0"})
    if result.errors:
        add_errors(node, result.errors)


def aborted_result(function: str, control_id: str) -> FunctionResult:
    return FunctionResult(function, control_id, "aborted", errors=[ROLLED_BACK])


def control_failure_reply(failure: ControlFailure, control: ControlBlock | None) -> GatewayReply:
    response = Element("response")
    add_control(response, control, "failure")
    add_errors(response, [failure.error])
    pretty = control.pretty if control else True
    return GatewayReply(failure.http_status, serialize(response, pretty))


def serialize(response: Element, pretty: bool) -> bytes:
    if pretty:
        indent(response, space="    ")
    text: bytes = tostring(response, encoding="utf-8", xml_declaration=False, short_empty_elements=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + text


def gateway_error_body(errorno: str, description: str, description2: str) -> bytes:
    """A bare gateway error: `<response><control><status>failure</status></control><errormessage>...`."""
    response = Element("response")
    control = SubElement(response, "control")
    add_text(control, "status", "failure")
    add_errors(response, [IntacctError(errorno, description, description2)])
    return serialize(response, True)
