"""`mlplane reconcile` (REQUIREMENTS D2, issue 16), through the real ASL: each drift found by audit is repaired
and a second audit is clean; a failure during reconcile never rolls back the READY account."""

from __future__ import annotations

from typing import Any

import pytest

from mlplane.ledger import Status
from mlplane_sandbox import drift
from mlplane_sandbox.runner import Options, RunResult, Sandbox, notifications
from tests.conftest import load_event
from tests.workflow.recorded import FAST, MEMBER

SUCCESS = ("controltower", "create_managed_account_succeeded")
RECONCILE = {"account_id": MEMBER, "requested_by": "test", "reason": "drift", "action": "reconcile"}
REMOVING = ("Delete", "Detach", "Disassociate", "Release", "Revoke", "ScheduleKeyDeletion", "Untag")


def judged(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in document["findings"] if f["severity"] != "vendor"]


def removals(result: RunResult) -> list[str]:
    return [c["call"] for c in result.api_calls if c["call"].split(":", 1)[1].startswith(REMOVING)]


@pytest.mark.parametrize("name", sorted(drift.DRIFTS))
def test_each_drift_is_repaired_and_a_second_audit_is_clean(name: str) -> None:
    with Sandbox(Options(config=FAST)) as sandbox:
        assert sandbox.run(load_event(*SUCCESS)).outcome == "READY"
        drift.apply(name, MEMBER, sandbox.settings_from_env())
        found = sandbox.audit(MEMBER)
        result = sandbox.run(RECONCILE)
        after = sandbox.audit(MEMBER)
        status = sandbox.ledger().status(MEMBER)
    assert len(judged(found)) == 1
    assert result.outcome == "READY", result.error
    assert [e["status"] for e in result.executions] == ["SUCCEEDED"]
    assert judged(after) == [], judged(after)
    assert status is not None and status.status == Status.READY
    assert removals(result) == []  # converging never removes anything
    (note,) = [n for n in notifications() if n["event"] == "RECONCILED"]
    assert [(f["type"], f["key"]) for f in note["fixed"]] == [(f["type"], f["key"]) for f in judged(found)]
    assert note["unfixed"] == [] and note["failed_steps"] == []


def test_a_failure_during_reconcile_ends_ready_with_nothing_removed_and_the_unfixed_named() -> None:
    # The provisioning run makes 12 CreateRoute calls; the reconcile's (the route deleted by hand) is refused.
    with Sandbox(Options(config=FAST, fails=["ec2:CreateRoute=UnauthorizedOperation@13"])) as sandbox:
        assert sandbox.run(load_event(*SUCCESS)).outcome == "READY"
        drift.apply("delete-route", MEMBER, sandbox.settings_from_env())
        drift.apply("detach-policy", MEMBER, sandbox.settings_from_env())
        result = sandbox.run(RECONCILE)
        sandbox.check_faults_fired()
        after = sandbox.audit(MEMBER)
        status = sandbox.ledger().status(MEMBER)
    assert result.outcome == "READY", result.error
    assert status is not None and status.status == Status.READY
    assert removals(result) == []
    assert "Rollback" not in {
        e["stateEnteredEventDetails"]["name"] for e in result.history if "stateEnteredEventDetails" in e
    }
    (note,) = [n for n in notifications() if n["event"] == "RECONCILED"]
    assert [f["type"] for f in note["fixed"]] == ["iam:attachment"]  # the other domains went on
    assert [f["type"] for f in note["unfixed"]] == ["ec2:route"]
    assert note["failed_steps"][0]["step"] == "network" and "UnauthorizedOperation" in note["failed_steps"][0]["error"]
    assert [f["type"] for f in judged(after)] == ["ec2:route"]


def test_reconcile_of_an_account_that_is_not_ready_is_rejected() -> None:
    with Sandbox(Options(config=FAST)) as sandbox:
        sandbox.world.place_account(MEMBER, "Workloads", role_name=sandbox.settings.member_role_name)
        result = sandbox.run(RECONCILE)
    assert result.outcome == "REJECTED"
    assert result.error is not None and "not READY: nothing to reconcile" in result.error["message"]
    assert result.inventory["vpcs"] == []


def test_mlplane_reconcile_wait_starts_it_and_follows_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from mlplane_cli import operate
    from mlplane_cli.main import app

    with Sandbox(Options(config=FAST)) as sandbox:
        assert sandbox.run(load_event(*SUCCESS)).outcome == "READY"
        drift.apply("dns-off", MEMBER, sandbox.settings_from_env())
        outputs = {"ProvisionStateMachineArn": sandbox.state_machines["provision"]}
        monkeypatch.setattr(operate, "stack_outputs", lambda stack, region: outputs)
        started = CliRunner().invoke(app, ["reconcile", MEMBER, "--wait"])
        after = sandbox.audit(MEMBER)
    assert started.exit_code == 0, started.output
    assert json.loads(started.output.splitlines()[0])["account_id"] == MEMBER
    assert "ReconcileAccount" in started.output and started.output.strip().splitlines()[-1].endswith(": SUCCEEDED")
    assert judged(after) == []
