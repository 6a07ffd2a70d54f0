"""`mlplane reconcile` (REQUIREMENTS D2, issue 16), through the real ASL: each drift found by audit is repaired
and a second audit is clean; a failure during reconcile never rolls back the READY account."""

from __future__ import annotations

import functools
import threading
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
        # the sandbox's execution ends in about a second: poll it often (AWS's 5 s is not what is tested here)
        monkeypatch.setattr(operate, "follow", functools.partial(operate.follow, every=0.1))
        started = CliRunner().invoke(app, ["reconcile", MEMBER, "--wait"])
        after = sandbox.audit(MEMBER)
    assert started.exit_code == 0, started.output
    assert json.loads(started.output.splitlines()[0])["account_id"] == MEMBER
    assert "ReconcileAccount" in started.output and started.output.strip().splitlines()[-1].endswith(": SUCCEEDED")
    assert judged(after) == []


def test_the_fleet_reconcile_rolls_a_changed_policy_document_out_to_every_ready_account(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A new version of the shipped policy (the vendor changed its document): ReconcileFleetStateMachine maps
    ReconcileAccount over the READY accounts, at most `reconcile_concurrency` at once; each gets a new default
    version with the new document; an account that is not READY is left alone."""
    import json

    from mlplane.iam import policy as iam_policy
    from mlplane_sandbox.world import as_account, sandbox_client

    third = "333333333333"
    config = {**FAST, "reconcile_concurrency": 2}
    with Sandbox(Options(config=config)) as sandbox:
        assert sandbox.run(load_event(*SUCCESS)).outcome == "READY"
        assert sandbox.run(load_event("controltower", "create_managed_account_second_account")).outcome == "READY"
        sandbox.world.place_account(third, "Workloads", role_name=sandbox.settings.member_role_name)
        assert sandbox.run({"account_id": third, "requested_by": "test"}).outcome == "READY"
        new = iam_policy.shipped_policy()
        new["Statement"] = [*new["Statement"], {"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}]
        monkeypatch.setattr(iam_policy, "shipped_policy", lambda: new)
        # How many ReconcileAccount invocations run at once (the Map's iterations are threads in moto, as they
        # are concurrent Lambda invocations in AWS): counted at entry, never more than the cap.
        assert sandbox.dispatcher is not None
        invoke, lock, running, most = sandbox.dispatcher.invoke, threading.Lock(), [0], [0]

        def counted(function: Any, event: Any) -> Any:
            if function.logical_id != "ReconcileAccountFunction":
                return invoke(function, event)
            with lock:
                running[0] += 1
                most[0] = max(most[0], running[0])
            try:
                return invoke(function, event)
            finally:
                with lock:
                    running[0] -= 1

        monkeypatch.setattr(sandbox.dispatcher, "invoke", counted)
        ended = sandbox.reconcile_fleet()
        history = sandbox.history(ended["executionArn"])
        versions = {}
        for account in (MEMBER, "222222222222", third):
            with as_account(account):
                iam = sandbox_client("iam")
                arn = f"arn:aws:iam::{account}:policy/AAC_MachineLearning_SA_Policy"
                default = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
                document = iam.get_policy_version(PolicyArn=arn, VersionId=default)["PolicyVersion"]["Document"]
                versions[account] = (default, document if isinstance(document, dict) else json.loads(document))
    assert ended["status"] == "SUCCEEDED"
    output = json.loads(ended["output"])
    assert sorted(r["account_id"] for r in output["results"]) == [MEMBER, "222222222222", third]
    assert output["max_concurrency"] == 2
    assert 1 <= most[0] <= 2, f"{most[0]} ReconcileAccount invocations at once; the cap is 2"
    for account, (default, document) in versions.items():
        assert default == "v2", account
        assert document == new, account
    started = [
        e
        for e in history
        if e["type"] == "TaskStateEntered" and e["stateEnteredEventDetails"]["name"] == "ReconcileAccount"
    ]
    assert len(started) == 3


def test_mlplane_reconcile_all_starts_the_fleet_workflow(monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from mlplane_cli import operate
    from mlplane_cli.main import app

    with Sandbox(Options(config=FAST)) as sandbox:
        assert sandbox.run(load_event(*SUCCESS)).outcome == "READY"
        drift.apply("detach-policy", MEMBER, sandbox.settings_from_env())
        outputs = {"ReconcileFleetStateMachineArn": sandbox.state_machines["reconcilefleet"]}
        monkeypatch.setattr(operate, "stack_outputs", lambda stack, region: outputs)
        # the sandbox's execution ends in about a second: poll it often (AWS's 5 s is not what is tested here)
        monkeypatch.setattr(operate, "follow", functools.partial(operate.follow, every=0.1))
        started = CliRunner().invoke(app, ["reconcile", "--all", "--wait"])
        after = sandbox.audit(MEMBER)
        both = CliRunner().invoke(app, ["reconcile", MEMBER, "--all"])
    assert started.exit_code == 0, started.output
    assert "ReconcileEach" in started.output and started.output.strip().splitlines()[-1].endswith(": SUCCEEDED")
    assert judged(after) == []
    assert both.exit_code == 2 and "give an ACCOUNT_ID or --all" in both.output


def test_a_stack_update_reconciles_the_fleet_and_nothing_else_starts_it() -> None:
    """template.yaml's StackUpdated rule: CloudFormation's "CloudFormation Stack Status Change" event of this
    stack with UPDATE_COMPLETE (the CloudFormation user guide's events detail reference) starts the fleet
    reconcile, which repairs a drifted READY account; a rolled-back update starts nothing."""
    with Sandbox(Options(config=FAST)) as sandbox:
        assert sandbox.run(load_event(*SUCCESS)).outcome == "READY"
        drift.apply("detach-policy", MEMBER, sandbox.settings_from_env())
        assert sandbox.stack_updated("UPDATE_ROLLBACK_COMPLETE") == []
        assert [f["type"] for f in sandbox.audit(MEMBER)["findings"] if f["severity"] != "vendor"]
        [ended] = sandbox.stack_updated()
        after = sandbox.audit(MEMBER)
    assert ended["stateMachineArn"] == sandbox.state_machines["reconcilefleet"] and ended["status"] == "SUCCEEDED"
    assert [f for f in after["findings"] if f["severity"] != "vendor"] == []
