"""Issue 13.4: every notification is delivered at least once (REQUIREMENTS C10), through the real ASL.

A publish that fails raises NotificationFailed after the step wrote its status; the ASL retries the step on its
own schedule (60 s doubling to 15 min, about a day) and the retried step, which finds its status written,
publishes, since the ledger's notified mark per (account, execution, event) is not set. Before, the retry saw
READY or DEPROVISIONED and returned without publishing: the event was never notified.
"""

from __future__ import annotations

from collections import Counter

from mlplane.accounts.lifecycle import NOT_NOTIFIED
from mlplane.ledger import Status
from mlplane_sandbox.runner import Options, RunResult, Sandbox, notifications
from tests.conftest import RunSandbox, load_event
from tests.workflow.recorded import FAST, MEMBER

SUCCESS = "controltower/create_managed_account_succeeded"


def publishes(result: RunResult) -> list[bool]:
    return [bool(c["ok"]) for c in result.api_calls if c["call"] == "sns:Publish"]


def events() -> list[str]:
    return [str(n["event"]) for n in notifications()]


def states_entered(result: RunResult) -> set[str]:
    return {e["stateEnteredEventDetails"]["name"] for e in result.history if "stateEnteredEventDetails" in e}


def test_c10_a_failed_ready_publish_is_published_by_the_retry_once() -> None:
    with Sandbox(Options(config=FAST, fails=["sns:Publish=AuthorizationError@2"])) as sandbox:
        result = sandbox.run(load_event(*SUCCESS.split("/", 1)))
        sandbox.check_faults_fired()
        status = sandbox.ledger().status(MEMBER)
    assert result.outcome == "READY", result.error
    assert publishes(result) == [True, False, True]
    assert events() == ["READY_FOR_VENDOR", "READY"]
    assert status is not None and status.status == Status.READY and status.error is None  # the note went with it
    assert "Rollback" not in states_entered(result)


def test_c10_ready_never_published_in_a_day_stays_ready_and_the_next_run_publishes_it() -> None:
    """All 101 attempts of MarkReady fail (a topic policy nobody fixed for a day): READY, noted, no rollback;
    the next run of the account (a manual start) delivers the READY of the run that made it."""
    with Sandbox(Options(config=FAST, fails=["sns:Publish=AuthorizationError@2-102"])) as sandbox:
        first = sandbox.run(load_event(*SUCCESS.split("/", 1)))
        noted = sandbox.ledger().status(MEMBER)
        told_before = events()
        second = sandbox.run(load_event("manual", "start"))
        sandbox.check_faults_fired()
        status = sandbox.ledger().status(MEMBER)
    assert first.outcome == "READY", first.error
    assert first.executions[0]["status"] == "SUCCEEDED"
    assert "Rollback" not in states_entered(first)
    assert publishes(first) == [True] + [False] * 101
    assert noted is not None and noted.status == Status.READY
    assert noted.error is not None and noted.error.startswith(NOT_NOTIFIED) and "AuthorizationError" in noted.error
    assert told_before == ["READY_FOR_VENDOR"]
    assert second.outcome == "READY"
    (ready,) = [n for n in notifications() if n["event"] == "READY"]
    assert ready["execution"] == first.executions[0]["name"]  # the READY owed, of the run that made it
    assert status is not None and status.error is None and status.execution == first.executions[0]["name"]


def test_c10_a_ready_account_started_again_publishes_nothing_twice(run_sandbox: RunSandbox) -> None:
    run_sandbox(SUCCESS, "manual/start", config=FAST)
    assert Counter(events()) == {"READY_FOR_VENDOR": 1, "READY": 1}


def test_c10_a_failed_deprovisioned_publish_is_published_by_the_retry(run_sandbox: RunSandbox) -> None:
    """Before: MarkDeprovisioned's retry found DEPROVISIONED and returned; DEPROVISIONED was never notified."""
    (result,) = run_sandbox(SUCCESS, config=FAST, then_deprovision=True, fails=["sns:Publish=AuthorizationError@3"])
    assert result.outcome == "DEPROVISIONED", result.error
    assert publishes(result)[-2:] == [False, True]
    assert events() == ["READY_FOR_VENDOR", "READY", "DEPROVISIONED"]
    assert result.leftovers == []


def test_c10_a_failed_rolled_back_publish_is_published_once_by_the_retry(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(
        SUCCESS, config=FAST, fails=["iam:CreateUser=AccessDenied@1", "sns:Publish=AuthorizationError@1"]
    )
    assert result.outcome == "ROLLED_BACK", result.error
    assert publishes(result) == [False, True]
    assert events() == ["ROLLED_BACK"]
    assert result.leftovers == []
