"""Faults of the set-up, not of a record: the adapters that know mark their errors with it.

Wrong or expired credentials, a sender not authorised for the company, a spent API allowance, a
mapping that names a field the org or company does not have: no record is at fault, and every record
would fail the same way until someone fixes the set-up (or, for an allowance, until it comes back).
The workers hold such work on the queue with a growing delay, count it in the `ConfigurationFault`
metric (alarmed), show "Waiting" on the record where they can write it, and read their secrets again,
so the held records sync by themselves once the set-up is fixed.
"""

from __future__ import annotations

from typing import ClassVar

CONFIGURATION_FAULT_METRIC = "ConfigurationFault"  # counted by every function that meets one; alarmed


class ConfigurationFault(Exception):
    """Mixed into an adapter's error type: `kind` names the fault in a word (a metric dimension);
    `reads_secrets_again` says whether fixing it means changing a secret the worker holds."""

    kind: ClassVar[str] = "configuration"
    reads_secrets_again: ClassVar[bool] = False
    what_to_do: ClassVar[str] = "fix the set-up"
