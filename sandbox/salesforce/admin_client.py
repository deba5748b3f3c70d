"""A small client for the Salesforce sandbox's admin API (tests and the local stack use it)."""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from sandbox.salesforce.outbound import OutboundMessageDefinition, definition_json


class SalesforceAdminError(RuntimeError):
    """The admin API refused a request."""


class SalesforceAdminClient:
    def __init__(self, admin_url: str, ca_file: str | Path, timeout: float = 30.0) -> None:
        self.admin_url = admin_url.rstrip("/")
        self._ca_file = str(ca_file)
        self._timeout = timeout

    def _call(self, method: str, route: str, payload: Any = None) -> Any:
        with httpx.Client(
            verify=ssl.create_default_context(cafile=self._ca_file), timeout=self._timeout
        ) as client:
            response = client.request(
                method, self.admin_url + route, json=payload if payload is not None else None
            )
        if response.status_code >= 400:
            raise SalesforceAdminError(f"{method} {route}: HTTP {response.status_code} {response.text}")
        return response.json() if response.content else None

    def reset(self) -> None:
        self._call("POST", "/reset")

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """e.g. set_faults(latency_ms=50, fail_next={"count": 2, "status": 503}, expire_tokens=True)."""
        result: dict[str, Any] = self._call("POST", "/faults", faults)
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "/faults")

    def counts(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/counts")
        return result

    def outbound(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "/outbound")
        return result

    def flush_outbound(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("POST", "/outbound/flush")
        return result

    def outbound_definitions(self) -> list[dict[str, Any]]:
        """The Outbound Message definitions, each with its action_id."""
        result: list[dict[str, Any]] = self._call("GET", "/outbound/definitions")
        return result

    def set_outbound_definitions(
        self, definitions: Sequence[OutboundMessageDefinition]
    ) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call(
            "PUT", "/outbound/definitions", [definition_json(definition) for definition in definitions]
        )
        return result

    def set_query_page_size(self, page_size: int) -> None:
        self._call("POST", "/config", {"query_page_size": page_size})

    def config(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/config")
        return result

    def set_config(self, **settings: Any) -> dict[str, Any]:
        """e.g. set_config(child_batch_size=5, outbound_duplicate_rate=0.3).

        A reset puts the values the sandbox started with back.
        """
        result: dict[str, Any] = self._call("POST", "/config", settings)
        return result

    def set_validation_rules(self, rules: list[dict[str, Any]]) -> None:
        self._call("PUT", "/validation_rules", rules)

    def records(self, object_type: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", f"/records/{object_type}")
        return result

    def users(self) -> list[dict[str, Any]]:
        """id, username, name and permission_sets of each user."""
        result: list[dict[str, Any]] = self._call("GET", "/users")
        return result

    def log_in(self, username: str) -> dict[str, str]:
        """An access token for a seeded user (e.g. the sales rep), without an OAuth flow."""
        result: dict[str, str] = self._call("POST", "/login", {"username": username})
        return result

    def merge(
        self,
        master_id: str,
        merged_ids: Sequence[str],
        fields: dict[str, Any] | None = None,
        username: str | None = None,
    ) -> dict[str, Any]:
        """Merge one or two records into `master_id`, as Salesforce's merge() call does (by default as
        the sales rep); `fields` are master values taken from a merged record."""
        payload: dict[str, Any] = {
            "master_id": master_id,
            "merged_ids": list(merged_ids),
            "fields": fields or {},
        }
        if username is not None:
            payload["username"] = username
        result: dict[str, Any] = self._call("POST", "/merge", payload)
        return result
