"""`mlplane local serve` driven by real, unmodified clients (issue 15): the README's operator commands.

`local serve` runs in its own process on a free port; the AWS CLI (awscli from PyPI, a dev dependency) and
`mlplane` reach it only through `--endpoint-url`, with fake credentials, as the README tells an operator.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from mlplane_cli.main import app
from tests.conftest import ROOT

# One served sandbox for the module, on one xdist worker: the plan, audit and deprovision tests read the account
# the first test made READY.
pytestmark = pytest.mark.xdist_group("local_serve")
BIN = Path(sys.executable).parent
ACCOUNT = "111111111111"  # the account events/manual/start.json names, placed by `local serve`
# The README's client environment: any keys (moto issues none), the sandbox's region; no profile or config.
CLIENT_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}
STARTUP_SECONDS = 120.0  # real time: deploying the stack takes a few seconds on a busy 2-core machine
OUTCOME_SECONDS = 240.0  # real time for one provisioning (the Wait states take no real time)


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """The first truthy value of `condition()`, called again until `timeout` real seconds have passed.

    Each call here is a client process (one to two seconds), which paces the loop: nothing sleeps."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
    raise AssertionError(f"{what}: not within {timeout:g} s")


def client(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture(scope="module")
def served() -> Iterator[dict[str, Any]]:
    """`mlplane local serve --port 0 --json`: its one JSON line (endpoint, outputs), then SIGTERM at the end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    server = subprocess.Popen(
        [str(BIN / "mlplane"), "local", "serve", "--port", "0", "--json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert server.stdout is not None
    try:
        readable, _, _ = select.select([server.stdout], [], [], STARTUP_SECONDS)
        line = server.stdout.readline() if readable else ""
        assert line, f"local serve printed nothing (exit status {server.poll()})"
        yield json.loads(line) | {"env": {**env, **CLIENT_ENV}}
    finally:
        server.terminate()
        try:
            assert server.wait(timeout=60) == 0  # SIGTERM stops it cleanly
        finally:
            if server.poll() is None:
                server.kill()


@pytest.fixture(scope="module")
def ready(served: dict[str, Any]) -> dict[str, Any]:
    """The README's `aws stepfunctions start-execution` of events/manual/start.json against the served stack,
    then `mlplane status` until the account settles: the execution's name and the status document. Each test
    that needs the READY account asks for it, so each also runs alone."""
    url, outputs, env = served["endpoint"], served["outputs"], served["env"]
    assert set(outputs) >= {"ProvisionStateMachineArn", "DeprovisionStateMachineArn", "LedgerTableName"}
    name = f"op-{ACCOUNT}-serve"
    started = client(
        *(str(BIN / "aws"), "stepfunctions", "start-execution", "--endpoint-url", url),
        *("--state-machine-arn", outputs["ProvisionStateMachineArn"], "--name", name),
        *("--input", "file://events/manual/start.json"),
        env=env,
    )
    assert started.returncode == 0, started.stderr
    assert json.loads(started.stdout)["executionArn"].endswith(f":{name}")

    def settled() -> dict[str, Any] | None:
        answer = client(str(BIN / "mlplane"), "status", ACCOUNT, "--endpoint-url", url, env=env)
        assert answer.returncode == 0, answer.stderr
        document: dict[str, Any] = json.loads(answer.stdout)
        status = document["status"]
        return document if status and status["status"] not in ("PENDING", "PROVISIONING") else None

    return {"execution": name, "document": wait_for(settled, OUTCOME_SECONDS, f"{ACCOUNT} settled")}


def test_readme_start_execution_with_the_aws_cli_ends_ready(served: dict[str, Any], ready: dict[str, Any]) -> None:
    url, outputs, env = served["endpoint"], served["outputs"], served["env"]
    document = ready["document"]
    assert (document["status"]["status"], document["status"]["execution"]) == ("READY", ready["execution"])
    assert {"ec2:vpc", "ec2:nat", "iam:user", "kms:key"} <= {r["type"] for r in document["resources"]}

    item = client(
        *(str(BIN / "aws"), "dynamodb", "get-item", "--endpoint-url", url, "--output", "json"),
        *("--table-name", outputs["LedgerTableName"]),
        *("--key", json.dumps({"pk": {"S": ACCOUNT}, "sk": {"S": "STATUS"}})),
        env=env,
    )
    assert item.returncode == 0, item.stderr
    assert json.loads(item.stdout)["Item"]["status"] == {"S": "READY"}


def test_plan_and_audit_take_the_served_stacks_settings_and_read_the_ready_account(
    served: dict[str, Any], ready: dict[str, Any]
) -> None:
    """`mlplane plan|audit --endpoint-url`: the settings come from the stack as in AWS (CloudFormation's
    DescribeStackResource of ValidateAccountFunction, then Lambda's GetFunctionConfiguration of it), and the
    READY account (`ready`) is read through the endpoint: nothing to do, nothing to reconcile,
    no drift. With a stack that does not exist, one line and exit 1."""
    assert ready["document"]["status"]["status"] == "READY"
    url, env = served["endpoint"], served["env"]
    mlplane = str(BIN / "mlplane")
    planned = client(mlplane, "plan", ACCOUNT, "--endpoint-url", url, "--json", env=env)
    assert planned.returncode == 0, planned.stderr
    plan = json.loads(planned.stdout)
    assert plan["verdict"] == "NOTHING_TO_DO" and plan["reason"].startswith("READY since"), plan

    reconcile = client(mlplane, "plan", "--reconcile", ACCOUNT, "--endpoint-url", url, "--json", env=env)
    assert reconcile.returncode == 0, reconcile.stderr
    document = json.loads(reconcile.stdout)
    assert document["verdict"] == "RECONCILE"
    assert {"ec2:vpc", "ec2:subnet", "iam:user", "kms:key"} <= {c["type"] for c in document["changes"]}
    assert {c["action"] for c in document["changes"] if c["type"] != "eks"} == {"keep"}, document["changes"]

    audited = client(mlplane, "audit", ACCOUNT, "--endpoint-url", url, "--json", env=env)
    assert audited.returncode == 0, audited.stdout + audited.stderr
    audit = json.loads(audited.stdout)
    [report] = audit["accounts"]
    assert audit["clean"] and report["audited"] and report["account_id"] == ACCOUNT, audit
    assert [f for f in report["findings"] if f["severity"] != "vendor"] == []

    missing = client(mlplane, "plan", ACCOUNT, "--endpoint-url", url, "--stack", "not-mlplane", env=env)
    assert missing.returncode == 1
    [line] = missing.stderr.strip().splitlines()
    assert line.startswith("mlplane: ") and "not-mlplane" in line and "does not exist" in line, line


def test_deprovision_through_the_endpoint_is_refused_until_the_admin_removes_the_data_plane(
    served: dict[str, Any], ready: dict[str, Any]
) -> None:
    """`mlplane deprovision --endpoint-url --wait` of the READY account: refused while the vendor's EKS cluster
    is there (REQUIREMENTS C7); the AAC admin then removes the data plane through the EKS API with the member
    role (node groups first: EKS refuses DeleteCluster while they exist, ResourceInUseException), and the next
    deprovision ends DEPROVISIONED."""
    assert ready["document"]["status"]["status"] == "READY"
    url, env = served["endpoint"], served["env"]
    mlplane, aws = str(BIN / "mlplane"), str(BIN / "aws")
    refused = client(mlplane, "deprovision", ACCOUNT, "--endpoint-url", url, "--wait", env=env)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert json.loads(refused.stdout.splitlines()[0])["started"]  # stdout is the output: no library log line
    status = json.loads(client(mlplane, "status", ACCOUNT, "--endpoint-url", url, env=env).stdout)["status"]
    assert status["status"] == "READY"
    assert "Conflict" in refused.stdout and "vendor EKS cluster" in refused.stdout, refused.stdout

    assumed = client(
        *(aws, "sts", "assume-role", "--endpoint-url", url, "--output", "json"),
        *("--role-arn", f"arn:aws:iam::{ACCOUNT}:role/AWSControlTowerExecution", "--role-session-name", "aac-admin"),
        env=env,
    )
    assert assumed.returncode == 0, assumed.stderr
    credentials = json.loads(assumed.stdout)["Credentials"]
    admin = env | {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }

    def eks(*args: str) -> dict[str, Any]:
        answer = client(aws, "eks", *args, "--endpoint-url", url, "--output", "json", env=admin)
        assert answer.returncode == 0, answer.stderr
        return json.loads(answer.stdout) if answer.stdout.strip() else {}

    [cluster] = eks("list-clusters")["clusters"]
    nodegroups = eks("list-nodegroups", "--cluster-name", cluster)["nodegroups"]
    assert nodegroups
    early = client(aws, "eks", "delete-cluster", "--name", cluster, "--endpoint-url", url, env=admin)
    assert early.returncode != 0 and "ResourceInUseException" in early.stderr
    for nodegroup in nodegroups:
        eks("delete-nodegroup", "--cluster-name", cluster, "--nodegroup-name", nodegroup)
    eks("delete-cluster", "--name", cluster)

    done = client(mlplane, "deprovision", ACCOUNT, "--endpoint-url", url, "--wait", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    status = json.loads(client(mlplane, "status", ACCOUNT, "--endpoint-url", url, env=env).stdout)["status"]
    assert status["status"] == "DEPROVISIONED"


def test_unknown_stack_is_cloudformations_validation_error(served: dict[str, Any]) -> None:
    """DescribeStacks of a stack that does not exist: ValidationError "Stack with id X does not exist"."""
    answer = client(
        *(str(BIN / "aws"), "cloudformation", "describe-stacks", "--endpoint-url", served["endpoint"]),
        *("--stack-name", "not-mlplane"),
        env=served["env"],
    )
    assert answer.returncode != 0
    assert "(ValidationError)" in answer.stderr and "Stack with id not-mlplane does not exist" in answer.stderr


def test_a_port_in_use_is_one_line_exit_2() -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["local", "serve", "--port", str(port)])
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"mlplane: --port {port}: Address already in use")


@pytest.mark.parametrize("speed", ["-1", "fast", "inf"])
def test_bad_speed_is_one_line_exit_2(speed: str) -> None:
    result = CliRunner().invoke(app, ["local", "serve", "--speed", speed])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "--speed" in result.stderr


def test_the_ticker_moves_the_clock_at_its_speed() -> None:
    from mlplane_sandbox import clock as clock_module
    from mlplane_sandbox.serve import Ticker

    clock = clock_module.reset()
    moved = threading.Event()
    clock.on_advance(lambda now: moved.set())
    ticker = Ticker(3600.0, interval=0.01)
    ticker.start()
    try:
        assert moved.wait(timeout=30)
    finally:
        ticker.stop()
    # Every step is speed x interval virtual seconds: an hour per real second, 36 s per 10 ms tick.
    assert clock.slept > 0 and clock.slept % 36.0 == pytest.approx(0.0, abs=1e-6)
