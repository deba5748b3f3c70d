"""HTTPS server for the Salesforce sandbox: TLS, routing, authentication, faults, limits and counts.

    sandbox = start_salesforce_sandbox(ssl_context=context, credentials=credentials)
    ... token from sandbox.token_url, REST calls under sandbox.instance_url, JSON to sandbox.admin_url ...
    sandbox.stop()

Paths: /services/oauth2/token, /services/data (versions), /services/data/vNN.N/... (REST API, bearer
token), /admin/... (admin API). Every REST response carries Sforce-Limit-Info.

The org is set up from the Salesforce package (salesforce/, or `package_dir`): its custom fields and
custom objects are in the schema, and its Outbound Messages are available as definitions
(`package_outbound_messages`, or at start with `outbound_variables`). The integration user holds the
package's integration permission set, as the deploy's after-steps assign it; the sales rep holds
`sales_permission_sets` (none by default). The package's before-save flows blank fields of new records
and refuse saves with their Custom Errors.
"""

from __future__ import annotations

import json
import logging
import secrets
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.salesforce.admin import ADMIN_PREFIX, handle_admin
from sandbox.salesforce.errors import ApiError, api_error, invalid_session, not_found
from sandbox.salesforce.faults import Faults
from sandbox.salesforce.ids import IdGenerator, MalformedIdError, to_18
from sandbox.salesforce.limits import ApiAllowance, RequestCounts
from sandbox.salesforce.oauth import (
    TOKEN_PATH,
    SalesforceSandboxCredentials,
    SessionStore,
    TokenEndpoint,
    TokenReply,
)
from sandbox.salesforce.org_setup import (
    blank_on_create,
    custom_error_rules,
    outbound_definitions,
    schema_from_package,
)
from sandbox.salesforce.outbound import OutboundMessageDefinition, OutboundQueue
from sandbox.salesforce.package import PACKAGE_DIR, SalesforcePackage, load_package
from sandbox.salesforce.rest import (
    DATA_PREFIX,
    DEFAULT_CHILD_BATCH_SIZE,
    DEFAULT_PAGE_SIZE,
    VERSION_PATH,
    ApiRequest,
    ApiResponse,
    QueryCursors,
    RestApi,
    request_kind,
    supported_versions,
    versions_listing,
)
from sandbox.salesforce.store import MERGEABLE_OBJECTS, SeedUser, Store

__all__ = [
    "OutboundMessageDefinition",
    "SalesforceSandbox",
    "SalesforceSandboxCredentials",
    "start_salesforce_sandbox",
]

# The package's permission set for the integration user (salesforce/README.md, "After the deploy").
INTEGRATION_PERMISSION_SETS = ("Sfintacct_Integration",)
MAX_BODY_BYTES = 50 * 1024 * 1024
IDLE_CONNECTION_SECONDS = 120
JSON_CONTENT_TYPE = "application/json;charset=UTF-8"

logger = logging.getLogger(__name__)


class SandboxState:
    """Everything one sandbox org holds; each part has its own lock."""

    def __init__(
        self,
        *,
        credentials: SalesforceSandboxCredentials,
        instance_url: str,
        api_version: str,
        outbound_messages: Sequence[OutboundMessageDefinition],
        outbound_ca_file: str | None,
        time_factor: float,
        daily_api_allowance: int,
        query_page_size: int,
        child_batch_size: int | None = DEFAULT_CHILD_BATCH_SIZE,
        outbound_duplicate_rate: float = 0.0,
        community_urls: Sequence[str] = (),
        package: SalesforcePackage | None = None,
        integration_permission_sets: Sequence[str] = INTEGRATION_PERMISSION_SETS,
        outbound_variables: Mapping[str, str] | None = None,
        sales_permission_sets: Sequence[str] = (),
    ) -> None:
        self.credentials = credentials
        self.api_version = api_version
        self.package = package if package is not None else load_package(PACKAGE_DIR)
        assigned = set(integration_permission_sets) | set(sales_permission_sets)
        unknown = sorted(assigned - set(self.package.permission_sets))
        if unknown:
            raise ValueError(f"the package has no permission set {', '.join(unknown)}")
        self.ids = IdGenerator()
        domain = credentials.username.rpartition("@")[2]
        self.users = (
            SeedUser(
                credentials.integration_user_id,
                credentials.username,
                "Integration",
                "User",
                tuple(integration_permission_sets),
            ),
            SeedUser(
                self.ids.for_object("User"),
                f"sales.rep@{domain}",
                "Sam",
                "Seller",
                tuple(sales_permission_sets),
            ),
        )
        self.schema = schema_from_package(self.package)
        if outbound_variables is not None:
            if outbound_messages:
                raise ValueError("give outbound_messages or outbound_variables, not both")
            outbound_messages = self.package_outbound_messages(outbound_variables)
        self.store = Store(
            self.ids,
            list(self.users),
            self.schema,
            blank_on_create(self.package, self.schema),
            custom_error_rules(self.package, self.schema, self.users),
        )
        self.sessions = SessionStore(credentials.org_id)
        self.allowance = ApiAllowance(daily_api_allowance)
        self.counts = RequestCounts()
        self.faults = Faults()
        self.cursors = QueryCursors(self.ids)
        self.instance_url = instance_url
        self.token_endpoint = TokenEndpoint(
            credentials,
            self.sessions,
            instance_url,
            {user.username: user.user_id for user in self.users},
            community_urls,
        )
        self.initial_community_urls = self.token_endpoint.community_urls
        self.outbound = OutboundQueue(
            store=self.store,
            ids=self.ids,
            org_id=credentials.org_id,
            instance_url=instance_url,
            api_version=api_version,
            time_factor=time_factor,
            issue_session=self.outbound_session,
            ca_file=outbound_ca_file,
            duplicate_rate=outbound_duplicate_rate,
        )
        self.initial_duplicate_rate = self.outbound.duplicate_rate
        self.initial_outbound_messages = tuple(outbound_messages)
        self.outbound.set_definitions(self.initial_outbound_messages)
        self.initial_page_size = query_page_size
        self.rest = RestApi(
            self.store,
            self.cursors,
            self.allowance,
            on_commit=self.outbound.notify,
            latest_version=api_version,
            page_size=query_page_size,
            child_batch_size=child_batch_size,
        )
        self.initial_child_batch_size = child_batch_size

    def package_outbound_messages(self, variables: Mapping[str, str]) -> list[OutboundMessageDefinition]:
        """The package's Outbound Messages, with the deploy-time variables (e.g. the endpoint) given."""
        return outbound_definitions(self.package, variables=variables, users=self.users)

    def outbound_session(self) -> str:
        """A session for the integration user, sent in Outbound Messages that include the session id."""
        return self.sessions.issue(self.credentials.integration_user_id, self.credentials.client_id).token

    def log_in(self, username: str) -> dict[str, str]:
        """A session for any seeded user, as if they had logged in (e.g. a sales rep closing a deal)."""
        for user in self.users:
            if user.username == username:
                session = self.sessions.issue(user.user_id, self.credentials.client_id)
                return {
                    "access_token": session.token,
                    "instance_url": self.instance_url,
                    "user_id": user.user_id,
                }
        raise KeyError(username)

    def reset(self) -> None:
        self.store.reset()
        self.outbound.clear()
        self.outbound.set_definitions(self.initial_outbound_messages)
        self.cursors.clear()
        self.faults.clear()
        self.counts.reset()
        self.allowance.reset()
        self.rest.page_size = self.initial_page_size
        self.rest.child_batch_size = self.initial_child_batch_size
        self.outbound.duplicate_rate = self.initial_duplicate_rate
        self.outbound.amount_rollup_fires_flows = True
        self.token_endpoint.community_urls = self.initial_community_urls

    def merge(
        self,
        master_id: str,
        merged_ids: Sequence[str],
        fields: Mapping[str, Any],
        username: str | None = None,
    ) -> dict[str, Any]:
        """Merge records as the SOAP merge() call does (store.merge), as `username` (default: the sales
        rep, since people merge in the UI); the committed changes go to the Outbound Message queue.
        ValueError or ApiError say what is wrong; a failed merge changes nothing."""
        user = self._merging_user(username)
        try:
            master = to_18(master_id)
            losers = [to_18(record_id) for record_id in merged_ids]
        except MalformedIdError as error:
            raise ValueError(f"not a record id: {error}") from error
        specs = [spec for spec in self.schema.objects.values() if spec.name in MERGEABLE_OBJECTS]
        matching = [spec for spec in specs if spec.key_prefix == master[:3]]
        if not matching:
            raise ValueError(f"{master_id} is not the id of a {' or '.join(MERGEABLE_OBJECTS)}")
        (spec,) = matching
        if any(record_id[:3] != spec.key_prefix for record_id in losers):
            raise ValueError(f"every merged record must be a {spec.name}, like the master")
        with self.store.lock:
            savepoint = self.store.begin()
            try:
                self.store.merge(spec, master, losers, dict(fields), user.user_id)
            except Exception:
                self.store.rollback(savepoint)
                raise
            finally:
                events = self.store.take_events()
        if events:
            self.outbound.notify(events)
        return {"object_type": spec.name, "master_id": master, "merged_ids": losers, "user_id": user.user_id}

    def _merging_user(self, username: str | None) -> SeedUser:
        if username is None:
            return self.users[1]  # the sales rep
        for user in self.users:
            if user.username == username:
                return user
        raise ValueError(f"no user {username!r}")


@dataclass
class Answer:
    status: int
    body: bytes = b""
    content_type: str = JSON_CONTENT_TYPE
    headers: dict[str, str] | None = None


def json_answer(
    status: int, payload: Any, headers: dict[str, str] | None = None, pretty: bool = False
) -> Answer:
    if status == 204 or payload is None:
        return Answer(status, b"", headers=headers)
    text = json.dumps(payload, indent=2 if pretty else None)
    return Answer(status, text.encode(), headers=headers)


def fault_items(status: int) -> list[dict[str, Any]]:
    """The error body Salesforce answers with for an injected failure status."""
    if status == 401:
        return invalid_session().items
    if status == 403:
        return api_error(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.").items
    if status == 404:
        return not_found().items
    if status == 503:
        return [
            {"errorCode": "SERVER_UNAVAILABLE", "message": "Server temporarily unavailable. Try again later."}
        ]
    error_id = f"{secrets.randbelow(10**9)}-{secrets.randbelow(10**5)} ({secrets.randbelow(10**9)})"
    return [
        {
            "errorCode": "UNKNOWN_EXCEPTION",
            "message": "An unexpected error occurred. Please include this ErrorId if you contact support: "
            + error_id,
        }
    ]


class _SandboxHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False
    state: SandboxState
    base_url: str

    def __init__(self, address: tuple[str, int], ssl_context: ssl.SSLContext) -> None:
        super().__init__(address, _Handler)
        # The TLS handshake runs in the connection's thread, so a slow client cannot stall accept().
        self.socket = ssl_context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        host, port = self.socket.getsockname()[:2]
        self.base_url = f"https://{host}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sfdc"
    sys_version = ""
    timeout = IDLE_CONNECTION_SECONDS
    wbufsize = -1
    disable_nagle_algorithm = True
    server: _SandboxHTTPServer

    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_PATCH(self) -> None:
        self.dispatch("PATCH")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s " + format, self.address_string(), *args)

    def dispatch(self, method: str) -> None:
        url = urlsplit(self.path)
        path = url.path
        try:
            body = self.read_body()
            if body is None:
                answer = json_answer(
                    413, [{"errorCode": "REQUEST_TOO_LARGE", "message": "The request is too large"}]
                )
            elif path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/"):
                reply = handle_admin(self.server.state, method, path, body)
                answer = Answer(reply.status, reply.body(), "application/json")
            elif path == TOKEN_PATH:
                answer = self.token(method, body)
            elif path.rstrip("/") == DATA_PREFIX:
                answer = json_answer(200, versions_listing(self.server.state.api_version))
            elif VERSION_PATH.match(path):
                answer = self.api(method, path, url.query, body)
            else:
                answer = json_answer(404, not_found().items)
        except Exception:
            logger.exception("the sandbox failed to answer %s %s", method, path)
            answer = json_answer(500, fault_items(500))
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

    def delay(self) -> None:
        latency = self.server.state.faults.latency_seconds()
        if latency:
            time.sleep(latency)

    def token(self, method: str, body: bytes) -> Answer:
        state = self.server.state
        state.counts.count("token")
        self.delay()
        failure = state.faults.take_failure(self.path)
        if failure is not None:
            reply = (
                TokenReply(failure, {"error": "unknown_error", "error_description": "retry your request"})
                if failure >= 500
                else TokenReply(
                    failure, {"error": "invalid_grant", "error_description": "authentication failure"}
                )
            )
        else:
            reply = state.token_endpoint.handle(method, dict(self.headers.items()), body)
        return json_answer(
            reply.status,
            reply.payload,
            {"Cache-Control": "no-cache,must-revalidate,max-age=0,no-store,private"},
        )

    def api(self, method: str, path: str, query: str, body: bytes) -> Answer:
        state = self.server.state
        match = VERSION_PATH.match(path)
        assert match is not None
        version, rest_path = match.group(1), match.group(2) or "/"
        state.counts.count(request_kind(method, rest_path))
        self.delay()
        pretty = self.headers.get("X-PrettyPrint") == "1"
        try:
            failure = state.faults.take_failure(self.path)
            if failure is not None:
                raise ApiError(failure, fault_items(failure))
            session = state.sessions.check(self.bearer_token())
            if session is None:
                raise invalid_session()
            if version not in supported_versions(state.api_version):
                raise not_found()
            state.allowance.consume()
            response = state.rest.handle(
                ApiRequest(
                    method=method,
                    version=version,
                    path=rest_path,
                    query=parse_qs(query),
                    headers=dict(self.headers.items()),
                    body=body,
                    user_id=session.user_id,
                )
            )
        except ApiError as error:
            response = ApiResponse(error.status, error.items)
            if error.status == 401:
                response.headers["WWW-Authenticate"] = 'Token realm="api.salesforce.com"'
        headers = {**response.headers, "Sforce-Limit-Info": state.allowance.header()}
        return json_answer(response.status, response.payload, headers, pretty)

    def bearer_token(self) -> str:
        authorization = self.headers.get("Authorization", "")
        scheme, _, token = authorization.partition(" ")
        return token.strip() if scheme.lower() in ("bearer", "oauth") else ""

    def send(self, answer: Answer) -> None:
        self.send_response(answer.status)
        if answer.body:
            self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        for name, value in (answer.headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(answer.body)


@dataclass
class SalesforceSandbox:
    """A running sandbox: where to reach it, its credentials, and how to stop it."""

    instance_url: str
    token_url: str
    admin_url: str
    port: int
    credentials: SalesforceSandboxCredentials
    api_version: str
    state: SandboxState
    _server: _SandboxHTTPServer
    _thread: threading.Thread

    @property
    def package(self) -> SalesforcePackage:
        """The Salesforce package the org was set up from."""
        return self.state.package

    def package_outbound_messages(self, variables: Mapping[str, str]) -> list[OutboundMessageDefinition]:
        """The package's Outbound Messages as definitions, e.g. variables={"SFINTACCT_OUTBOUND_URL": url}."""
        return self.state.package_outbound_messages(variables)

    def set_outbound_messages(self, definitions: Sequence[OutboundMessageDefinition]) -> None:
        """Replace the Outbound Message definitions (a reset keeps the ones the sandbox started with)."""
        self.state.outbound.set_definitions(definitions)

    def stop(self) -> None:
        """Stop serving, stop the Outbound Message sender and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
        self.state.outbound.stop()


def start_salesforce_sandbox(
    *,
    ssl_context: ssl.SSLContext,
    credentials: SalesforceSandboxCredentials,
    outbound_messages: Sequence[OutboundMessageDefinition] = (),
    outbound_ca_file: str | None = None,
    time_factor: float = 1.0,
    api_version: str = "62.0",
    daily_api_allowance: int = 15000,
    host: str = "127.0.0.1",
    port: int = 0,
    query_page_size: int = DEFAULT_PAGE_SIZE,
    child_batch_size: int | None = DEFAULT_CHILD_BATCH_SIZE,
    outbound_duplicate_rate: float = 0.0,
    community_urls: Sequence[str] = (),
    package_dir: Path | None = None,
    integration_permission_sets: Sequence[str] = INTEGRATION_PERMISSION_SETS,
    outbound_variables: Mapping[str, str] | None = None,
    sales_permission_sets: Sequence[str] = (),
) -> SalesforceSandbox:
    """Serve the sandbox over HTTPS on host:port (0 = a free port) in background threads.

    `child_batch_size`: records per batch of a child subquery result (None: all of them at once);
    `outbound_duplicate_rate`: share of acknowledged Outbound Messages that are sent once more;
    `community_urls`: the org's Experience Cloud site URLs, accepted as JWT bearer audiences;
    `package_dir`: the SFDX project the org is set up from (default: the repository's salesforce/);
    `integration_permission_sets`: the package's permission sets the integration user holds;
    `sales_permission_sets`: the package's permission sets the sales rep holds (e.g.
    ("Sfintacct_Collections_Block",): the collections block applies to the rep's saves);
    `outbound_variables`: start with the package's Outbound Messages, their deploy-time variables set
    to these values (e.g. {"SFINTACCT_OUTBOUND_URL": url}); not together with `outbound_messages`.
    """
    if time_factor <= 0:
        raise ValueError("time_factor must be positive")
    if not 1 <= query_page_size <= DEFAULT_PAGE_SIZE:
        raise ValueError("query_page_size must be from 1 to 2000")
    if child_batch_size is not None and not 1 <= child_batch_size <= DEFAULT_PAGE_SIZE:
        raise ValueError("child_batch_size must be None or from 1 to 2000")
    if not 0.0 <= outbound_duplicate_rate <= 1.0:
        raise ValueError("outbound_duplicate_rate must be from 0 to 1")
    package = load_package(package_dir if package_dir is not None else PACKAGE_DIR)
    server = _SandboxHTTPServer((host, port), ssl_context)
    try:
        server.state = SandboxState(
            credentials=credentials,
            instance_url=server.base_url,
            api_version=api_version,
            outbound_messages=outbound_messages,
            outbound_ca_file=outbound_ca_file,
            time_factor=time_factor,
            daily_api_allowance=daily_api_allowance,
            query_page_size=query_page_size,
            child_batch_size=child_batch_size,
            outbound_duplicate_rate=outbound_duplicate_rate,
            community_urls=community_urls,
            package=package,
            integration_permission_sets=integration_permission_sets,
            outbound_variables=outbound_variables,
            sales_permission_sets=sales_permission_sets,
        )
    except Exception:
        server.server_close()
        raise
    server.state.outbound.start()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="salesforce-sandbox", daemon=True
    )
    thread.start()
    return SalesforceSandbox(
        instance_url=server.base_url,
        token_url=server.base_url + TOKEN_PATH,
        admin_url=server.base_url + ADMIN_PREFIX,
        port=int(server.server_address[1]),
        credentials=credentials,
        api_version=api_version,
        state=server.state,
        _server=server,
        _thread=thread,
    )
