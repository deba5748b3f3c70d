"""The Salesforce client of the workers: one-query Opportunity reads and one-call write-backs.

Built on simple-salesforce with a session id obtained by auth.py (JWT bearer or client credentials),
so it works the same against login.salesforce.com, a My Domain or a local sandbox. A call refused
with INVALID_SESSION_ID gets a new token and is repeated once. Every failure is raised as one of
the types in errors.py.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, TypeVar

import requests
from simple_salesforce.api import Salesforce
from simple_salesforce.exceptions import SalesforceError as LibrarySalesforceError
from simple_salesforce.exceptions import SalesforceExpiredSession

from sfintacct.salesforce.auth import AccessToken, get_access_token, invalidate_access_token
from sfintacct.salesforce.error_mapping import (
    error_details,
    error_from_library_exception,
    error_from_request_exception,
)
from sfintacct.salesforce.errors import (
    PROCESSING_HALTED,
    PermanentSalesforceError,
    RecordNotFound,
    SalesforceAuthenticationError,
    SalesforceError,
    SalesforceErrorDetail,
    TransientSalesforceError,
    is_transient_failure,
)
from sfintacct.salesforce.models import (
    OBJECT_NAME_PATTERN,
    FieldValue,
    OpportunityQueryFields,
    OpportunitySnapshot,
    RecordUpdate,
    strip_attributes,
)
from sfintacct.salesforce.queries import (
    LINE_ITEMS_RELATIONSHIP,
    account_query,
    merged_accounts_query,
    opportunity_query,
    removed_account_query,
)
from sfintacct.salesforce.session import build_session
from sfintacct.salesforce.settings import SalesforceSettings, load_salesforce_settings

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The composite API takes at most 25 subrequests per call.
MAX_COMPOSITE_SUBREQUESTS = 25
MAX_COLLECTION_RECORDS = 200  # sObject Collections: up to 200 records a call
INVALID_SESSION_ID = "INVALID_SESSION_ID"
_MISSING_RECORD_CODES = frozenset({"NOT_FOUND", "ENTITY_IS_DELETED"})


class _SessionRefused(Exception):
    """Internal: Salesforce answered 401 INVALID_SESSION_ID; carries the mapped error."""

    def __init__(self, error: SalesforceError) -> None:
        super().__init__(error.message)
        self.error = error


class SalesforceClient:
    """Reads Opportunities (with Account and lines) and writes results back to one Salesforce org."""

    def __init__(
        self,
        settings: SalesforceSettings,
        *,
        query_fields: OpportunityQueryFields | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.settings = settings
        self.query_fields = query_fields or OpportunityQueryFields()
        self._session = session if session is not None else build_session(settings)
        self._api: Salesforce | None = None
        self._api_token: AccessToken | None = None

    @classmethod
    def from_environment(cls) -> SalesforceClient:
        """A client configured from SALESFORCE_* environment variables and the Salesforce secret."""
        return cls(load_salesforce_settings(), query_fields=OpportunityQueryFields.from_environment())

    def __repr__(self) -> str:
        return (
            f"SalesforceClient(login_url={self.settings.login_url!r}, client_id={self.settings.client_id!r}, "
            f"auth_flow={self.settings.auth_flow!r})"
        )

    def fetch_opportunity(self, opportunity_id: str) -> OpportunitySnapshot:
        """The Opportunity with its Account and all its line items, read with one SOQL query.

        Raises RecordNotFound when the Opportunity does not exist (or is deleted).
        """
        soql = opportunity_query(opportunity_id, self.query_fields)

        def read(api: Salesforce) -> OpportunitySnapshot:
            records = _page_records(api.query(soql))
            if not records:
                raise RecordNotFound(f"Opportunity {opportunity_id} not found in Salesforce")
            record = records[0]
            lines = _child_records(api, record.get(LINE_ITEMS_RELATIONSHIP))
            account = record.get("Account")
            opportunity = {
                key: value
                for key, value in record.items()
                if key not in ("attributes", "Account", LINE_ITEMS_RELATIONSHIP)
            }
            return OpportunitySnapshot(
                opportunity=strip_attributes(opportunity),
                account=strip_attributes(account) if isinstance(account, dict) else None,
                lines=strip_attributes(lines),
            )

        return self._call(f"Reading Opportunity {opportunity_id}", read)

    def fetch_account(self, account_id: str) -> dict[str, Any]:
        """The Account with the configured Account fields. Raises RecordNotFound when it does not exist."""
        soql = account_query(account_id, self.query_fields)

        def read(api: Salesforce) -> dict[str, Any]:
            records = _page_records(api.query(soql))
            if not records:
                raise RecordNotFound(f"Account {account_id} not found in Salesforce")
            account: dict[str, Any] = strip_attributes(records[0])
            return account

        return self._call(f"Reading Account {account_id}", read)

    def query(self, soql: str) -> list[dict[str, Any]]:
        """Every record of a SOQL query (all pages), `attributes` removed. Quote values with format_soql."""

        def read(api: Salesforce) -> list[dict[str, Any]]:
            records: list[dict[str, Any]] = strip_attributes(_all_records(api, api.query(soql)))
            return records

        return self._call("SOQL query", read)

    def removed_account(self, account_id: str) -> dict[str, Any] | None:
        """Id, IsDeleted and MasterRecordId of an Account read through queryAll (deleted ones included)."""
        rows = self._query_all(removed_account_query(account_id))
        return rows[0] if rows else None

    def merged_accounts(self, master_id: str) -> list[dict[str, Any]]:
        """The Accounts merged into `master_id` (Id, Intacct_Customer_Id__c), while Salesforce keeps them."""
        return self._query_all(merged_accounts_query(master_id))

    def _query_all(self, soql: str) -> list[dict[str, Any]]:
        """Like `query`, through the queryAll resource: deleted and merged-away records are included."""

        def read(api: Salesforce) -> list[dict[str, Any]]:
            page = api.query(soql, include_deleted=True)
            records: list[dict[str, Any]] = strip_attributes(_all_records(api, page))
            return records

        return self._call("SOQL queryAll", read)

    def describe(self, object_type: str) -> ObjectDescribe:
        """What the signed-in user may do with an object and its fields (sobjects/<Object>/describe).

        Fields the user cannot see are absent from the answer, as Salesforce leaves them out.
        """
        if not OBJECT_NAME_PATTERN.fullmatch(object_type):
            raise ValueError(f"not a Salesforce object name: {object_type!r}")

        def read(api: Salesforce) -> ObjectDescribe:
            answer = api.restful(f"sobjects/{object_type}/describe")
            if not isinstance(answer, dict):
                raise TransientSalesforceError(f"Salesforce returned no describe of {object_type}")
            return ObjectDescribe.from_json(answer)

        return self._call(f"Describing {object_type}", read)

    def write_back(self, updates: Sequence[RecordUpdate]) -> None:
        """Set fields on several records in ONE composite call; all or nothing is saved.

        Updates of the same record are merged. Raises the error of the failing record(s) with
        Salesforce's error codes and messages (RecordNotFound when the records are gone).
        """
        subrequests = _merge_updates(updates)
        if not subrequests:
            return
        if len(subrequests) > MAX_COMPOSITE_SUBREQUESTS:
            raise ValueError(f"at most {MAX_COMPOSITE_SUBREQUESTS} records per write-back")
        references = {f"update{index}": update for index, update in enumerate(subrequests)}
        payload = json.dumps(
            {
                "allOrNone": True,
                "compositeRequest": [
                    {
                        "method": "PATCH",
                        "url": (
                            f"/services/data/v{self.settings.api_version}/sobjects/"
                            f"{update.object_type}/{update.record_id}"
                        ),
                        "referenceId": reference,
                        "body": {name: _json_value(value) for name, value in update.fields.items()},
                    }
                    for reference, update in references.items()
                ],
            }
        )

        def send(api: Salesforce) -> Any:
            return api.restful("composite", method="POST", data=payload)

        response = self._call("Salesforce write-back", send)
        _raise_for_composite_failures(response, references)

    def update_records(self, updates: Sequence[RecordUpdate]) -> list[SaveResult]:
        """Set fields on many records with sObject Collections (PATCH composite/sobjects): 200 records a
        call, each saved on its own (allOrNone false), one SaveResult per record in order. A failure of
        the call itself (allowance spent, Salesforce unavailable) raises; records sent in earlier calls
        stay saved."""
        merged = _merge_updates(updates)
        results: list[SaveResult] = []
        for start in range(0, len(merged), MAX_COLLECTION_RECORDS):
            chunk = merged[start : start + MAX_COLLECTION_RECORDS]
            payload = json.dumps(
                {
                    "allOrNone": False,
                    "records": [
                        {
                            "attributes": {"type": update.object_type},
                            "id": update.record_id,
                            **{name: _json_value(value) for name, value in update.fields.items()},
                        }
                        for update in chunk
                    ],
                }
            )

            def send(api: Salesforce, payload: str = payload) -> Any:
                return api.restful("composite/sobjects", method="PATCH", data=payload)

            answer = self._call(f"Salesforce update of {len(chunk)} records", send)
            if not isinstance(answer, list) or len(answer) != len(chunk):
                raise PermanentSalesforceError(f"sObject Collections answered {answer!r:.300}")
            results += [_save_result(update, item) for update, item in zip(chunk, answer, strict=True)]
        return results

    # -- plumbing ------------------------------------------------------------------------------

    def _call(self, action: str, operation: Callable[[Salesforce], T]) -> T:
        """Run `operation` with a session; on INVALID_SESSION_ID get a new token and run it once more."""
        token = get_access_token(self.settings, self._session)
        try:
            return self._attempt(action, operation, token)
        except _SessionRefused:
            logger.info("Salesforce refused the access token; requesting a new one", extra={"action": action})
            invalidate_access_token(self.settings, token)
        token = get_access_token(self.settings, self._session)
        try:
            return self._attempt(action, operation, token)
        except _SessionRefused as refused:
            raise SalesforceAuthenticationError(
                f"{refused.error.message} (also with a new access token)",
                status=refused.error.status,
                details=refused.error.details,
            ) from None

    def _attempt(self, action: str, operation: Callable[[Salesforce], T], token: AccessToken) -> T:
        api = self._api_for(token)
        try:
            return operation(api)
        except SalesforceExpiredSession as exc:
            error = error_from_library_exception(exc, action)
            if INVALID_SESSION_ID in error.error_codes:
                raise _SessionRefused(error) from None
            raise error from None
        except LibrarySalesforceError as exc:
            raise error_from_library_exception(exc, action) from None
        except requests.RequestException as exc:
            raise error_from_request_exception(exc, action) from None

    def _api_for(self, token: AccessToken) -> Salesforce:
        if self._api is None or self._api_token is not token:
            self._api = Salesforce(
                instance_url=token.instance_url,
                session_id=token.value,
                session=self._session,
                version=self.settings.api_version,
                parse_float=Decimal,
                object_pairs_hook=dict,
            )
            self._api_token = token
        return self._api


@dataclass(frozen=True)
class FieldDescribe:
    """One field of a describe: its API name, whether the user may update it, and where it points."""

    name: str
    updateable: bool = False
    relationship_name: str | None = None
    reference_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class ObjectDescribe:
    """An object's describe: whether the user may query and update it, and the fields it can see."""

    name: str
    queryable: bool
    updateable: bool
    fields: tuple[FieldDescribe, ...]

    @classmethod
    def from_json(cls, answer: Mapping[str, Any]) -> ObjectDescribe:
        fields = tuple(
            FieldDescribe(
                name=str(item.get("name", "")),
                updateable=item.get("updateable") is True,
                relationship_name=item.get("relationshipName") or None,
                reference_to=tuple(str(target) for target in item.get("referenceTo") or ()),
            )
            for item in answer.get("fields") or ()
            if isinstance(item, dict) and item.get("name")
        )
        return cls(
            name=str(answer.get("name", "")),
            queryable=answer.get("queryable") is True,
            updateable=answer.get("updateable") is True,
            fields=fields,
        )

    def field(self, name: str) -> FieldDescribe | None:
        """The field of this API name (Salesforce names are case-insensitive), or None."""
        wanted = name.lower()
        return next((item for item in self.fields if item.name.lower() == wanted), None)

    def relationship(self, name: str) -> FieldDescribe | None:
        """The lookup field whose relationship is `name` (`Product2` of OpportunityLineItem), or None."""
        wanted = name.lower()
        return next((item for item in self.fields if (item.relationship_name or "").lower() == wanted), None)


def _page_records(page: Any) -> list[dict[str, Any]]:
    if not isinstance(page, dict) or not isinstance(page.get("records"), list):
        raise TransientSalesforceError("Salesforce returned a query result without records")
    return list(page["records"])


def _all_records(api: Salesforce, page: Any) -> list[dict[str, Any]]:
    """The records of a query result and of every page after it (nextRecordsUrl)."""
    records = _page_records(page)
    while not page.get("done", True) and page.get("nextRecordsUrl"):
        page = api.query_more(page["nextRecordsUrl"], identifier_is_url=True)
        records.extend(_page_records(page))
    return records


def _child_records(api: Salesforce, child_result: Any) -> list[dict[str, Any]]:
    """The records of a child subquery result; Salesforce sends null when there are none."""
    if child_result is None:
        return []
    return _all_records(api, child_result)


@dataclass(frozen=True)
class SaveResult:
    """One record's outcome in an sObject Collections update: saved, or the errors Salesforce gave."""

    object_type: str
    record_id: str
    success: bool
    error_codes: tuple[str, ...] = ()
    message: str = ""


def _save_result(update: RecordUpdate, item: Any) -> SaveResult:
    if not isinstance(item, dict):
        return SaveResult(update.object_type, update.record_id, False, ("UNKNOWN",), f"{item!r:.300}")
    errors = [error for error in item.get("errors") or [] if isinstance(error, dict)]
    return SaveResult(
        update.object_type,
        update.record_id,
        bool(item.get("success")),
        tuple(str(error.get("statusCode", "")) for error in errors),
        "; ".join(str(error.get("message", "")) for error in errors),
    )


def _merge_updates(updates: Sequence[RecordUpdate]) -> list[RecordUpdate]:
    merged: dict[tuple[str, str], RecordUpdate] = {}
    for update in updates:
        key = (update.object_type, update.record_id)
        previous = merged.get(key)
        merged[key] = (
            update
            if previous is None
            else RecordUpdate(
                object_type=update.object_type,
                record_id=update.record_id,
                fields={**previous.fields, **update.fields},
            )
        )
    return list(merged.values())


def _json_value(value: FieldValue) -> str | bool | int | float | None:
    """A write-back value in the JSON form Salesforce expects."""
    if isinstance(value, datetime):  # aware: RecordUpdate refuses naive datetimes
        return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


def _raise_for_composite_failures(response: Any, references: dict[str, RecordUpdate]) -> None:
    """Raise the error of a composite response whose subrequests failed (allOrNone: nothing saved)."""
    results = response.get("compositeResponse") if isinstance(response, dict) else None
    if not isinstance(results, list):
        raise TransientSalesforceError("Salesforce write-back returned no compositeResponse")
    failures: list[tuple[int, SalesforceErrorDetail]] = []
    for result in results:
        status = int(result.get("httpStatusCode") or 0)
        if 200 <= status < 300:
            continue
        reference = str(result.get("referenceId"))
        update = references.get(reference)
        label = f"{update.object_type} {update.record_id}" if update else reference
        failures.extend(
            (status, replace(detail, reference=label)) for detail in error_details(result.get("body"), status)
        )
    if not failures:
        return
    causes = [(status, detail) for status, detail in failures if detail.error_code != PROCESSING_HALTED]
    causes = causes or failures
    details = [detail for _, detail in causes]
    status = max(status for status, _ in causes)
    message = "Salesforce write-back failed, nothing was saved: " + "; ".join(
        detail.describe() for detail in details
    )
    if any(is_transient_failure(status, [detail.error_code]) for status, detail in causes):
        raise TransientSalesforceError(message, status=status, details=details)
    if all(detail.error_code in _MISSING_RECORD_CODES for detail in details):
        raise RecordNotFound(message, status=status, details=details)
    raise PermanentSalesforceError(message, status=status, details=details)
