"""Shared fixtures: sample events, a fake Lambda context, and the sandbox."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

# A sandbox run allocates a few hundred thousand objects (botocore's parsed answers, moto's models, the ASL
# interpreter's frames), and CPython's default thresholds (700, 10, 10) ran the cyclic collector often enough to
# cost about 9% of a READY run, mostly rescanning the modules and models every test imported. After collection
# those are frozen (never rescanned) and the collector runs less often: ~7% less CPU per run, ~20 MB more peak
# memory (measured on a loop of 24 READY runs). Reference counting frees everything else as before.
GC_THRESHOLDS = (20_000, 20, 20)


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"
# Step 1a of the vendor's guide "Machine Learning in AWS" (Alteryx Analytics Cloud, private data processing),
# kept verbatim in the repo so that a clone with nothing beside it can check the shipped policy against it.
SEED_STEP_1A = ROOT / "tests" / "data" / "seed_000_step_1a.txt"
SEEDS = ROOT.parent / "shared" / "seeds"  # the project's source documents, when they sit beside the clone


def seed_policy_text() -> str:
    """The JSON of seed 000 step 1a, cut out of the seed's text (REQUIREMENTS I2)."""
    section = SEED_STEP_1A.read_text(encoding="utf-8")
    section = section[section.index("use the following policy document.") :]
    return section[section.index("{") : section.rindex("}") + 1]


def load_event(folder: str, case: str) -> Any:
    """events/<folder>/<case>.json, as the sandbox and the contract tests read it."""
    return json.loads((EVENTS / folder / f"{case}.json").read_text(encoding="utf-8"))


@pytest.fixture
def lambda_context() -> Any:
    from mlplane_sandbox.lambdas import LambdaContext

    return LambdaContext("mlplane-test", "arn:aws:lambda:eu-west-1:123456789012:function:mlplane-test", 256)


RunSandbox = Callable[..., list[Any]]


@pytest.fixture
def run_sandbox() -> RunSandbox:
    """Run inputs (file names under events/ or dicts) in one fresh sandbox; returns one RunResult per input."""
    from mlplane_sandbox.runner import Options, Sandbox

    def run(*inputs: str | dict[str, Any], **options: Any) -> list[Any]:
        raws = [load_event(*item.split("/", 1)) if isinstance(item, str) else item for item in inputs]
        with Sandbox(Options(**options)) as sandbox:
            results = [sandbox.run(raw) for raw in raws]
            sandbox.check_faults_fired()  # a test of a fault that never happened proves nothing
            return results

    return run


Cli = Callable[..., Result]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Cli:
    """Invoke `mlplane ARGS…` in this process with typer's runner, from the repo's root: the same command code
    as the installed executable, without the ~3 s each new process spends importing moto and loading botocore's
    models before its first run. What only the process shows (stdout exactly one JSON document, the executable's
    exit status, one line on stderr) stays with the tests that run the executable. An exception other than the
    command's own exit (what would reach a user as a traceback) fails the test."""
    from mlplane_cli.main import app

    monkeypatch.chdir(ROOT)

    def invoke(*args: str) -> Result:
        result = CliRunner().invoke(app, list(args))
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        return result

    return invoke
