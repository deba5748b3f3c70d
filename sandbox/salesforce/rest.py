"""The REST API under /services/data/vNN.N: sobjects, query (with paging), composite, limits.

Query results longer than the page size, and child subquery results longer than the child batch size,
are cut into pages reached through their nextRecordsUrl (/query/<locator>-<offset>).

Handlers take an authenticated request and answer an ApiResponse; errors are raised as ApiError and
rendered by the server. Writes run inside a store savepoint so a failed request changes nothing; the
committed ChangeEvents go to `on_commit` (the Outbound Message queue) after the store lock is released.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sandbox.salesforce.errors import ApiError, api_error, json_parser_error, not_found
from sandbox.salesforce.ids import IdGenerator, MalformedIdError, to_18
from sandbox.salesforce.limits import ApiAllowance
from sandbox.salesforce.schema import ObjectSpec
from sandbox.salesforce.soql import run_query
from sandbox.salesforce.store import ChangeEvent, Store, record_json

DATA_PREFIX = "/services/data"
VERSION_PATH = re.compile(r"^/services/data/v(\d{2,3}\.\d)(/.*)?$")
MIN_API_VERSION = 31.0
DEFAULT_PAGE_SIZE = 2000
# Child subquery results come in batches of this many records, each with its own nextRecordsUrl.
DEFAULT_CHILD_BATCH_SIZE = 200
MIN_BATCH_SIZE = 200
MAX_STORED_CURSORS = 200
CURSOR_IDLE_SECONDS = 15 * 60
MAX_COMPOSITE_SUBREQUESTS = 25
MAX_COLLECTION_RECORDS = 200  # sObject Collections: "The list can contain up to 200 objects."
ALL_OR_NONE_ROLLED_BACK = (
    "Record rolled back because not all records were valid and the request was using AllOrNone header"
)
REFERENCE_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")
ROLLED_BACK_MESSAGE = (
    "The transaction was rolled back since another operation in the same transaction failed."
)
SEASONS = ("Winter", "Spring", "Summer")


@dataclass
class ApiResponse:
    status: int
    payload: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ApiRequest:
    """One authenticated call: `path` is what follows /services/data/vNN.N (e.g. "/sobjects/Account")."""

    method: str
    version: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    user_id: str


def release_label(version: str) -> str:
    """The release a REST API version shipped in (62.0 is Winter '25)."""
    offset = int(float(version)) - 62
    return f"{SEASONS[offset % 3]} '{25 + offset // 3}"


def supported_versions(latest: str) -> list[str]:
    return [f"{number}.0" for number in range(int(MIN_API_VERSION), int(float(latest)) + 1)]


def versions_listing(latest: str) -> list[dict[str, str]]:
    """GET /services/data: every API version the org serves."""
    return [
        {"label": release_label(version), "url": f"{DATA_PREFIX}/v{version}", "version": version}
        for version in supported_versions(latest)
    ]


def request_kind(method: str, path: str) -> str:
    """How a data API call is counted: query, sobject_read, sobject_write, composite or other."""
    first = path.strip("/").split("/")[0]
    if first in ("query", "queryAll"):
        return "query"
    if first == "composite":
        return "composite"
    if first == "sobjects":
        return "sobject_read" if method == "GET" else "sobject_write"
    return "other"


@dataclass
class Cursor:
    rows: list[dict[str, Any]]
    touched: float
    page_size: int | None = None  # a child result's batch size; None: the query's page size


def is_child_result(value: Any) -> bool:
    """Whether a row value is a child subquery's result ({"totalSize", "done", "records"})."""
    return isinstance(value, dict) and "records" in value and "done" in value and "attributes" not in value


class QueryCursors:
    """Results of queries that did not fit in one page, reachable through nextRecordsUrl."""

    def __init__(self, ids: IdGenerator) -> None:
        self._ids = ids
        self._lock = threading.Lock()
        self._cursors: OrderedDict[str, Cursor] = OrderedDict()

    def clear(self) -> None:
        with self._lock:
            self._cursors.clear()

    def first_page(
        self, rows: list[dict[str, Any]], version: str, endpoint: str, page_size: int
    ) -> dict[str, Any]:
        if len(rows) <= page_size:
            return {"totalSize": len(rows), "done": True, "records": rows}
        locator = self._open(Cursor(rows, time.monotonic()))
        return self._page(
            locator, rows=rows, offset=0, version=version, endpoint=endpoint, page_size=page_size
        )

    def page_children(
        self, rows: list[dict[str, Any]], version: str, endpoint: str, batch_size: int | None
    ) -> None:
        """Cut every child result longer than `batch_size` to its first batch, with its own nextRecordsUrl
        (done false) to the next batch, as Salesforce returns large child sets. None: never cut."""
        if batch_size is None:
            return
        for row in rows:
            for name, value in row.items():
                if not is_child_result(value) or len(value["records"]) <= batch_size:
                    continue
                children: list[dict[str, Any]] = value["records"]
                locator = self._open(Cursor(children, time.monotonic(), batch_size))
                row[name] = self._page(
                    locator, rows=children, offset=0, version=version, endpoint=endpoint, page_size=batch_size
                )

    def _open(self, cursor: Cursor) -> str:
        locator = self._ids.for_object("QueryLocator")
        with self._lock:
            self._cursors[locator] = cursor
            while len(self._cursors) > MAX_STORED_CURSORS:
                self._cursors.popitem(last=False)
        return locator

    def next_page(self, locator_text: str, version: str, endpoint: str, page_size: int) -> dict[str, Any]:
        locator, _, offset_text = locator_text.partition("-")
        now = time.monotonic()
        with self._lock:
            cursor = self._cursors.get(locator)
            if (
                cursor is None
                or now - cursor.touched > CURSOR_IDLE_SECONDS
                or not (offset_text.isascii() and offset_text.isdigit())
            ):
                raise api_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
            cursor.touched = now
            rows = cursor.rows
            page_size = cursor.page_size or page_size
        offset = int(offset_text)
        if offset > len(rows):
            raise api_error(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        return self._page(
            locator, rows=rows, offset=offset, version=version, endpoint=endpoint, page_size=page_size
        )

    @staticmethod
    def _page(
        locator: str, *, rows: list[dict[str, Any]], offset: int, version: str, endpoint: str, page_size: int
    ) -> dict[str, Any]:
        end = offset + page_size
        page: dict[str, Any] = {"totalSize": len(rows), "done": end >= len(rows), "records": rows[offset:end]}
        if end < len(rows):
            page["nextRecordsUrl"] = f"{DATA_PREFIX}/v{version}/{endpoint}/{locator}-{end}"
        return page


class ReferenceResolutionError(Exception):
    """A composite @{ref.path} that names no value."""


class RestApi:
    """The data API of one org."""

    def __init__(
        self,
        store: Store,
        cursors: QueryCursors,
        allowance: ApiAllowance,
        *,
        on_commit: Callable[[list[ChangeEvent]], None],
        latest_version: str,
        page_size: int = DEFAULT_PAGE_SIZE,
        child_batch_size: int | None = DEFAULT_CHILD_BATCH_SIZE,
    ) -> None:
        self.store = store
        self.cursors = cursors
        self.allowance = allowance
        self.on_commit = on_commit
        self.latest_version = latest_version
        self.versions = set(supported_versions(latest_version))
        self.page_size = page_size
        self.child_batch_size = child_batch_size

    def handle(self, request: ApiRequest) -> ApiResponse:
        """Answer one call; committed changes are handed to on_commit after the store lock is released."""
        with self.store.lock:
            try:
                response = self.route(request)
            finally:
                events = self.store.take_events()
        if events:
            self.on_commit(events)
        return response

    # --- routing ----------------------------------------------------------------------------------

    def route(self, request: ApiRequest) -> ApiResponse:
        segments = [segment for segment in request.path.split("/") if segment]
        if not segments:
            return self.only(request, "GET", lambda: ApiResponse(200, self.resources(request.version)))
        head = segments[0]
        if head == "sobjects":
            return self.sobjects(request, segments[1:])
        if head in ("query", "queryAll"):
            return self.only(request, "GET", lambda: self.query(request, head, segments[1:]))
        if head == "composite" and len(segments) == 1:
            return self.only(request, "POST", lambda: self.composite(request))
        if head == "composite" and segments[1:] == ["sobjects"]:
            return self.only(request, "PATCH", lambda: self.collection_update(request))
        if head == "limits" and len(segments) == 1:
            return self.only(request, "GET", self.limits)
        raise not_found()

    @staticmethod
    def only(request: ApiRequest, method: str, action: Callable[[], ApiResponse]) -> ApiResponse:
        if request.method != method:
            raise method_not_allowed(request.method, method)
        return action()

    def resources(self, version: str) -> dict[str, str]:
        base = f"{DATA_PREFIX}/v{version}"
        return {name: f"{base}/{name}" for name in ("sobjects", "query", "queryAll", "composite", "limits")}

    def limits(self) -> ApiResponse:
        used = self.allowance.used
        allowance = self.allowance.allowance
        return ApiResponse(
            200, {"DailyApiRequests": {"Max": allowance, "Remaining": max(allowance - used, 0)}}
        )

    # --- sobjects -----------------------------------------------------------------------------------

    def sobjects(self, request: ApiRequest, segments: list[str]) -> ApiResponse:
        if not segments:
            return self.only(request, "GET", lambda: ApiResponse(200, self.describe_global(request.version)))
        spec = self.store.schema.object(segments[0])
        if spec is None:
            raise not_found()
        if len(segments) == 1:
            if request.method == "POST":
                return self.create(request, spec)
            if request.method == "GET":
                return ApiResponse(
                    200, {"objectDescribe": self.object_summary(spec, request.version), "recentItems": []}
                )
            raise method_not_allowed(request.method, "GET,POST,HEAD")
        if len(segments) == 2 and segments[1] == "describe":
            return self.only(request, "GET", lambda: ApiResponse(200, self.describe(spec, request.version)))
        if len(segments) == 3:
            raise api_error(
                404,
                "NOT_FOUND",
                f"Provided external ID field does not exist or is not accessible: {segments[1]}",
            )
        if len(segments) != 2:
            raise not_found()
        record_id = parse_url_id(spec, segments[1])
        if request.method == "GET":
            return self.read(request, spec, record_id)
        if request.method == "PATCH":
            self.write(
                lambda: self.store.update(
                    writable(spec), record_id, json_object(request.body), request.user_id
                )
            )
            return ApiResponse(204)
        if request.method == "DELETE":
            self.write(lambda: self.store.delete(writable(spec), record_id, request.user_id))
            return ApiResponse(204)
        raise method_not_allowed(request.method, "GET,PATCH,DELETE,HEAD")

    def write(self, operation: Callable[[], Any]) -> Any:
        """Run a write in a savepoint: a failure rolls every change of the operation back."""
        savepoint = self.store.begin()
        try:
            return operation()
        except Exception:
            self.store.rollback(savepoint)
            raise

    def create(self, request: ApiRequest, spec: ObjectSpec) -> ApiResponse:
        body = json_object(request.body)
        record_id = self.write(lambda: self.store.create(writable(spec), body, request.user_id))
        return ApiResponse(
            201,
            {"id": record_id, "success": True, "errors": []},
            {"Location": f"{DATA_PREFIX}/v{request.version}/sobjects/{spec.name}/{record_id}"},
        )

    def read(self, request: ApiRequest, spec: ObjectSpec, record_id: str) -> ApiResponse:
        record = self.store.get(spec.name, record_id)
        if record is None or record["IsDeleted"]:
            raise not_found()
        fields = None
        requested = ",".join(request.query.get("fields", []))
        if requested:
            fields = []
            for name in (part.strip() for part in requested.split(",")):
                field_spec = spec.field(name)
                if field_spec is None:
                    raise api_error(
                        400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {spec.name}"
                    )
                fields.append(field_spec)
        return ApiResponse(200, record_json(spec, record, request.version, fields))

    def describe_global(self, version: str) -> dict[str, Any]:
        return {
            "encoding": "UTF-8",
            "maxBatchSize": 200,
            "sobjects": [self.object_summary(spec, version) for spec in self.store.schema.objects.values()],
        }

    @staticmethod
    def object_summary(spec: ObjectSpec, version: str) -> dict[str, Any]:
        base = f"{DATA_PREFIX}/v{version}/sobjects/{spec.name}"
        return {
            "name": spec.name,
            "label": spec.label or spec.name,
            "keyPrefix": spec.key_prefix,
            "createable": spec.writable,
            "updateable": spec.writable,
            "deletable": spec.writable,
            "queryable": True,
            "custom": spec.custom,
            "urls": {"sobject": base, "describe": f"{base}/describe", "rowTemplate": f"{base}/{{ID}}"},
        }

    def describe(self, spec: ObjectSpec, version: str) -> dict[str, Any]:
        summary = self.object_summary(spec, version)
        summary["fields"] = [
            {
                "name": field_spec.name,
                "label": field_spec.label or field_spec.name,
                "type": field_spec.type.value,
                "length": field_spec.max_length or 0,
                "precision": field_spec.precision or 0,
                "scale": field_spec.scale or 0,
                "createable": spec.writable and field_spec.createable,
                "updateable": spec.writable and field_spec.updateable,
                "nillable": not field_spec.required and field_spec.type.value != "boolean",
                "filterable": field_spec.filterable,
                "custom": field_spec.custom,
                "calculated": field_spec.formula is not None,
                "calculatedFormula": field_spec.formula,
                "restrictedPicklist": field_spec.restricted,
                "referenceTo": [field_spec.reference_to] if field_spec.reference_to else [],
                "relationshipName": field_spec.relationship_name,
                "picklistValues": [
                    {"value": value, "label": value, "active": True, "defaultValue": False}
                    for value in field_spec.picklist
                ],
            }
            for field_spec in spec.fields
        ]
        summary["childRelationships"] = [
            {"relationshipName": child.name, "childSObject": child.child_object, "field": child.field}
            for child in spec.children
        ]
        return summary

    # --- query --------------------------------------------------------------------------------------

    def query(self, request: ApiRequest, endpoint: str, segments: list[str]) -> ApiResponse:
        page_size = self.effective_page_size(request.headers)
        if segments:
            if len(segments) != 1:
                raise not_found()
            return ApiResponse(200, self.cursors.next_page(segments[0], request.version, endpoint, page_size))
        soql = request.query.get("q", [""])[0]
        rows = run_query(self.store, soql, request.version, include_deleted=endpoint == "queryAll")
        self.cursors.page_children(rows, request.version, endpoint, self.child_batch_size)
        return ApiResponse(200, self.cursors.first_page(rows, request.version, endpoint, page_size))

    def effective_page_size(self, headers: Mapping[str, str]) -> int:
        """The configured page size, lowered by a Sforce-Query-Options batchSize (200 to 2000)."""
        page_size = self.page_size
        options = headers.get("Sforce-Query-Options", "")
        match = re.search(r"batchSize\s*=\s*(\d+)", options)
        if match:
            requested = min(max(int(match.group(1)), MIN_BATCH_SIZE), DEFAULT_PAGE_SIZE)
            page_size = min(page_size, requested)
        return page_size

    # --- composite ----------------------------------------------------------------------------------

    def composite(self, request: ApiRequest) -> ApiResponse:
        payload = json_object(request.body)
        subrequests = payload.get("compositeRequest")
        all_or_none = payload.get("allOrNone", False)
        if not isinstance(subrequests, list) or not subrequests:
            raise api_error(400, "INVALID_INPUT", "compositeRequest must be a non-empty array of subrequests")
        if len(subrequests) > MAX_COMPOSITE_SUBREQUESTS:
            raise api_error(
                400,
                "LIMIT_EXCEEDED",
                f"Exceeded max limit of subrequests allowed ({MAX_COMPOSITE_SUBREQUESTS})",
            )
        if not isinstance(all_or_none, bool):
            raise json_parser_error("allOrNone must be true or false")
        seen: set[str] = set()
        for subrequest in subrequests:
            check_subrequest(subrequest, seen)
        savepoint = self.store.begin()
        results: dict[str, ApiResponse] = {}
        responses: list[ApiResponse] = []
        failed_index: int | None = None
        try:
            for index, subrequest in enumerate(subrequests):
                if failed_index is not None:
                    responses.append(halted(ROLLED_BACK_MESSAGE))
                    continue
                response = self.run_subrequest(subrequest, results, request)
                responses.append(response)
                results[subrequest["referenceId"]] = response
                if all_or_none and response.status >= 400:
                    failed_index = index
        except Exception:
            if all_or_none:
                self.store.rollback(savepoint)
            raise
        if failed_index is not None:
            self.store.rollback(savepoint)
            responses = [
                response if index == failed_index else halted(ROLLED_BACK_MESSAGE)
                for index, response in enumerate(responses)
            ]
        return ApiResponse(
            200,
            {
                "compositeResponse": [
                    {
                        "body": response.payload,
                        "httpHeaders": response.headers,
                        "httpStatusCode": response.status,
                        "referenceId": subrequest["referenceId"],
                    }
                    for subrequest, response in zip(subrequests, responses, strict=True)
                ]
            },
        )

    # --- sObject Collections ------------------------------------------------------------------------

    def collection_update(self, request: ApiRequest) -> ApiResponse:
        """PATCH composite/sobjects: up to 200 records, each `{"attributes": {"type": T}, "id": ..., fields}`,
        updated in order; one SaveResult each (`id`, `success`, `errors`). With allOrNone, the first
        failure rolls every record back and the others answer ALL_OR_NONE_OPERATION_ROLLED_BACK."""
        payload = json_object(request.body)
        records = payload.get("records")
        all_or_none = payload.get("allOrNone", False)
        if not isinstance(all_or_none, bool):
            raise json_parser_error("allOrNone must be true or false")
        if not isinstance(records, list) or not records:
            raise api_error(400, "INVALID_FIELD", "records is required and must be a non-empty array")
        if len(records) > MAX_COLLECTION_RECORDS:
            raise api_error(
                400,
                "EXCEEDED_ID_LIMIT",
                f"record limit reached. cannot submit more than {MAX_COLLECTION_RECORDS} records into "
                "this call",
            )
        savepoint = self.store.begin()
        results = [self.collection_record(record, request) for record in records]
        if all_or_none and not all(result["success"] for result in results):
            self.store.rollback(savepoint)
            results = [
                result
                if not result["success"]
                else {
                    "id": result["id"],
                    "success": False,
                    "errors": [
                        {
                            "statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK",
                            "message": ALL_OR_NONE_ROLLED_BACK,
                            "fields": [],
                        }
                    ],
                }
                for result in results
            ]
        return ApiResponse(200, results)

    def collection_record(self, record: Any, request: ApiRequest) -> dict[str, Any]:
        """One record of a collection update, as its SaveResult (a failure of it alone is rolled back)."""
        if not isinstance(record, dict):
            raise json_parser_error("each record must be an object")
        fields = dict(record)
        attributes = fields.pop("attributes", None)
        record_id = fields.pop("id", None) or fields.pop("Id", None)
        object_type = attributes.get("type") if isinstance(attributes, dict) else None
        try:
            if not isinstance(object_type, str):
                raise api_error(400, "INVALID_TYPE", "Each record must have an attributes map with a type")
            spec = self.store.schema.object(object_type)
            if spec is None:
                raise api_error(400, "INVALID_TYPE", f"sObject type '{object_type}' is not supported.")
            if not isinstance(record_id, str):
                raise api_error(400, "MISSING_ARGUMENT", "Id not specified in an update call", ["Id"])
            try:
                checked_id = to_18(record_id)
            except MalformedIdError:
                raise api_error(
                    400, "MALFORMED_ID", f"{spec.name} ID: id value of incorrect type: {record_id}", ["Id"]
                ) from None
            self.write(lambda: self.store.update(writable(spec), checked_id, fields, request.user_id))
        except ApiError as error:
            return {
                "id": record_id if isinstance(record_id, str) else None,
                "success": False,
                "errors": [
                    {
                        "statusCode": item.get("errorCode", ""),
                        "message": item.get("message", ""),
                        "fields": item.get("fields", []),
                    }
                    for item in error.items
                ],
            }
        return {"id": checked_id, "success": True, "errors": []}

    def run_subrequest(
        self, subrequest: dict[str, Any], results: dict[str, ApiResponse], request: ApiRequest
    ) -> ApiResponse:
        try:
            url = resolve_text(subrequest["url"], results)
            body = resolve_json(subrequest.get("body"), results)
        except ReferenceResolutionError as error:
            return halted(str(error))
        parts = urlsplit(url)
        match = VERSION_PATH.match(parts.path)
        if match is None or match.group(1) not in self.versions:
            return ApiResponse(404, not_found().items)
        path = match.group(2) or "/"
        first = path.strip("/").split("/")[0]
        if first not in ("sobjects", "query", "queryAll"):
            return ApiResponse(
                400,
                api_error(
                    400, "INVALID_INPUT", f"The URL {parts.path} is not supported in a composite request"
                ).items,
            )
        inner = ApiRequest(
            method=subrequest["method"],
            version=match.group(1),
            path=path,
            query=parse_qs(parts.query),
            headers=request.headers,
            body=b"" if body is None else json.dumps(body).encode(),
            user_id=request.user_id,
        )
        try:
            return self.route(inner)
        except ApiError as error:
            return ApiResponse(error.status, error.items)


def check_subrequest(subrequest: Any, seen: set[str]) -> None:
    if not isinstance(subrequest, dict):
        raise json_parser_error("each compositeRequest item must be an object")
    method = subrequest.get("method")
    url = subrequest.get("url")
    reference_id = subrequest.get("referenceId")
    if method not in ("GET", "POST", "PATCH", "DELETE", "PUT"):
        raise api_error(400, "INVALID_INPUT", f"Invalid method in subrequest: {method}")
    if not isinstance(url, str) or not url.startswith(DATA_PREFIX + "/v"):
        raise api_error(400, "INVALID_INPUT", f"Invalid URL in subrequest: {url}")
    if not isinstance(reference_id, str) or not REFERENCE_ID.match(reference_id):
        raise api_error(400, "INVALID_INPUT", f"Invalid referenceId: {reference_id}")
    if reference_id in seen:
        raise api_error(
            400, "INVALID_INPUT", f"Duplicate referenceId provided in the request: {reference_id}"
        )
    seen.add(reference_id)


def halted(message: str) -> ApiResponse:
    return ApiResponse(400, [{"errorCode": "PROCESSING_HALTED", "message": message}])


def reference_value(reference_id: str, path: str, results: dict[str, ApiResponse]) -> Any:
    """The value @{reference_id<path>} names in an earlier subrequest's response body."""
    expression = f"{reference_id}{path}"
    problem = ReferenceResolutionError(
        f"Invalid reference specified. No value for {expression} found in {reference_id}. "
        f"Provided referenceId ('{reference_id}') must be valid and the referenced value must be present "
        "in the response."
    )
    response = results.get(reference_id)
    if response is None or response.status >= 400:
        raise problem
    value: Any = response.payload
    for step in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
        name, index = step
        if name:
            if not isinstance(value, dict):
                raise problem
            if name in value:
                value = value[name]
            else:
                matches = [key for key in value if key.lower() == name.lower()]
                if not matches:
                    raise problem
                value = value[matches[0]]
        else:
            if not isinstance(value, list) or int(index) >= len(value):
                raise problem
            value = value[int(index)]
    if value is None or isinstance(value, (dict, list)):
        raise problem
    return value


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def resolve_text(text: str, results: dict[str, ApiResponse]) -> str:
    return REFERENCE.sub(
        lambda match: as_text(reference_value(match.group(1), match.group(2), results)), text
    )


def resolve_json(value: Any, results: dict[str, ApiResponse]) -> Any:
    """Replace references in a subrequest body; a string that is one reference takes the value's type."""
    if isinstance(value, str):
        whole = REFERENCE.fullmatch(value)
        if whole:
            return reference_value(whole.group(1), whole.group(2), results)
        return resolve_text(value, results)
    if isinstance(value, list):
        return [resolve_json(item, results) for item in value]
    if isinstance(value, dict):
        return {key: resolve_json(item, results) for key, item in value.items()}
    return value


# --- shared pieces ------------------------------------------------------------------------------------------


def method_not_allowed(method: str, allowed: str) -> ApiError:
    return api_error(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {allowed}")


def writable(spec: ObjectSpec) -> ObjectSpec:
    if not spec.writable:
        raise api_error(
            403, "INSUFFICIENT_ACCESS_OR_READONLY", f"insufficient access rights on object {spec.name}", []
        )
    return spec


def parse_url_id(spec: ObjectSpec, text: str) -> str:
    """An id from a URL (15 or 18 characters) of the URL's object type."""
    try:
        record_id = to_18(text)
    except MalformedIdError as error:
        raise api_error(
            404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {text}"
        ) from error
    if record_id[:3] != spec.key_prefix:
        raise api_error(400, "MALFORMED_ID", f"{spec.name} ID: id value of incorrect type: {text}", ["Id"])
    return record_id


def json_object(body: bytes) -> dict[str, Any]:
    """A request body that must be one JSON object."""
    try:
        payload = json.loads(body or b"")
    except (ValueError, UnicodeDecodeError) as error:
        raise json_parser_error(f"Unexpected character in the request body: {error}") from error
    if not isinstance(payload, dict):
        raise json_parser_error(
            "Cannot deserialize instance of the sObject from START_ARRAY or a scalar value"
        )
    return payload
