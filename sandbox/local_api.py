"""Local API: an HTTP(S) server on 127.0.0.1 that plays API Gateway (REST API, proxy integration).

Each request becomes an API Gateway REST proxy event (payload v1) for a Lambda handler, invoked with a
Lambda context object; the handler's proxy response becomes the HTTP response. Like one Lambda
container, the handler runs one invocation at a time. Bodies over 10 MB are refused with 413 as API
Gateway does. Bodies are passed as text (the webhook API has no binary media types); bytes that are
not UTF-8 are replaced, as API Gateway would.

    api = start_local_api(app.lambda_handler, port=0)
    ... POST f"{api.url}/salesforce/outbound" ...
    api.stop()

Plain HTTP by default. With `tls` (a server certificate, sandbox.tls) it serves HTTPS; with
`client_ca_file` as well it plays a custom domain with mutual TLS: the TLS handshake fails unless the
client presents a certificate that chains to a CA in that file (API Gateway's truststore), and the
verified certificate reaches the handler as `requestContext.identity.clientCert` (clientCertPem,
subjectDN, issuerDN, serialNumber, validity.notBefore/notAfter), as API Gateway passes it to a REST API
proxy integration. A connection whose handshake fails never reaches the handler; `handshake_failures`
counts them.

`python -m sandbox.local_api --port 3000` serves the intake function (functions/intake/app.py);
`--tls-dir DIR` serves it over HTTPS with a fresh local CA and server certificate written to DIR, and
`--client-ca-file FILE` requires client certificates issued by a CA in FILE.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import json
import logging
import ssl
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

if TYPE_CHECKING:
    from cryptography.x509 import Name

    from sandbox.tls import LocalTls

DEFAULT_PORT = 3000
MAX_BODY_BYTES = 10 * 1024 * 1024  # API Gateway's payload limit
LOCAL_ACCOUNT_ID = "123456789012"
LOCAL_REGION = "us-east-1"
INTAKE_APP_PATH = Path(__file__).resolve().parent.parent / "functions" / "intake" / "app.py"
_HOP_BY_HOP_HEADERS = frozenset({"connection", "content-length", "transfer-encoding", "keep-alive"})
TLS_HANDSHAKE_TIMEOUT_SECONDS = 10.0

Handler = Callable[[dict[str, Any], Any], Any]
_logger = logging.getLogger(__name__)


@dataclass
class LocalLambdaContext:
    """The parts of the Lambda context object handlers and Powertools use."""

    function_name: str
    memory_limit_in_mb: int
    invoked_function_arn: str
    aws_request_id: str
    timeout_seconds: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = ""
    _started: float = field(default_factory=time.monotonic)

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self._started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


@dataclass
class LocalApi:
    """A running local API: `url` is http(s)://127.0.0.1:<port>; `stop()` shuts it down."""

    url: str
    port: int
    _server: _LocalApiServer
    _thread: threading.Thread

    @property
    def handshake_failures(self) -> int:
        """TLS connections refused during the handshake (no client certificate, an untrusted one, ...)."""
        return self._server.handshake_failures

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


def start_local_api(
    handler: Handler,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    *,
    function_name: str = "IntakeFunction",
    memory_limit_in_mb: int = 256,
    timeout_seconds: float = 15.0,
    stage: str = "local",
    tls: LocalTls | None = None,
    client_ca_file: Path | None = None,
) -> LocalApi:
    """Serve `handler` behind an API Gateway-like HTTP server (port 0: any free port).

    `tls`: serve HTTPS with this server certificate. `client_ca_file`: mutual TLS, only clients with a
    certificate from a CA in this file get through the handshake (needs `tls`).
    """
    if client_ca_file is not None and tls is None:
        raise ValueError("mutual TLS (client_ca_file) needs a server certificate (tls)")
    ssl_context = tls.server_context(client_ca_file) if tls is not None else None
    invocation_lock = threading.Lock()

    def invoke(event: dict[str, Any]) -> Any:
        context = LocalLambdaContext(
            function_name=function_name,
            memory_limit_in_mb=memory_limit_in_mb,
            invoked_function_arn=f"arn:aws:lambda:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:function:{function_name}",
            aws_request_id=str(uuid.uuid4()),
            timeout_seconds=timeout_seconds,
        )
        with invocation_lock:
            return handler(event, context)

    server = _LocalApiServer(
        (host, port), _RequestHandler, invoke=invoke, stage=stage, ssl_context=ssl_context
    )
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="local-api", daemon=True
    )
    thread.start()
    bound_port = server.server_address[1]
    scheme = "https" if ssl_context is not None else "http"
    return LocalApi(url=f"{scheme}://{host}:{bound_port}", port=bound_port, _server=server, _thread=thread)


class _LocalApiServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self,
        address: tuple[str, int],
        handler_class: type[BaseHTTPRequestHandler],
        *,
        invoke: Callable[[dict[str, Any]], Any],
        stage: str,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        super().__init__(address, handler_class)
        self.invoke = invoke
        self.stage = stage
        self.ssl_context = ssl_context
        self.handshake_failures = 0
        self._failures_lock = threading.Lock()

    def get_request(self) -> tuple[Any, Any]:
        connection, address = super().get_request()
        if self.ssl_context is None:
            return connection, address
        # The handshake runs in the request's thread (finish_request), not in the accepting one.
        return self.ssl_context.wrap_socket(
            connection, server_side=True, do_handshake_on_connect=False
        ), address

    def finish_request(self, request: Any, client_address: Any) -> None:
        if isinstance(request, ssl.SSLSocket):
            request.settimeout(TLS_HANDSHAKE_TIMEOUT_SECONDS)
            try:
                request.do_handshake()
            except (ssl.SSLError, OSError):  # no or an untrusted client certificate, or a dropped client
                with self._failures_lock:
                    self.handshake_failures += 1
                return
            request.settimeout(None)
        super().finish_request(request, client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _LocalApiServer

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are not logged (bodies and tokens stay out of test output)."""

    def _handle(self) -> None:
        body = self._read_body()
        if body is None:
            return
        event = self._proxy_event(body)
        try:
            response = self.server.invoke(event)
        except Exception:  # the Lambda failed: API Gateway answers 502
            _logger.exception("the handler raised")
            self._send(502, {"Content-Type": ["application/json"]}, b'{"message": "Internal server error"}')
            return
        self._send_proxy_response(response)

    def _read_body(self) -> bytes | None:
        """The request body, or None when a 413/400 answer was already sent."""
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked_body()
        length_header = self.headers.get("Content-Length") or "0"
        if not (length_header.isascii() and length_header.strip().isdigit()):
            self._refuse(400, "Invalid Content-Length")
            return None
        length = int(length_header)
        if length > MAX_BODY_BYTES:
            self._discard(length)
            self._refuse(413, "Request Too Long")
            return None
        return self.rfile.read(length) if length else b""

    def _discard(self, length: int) -> None:
        """Read and drop a refused body (up to a bound) so the client can read the answer."""
        remaining = min(length, 8 * MAX_BODY_BYTES)
        while remaining > 0:
            chunk = self.rfile.read(min(remaining, 1024 * 1024))
            if not chunk:
                return
            remaining -= len(chunk)

    def _read_chunked_body(self) -> bytes | None:
        chunks: list[bytes] = []
        total = 0
        while True:
            size_line = self.rfile.readline(1024).split(b";", 1)[0].strip()
            try:
                size = int(size_line, 16)
            except ValueError:
                self._refuse(400, "Invalid chunked body")
                return None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > MAX_BODY_BYTES:
                self._refuse(413, "Request Too Long")
                return None
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _refuse(self, status: int, message: str) -> None:
        self.close_connection = True
        body = json.dumps({"message": message}).encode()
        self._send(status, {"Content-Type": ["application/json"], "Connection": ["close"]}, body)

    def _proxy_event(self, body: bytes) -> dict[str, Any]:
        split = urlsplit(self.path)
        path = unquote(split.path) or "/"
        query_pairs = parse_qsl(split.query, keep_blank_values=True)
        multi_query: dict[str, list[str]] = {}
        for name, value in query_pairs:
            multi_query.setdefault(name, []).append(value)
        multi_headers: dict[str, list[str]] = {}
        for name, value in self.headers.items():
            multi_headers.setdefault(name, []).append(value)
        source_ip = self.client_address[0]
        multi_headers.setdefault("X-Forwarded-For", [source_ip])
        multi_headers.setdefault("X-Forwarded-Proto", ["https" if self.server.ssl_context else "http"])
        identity: dict[str, Any] = {"sourceIp": source_ip, "userAgent": self.headers.get("User-Agent")}
        client_certificate = self._client_certificate()
        if client_certificate is not None:
            identity["clientCert"] = client_certificate
        now = datetime.now(UTC)
        return {
            "resource": path,
            "path": path,
            "httpMethod": self.command,
            "headers": {name: values[-1] for name, values in multi_headers.items()},
            "multiValueHeaders": multi_headers,
            "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": path,
                "httpMethod": self.command,
                "path": f"/{self.server.stage}{path}",
                "stage": self.server.stage,
                "requestId": str(uuid.uuid4()),
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "protocol": self.request_version,
                "accountId": LOCAL_ACCOUNT_ID,
                "apiId": "local",
                "domainName": self.headers.get("Host", ""),
                "identity": identity,
            },
            "body": body.decode("utf-8", "replace") if body else None,
            "isBase64Encoded": False,
        }

    def _client_certificate(self) -> dict[str, Any] | None:
        """The verified client certificate of a mutual TLS connection, as API Gateway describes it."""
        if not isinstance(self.connection, ssl.SSLSocket):
            return None
        der = self.connection.getpeercert(binary_form=True)
        return client_certificate_fields(der) if der else None

    def _send_proxy_response(self, response: Any) -> None:
        if not isinstance(response, Mapping) or not isinstance(response.get("statusCode"), int):
            self._send(502, {"Content-Type": ["application/json"]}, b'{"message": "Internal server error"}')
            return
        headers: dict[str, list[str]] = {}
        for name, value in (response.get("headers") or {}).items():
            headers[name] = [str(value)]
        for name, values in (response.get("multiValueHeaders") or {}).items():
            headers[name] = [str(value) for value in values]
        raw_body = response.get("body") or ""
        if response.get("isBase64Encoded"):
            body = base64.b64decode(raw_body)
        else:
            body = str(raw_body).encode("utf-8")
        self._send(int(response["statusCode"]), headers, body)

    def _send(self, status: int, headers: Mapping[str, list[str]], body: bytes) -> None:
        self.send_response(status)
        for name, values in headers.items():
            if name.lower() in _HOP_BY_HOP_HEADERS:
                continue
            for value in values:
                self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


def client_certificate_fields(der: bytes) -> dict[str, Any]:
    """`requestContext.identity.clientCert` for a certificate: distinguished names as comma-separated
    TYPE=value in the certificate's order, the serial as colon-separated hex, times as OpenSSL prints them."""
    from cryptography import x509  # noqa: PLC0415 - only mutual TLS needs it
    from cryptography.hazmat.primitives.serialization import Encoding  # noqa: PLC0415

    certificate = x509.load_der_x509_certificate(der)
    serial = certificate.serial_number
    serial_bytes = serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big")
    return {
        "clientCertPem": certificate.public_bytes(Encoding.PEM).decode("ascii"),
        "subjectDN": _distinguished_name(certificate.subject),
        "issuerDN": _distinguished_name(certificate.issuer),
        "serialNumber": ":".join(f"{byte:02x}" for byte in serial_bytes),
        "validity": {
            "notBefore": _openssl_time(certificate.not_valid_before_utc),
            "notAfter": _openssl_time(certificate.not_valid_after_utc),
        },
    }


def _distinguished_name(name: Name) -> str:
    return ",".join(rdn.rfc4514_string() for rdn in name.rdns)


def _openssl_time(moment: datetime) -> str:
    return f"{moment:%b} {moment.day:>2} {moment:%H:%M:%S %Y} GMT"


def load_intake_handler(app_path: Path = INTAKE_APP_PATH) -> Handler:
    """Import functions/intake/app.py (not a package) and return its `lambda_handler`."""
    return load_handler(app_path.parent, f"{app_path.stem}.lambda_handler", "sfintacct_intake_app")


def load_handler(code_dir: Path, handler: str, module_name: str) -> Handler:
    """Load a function's handler as Lambda reads `Handler` ("module.function", module relative to code_dir).

    The module is loaded from its file as `module_name` (and registered in sys.modules under that
    name), so the app.py of two functions, or two loads of one, do not replace each other. code_dir is
    first on sys.path while the module runs, so it can import modules next to it; those are cached
    under their own names, which therefore must not repeat across functions.
    """
    module_path, _, function_name = handler.rpartition(".")
    if not module_path or not function_name:
        raise ImportError(f"handler {handler!r} is not module.function")
    source = code_dir.joinpath(*module_path.split(".")).with_suffix(".py")
    spec = importlib.util.spec_from_file_location(module_name, source)
    if spec is None or spec.loader is None or not source.is_file():
        raise ImportError(f"cannot load {source}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    sys.path.insert(0, str(code_dir))
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(module_name, None)
        raise
    finally:
        sys.path.remove(str(code_dir))
    function = getattr(module, function_name, None)
    if not callable(function):
        raise ImportError(f"{source} has no function {function_name}")
    loaded: Handler = function
    return loaded


def main() -> None:
    parser = argparse.ArgumentParser(description="Serve the intake function like API Gateway on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument(
        "--tls-dir", type=Path, help="serve HTTPS: write a fresh local CA and server certificate here"
    )
    parser.add_argument(
        "--client-ca-file",
        type=Path,
        help="mutual TLS: require a client certificate from a CA in this PEM file (needs --tls-dir)",
    )
    arguments = parser.parse_args()
    if arguments.client_ca_file is not None and arguments.tls_dir is None:
        parser.error("--client-ca-file needs --tls-dir")
    tls = None
    if arguments.tls_dir is not None:
        from sandbox.tls import create_local_tls  # noqa: PLC0415

        tls = create_local_tls(arguments.tls_dir)
    api = start_local_api(
        load_intake_handler(), port=arguments.port, tls=tls, client_ca_file=arguments.client_ca_file
    )
    print(f"local API listening on {api.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        api.stop()


if __name__ == "__main__":
    main()
