"""API sessions (getAPISession): what one is, and the cache that keeps them across warm invocations.

A session is bound to an endpoint, a company, an entity and a user. Every successful call pushes its
expiry forward (`<sessiontimeout>`), so the cache records the new timeout after each response and
hands out a session only while it has a safety margin left.

`SESSIONS` is the module-level cache shared by every client in a warm Lambda container.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from sfintacct.intacct.errors import IntacctProtocolError
from sfintacct.intacct.response import AuthenticationBlock, FunctionResult

SessionKey = tuple[str, str, str, str]
MAX_REFRESH_MARGIN = timedelta(seconds=60)
DEFAULT_LIFETIME = timedelta(minutes=30)


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ApiSession:
    """A session id (kept out of reprs), the endpoint it is bound to, and when to stop using it."""

    session_id: str = field(repr=False)
    endpoint: str
    location_id: str
    refresh_at: datetime

    def usable(self, now: datetime) -> bool:
        return now < self.refresh_at


def refresh_time(authentication: AuthenticationBlock | None, now: datetime) -> datetime:
    """When to stop using a session, a little before the timeout the gateway announced.

    The lifetime is taken as timeout - timestamp (both server times) and counted from our own clock, so
    clock skew between us and Intacct does not matter. The margin is 10% of the lifetime, at most 60 s.
    """
    if authentication is None or authentication.session_timeout is None:
        return now + DEFAULT_LIFETIME - MAX_REFRESH_MARGIN
    if authentication.session_timestamp is not None:
        lifetime = authentication.session_timeout - authentication.session_timestamp
    else:
        lifetime = authentication.session_timeout - now
    if lifetime <= timedelta(0):
        return now
    margin = min(MAX_REFRESH_MARGIN, lifetime / 10)
    return now + lifetime - margin


def session_from_result(
    result: FunctionResult, authentication: AuthenticationBlock | None, login_endpoint: str, now: datetime
) -> ApiSession:
    """The session a successful getAPISession result describes."""
    records = result.records()
    api = records[0] if records else {}
    session_id = str(api.get("sessionid", "")).strip()
    if not session_id:
        raise IntacctProtocolError("getAPISession succeeded but returned no sessionid")
    endpoint = str(api.get("endpoint", "")).strip() or login_endpoint
    parts = urlsplit(endpoint)
    if parts.scheme != "https" or not parts.netloc:
        raise IntacctProtocolError("getAPISession returned an endpoint that is not an https URL")
    return ApiSession(
        session_id=session_id,
        endpoint=endpoint,
        location_id=str(api.get("locationid", "")).strip(),
        refresh_at=refresh_time(authentication, now),
    )


class SessionCache:
    """Sessions by (login endpoint, company, entity, user); safe to share between threads."""

    def __init__(self) -> None:
        self._sessions: dict[SessionKey, ApiSession] = {}
        self._lock = threading.Lock()

    def get(self, key: SessionKey, now: datetime) -> ApiSession | None:
        """The cached session if it is still usable; an expired one is dropped."""
        with self._lock:
            session = self._sessions.get(key)
            if session is not None and not session.usable(now):
                del self._sessions[key]
                return None
            return session

    def put(self, key: SessionKey, session: ApiSession) -> None:
        with self._lock:
            self._sessions[key] = session

    def extend(
        self, key: SessionKey, session: ApiSession, authentication: AuthenticationBlock, now: datetime
    ) -> None:
        """Record the timeout a successful call announced (every call resets the session's lifetime)."""
        with self._lock:
            current = self._sessions.get(key)
            if current is not None and current.session_id == session.session_id:
                self._sessions[key] = replace(current, refresh_at=refresh_time(authentication, now))

    def discard(self, key: SessionKey, session: ApiSession) -> None:
        """Forget `session` (after Intacct refused it), unless another one has replaced it already."""
        with self._lock:
            current = self._sessions.get(key)
            if current is not None and current.session_id == session.session_id:
                del self._sessions[key]

    def clear(self) -> None:
        with self._lock:
            self._sessions.clear()


SESSIONS = SessionCache()
