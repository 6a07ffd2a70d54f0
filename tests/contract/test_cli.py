"""`mlplane local run` keeps DESIGN.md's contract: JSON keys, exit statuses, one-line errors (issue 3).

The contract of the process (stdout exactly one JSON document, the exit status of the installed executable,
nothing but one line on stderr) is tested by running the executable (`run`); what a command says and the
status it ends with, for the commands that run whole sandbox scenarios, in-process (the `cli` fixture).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Cli

ROOT = Path(__file__).resolve().parents[2]
MLPLANE = str(Path(sys.executable).parent / "mlplane")
KEYS = {"outcome", "account_id", "executions", "leftovers", "api_calls", "inventory", "error"}


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MLPLANE, "local", "run", *args], capture_output=True, text=True, cwd=ROOT, check=False)


def test_success_event_json_contract_and_exit_zero() -> None:
    result = run("events/controltower/create_managed_account_succeeded.json", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    document = json.loads(result.stdout)  # stdout is exactly one JSON document
    assert set(document) >= KEYS
    assert '"_aws"' not in result.stderr  # the handlers' Powertools metrics stay in the sandbox (issue 15)
    assert document["outcome"] == "READY"
    assert document["account_id"] == "111111111111"
    for call in document["api_calls"]:
        assert set(call) == {"principal", "call", "ok"}
    for section in (
        "vpcs",
        "subnets",
        "route_tables",
        "internet_gateways",
        "nat_gateways",
        "vpc_endpoints",
        "iam_users",
        "iam_policies",
        "iam_roles",
        "kms_keys",
        "secrets",
        "access_keys",
        "quota_requests",
        "eks_clusters",
    ):
        assert section in document["inventory"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("this is not json {", "not valid JSON"),
        (
            json.dumps(
                {
                    "source": "aws.controltower",
                    "detail-type": "AWS Service Event via CloudTrail",
                    "detail": {
                        "eventName": "CreateManagedAccount",
                        "serviceEventDetails": {
                            "createManagedAccountStatus": {
                                "state": "SUCCEEDED",
                                "organizationalUnit": {
                                    "organizationalUnitName": "Workloads",
                                    "organizationalUnitId": "ou-1",
                                },
                                "account": {"accountName": "x"},
                            }
                        },
                    },
                }
            ),
            "accountId",
        ),
        (json.dumps({"account_id": "12345"}), "account_id"),
    ],
    ids=["not-json", "event-without-account-id", "manual-with-short-account-id"],
)
def test_bad_input_file_exits_2_with_one_line_error(tmp_path: Path, content: str, expected: str) -> None:
    bad = tmp_path / "input.json"
    bad.write_text(content)
    result = run(str(bad), "--json")
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--fail", "ec2CreateVpc"],
        ["--vendor", "sometimes"],
        ["--config", '{"nope": 1}'],
        ["--config", '{"sa_policy_name": "MyPolicy"}'],
        ["--redeliver", "NotAState"],
        ["--tgw-auto-accept", "sometimes"],
        ["--consistency-delay", "-1"],
        ["--consistency-delay", "soon"],
    ],
    ids=[
        "bad-fail-spec",
        "bad-vendor",
        "unknown-config-key",
        "policy-without-prefix",
        "redeliver-non-task",
        "bad-tgw-auto-accept",
        "negative-consistency-delay",
        "consistency-delay-not-a-number",
    ],
)
def test_usage_errors_exit_2_with_one_line(args: list[str]) -> None:
    result = run("events/controltower/create_managed_account_succeeded.json", "--json", *args)
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr


def test_fail_create_vpc_rolls_back_exit_1() -> None:
    result = run("events/controltower/create_managed_account_succeeded.json", "--json", "--fail", "ec2:CreateVpc")
    assert result.returncode == 1
    document = json.loads(result.stdout)
    assert document["outcome"] == "ROLLED_BACK"
    assert document["leftovers"] == []
    assert "ec2:CreateVpc" in document["error"]["message"]


def test_plan_local_prints_the_plan_with_read_only_calls(cli: Cli) -> None:
    result = cli("plan", "events/controltower/create_managed_account_succeeded.json", "--local", "--json")
    assert result.exit_code == 0, result.stderr[-2000:]
    document = json.loads(result.stdout)
    assert document["account_id"] == "111111111111"
    assert document["verdict"] == "PROVISION"
    assert len(document["network"]["subnets"]) == 12
    (policy,) = [c for c in document["changes"] if c["type"] == "iam:policy"]
    assert policy["action"] == "create" and policy["detail"] == "4545 characters"
    calls = [c["call"].split(":")[1] for c in document["api_calls"]]
    assert calls and all(c.startswith(("Describe", "Get", "List", "AssumeRole")) for c in calls)
    human = cli("plan", "events/controltower/create_managed_account_failed.json", "--local")
    assert human.exit_code == 0, human.stderr[-2000:]
    assert "IGNORED" in human.stdout and "SUCCEEDED only" in human.stdout


@pytest.mark.parametrize(
    ("option", "named"),
    [
        (["--fail", "ec2:CreateVpc@99"], "--fail ec2:CreateVpc@99"),
        (["--crash", "ec2:CreateNatGateway@9"], "--crash ec2:CreateNatGateway@9"),
        (["--redeliver", "CreateNetwork@50"], "--redeliver CreateNetwork@50"),
    ],
)
def test_a_fault_that_never_fired_is_a_usage_error_naming_it(cli: Cli, option: list[str], named: str) -> None:
    """A run that ends READY with a fault that never happened proves nothing (DESIGN.md contract): exit 2."""
    result = cli("local", "run", "events/controltower/create_managed_account_succeeded.json", *option, "--json")
    assert result.exit_code == 2, result.stderr[-2000:]
    assert result.stdout == ""
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("mlplane:")]
    assert "never fired" in line and named in line
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("spec", ["ec2:CreateVcp", "foo:Bar"])
def test_a_fault_on_an_operation_aws_does_not_have_is_refused_before_running(spec: str) -> None:
    result = run("events/controltower/create_managed_account_succeeded.json", "--fail", spec)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "botocore" in result.stderr


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),  # RecursionError in json.loads
        ('{"account_id": ' + "1" * 5_000 + "}", "4,300 digits"),  # ValueError: CPython's int conversion limit
    ],
    ids=["100000-deep-array", "5000-digit-account-id"],
)
def test_inputs_python_cannot_parse_are_one_line_usage_errors(tmp_path: Path, text: str, named: str) -> None:
    """Issue 13 section 6: as an event file and as --config, exit 2 with one line, no traceback."""
    bad = tmp_path / "bad.json"
    bad.write_text(text, encoding="utf-8")
    runs = [[str(bad)], ["events/manual/start.json", "--config", str(bad)]]
    if len(text) < 100_000:  # a command-line argument is limited to 128 KiB on Linux
        runs.append(["events/manual/start.json", "--config", text])
    for args in runs:
        result = run(*args, "--json")
        assert result.returncode == 2, (args[-1][:40], result.stderr[-500:])
        assert "Traceback" not in result.stderr
        (line,) = result.stderr.strip().splitlines()
        assert named in line


def test_resume_takes_a_12_digit_account_and_says_what_it_does() -> None:
    bad = subprocess.run([MLPLANE, "resume", "12345"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert bad.returncode == 2
    assert bad.stderr.strip() == "mlplane: account id '12345' is not 12 digits"
    usage = subprocess.run([MLPLANE, "resume", "--help"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert usage.returncode == 0 and "ROLLBACK_HELD" in usage.stdout


@pytest.mark.parametrize(
    ("args", "code", "named"),
    [
        (["plan", "111111111111"], 1, "Unable to locate credentials"),
        (["status", "111111111111"], 1, "Unable to locate credentials"),
        (["demo", "nope.json"], 2, "nope.json: cannot read"),
    ],
    ids=["plan-without-credentials", "status-without-credentials", "demo-missing-file"],
)
def test_commands_without_aws_or_with_a_missing_file_answer_in_one_line(args: list[str], code: int, named: str) -> None:
    """No traceback reaches the user (issue 15): one line naming the problem, 1 for AWS, 2 for bad input."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    result = subprocess.run(
        [MLPLANE, *args], capture_output=True, text=True, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, check=False
    )
    assert result.returncode == code, result.stderr[-1000:]
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert named in line


@pytest.mark.parametrize(
    ("event", "code"),
    [("create_managed_account_failed", 0), ("create_managed_account_other_ou", 0)],
)
def test_demo_exits_as_local_run_does(cli: Cli, event: str, code: int) -> None:
    """IGNORED is not a failure for `local run`; the demo says the same (issue 15: it exited 1 before)."""
    path = f"events/controltower/{event}.json"
    demo = cli("demo", path)
    local = cli("local", "run", path, "--json")
    assert json.loads(local.stdout)["outcome"] == "IGNORED"
    assert demo.exit_code == local.exit_code == code, demo.stderr[-1000:]
    assert "IGNORED" in demo.stdout


def test_human_summaries_explain_themselves(cli: Cli) -> None:
    """Issue 15: what each count counts, why AWS still shows a key and a quota request, why IGNORED, what next."""
    retired = cli("local", "run", "events/controltower/create_managed_account_succeeded.json", "--then-deprovision")
    assert retired.exit_code == 0, retired.stderr[-2000:]
    text = " ".join(retired.stdout.split())
    assert "still there, by AWS's rules: kms:key" in text and "scheduled for deletion on" in text
    assert "quota increase request" in text and "cannot be withdrawn" in text
    assert "next: the account holds nothing of mlplane's" in text
    ignored = cli("local", "run", "events/controltower/create_managed_account_other_ou.json")
    text = " ".join(ignored.stdout.split())
    assert "IGNORED" in text and "is not in AllowedOus" in text and "next: nothing to do" in text
    demo = cli("demo")
    text = " ".join(demo.stdout.split())
    assert demo.exit_code == 0, demo.stderr[-2000:]
    assert "13 route tables (12 mlplane's + the VPC's main table)" in text
    assert "1 eks clusters (the vendor's (AAC): never touched by mlplane)" in text and "3 elastic ips" in text
    assert "next: the AAC admin can use the account" in text
    assert "AlreadyReady" not in text  # Choice states route; they are not steps


def test_audit_local_is_clean_after_ready_and_names_drift_with_exit_1(cli: Cli) -> None:
    clean = cli("audit", "--local", "--json")
    assert clean.exit_code == 0, clean.stderr[-2000:]
    assert json.loads(clean.stdout)["clean"] is True
    drifted = cli("audit", "--local", "--drift", "detach-policy", "--json")
    assert drifted.exit_code == 1, drifted.stderr[-2000:]
    (report,) = json.loads(drifted.stdout)["accounts"]
    assert [(f["severity"], f["type"]) for f in report["findings"] if f["severity"] != "vendor"] == [
        ("missing", "iam:attachment")
    ]
    usage = subprocess.run([MLPLANE, "audit"], capture_output=True, text=True, cwd=ROOT, check=False)
    assert usage.returncode == 2 and usage.stderr.strip() == "mlplane: give an ACCOUNT_ID or --all"
