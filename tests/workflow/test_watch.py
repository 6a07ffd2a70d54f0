"""`mlplane watch EXECUTION` and `--wait` (issue 15): follow an execution's states until it ends, exit by outcome."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest
from botocore.stub import Stubber
from typer.testing import CliRunner

from mlplane import aws
from mlplane_cli import operate
from mlplane_cli.main import app
from mlplane_sandbox.runner import Options, Sandbox
from tests.conftest import load_event
from tests.workflow.recorded import FAST

SUCCESS = ("controltower", "create_managed_account_succeeded")
ARN = "arn:aws:states:eu-west-1:123456789012:execution:mlplane-ProvisionStateMachine:ct-111111111111-abc"
MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:mlplane-ProvisionStateMachine"


def test_watch_shows_the_states_and_exits_0_for_a_succeeded_execution_and_1_for_a_failed_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with Sandbox(Options(config=FAST)) as sandbox:
        ready = sandbox.run(load_event(*SUCCESS))
        outputs = {
            "ProvisionStateMachineArn": sandbox.state_machines["provision"],
            "DeprovisionStateMachineArn": sandbox.state_machines["deprovision"],
        }
        monkeypatch.setattr(operate, "stack_outputs", lambda stack, region: outputs)
        watched = CliRunner().invoke(app, ["watch", ready.executions[0]["name"]])  # by name, as provision prints
    assert ready.outcome == "READY"
    assert watched.exit_code == 0, watched.output
    assert "CreateNetwork" in watched.output and "MarkReady" in watched.output
    assert "AlreadyReady" not in watched.output  # a Choice routes, it is not a step
    assert watched.output.strip().splitlines()[-1].endswith(": SUCCEEDED")
    with Sandbox(Options(config=FAST, fails=["iam:CreateUser=AccessDenied@1"])) as sandbox:
        failed = sandbox.run(load_event(*SUCCESS))
        watched = CliRunner().invoke(app, ["watch", sandbox.last_executions[0]["executionArn"]])
    assert failed.outcome == "ROLLED_BACK"
    assert watched.exit_code == 1
    assert "FAILED (AccessDenied" in watched.output


def test_follow_polls_a_running_execution_until_it_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against Step Functions' real answers (botocore's Stubber checks them against the service model)."""
    sfn = aws.new_session(region_name="eu-west-1").client(
        "stepfunctions", aws_access_key_id="x", aws_secret_access_key="x"
    )
    definition = {"StartAt": "ValidateAccount", "States": {"ValidateAccount": {"Type": "Task", "End": True}}}

    def described(status: str) -> dict[str, Any]:
        return {
            "executionArn": ARN,
            "stateMachineArn": MACHINE,
            "status": status,
            "startDate": "2026-12-01T00:00:00Z",
        }

    entered = {
        "timestamp": "2026-12-01T00:00:01Z",
        "type": "TaskStateEntered",
        "id": 2,
        "stateEnteredEventDetails": {"name": "ValidateAccount"},
    }
    with Stubber(sfn) as stub:
        stub.add_response("describe_execution", described("RUNNING"), {"executionArn": ARN})
        stub.add_response(
            "describe_state_machine",
            {
                "stateMachineArn": MACHINE,
                "name": "p",
                "definition": json.dumps(definition),
                "roleArn": "arn:aws:iam::123456789012:role/r",
                "type": "STANDARD",
                "creationDate": "2026-12-01T00:00:00Z",
            },
            {"stateMachineArn": MACHINE},
        )
        for status in ("RUNNING", "RUNNING", "RUNNING", "RUNNING", "RUNNING", "SUCCEEDED"):
            stub.add_response("describe_execution", described(status), {"executionArn": ARN})
            stub.add_response("get_execution_history", {"events": [entered]}, {"executionArn": ARN})
        monkeypatch.setattr(aws, "client", lambda session, service: sfn)
        slept: list[float] = []
        seen: list[str] = []
        final = operate.follow(
            ARN, region="eu-west-1", on_progress=lambda d, _, h: seen.append(d["status"]), sleep=slept.append
        )
        stub.assert_no_pending_responses()
    assert final["status"] == "SUCCEEDED"
    # quick at first (a short execution is reported at once), then AWS's every 5 seconds
    assert seen == ["RUNNING"] * 5 + ["SUCCEEDED"] and slept == [1.0, 2.0, 4.0, 5.0, 5.0]


def test_provision_wait_follows_the_execution_it_started(monkeypatch: pytest.MonkeyPatch) -> None:
    with Sandbox(Options(config=FAST)) as sandbox:
        sandbox.world.place_account("111111111111", "Workloads", role_name=sandbox.settings.member_role_name)
        outputs = {"ProvisionStateMachineArn": sandbox.state_machines["provision"]}
        monkeypatch.setattr(operate, "stack_outputs", lambda stack, region: outputs)
        # the sandbox's execution ends in about a second: poll it often (AWS's 5 s is not what is tested here)
        monkeypatch.setattr(operate, "follow", functools.partial(operate.follow, every=0.1))
        started = CliRunner().invoke(app, ["provision", "111111111111", "--wait"])
        status = sandbox.ledger().status("111111111111")
    assert started.exit_code == 0, started.output
    first = json.loads(started.output.splitlines()[0])
    assert first["execution_arn"].startswith(
        outputs["ProvisionStateMachineArn"].replace(":stateMachine:", ":execution:")
    )
    assert started.output.strip().splitlines()[-1].endswith(": SUCCEEDED")
    assert status is not None and status.status == "READY"
