"""HTTPS server for the Intacct sandbox: TLS, routing to the gateway and the admin API, injected faults.

sandbox = start_intacct_sandbox(ssl_context=context, credentials=IntacctSandboxCredentials.generate())
... POST XML to sandbox.gateway_url, JSON to sandbox.admin_url + "/faults" ...
sandbox.stop()
"""

from __future__ import annotations

import logging
import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from sandbox.intacct.admin import ADMIN_PREFIX, handle_admin
from sandbox.intacct.credentials import IntacctSandboxCredentials
from sandbox.intacct.faults import PostFault, PreFault
from sandbox.intacct.gateway import (
    GATEWAY_PATHS,
    LOGIN_PATH,
    SESSION_PATH,
    XML_CONTENT_TYPE,
    Gateway,
    GatewayReply,
    gateway_error_body,
)
from sandbox.intacct.store import SandboxState

__all__ = ["IntacctSandbox", "IntacctSandboxCredentials", "start_intacct_sandbox"]

MAX_BODY_BYTES = 20 * 1024 * 1024
IDLE_CONNECTION_SECONDS = 120
HTML_CONTENT_TYPE = "text/html; charset=UTF-8"
RATE_LIMIT_DETAIL = (
    "Your API client has hit its assigned rate limit by submitting too many requests in a short period."
)
OFFLINE_DETAIL = "The service is down for maintenance. Please try again later."

logger = logging.getLogger(__name__)


@dataclass
class Answer:
    """An HTTP response to send, or a connection to drop."""

    status: int
    body: bytes = b""
    content_type: str = XML_CONTENT_TYPE
    drop_connection: bool = False
    headers: dict[str, str] = field(default_factory=dict)


_FUNCTION_TAG = re.compile(rb"<function\b[^>]*>\s*<([A-Za-z_][\w.-]*)")
_FUNCTION_CONTROL_ID = re.compile(rb'<function\b[^>]*\bcontrolid="([^"]*)"')


def function_names_in(body: bytes) -> set[str]:
    """The functions a request body names (before it is parsed), for faults that wait before running."""
    return {match.decode("ascii") for match in _FUNCTION_TAG.findall(body)}


def function_control_ids_in(body: bytes) -> set[str]:
    """The function control ids a request body carries (before it is parsed)."""
    return {match.decode("utf-8", "replace") for match in _FUNCTION_CONTROL_ID.findall(body)}


def html_page(status: int) -> bytes:
    """A small CDN-style error page."""
    phrase = "A Timeout Occurred" if status == 524 else _phrase(status)
    title = f"{status} {phrase}"
    return f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>".encode()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Server Error"


class _SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False

    def __init__(
        self, address: tuple[str, int], ssl_context: ssl.SSLContext, credentials: IntacctSandboxCredentials
    ) -> None:
        super().__init__(address, _Handler)
        # The TLS handshake runs lazily in the connection's thread, so a slow client cannot stall accept().
        self.socket = ssl_context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        host, port = self.socket.getsockname()[:2]
        self.base_url = f"https://{host}:{port}"
        self.state = SandboxState()
        self.gateway = Gateway(self.state, credentials, self.base_url)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "Apache"
    sys_version = ""
    timeout = IDLE_CONNECTION_SECONDS
    # Buffer each response into one write and send it at once (no Nagle delay between headers and body).
    wbufsize = -1
    disable_nagle_algorithm = True
    server: _SandboxHTTPServer

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def dispatch(self, method: str) -> None:
        path = urlsplit(self.path).path
        try:
            body = self.read_body()
            if body is None:
                answer = Answer(413, html_page(413), HTML_CONTENT_TYPE)
            elif path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
                reply = handle_admin(self.server.state, method, path, body)
                answer = Answer(reply.status, reply.body(), "application/json")
            elif path in GATEWAY_PATHS:
                if method != "POST":
                    answer = Answer(405, html_page(405), HTML_CONTENT_TYPE, headers={"Allow": "POST"})
                else:
                    answer = self.gateway(path, body)
            else:
                answer = Answer(404, html_page(404), HTML_CONTENT_TYPE)
        except Exception:
            logger.exception("the sandbox failed to answer %s %s", method, path)
            answer = Answer(500, html_page(500), HTML_CONTENT_TYPE)
        self.send(answer)

    def read_body(self) -> bytes | None:
        """The request body (Content-Length or chunked); None when it is too large."""
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            size = 0
            while True:
                length = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if length == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                size += length
                if size > MAX_BODY_BYTES:
                    self.close_connection = True
                    return None
                chunks.append(self.rfile.read(length))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length > 0 else b""

    def gateway(self, path: str, body: bytes) -> Answer:
        state = self.server.state
        with state.lock:
            state.counts.requests += 1
            latency_ms = state.faults.take_delay_ms(function_names_in(body))
            # Checked on arrival when repeats in flight apply: what a repeat completes meanwhile is let be.
            checked_on_arrival = (
                function_control_ids_in(body) - state.data.all_completed_controlids()
                if latency_ms and state.config.repeats_in_flight_apply
                else set()
            )
        if latency_ms:
            time.sleep(latency_ms / 1000)
        with state.lock:
            completed_meanwhile = state.data.forget_completed_controlids(checked_on_arrival)
            answer = self.gateway_answer(path, body)
            state.data.remember_completed_controlids(completed_meanwhile)
            if not answer.drop_connection:
                state.counts.statuses[str(answer.status)] += 1
        return answer

    def gateway_answer(self, path: str, body: bytes) -> Answer:
        """Faults first; otherwise execute, then apply an after-commit fault if one is due."""
        state = self.server.state
        pre_fault = state.faults.take_pre_fault()
        if pre_fault is not None:
            fault, status = pre_fault
            if fault is PreFault.OFFLINE:
                return Answer(
                    status,
                    gateway_error_body("GW-0009", "The Service is Temporarily Off-line", OFFLINE_DETAIL),
                )
            if fault is PreFault.RATE_LIMIT:
                return Answer(status, gateway_error_body("GW-0010", "Rate limit exceeded", RATE_LIMIT_DETAIL))
            return Answer(status, html_page(status), HTML_CONTENT_TYPE)
        reply: GatewayReply = self.server.gateway.handle(path, body)
        post_fault = state.faults.take_post_fault(reply.function_names)
        if post_fault is PostFault.DROP_CONNECTION:
            return Answer(0, drop_connection=True)
        if post_fault is PostFault.TIMEOUT_524:
            return Answer(524, html_page(524), HTML_CONTENT_TYPE)
        return Answer(reply.status, reply.body, reply.content_type)

    def send(self, answer: Answer) -> None:
        if answer.drop_connection:
            self.close_connection = True
            return
        self.send_response(answer.status, "A Timeout Occurred" if answer.status == 524 else None)
        if answer.body or answer.status != 204:
            self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)


@dataclass
class IntacctSandbox:
    """A running sandbox: where to reach it and how to stop it."""

    gateway_url: str
    admin_url: str
    session_url: str
    port: int
    credentials: IntacctSandboxCredentials
    state: SandboxState
    _server: _SandboxHTTPServer
    _thread: threading.Thread

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def start_intacct_sandbox(
    *,
    ssl_context: ssl.SSLContext,
    credentials: IntacctSandboxCredentials,
    host: str = "127.0.0.1",
    port: int = 0,
) -> IntacctSandbox:
    """Serve the sandbox over HTTPS on host:port (0 = a free port) in a background thread."""
    server = _SandboxHTTPServer((host, port), ssl_context, credentials)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="intacct-sandbox", daemon=True
    )
    thread.start()
    return IntacctSandbox(
        gateway_url=server.base_url + LOGIN_PATH,
        admin_url=server.base_url + ADMIN_PREFIX,
        session_url=server.base_url + SESSION_PATH,
        port=int(server.server_address[1]),
        credentials=credentials,
        state=server.state,
        _server=server,
        _thread=thread,
    )
