"""The crosswalk and the sync log in memory, with the DynamoDB stores' semantics (conditions included)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from sfintacct.crosswalk import (
    SALESFORCE_ID,
    AlreadyClaimed,
    ClaimLost,
    CrosswalkEntry,
    CrosswalkKind,
    CrosswalkStatus,
    MappingConflict,
    StaleUpdate,
)
from sfintacct.sync.outcome import SyncOutcome


def _millis(moment: datetime) -> datetime:
    """What the DynamoDB store keeps of a time: UTC, millisecond precision."""
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return moment


class InMemoryCrosswalk:
    """CrosswalkStore's operations on a dict; every write is checked like the conditional DynamoDB write."""

    def __init__(self, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.entries: dict[tuple[str, CrosswalkKind], CrosswalkEntry] = {}
        self.table_name = "in-memory"
        self._clock = clock
        self._lock = threading.Lock()

    def get(self, sf_id: str, kind: CrosswalkKind) -> CrosswalkEntry | None:
        return self.entries.get(self._key(sf_id, kind))

    def claim(
        self, sf_id: str, kind: CrosswalkKind, owner: str, lease_seconds: float, now: datetime | None = None
    ) -> CrosswalkEntry:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be positive")
        now = _aware(now or self._clock(), "now")
        key = self._key(sf_id, kind)
        with self._lock:
            current = self.entries.get(key)
            if current is not None:
                if current.is_complete:
                    return current
                assert current.lease_expires_at is not None
                if current.lease_expires_at >= _millis(now) and current.claim_owner != owner:
                    raise AlreadyClaimed(f"SF#{sf_id}/{kind}: claimed by {current.claim_owner}", current)
            base = current or CrosswalkEntry(sf_id, CrosswalkKind(kind), CrosswalkStatus.CLAIMED, now)
            entry = replace(
                base,
                status=CrosswalkStatus.CLAIMED,
                claim_owner=owner,
                lease_expires_at=_millis(now + timedelta(seconds=lease_seconds)),
                updated_at=_millis(now),
            )
            self.entries[key] = entry
            return entry

    def complete(
        self,
        sf_id: str,
        kind: CrosswalkKind,
        intacct_id: str,
        owner: str,
        source_modified_at: datetime | None = None,
        *,
        attributes: Mapping[str, str] | None = None,
        now: datetime | None = None,
    ) -> CrosswalkEntry:
        _require_text(intacct_id, "intacct_id")
        now = _aware(now or self._clock(), "now")
        key = self._key(sf_id, kind)
        with self._lock:
            current = self.entries.get(key)
            if (
                current is None
                or current.status is not CrosswalkStatus.CLAIMED
                or current.claim_owner != owner
            ):
                if current is not None and current.is_complete and current.intacct_id == intacct_id:
                    return current
                holder = current.claim_owner if current else None
                raise ClaimLost(
                    f"SF#{sf_id}/{kind}: {owner} does not hold the claim (holder: {holder})", current
                )
            return self._completed(key, current, intacct_id, source_modified_at, attributes, now)

    def find_by_intacct_id(self, kind: CrosswalkKind, intacct_id: str) -> CrosswalkEntry | None:
        found = [e for (_, k), e in self.entries.items() if k == kind and e.intacct_id == intacct_id]
        return found[0] if found else None

    def put_mapping(
        self,
        sf_id: str,
        kind: CrosswalkKind,
        intacct_id: str,
        source_modified_at: datetime | None,
        *,
        attributes: Mapping[str, str] | None = None,
        replaces: str | None = None,
        now: datetime | None = None,
    ) -> CrosswalkEntry:
        _require_text(intacct_id, "intacct_id")
        now = _aware(now or self._clock(), "now")
        key = self._key(sf_id, kind)
        with self._lock:
            current = self.entries.get(key)
            if current is not None and current.intacct_id not in (None, intacct_id, replaces):
                raise MappingConflict(
                    f"SF#{sf_id}/{kind} is mapped to {current.intacct_id}, not {intacct_id}", current
                )
            if (
                current is not None
                and source_modified_at is not None
                and current.source_modified_at is not None
                and current.source_modified_at > _millis(source_modified_at)
            ):
                raise StaleUpdate(f"SF#{sf_id}/{kind}: stored change is newer", current)
            base = current or CrosswalkEntry(sf_id, CrosswalkKind(kind), CrosswalkStatus.COMPLETE, now)
            return self._completed(key, base, intacct_id, source_modified_at, attributes, now)

    def release(
        self,
        sf_id: str,
        kind: CrosswalkKind,
        owner: str,
        *,
        refused: bool,
        refused_source_modified_at: datetime | None = None,
        now: datetime | None = None,
    ) -> bool:
        now = _aware(now or self._clock(), "now")
        key = self._key(sf_id, kind)
        with self._lock:
            current = self.entries.get(key)
            if (
                current is None
                or current.status is not CrosswalkStatus.CLAIMED
                or current.claim_owner != owner
            ):
                return False
            self.entries[key] = replace(
                current,
                claim_owner=None,
                lease_expires_at=datetime.fromtimestamp(0, UTC),
                updated_at=_millis(now),
                attempt=current.attempt + (1 if refused else 0),
                refused_source_modified_at=(
                    _millis(refused_source_modified_at)
                    if refused and refused_source_modified_at is not None
                    else current.refused_source_modified_at
                ),
            )
            return True

    def _completed(
        self,
        key: tuple[str, CrosswalkKind],
        base: CrosswalkEntry,
        intacct_id: str,
        source_modified_at: datetime | None,
        attributes: Mapping[str, str] | None,
        now: datetime,
    ) -> CrosswalkEntry:
        entry = replace(
            base,
            status=CrosswalkStatus.COMPLETE,
            intacct_id=intacct_id,
            claim_owner=None,
            lease_expires_at=None,
            updated_at=_millis(now),
            source_modified_at=(
                _millis(_aware(source_modified_at, "source_modified_at"))
                if source_modified_at is not None
                else base.source_modified_at
            ),
            attributes=dict(attributes) if attributes else base.attributes,
        )
        self.entries[key] = entry
        return entry

    @staticmethod
    def _key(sf_id: str, kind: CrosswalkKind) -> tuple[str, CrosswalkKind]:
        if not SALESFORCE_ID.match(sf_id):
            raise ValueError(f"not an 18-character Salesforce id: {sf_id!r}")
        return sf_id, CrosswalkKind(kind)


def _require_text(value: str, name: str) -> None:
    if not value:
        raise ValueError(f"{name} must not be empty")


@dataclass(frozen=True)
class LoggedOutcome:
    outcome: SyncOutcome
    producer_id: str
    source: str

    @property
    def status(self) -> str:
        return self.outcome.status.value

    @property
    def reason(self) -> str:
        return self.outcome.reason.value


class InMemorySyncLog:
    """The sync log as a list per Salesforce id; `history(sf_id)` reads like SyncLog.history."""

    def __init__(self) -> None:
        self.entries: dict[str, list[LoggedOutcome]] = {}

    def record(self, outcome: SyncOutcome, *, producer_id: str, source: str) -> None:
        self.entries.setdefault(outcome.salesforce_id, []).append(LoggedOutcome(outcome, producer_id, source))

    def history(self, sf_id: str) -> list[LoggedOutcome]:
        return list(self.entries.get(sf_id, []))
