"""The workers' own settings (from the template's environment): a wrong value stops with its name."""

from __future__ import annotations

import pytest

from sfintacct.sync.runtime import WorkerSettingsError, queue_settings


def test_queue_settings_come_from_the_environment_with_defaults() -> None:
    settings = queue_settings({"IDEMPOTENCY_TABLE": "idempotency", "MAX_RECEIVE_COUNT": "7"})

    assert (settings.idempotency_table, settings.max_receive_count) == ("idempotency", 7)
    assert settings.idempotency_expires_after_seconds == 172800


@pytest.mark.parametrize("value", ["0", "-3", "five", "²", "1.5", "٣"])
def test_a_count_that_is_not_a_positive_whole_number_is_refused_by_name(value: str) -> None:
    with pytest.raises(WorkerSettingsError, match="MAX_RECEIVE_COUNT must be a positive whole number"):
        queue_settings({"IDEMPOTENCY_TABLE": "idempotency", "MAX_RECEIVE_COUNT": value})


def test_a_missing_table_is_refused_by_name() -> None:
    with pytest.raises(WorkerSettingsError, match="IDEMPOTENCY_TABLE is not set"):
        queue_settings({})
