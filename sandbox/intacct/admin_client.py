"""A small client for the sandbox's admin API, for tests and tools."""

from __future__ import annotations

import ssl
from datetime import date
from pathlib import Path
from typing import Any

import httpx


class IntacctAdminClient:
    """Calls /admin on a running sandbox over HTTPS, trusting only the given CA file."""

    def __init__(self, admin_url: str, ca_file: Path | str, timeout: float = 10.0) -> None:
        self.admin_url = admin_url.rstrip("/")
        self.ca_file = str(ca_file)
        self.ssl_context = ssl.create_default_context(cafile=self.ca_file)
        self.timeout = timeout

    def _call(self, method: str, path: str, payload: Any = None) -> httpx.Response:
        with httpx.Client(verify=self.ssl_context, timeout=self.timeout) as client:
            response = client.request(method, self.admin_url + path, json=payload)
        response.raise_for_status()
        return response

    def reset(self) -> None:
        """Back to the seed data, default config, no faults, sessions or counts."""
        self._call("POST", "/reset")

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        """Switch faults on, e.g. set_faults(fail_next={"count": 1, "status": 502}); returns the state."""
        result: dict[str, Any] = self._call("POST", "/faults", faults).json()
        return result

    def clear_faults(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("DELETE", "/faults").json()
        return result

    def expire_sessions(self) -> None:
        self._call("POST", "/faults", {"expire_sessions": True})

    def counts(self) -> dict[str, Any]:
        """{"requests": n, "functions": {"create:CUSTOMER": n, ...}, "statuses": {"200": n, ...}}."""
        result: dict[str, Any] = self._call("GET", "/counts").json()
        return result

    def records(self, object_name: str) -> list[dict[str, Any]]:
        """Every stored record of CUSTOMER, SODOCUMENT, SODOCUMENTENTRY, ITEM, ARINVOICE, ARPYMT, ...
        (an ARINVOICE with its DUE_IN_DAYS on the sandbox's current day)."""
        result: list[dict[str, Any]] = self._call("GET", f"/records/{object_name}").json()
        return result

    def configure(
        self,
        *,
        custom_fields: dict[str, list[str]] | None = None,
        session_seconds: int | None = None,
        remember_failed_controlids: bool | None = None,
        repeats_in_flight_apply: bool | None = None,
        duplicate_controlid_answer: str | None = None,
        closed_orders_reopen: bool | None = None,
        empty_element_clears: bool | None = None,
        extra_field_lengths: dict[str, int] | None = None,
        conversion_copies_reference: bool | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {}
        if conversion_copies_reference is not None:
            payload["conversion_copies_reference"] = conversion_copies_reference
        if closed_orders_reopen is not None:
            payload["closed_orders_reopen"] = closed_orders_reopen
        if empty_element_clears is not None:
            payload["empty_element_clears"] = empty_element_clears
        if extra_field_lengths is not None:
            payload["extra_field_lengths"] = extra_field_lengths
        if duplicate_controlid_answer is not None:
            payload["duplicate_controlid_answer"] = duplicate_controlid_answer
        if remember_failed_controlids is not None:
            payload["remember_failed_controlids"] = remember_failed_controlids
        if repeats_in_flight_apply is not None:
            payload["repeats_in_flight_apply"] = repeats_in_flight_apply
        if custom_fields is not None:
            payload["custom_fields"] = custom_fields
        if session_seconds is not None:
            payload["session_seconds"] = session_seconds
        result: dict[str, Any] = self._call("PUT", "/config", payload).json()
        return result

    def set_today(self, today: date | str | None) -> dict[str, Any]:
        """Move the sandbox's current day (a date or "YYYY-MM-DD"; the time of day keeps running), or
        follow the wall clock again with None. Returns the config."""
        value = today.isoformat() if isinstance(today, date) else today
        result: dict[str, Any] = self._call("PUT", "/config", {"today": value}).json()
        return result

    def convert_sales_document(self, docid: str, state: str = "Converted") -> dict[str, Any]:
        """Set a document's STATE to Converted, Partially Converted or In Progress, as converting it would."""
        result: dict[str, Any] = self._call(
            "POST", "/sales-documents/convert", {"docid": docid, "state": state}
        ).json()
        return result
