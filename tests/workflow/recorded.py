"""What a recorded READY run did: the fault tests take their list of calls from it, not from a hand-written list.

The record is a reviewed golden file, so that collecting the tests runs no sandbox (once per xdist worker, it
cost 20 s); one test re-records it and fails if the run changed."""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from pathlib import Path
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


GOLDEN = Path(__file__).resolve().parents[1] / "data" / "recorded_run.json"
"""The reviewed record of a READY run's mutating member calls; `test_recorded_run_matches_its_golden_file`
runs the sandbox again and compares (`MLPLANE_RERECORD=1` rewrites the file, to review in the diff)."""


def record_run() -> dict[str, list[str]]:
    """Run the READY scenario and say which distinct mutating member calls it made, and which of them only
    after READY_FOR_VENDOR (a failure there is held, REQUIREMENTS C7, not rolled back: the vendor is there)."""
    with Sandbox(Options(config=FAST)) as sandbox:
        result = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
    assert result.outcome == "READY", result.error
    calls = result.api_calls
    hand_off = next(i for i, c in enumerate(calls) if c["call"] == "sns:Publish")
    before = set(member_mutations(replace(result, api_calls=calls[:hand_off])))
    after = set(member_mutations(replace(result, api_calls=calls[hand_off:])))
    return {"mutations": sorted(before | after), "handed_off": sorted(after - before)}


@cache
def _golden() -> dict[str, list[str]]:
    loaded: dict[str, list[str]] = json.loads(GOLDEN.read_text())
    return loaded


def recorded_mutations() -> list[str]:
    """Every distinct mutating call a READY run makes in the member account (from the recorded run)."""
    return list(_golden()["mutations"])


def handed_off_mutations() -> list[str]:
    """The mutating member calls the recorded run made only after READY_FOR_VENDOR."""
    return list(_golden()["handed_off"])


def before_hand_off_mutations() -> list[str]:
    return [c for c in recorded_mutations() if c not in handed_off_mutations()]


def comparable(inventory: dict[str, Any]) -> dict[str, Any]:
    """The inventory without what AWS cannot undo at once (a key pending deletion, a quota request) and
    without what the vendor made (its cluster and roles): everything else must be as before the run."""
    view = {k: v for k, v in inventory.items() if k not in ("quota_requests", "eks_clusters")}
    view["kms_keys"] = [k for k in inventory["kms_keys"] if k["state"] != "PendingDeletion"]
    view["iam_roles"] = [r for r in inventory["iam_roles"] if not r["name"].startswith(VENDOR_ROLES)]
    return view
