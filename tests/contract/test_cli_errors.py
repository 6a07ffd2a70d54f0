"""Every command answers a mistake in one line, exit 2 for usage/input, 1 for AWS or the outcome (issue 15).

Driven through the installed `mlplane` (subprocess, the real entry point) for the cases that need no AWS, and
through typer's CliRunner against moto for those where AWS answers (a table that does not exist, a ledger).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from mlplane import aws
from mlplane.ledger import Ledger, Status
from mlplane_cli import operate
from mlplane_cli.main import app
from tests.module.moto_account import create_ledger_table, use_fake_credentials

ROOT = Path(__file__).resolve().parents[2]
MLPLANE = str(Path(sys.executable).parent / "mlplane")
REGION = "eu-west-1"
AWS_COMMANDS = ["provision", "resume", "deprovision", "status", "adopt"]


def no_aws_env(**extra: str) -> dict[str, str]:
    """No credentials, no config: nothing can reach AWS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    return env | extra


def mlplane(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MLPLANE, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env or no_aws_env(),
        stdin=subprocess.DEVNULL,
        check=False,
    )


def one_line(result: subprocess.CompletedProcess[str] | object, code: int) -> str:
    """The result's exit code is `code`, stderr is one `mlplane:` line and no traceback; returns the line."""
    returncode = getattr(result, "returncode", getattr(result, "exit_code", None))
    stderr = str(getattr(result, "stderr", ""))
    assert returncode == code, stderr[-1000:]
    assert "Traceback" not in stderr
    (line,) = stderr.strip().splitlines()
    assert line.startswith("mlplane: ")
    return line


# -- no AWS needed: usage and input errors, and AWS that cannot be reached -------------------------------------


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["nosuch"], "No such command 'nosuch'"),
        (["status"], "Missing argument 'ACCOUNT_ID'"),
        (["accounts", "--bogus"], "No such option: --bogus"),
        (["local", "run"], "Missing argument 'EVENT_FILE'"),
        (["local", "run", "events/manual/start.json", "--bogus"], "No such option: --bogus"),
        (["local", "run", "nope.json"], "nope.json: cannot read"),
        (["local", "burst", "0"], "COUNT"),
        (["local", "burst", "x"], "COUNT"),
        (["plan", "11111111111"], "account id '11111111111' is not 12 digits"),
        (["provision", "11111111111"], "account id '11111111111' is not 12 digits"),
        (["status", "111111111111", "--region", "nowhere"], "region 'nowhere' is not an AWS region"),
        (["status", "111111111111", "--endpoint-url", "ftp://x"], "--endpoint-url 'ftp://x'"),
        (["accounts", "--status", "SLEEPING"], "--status 'SLEEPING': expected one of"),
        (["demo", "nope.json"], "nope.json: cannot read"),
        (["adopt"], "give an ACCOUNT_ID"),
        (["adopt", "11111111111"], "account id '11111111111' is not 12 digits"),
        (["adopt", "111111111111", "--hand-built-difference", "dns-off"], "--hand-built-difference is for --local"),
        (["adopt", "--local", "--hand-built-difference", "nope"], "--hand-built-difference 'nope': expected one of"),
        (["adopt", "--local", "--wait"], "--wait is for a deployed stack"),
        (
            ["local", "run", "events/manual/start.json", "--hand-built-difference", "dns-off"],
            "--hand-built-difference needs --hand-built",
        ),
        (["local", "run", "events/manual/start.json", "--customer-role", "bad role"], "--customer-role 'bad role'"),
    ],
)
def test_usage_and_input_errors_are_one_line_exit_2(args: list[str], named: str) -> None:
    line = one_line(mlplane(*args), 2)
    assert named in line


@pytest.mark.parametrize(
    "event",
    [
        {"account_id": "11111111111"},
        {
            "source": "aws.controltower",
            "detail-type": "AWS Service Event via CloudTrail",
            "detail": {
                "eventName": "CreateManagedAccount",
                "serviceEventDetails": {
                    "createManagedAccountStatus": {
                        "state": "SUCCEEDED",
                        "organizationalUnit": {"organizationalUnitName": "Workloads", "organizationalUnitId": "ou-1"},
                        "account": {"accountName": "x", "accountId": "11111111111"},
                    }
                },
            },
        },
    ],
    ids=["manual-start", "control-tower-event"],
)
def test_demo_with_an_11_digit_account_is_one_line_before_the_live_view(tmp_path: Path, event: object) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(event))
    result = mlplane("demo", str(path))
    assert "account" in one_line(result, 2) and result.stdout == ""  # no live table drawn


@pytest.mark.parametrize(
    "args",
    [
        ["local", "run", "events/manual/start.json", "--config", '{"vpc_cidrs": "10.0.0.0/16"}'],
        ["local", "run", "events/manual/start.json", "--fail", "ec2:CreateVpc@x"],
        ["local", "run", "events/manual/start.json", "--hand-built-difference", "dns-off"],
        ["plan", "events/manual/start.json", "--local", "--config", '{"egress_mode": "NAT"}'],
        ["adopt", "111111111111", "--local", "--hand-built-difference", "nope"],
        ["local", "burst", "3", "--config", '{"vpc_cidr": "ten"}'],
    ],
    ids=lambda args: " ".join(args[:2]) + " " + args[-2],
)
def test_a_bad_local_command_line_is_refused_before_the_sandbox_loads(args: list[str]) -> None:
    """The local commands check their options (mlplane_sandbox.options) before importing moto and the sandbox:
    the one-line refusal comes at once, not after a second of loading."""
    probe = (
        "import sys\n"
        "from mlplane_cli.main import app\n"
        "try:\n"
        "    app(sys.argv[1:])\n"
        "except SystemExit as exit:\n"
        "    print(exit.code, 'moto' in sys.modules, file=sys.stderr)\n"
    )
    done = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, cwd=ROOT, check=False)
    *message, verdict = done.stderr.strip().splitlines()
    assert len(message) == 1 and message[0].startswith("mlplane: "), done.stderr
    assert verdict == "2 False", done.stderr  # exit 2, moto never imported


@pytest.mark.parametrize("command", [*AWS_COMMANDS, "accounts"])
def test_without_credentials_every_aws_command_is_one_line_exit_1(command: str) -> None:
    args = [command] if command == "accounts" else [command, "111111111111"]
    assert "Unable to locate credentials" in one_line(mlplane(*args), 1)


@pytest.mark.parametrize("command", [*AWS_COMMANDS, "accounts"])
@pytest.mark.parametrize("how", ["AWS_PROFILE", "--profile"])
def test_an_unknown_profile_is_one_line_exit_2(command: str, how: str) -> None:
    args = [command] if command == "accounts" else [command, "111111111111"]
    if how == "AWS_PROFILE":
        result = mlplane(*args, env=no_aws_env(AWS_PROFILE="nope"))
    else:
        result = mlplane(*args, "--profile", "nope")
    assert "AWS profile 'nope'" in one_line(result, 2)


def test_the_endpoint_url_is_where_the_calls_go() -> None:
    """--endpoint-url reaches every client: nothing listens on port 9, so the call fails there, in one line."""
    env = no_aws_env(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")
    result = mlplane("status", "111111111111", "--table", "t", "--endpoint-url", "http://127.0.0.1:9", env=env)
    assert "http://127.0.0.1:9" in one_line(result, 1)


# -- AWS answers (moto) ------------------------------------------------------------------------------------------


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[Ledger]:
    use_fake_credentials(monkeypatch, REGION)
    with mock_aws():
        create_ledger_table("mlplane-ledger", REGION)
        outputs = {"LedgerTableName": "mlplane-ledger"}
        monkeypatch.setattr(operate, "stack_outputs", lambda name, region: outputs if name == "mlplane" else {})
        yield Ledger(boto3.client("dynamodb", region_name=REGION), "mlplane-ledger")
    aws.reset()


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def test_status_of_a_table_that_does_not_exist_is_one_line_exit_1(hub: Ledger) -> None:
    line = one_line(invoke("status", "111111111111", "--table", "t"), 1)
    assert "ResourceNotFoundException" in line and " t " in line


def test_a_stack_without_mlplane_outputs_is_an_input_error(hub: Ledger) -> None:
    assert "has no output LedgerTableName" in one_line(invoke("accounts", "--stack", "other"), 2)


def test_resume_of_an_account_that_is_not_held_is_an_outcome_failure(hub: Ledger) -> None:
    hub.set_status("111111111111", Status.READY, execution="ct-111111111111-abc")
    assert "not ROLLBACK_HELD" in one_line(invoke("resume", "111111111111"), 1)


def test_an_unexpected_exception_is_one_line_naming_its_type(hub: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something mlplane did not foresee")

    monkeypatch.setattr(operate, "status", broken)
    line = one_line(invoke("status", "111111111111"), 1)
    assert "RuntimeError: something mlplane did not foresee" in line
