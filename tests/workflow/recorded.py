"""What a recorded READY run did: the fault tests take their list of calls from it, not from a hand-written list."""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from typing import Any

from mlplane_sandbox.recording import is_mutating
from mlplane_sandbox.runner import Options, RunResult, Sandbox
from tests.conftest import load_event

MEMBER = "111111111111"
FAST = {"poll_interval_seconds": 600}  # fewer vendor polls; the timeouts keep their meaning
VENDOR_ROLES = ("aac-", "credential-service-role")


def member_mutations(result: RunResult) -> list[str]:
    return [
        c["call"]
        for c in result.api_calls
        if c["principal"].startswith(f"arn:aws:sts::{MEMBER}:") and is_mutating(c["call"])
    ]


@cache
def _recorded_run() -> RunResult:
    with Sandbox(Options(config=FAST)) as sandbox:
        result = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
    assert result.outcome == "READY", result.error
    return result


@cache
def recorded_mutations() -> list[str]:
    """Every distinct mutating call a READY run makes in the member account: the list comes from a run."""
    return sorted(set(member_mutations(_recorded_run())))


@cache
def handed_off_mutations() -> list[str]:
    """The mutating member calls the recorded run made only after READY_FOR_VENDOR: a failure there is held
    (REQUIREMENTS C7), not rolled back, since the vendor is in the account by then."""
    calls = _recorded_run().api_calls
    hand_off = next(i for i, c in enumerate(calls) if c["call"] == "sns:Publish")
    before = set(member_mutations(replace(_recorded_run(), api_calls=calls[:hand_off])))
    after = set(member_mutations(replace(_recorded_run(), api_calls=calls[hand_off:])))
    return sorted(after - before)


def before_hand_off_mutations() -> list[str]:
    return [c for c in recorded_mutations() if c not in handed_off_mutations()]


def comparable(inventory: dict[str, Any]) -> dict[str, Any]:
    """The inventory without what AWS cannot undo at once (a key pending deletion, a quota request) and
    without what the vendor made (its cluster and roles): everything else must be as before the run."""
    view = {k: v for k, v in inventory.items() if k not in ("quota_requests", "eks_clusters")}
    view["kms_keys"] = [k for k in inventory["kms_keys"] if k["state"] != "PendingDeletion"]
    view["iam_roles"] = [r for r in inventory["iam_roles"] if not r["name"].startswith(VENDOR_ROLES)]
    return view
