"""Errors the sync logic raises itself, and the text a person reads about any failure."""

from __future__ import annotations


class SyncError(Exception):
    """Base of the errors the sync logic raises itself."""


class TransientSyncError(SyncError):
    """Try again later: another worker is on it, or a write's outcome is not known yet. `retry_after`:
    when trying again makes sense (e.g. when another worker's lease ends), if known."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentSyncError(SyncError):
    """Retrying will not help until someone changes the data or the configuration."""


def describe(error: Exception) -> str:
    """The message a person reads on the record: Intacct's and Salesforce's own words where there are any."""
    return str(error) or type(error).__name__
