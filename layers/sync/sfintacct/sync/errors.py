"""Errors the sync logic raises itself, and the text a person reads about any failure."""

from __future__ import annotations


class SyncError(Exception):
    """Base of the errors the sync logic raises itself."""


class TransientSyncError(SyncError):
    """Try again later: another worker is on it, or a write's outcome is not known yet."""


class PermanentSyncError(SyncError):
    """Retrying will not help until someone changes the data or the configuration."""


def describe(error: Exception) -> str:
    """The message a person reads on the record: Intacct's and Salesforce's own words where there are any."""
    return str(error) or type(error).__name__
