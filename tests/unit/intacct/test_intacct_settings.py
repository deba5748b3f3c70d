"""Settings validation and loading, session lifetimes and the backoff schedule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from intacct_fakes import FakeClock

from sfintacct.intacct import IntacctSettings, IntacctSettingsError, IntacctUnavailable, settings_from_sources
from sfintacct.intacct.response import AuthenticationBlock
from sfintacct.intacct.retry import RetryPolicy
from sfintacct.intacct.session import ApiSession, SessionCache, refresh_time
from sfintacct.intacct.settings import validate_settings
from sfintacct.intacct.transport import parse_retry_after, ssl_context_for

SECRET = {
    "sender_id": "acme-sender",
    "sender_password": "S3nder-Secret-1",
    "company_id": "acme",
    "user_id": "xml_gateway",
    "user_password": "Us3r-Secret-2",
}


def test_defaults_and_secret_hiding() -> None:
    settings = settings_from_sources(SECRET, {})
    assert settings.endpoint_url == "https://api.intacct.com/ia/xml/xmlgw.phtml"
    assert settings.entity_id is None
    assert "S3nder-Secret-1" not in repr(settings)
    assert "Us3r-Secret-2" not in repr(settings)
    assert "S3nder-Secret-1" not in settings.model_dump_json()
    assert settings.session_key == ("https://api.intacct.com/ia/xml/xmlgw.phtml", "acme", "", "xml_gateway")


def test_environment_wins_for_non_secret_settings() -> None:
    environ = {
        "INTACCT_ENDPOINT_URL": "https://127.0.0.1:8444/ia/xml/xmlgw.phtml",
        "INTACCT_ENTITY_ID": "UK",
        "INTACCT_TIMEOUT_SECONDS": "12.5",
        "INTACCT_MAX_ATTEMPTS": "3",
    }
    settings = settings_from_sources({**SECRET, "entity_id": "US"}, environ)
    assert settings.endpoint_url == "https://127.0.0.1:8444/ia/xml/xmlgw.phtml"
    assert settings.entity_id == "UK"
    assert settings.timeout_seconds == 12.5
    assert settings.max_attempts == 3


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"sender_password": ""}, "sender_password"),
        ({"user_id": None}, "user_id"),
        ({"endpoint_url": "http://api.intacct.com/ia/xml/xmlgw.phtml"}, "endpoint_url"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"max_attempts": 0}, "max_attempts"),
    ],
)
def test_invalid_settings_name_the_field_never_the_value(changes: dict[str, Any], field: str) -> None:
    values = {key: value for key, value in {**SECRET, **changes}.items() if value is not None}
    with pytest.raises(IntacctSettingsError) as raised:
        validate_settings(values)
    assert field in str(raised.value)
    for value in SECRET.values():
        if "Secret" in value:
            assert value not in str(raised.value)


def test_environment_values_are_validated_too() -> None:
    with pytest.raises(IntacctSettingsError, match="max_attempts"):
        settings_from_sources(SECRET, {"INTACCT_MAX_ATTEMPTS": "0"})
    with pytest.raises(IntacctSettingsError, match="user_password"):
        settings_from_sources({**SECRET, "user_password": ""}, {})


def test_unreadable_ca_file_is_a_settings_error(tmp_path: Any) -> None:
    with pytest.raises(IntacctSettingsError, match="CA file"):
        ssl_context_for(str(tmp_path / "missing.pem"))


def test_blank_entity_means_no_entity() -> None:
    settings = IntacctSettings.model_validate({**SECRET, "entity_id": "  "})
    assert settings.entity_id is None


# ---------------------------------------------------------------------------- session lifetime


def auth_block(lifetime: timedelta, server_now: datetime) -> AuthenticationBlock:
    return AuthenticationBlock(
        status="success", session_timestamp=server_now, session_timeout=server_now + lifetime
    )


def test_session_refresh_is_counted_on_our_clock_with_a_margin() -> None:
    our_now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    server_now = our_now + timedelta(minutes=7)  # a skewed server clock does not matter
    assert refresh_time(auth_block(timedelta(hours=1), server_now), our_now) == our_now + timedelta(
        minutes=59
    )
    assert refresh_time(auth_block(timedelta(seconds=100), server_now), our_now) == our_now + timedelta(
        seconds=90
    )


def test_session_cache_drops_expired_sessions_and_only_the_refused_one() -> None:
    cache = SessionCache()
    key = ("https://x.test/ia/xml/xmlgw.phtml", "acme", "", "user")
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    session = ApiSession("s-1..", "https://na1.x.test/", "", refresh_at=now + timedelta(minutes=5))
    cache.put(key, session)
    assert cache.get(key, now) == session
    replacement = ApiSession("s-2..", "https://na1.x.test/", "", refresh_at=now + timedelta(minutes=5))
    cache.put(key, replacement)
    cache.discard(key, session)  # a late refusal of the old session keeps the new one
    assert cache.get(key, now) == replacement
    assert cache.get(key, now + timedelta(minutes=5)) is None
    assert "s-2" not in repr(replacement)


# ---------------------------------------------------------------------------- backoff


def test_backoff_is_exponential_jittered_and_capped() -> None:
    policy = RetryPolicy(
        max_attempts=10,
        budget_seconds=100,
        base_delay_seconds=1,
        max_delay_seconds=8,
        random_fraction=lambda: 1.0,
    )
    assert [policy.delay(n) for n in range(1, 6)] == [1, 2, 4, 8, 8]
    low = RetryPolicy(
        max_attempts=10,
        budget_seconds=100,
        base_delay_seconds=1,
        max_delay_seconds=8,
        random_fraction=lambda: 0.0,
    )
    assert [low.delay(n) for n in range(1, 5)] == [0.5, 1, 2, 4]
    assert low.delay(1, retry_after=6) == 6


def test_retry_state_gives_up_when_attempts_or_budget_run_out() -> None:
    clock = FakeClock()
    policy = RetryPolicy(
        max_attempts=3,
        budget_seconds=100,
        base_delay_seconds=1,
        max_delay_seconds=8,
        sleep=clock.sleep,
        clock=clock.monotonic,
        random_fraction=lambda: 1.0,
    )
    state = policy.start()
    error = IntacctUnavailable("down")
    state.backoff_or_raise(error)
    state.backoff_or_raise(error)
    with pytest.raises(IntacctUnavailable):
        state.backoff_or_raise(error)
    assert clock.sleeps == [1, 2]


def test_retry_after_header_forms() -> None:
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    assert parse_retry_after("7", now) == 7
    assert parse_retry_after("Sat, 28 Nov 2026 12:00:30 GMT", now) == 30
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None
