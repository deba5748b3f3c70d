"""REST API errors in Salesforce's shape: an HTTP status and a JSON array of {message, errorCode, fields}."""

from __future__ import annotations

from typing import Any

NOT_FOUND_MESSAGE = "The requested resource does not exist"
SESSION_INVALID_MESSAGE = "Session expired or invalid"


class ApiError(Exception):
    """A REST API failure: `status` and the error items Salesforce would send."""

    def __init__(self, status: int, items: list[dict[str, Any]]) -> None:
        super().__init__(items[0]["message"] if items else str(status))
        self.status = status
        self.items = items

    @property
    def error_code(self) -> str:
        return str(self.items[0]["errorCode"]) if self.items else ""


def api_error(status: int, error_code: str, message: str, fields: list[str] | None = None) -> ApiError:
    """One error item; `fields` is included when given (record errors carry it, query errors do not)."""
    item: dict[str, Any] = {"message": message, "errorCode": error_code}
    if fields is not None:
        item["fields"] = fields
    return ApiError(status, [item])


def not_found() -> ApiError:
    return api_error(404, "NOT_FOUND", NOT_FOUND_MESSAGE)


def entity_is_deleted() -> ApiError:
    return api_error(404, "ENTITY_IS_DELETED", "entity is deleted", [])


def invalid_session() -> ApiError:
    return api_error(401, "INVALID_SESSION_ID", SESSION_INVALID_MESSAGE)


def malformed_query(message: str) -> ApiError:
    return api_error(400, "MALFORMED_QUERY", message)


def json_parser_error(message: str) -> ApiError:
    return api_error(400, "JSON_PARSER_ERROR", message)
