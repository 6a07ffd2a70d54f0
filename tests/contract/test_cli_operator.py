"""The operator commands as the AWS CLI's users expect them (issue 15): accounts, --region's chain, help."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import typer
from moto import mock_aws
from typer.testing import CliRunner

from mlplane import aws
from mlplane.ledger import Ledger, Status
from mlplane_cli import operate
from mlplane_cli.main import app
from tests.module.moto_account import create_ledger_table, use_fake_credentials

REGION = "eu-west-1"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    use_fake_credentials(monkeypatch, REGION)
    with mock_aws():
        create_ledger_table("mlplane-ledger", REGION)
        monkeypatch.setattr(operate, "stack_outputs", lambda name, region: {"LedgerTableName": "mlplane-ledger"})
        yield Ledger(boto3.client("dynamodb", region_name=REGION), "mlplane-ledger")
    aws.reset()


def test_accounts_json_and_table(hub: Ledger) -> None:
    hub.set_status("111111111111", Status.READY, execution="ct-111111111111-abc")
    hub.record_ou("111111111111", "Workloads")
    hub.set_status("222222222222", Status.ROLLBACK_HELD, execution="op-222222222222-1", error="held [vendor]")
    runner = CliRunner()
    listed = json.loads(runner.invoke(app, ["accounts", "--json"]).stdout)
    assert [(a["account_id"], a["status"], a["ou"]) for a in listed] == [
        ("111111111111", "READY", "Workloads"),
        ("222222222222", "ROLLBACK_HELD", None),
    ]
    only = json.loads(runner.invoke(app, ["accounts", "--json", "--status", "rollback_held"]).stdout)
    assert [a["account_id"] for a in only] == ["222222222222"]
    human = runner.invoke(app, ["accounts"], env={"COLUMNS": "200"})
    assert human.exit_code == 0, human.stderr
    assert "2 accounts in the ledger" in human.stdout and "ct-111111111111-abc" in human.stdout
    assert "held [vendor]" in human.stdout  # an error's brackets are text, not Rich markup


@pytest.mark.parametrize(
    ("env", "option", "expected"),
    [
        ({"AWS_REGION": "us-east-2", "AWS_DEFAULT_REGION": "us-west-1"}, [], "us-east-2"),
        ({"AWS_DEFAULT_REGION": "us-west-1"}, [], "us-west-1"),
        ({"AWS_DEFAULT_REGION": "us-west-1"}, ["--region", "ap-south-1"], "ap-south-1"),
        ({"AWS_PROFILE": "hub"}, [], "eu-central-1"),  # the profile's region
        ({}, [], "eu-west-1"),  # nothing set: mlplane's default
    ],
    ids=["AWS_REGION-first", "AWS_DEFAULT_REGION", "option-wins", "profile-region", "default"],
)
def test_region_follows_the_standard_chain(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], option: list[str], expected: str
) -> None:
    from pathlib import Path

    config = Path(str(tmp_path)) / "config"
    config.write_text("[profile hub]\nregion = eu-central-1\n")
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    seen: list[str] = []

    def status(account: str, **kw: str) -> dict[str, str]:
        seen.append(kw["region"])
        return {}

    monkeypatch.setattr(operate, "status", status)
    result = CliRunner().invoke(app, ["status", "111111111111", *option], env=env)
    aws.reset()
    assert result.exit_code == 0, result.stderr
    assert seen == [expected]


def test_profile_and_endpoint_reach_mlplanes_clients(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from pathlib import Path

    config = Path(str(tmp_path)) / "config"
    config.write_text("[profile hub]\nregion = eu-central-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    seen: list[tuple[str, str]] = []

    def status(account: str, **kw: str) -> dict[str, str]:
        session = aws.hub_session(kw["region"])
        seen.append((session.profile_name, aws.client(session, "dynamodb").meta.endpoint_url))
        return {}

    monkeypatch.setattr(operate, "status", status)
    args = ["status", "111111111111", "--profile", "hub", "--endpoint-url", "http://localhost:4566"]
    result = CliRunner().invoke(app, args)
    aws.reset()
    assert result.exit_code == 0, result.stderr
    assert seen == [("hub", "http://localhost:4566")]


def test_version_and_short_help() -> None:
    runner = CliRunner()
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout.strip() == "mlplane 0.1.0"
    assert runner.invoke(app, ["status", "-h"]).stdout == runner.invoke(app, ["status", "--help"]).stdout
    assert "--install-completion" in runner.invoke(app, ["--help"]).stdout  # typer's shell completion


def test_help_shows_square_brackets_and_every_option_has_help() -> None:
    runner = CliRunner()
    run_help = runner.invoke(app, ["local", "run", "--help"]).stdout
    assert "[@N]" in run_help and "[=ErrorCode][@N|@N-M]" in run_help
    for name, sub in _commands(typer.main.get_command(app)):
        for param in sub.params:
            if param.param_type_name == "option" and param.name not in ("help", "install_completion"):
                assert getattr(param, "help", None), f"{name} {param.opts} has no help"


def _commands(command: Any, prefix: str = "mlplane") -> list[tuple[str, Any]]:
    found = [(prefix, command)]
    for name, sub in getattr(command, "commands", {}).items():
        found.extend(_commands(sub, f"{prefix} {name}"))
    return found


def test_adopt_starts_the_provision_workflow_in_adopt_mode(hub: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """`mlplane adopt ACCOUNT` (D3) against a deployed stack: one execution of the provision state machine whose
    input asks for adopt; the command prints the execution as `provision` and `reconcile` do."""
    sfn = boto3.client("stepfunctions", region_name=REGION)
    arn = sfn.create_state_machine(
        name="mlplane-provision",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/mlplane-provision",
    )["stateMachineArn"]
    outputs = {"LedgerTableName": "mlplane-ledger", "ProvisionStateMachineArn": arn}
    monkeypatch.setattr(operate, "stack_outputs", lambda name, region: outputs)
    result = CliRunner().invoke(app, ["adopt", "111111111111", "--requested-by", "alice", "--reason", "built by hand"])
    assert result.exit_code == 0, result.stderr
    started = json.loads(result.stdout)
    (execution,) = sfn.list_executions(stateMachineArn=arn)["executions"]
    assert started["execution_arn"] == execution["executionArn"]
    sent = json.loads(sfn.describe_execution(executionArn=execution["executionArn"])["input"])
    assert sent == {
        "account_id": "111111111111",
        "action": "adopt",
        "requested_by": "alice",
        "reason": "built by hand",
    }
