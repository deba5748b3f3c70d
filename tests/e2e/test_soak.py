"""`make soak` in small: a dozen closed-won deals through the session's local stack under chaos.

The soak runs in this process on the shared stack (what other tests made before is left out of its
checks). It must find nothing wrong, and its figures must show the chaos really happened: faults in both
sandboxes, duplicate and colliding notifications, edits after the close, and worker kills where the stack
can kill its workers. tests/unit/test_soak_checks.py shows that the same checks do report damage.
"""

from __future__ import annotations

import json

import pytest

from sandbox.soak import EXIT_PASSED, run_soak
from sandbox.stack import LocalStack

pytestmark = pytest.mark.e2e

DEALS = 12
SEED = 20261201
SETTLE_SECONDS = 90.0


def test_a_small_soak_under_chaos_loses_duplicates_and_garbles_nothing(stack: LocalStack) -> None:
    result = run_soak(stack, DEALS, SEED, settle_seconds=SETTLE_SECONDS)

    figures = result.figures
    shown = json.dumps(figures, indent=1, sort_keys=True, default=str)
    assert result.settled, shown
    assert result.exit_code == EXIT_PASSED, shown
    assert figures["passed"] is True
    assert figures["deals"] == DEALS
    assert set(figures["checks"].values()) == {0}, shown
    # The chaos happened.
    assert figures["faults_total"] > 0
    assert {kind.split("_", 1)[0] for kind in figures["faults"]} == {"intacct", "salesforce"}, shown
    assert figures["intacct_fault_answers"], shown  # Intacct really answered with faults
    assert figures["duplicates_total"] > 0
    assert figures["collisions_total"] > 0
    assert figures["edits"] > 0
    assert set(figures["accounts"]) == {"synced", "new", "racing"}
    if figures["kills_wired"]:
        assert figures["kills"] > 0, shown
    assert figures["intake_refusals"] == 0
    assert 0 < figures["intacct_requests_per_deal"] < 10
    assert 0 < figures["salesforce_calls_per_deal"] < 20
