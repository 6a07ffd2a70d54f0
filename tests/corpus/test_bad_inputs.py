"""The bad-input corpus (issue 8 item 2): every input in cases.json is IGNORED, REJECTED or refused with exit
status 2 and one line on stderr, and no mutating call is ever made in the member account.

- `exit2` cases run the real CLI (`mlplane local run FILE --json [--config ...] [--absent]`) in subprocesses.
  They are started in the background when the module's first test runs, one per CPU, while the in-process
  cases run; each `exit2` test then waits for its own process (under pytest-xdist each test runs its own).
- `IGNORED` and `REJECTED` cases run in-process, through `mlplane_sandbox.runner.Sandbox`. Cases with the same
  configuration and `absent` share one Sandbox (each case names its own account, so they cannot interfere).

cases.json: `name`, `file` (under tests/corpus/), optional `config` (an object, or for `exit2` a raw --config
string), `absent`, `setup` (`suspended`: the account is placed SUSPENDED in Workloads; `ou:<OU>`: placed
ACTIVE in that OU; both need `absent` so the runner does not place it again), `expect`, optional
`error_contains` (in the stderr line, or in the REJECTED error) and `why`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

from mlplane_sandbox.recording import MUTATING_PREFIXES

if TYPE_CHECKING:
    from mlplane_sandbox.runner import RunResult, Sandbox

pytestmark = pytest.mark.filterwarnings("ignore:No application metrics to publish")

CORPUS = Path(__file__).resolve().parent
ROOT = CORPUS.parents[1]
MLPLANE = str(Path(sys.executable).parent / "mlplane")
CASES: list[dict[str, Any]] = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))
EXPECTS = ("IGNORED", "REJECTED", "exit2")

# What the hub may do for a refused input: start the execution that ValidateAccount then fails, write its ledger.
HUB_WRITES = frozenset({"states:StartExecution", "dynamodb:PutItem", "dynamodb:UpdateItem"})
_EXIT2_TEST = "test_input_is_refused_with_exit_2_and_one_line"


def _key(case: dict[str, Any]) -> str:
    """Cases with the same key share one Sandbox."""
    return json.dumps([case.get("config", {}), bool(case.get("absent"))], sort_keys=True)


EXIT2 = [c for c in CASES if c["expect"] == "exit2"]
IN_PROCESS = sorted((c for c in CASES if c["expect"] != "exit2"), key=_key)  # grouped: each Sandbox opens once


def _ids(cases: list[dict[str, Any]]) -> list[str]:
    return [c["name"] for c in cases]


def _mutating(call: dict[str, Any]) -> bool:
    operation = str(call["call"]).partition(":")[2]
    return operation.startswith(MUTATING_PREFIXES)


# -- the manifest -----------------------------------------------------------------------------------------------
def test_manifest_is_complete_and_consistent() -> None:
    names = [c["name"] for c in CASES]
    assert len(CASES) >= 40
    assert len(set(names)) == len(names), "case names must be unique"
    for case in CASES:
        assert case["expect"] in EXPECTS, case["name"]
        assert (CORPUS / case["file"]).is_file(), case["file"]
        assert set(case) <= {"name", "file", "config", "absent", "setup", "expect", "error_contains", "why"}, case
        if case["expect"] != "exit2":
            assert isinstance(case.get("config", {}), dict), case["name"]
        if "setup" in case:
            assert case.get("absent") is True, f"{case['name']}: setup places the account itself; needs absent"
            assert case["setup"] == "suspended" or case["setup"].startswith("ou:"), case["name"]
    unused = {p.name for p in (CORPUS / "inputs").iterdir()} - {Path(c["file"]).name for c in CASES}
    assert not unused, f"input files no case uses: {sorted(unused)}"
    for expect in EXPECTS:
        assert any(c["expect"] == expect for c in CASES), expect


# -- exit 2: the real CLI, in the background ------------------------------------------------------------------
def _cli(case: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    args = [MLPLANE, "local", "run", str(CORPUS / case["file"]), "--json"]
    if "config" in case:
        config = case["config"]
        args += ["--config", config if isinstance(config, str) else json.dumps(config)]
    if case.get("absent"):
        args.append("--absent")
    return subprocess.run(args, capture_output=True, text=True, cwd=ROOT, check=False, timeout=120)


@pytest.fixture(scope="module", autouse=True)
def cli_runs(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    """Start every selected exit-2 case now, in the background; the in-process cases run meanwhile.

    Not under pytest-xdist: its workers already run tests in parallel, and each would start every case.
    """
    if os.environ.get("PYTEST_XDIST_WORKER"):
        yield {}
        return
    selected: set[str] = set()
    for item in request.session.items:
        if isinstance(item, pytest.Function) and item.originalname == _EXIT2_TEST:
            selected.add(cast("dict[str, Any]", item.callspec.params["case"])["name"])
    with ThreadPoolExecutor(max_workers=max(1, os.cpu_count() or 1)) as pool:
        futures = {case["name"]: pool.submit(_cli, case) for case in EXIT2 if case["name"] in selected}
        yield futures
        for future in futures.values():
            future.cancel()


# -- IGNORED and REJECTED: in-process, one Sandbox per configuration -------------------------------------------
class _Sandboxes:
    """At most one Sandbox is open (moto and the recording are process-wide): reopen when the group changes."""

    def __init__(self) -> None:
        self.key: str | None = None
        self.sandbox: Sandbox | None = None

    def get(self, case: dict[str, Any]) -> Sandbox:
        from mlplane_sandbox.runner import Options, Sandbox

        if self.key != _key(case) or self.sandbox is None:
            self.close()
            sandbox = Sandbox(Options(config=dict(case.get("config", {})), absent=bool(case.get("absent"))))
            self.sandbox = sandbox.__enter__()
            self.key = _key(case)
        return self.sandbox

    def close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.__exit__(None, None, None)
        self.sandbox = None
        self.key = None


@pytest.fixture(scope="module")
def sandboxes() -> Iterator[_Sandboxes]:
    pool = _Sandboxes()
    try:
        yield pool
    finally:
        pool.close()


def _run_in_process(sandbox: Sandbox, case: dict[str, Any]) -> tuple[str, RunResult]:
    from mlplane.accounts.events import parse_start

    raw = json.loads((CORPUS / case["file"]).read_text(encoding="utf-8"))
    account_id = parse_start(raw).account_id
    setup = case.get("setup")
    if setup is not None:
        role = sandbox.settings.member_role_name
        if setup == "suspended":
            sandbox.world.place_account(account_id, "Workloads", role_name=role, status="SUSPENDED")
        else:
            sandbox.world.place_account(account_id, setup.removeprefix("ou:"), role_name=role)
    return account_id, sandbox.run(raw)


@pytest.mark.parametrize("case", IN_PROCESS, ids=_ids(IN_PROCESS))
def test_input_is_ignored_or_rejected_without_changing_the_member(case: dict[str, Any], sandboxes: _Sandboxes) -> None:
    from mlplane_sandbox.world import HUB_ACCOUNT

    sandbox = sandboxes.get(case)
    account_id, result = _run_in_process(sandbox, case)

    assert result.outcome == case["expect"], f"{case['name']}: {result.outcome} {result.error}"
    assert result.account_id == account_id
    member = f"arn:aws:sts::{account_id}:"
    hub = f"arn:aws:sts::{HUB_ACCOUNT}:"
    member_mutations = [c for c in result.api_calls if c["principal"].startswith(member) and _mutating(c)]
    assert member_mutations == [], member_mutations
    foreign_mutations = [c for c in result.api_calls if not c["principal"].startswith(hub) and _mutating(c)]
    assert foreign_mutations == [], foreign_mutations
    hub_mutations = {c["call"] for c in result.api_calls if c["principal"].startswith(hub) and _mutating(c)}
    assert hub_mutations <= HUB_WRITES, hub_mutations
    assert result.leftovers == []
    assert sandbox.ledger().status(account_id) is None, "a refused input leaves no status in the ledger"

    if case["expect"] == "IGNORED":
        assert result.executions == []
        assert result.api_calls == [], "an ignored event invokes nothing"
        assert result.error is None
    else:
        assert [e["state_machine"] for e in result.executions] == ["provision"]
        assert result.executions[0]["status"] == "FAILED"
        assert result.error is not None
        message = result.error["message"]
        assert "\n" not in message and "Traceback" not in message, message
        assert case["error_contains"] in message, message


# -- exit 2 -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", EXIT2, ids=_ids(EXIT2))
def test_input_is_refused_with_exit_2_and_one_line(
    case: dict[str, Any], cli_runs: dict[str, Future[subprocess.CompletedProcess[str]]]
) -> None:
    started = cli_runs.get(case["name"])
    result = started.result() if started is not None else _cli(case)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 2, f"{case['name']}: exit {result.returncode}: {result.stderr[-2000:]}"
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr[-3000:]
    assert lines[0].startswith("mlplane: "), lines[0]
    assert case["error_contains"] in lines[0], lines[0]
