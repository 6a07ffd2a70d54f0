"""Issue 6 in the sandbox: Service Quotas done right and every way the vendor's EKS can go (Q1-Q2, V1-V2)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlplane_sandbox import vendor
from mlplane_sandbox.recording import MUTATING_PREFIXES as MUTATING
from mlplane_sandbox.runner import Options, Sandbox
from tests.conftest import RunSandbox, load_event

SUCCESS = "controltower/create_managed_account_succeeded"
MEMBER = "111111111111"
REQUEST = "servicequotas:RequestServiceQuotaIncrease"


def entered(history: list[dict[str, object]], state: str) -> int:
    return sum(
        1
        for e in history
        if isinstance(e.get("stateEnteredEventDetails"), dict) and e["stateEnteredEventDetails"]["name"] == state  # type: ignore[index]
    )


def polled_after(history: list[dict[str, Any]]) -> list[int]:
    """Seconds the quota wait had waited at each WaitForQuotas poll, read from the states' inputs."""
    return [
        json.loads(e["stateEnteredEventDetails"]["input"])["polls"]["quotas"]["waited_seconds"]
        for e in history
        if e.get("stateEnteredEventDetails", {}).get("name") == "WaitForQuotas"
    ]


def test_q1_q2_default_run_requests_2500_vcpus_once(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(SUCCESS, redeliver=["RequestQuotas"])
    assert result.outcome == "READY", result.error
    assert [(q["service"], q["quota_code"], q["desired"]) for q in result.inventory["quota_requests"]] == [
        ("ec2", "L-1216C47A", 2500)
    ]
    assert [c["call"] for c in result.api_calls].count(REQUEST) == 1  # the redelivered step reused it


def test_q2_already_applied_quota_is_not_requested(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(SUCCESS, quota="already-applied")
    assert result.outcome == "READY", result.error
    assert REQUEST not in [c["call"] for c in result.api_calls]


def test_q2_denied_quota_rolls_back_naming_the_quota(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(SUCCESS, quota="denied")
    assert result.outcome == "ROLLED_BACK"
    assert result.error is not None and result.error["type"] == "QuotaDenied"
    assert "L-1216C47A" in result.error["message"]
    assert result.leftovers == []
    # a request cannot be withdrawn; the vault key mlplane created can only be scheduled for deletion
    assert sorted(d["type"] for d in result.deferred) == ["kms:key", "quotas:request"]


def test_q2_pending_quota_fails_at_the_configured_timeout_not_before(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(
        SUCCESS, quota="pending", config={"poll_interval_seconds": 300, "quota_timeout_seconds": 1800}
    )
    assert result.outcome == "ROLLED_BACK"
    assert result.error is not None and result.error["type"] == "TimedOut"
    # the interval doubles up to 15 min: polls at 0, 300, 900, 1800 s; the one at 1800 s (after three waits) gives up
    assert entered(result.history, "WaitForQuotas") == 4
    assert entered(result.history, "QuotasPollDelay") == 3
    assert polled_after(result.history) == [0, 300, 900, 1800]


def test_q3_slow_support_case_ends_ready_with_a_few_hundred_transitions(run_sandbox: RunSandbox) -> None:
    """REQUIREMENTS Q3: a 2,500-vCPU request that stays CASE_OPENED for two days ends READY within the
    default 5-day quota timeout, its polls backing off (x2 up to 15 min): each poll is 3 state transitions
    (Task, Choice, Wait; Step Functions bills Standard workflows per transition)."""
    (result,) = run_sandbox(SUCCESS, quota="slow")
    assert result.outcome == "READY", result.error
    assert [q["status"] for q in result.inventory["quota_requests"]] == ["APPROVED"]
    waited = polled_after(result.history)
    assert waited[:5] == [0, 60, 180, 420, 900]
    assert 2 * 86_400 <= waited[-1] < 2 * 86_400 + 900
    polls = entered(result.history, "WaitForQuotas")
    assert polls == len(waited) < 200  # a fixed 60 s interval would take 2,881 polls


@pytest.mark.parametrize(("scenario", "granted"), [("partial", "approved at 1000"), ("case-closed", "value 5")])
def test_q3_partial_approval_or_closed_case_rolls_back_naming_granted_value_and_request(
    run_sandbox: RunSandbox, scenario: str, granted: str
) -> None:
    """REQUIREMENTS Q3: a request approved at less than desired, or whose support case was closed, fails the
    run with the granted value and the request id in the error, and rolls back everything."""
    (result,) = run_sandbox(SUCCESS, quota=scenario)
    assert result.outcome == "ROLLED_BACK"
    assert result.error is not None and result.error["type"] == "QuotaDenied"
    (request,) = service_quotas_requests(result)
    assert granted in result.error["message"] and "not 2500" in result.error["message"]
    assert f"(request {request})" in result.error["message"]
    assert result.leftovers == []
    assert sorted(d["type"] for d in result.deferred) == ["kms:key", "quotas:request"]


def service_quotas_requests(result: Any) -> list[str]:
    """The ids of the quota requests the run filed (the deferred items name them)."""
    return [d["id"] for d in result.deferred if d["type"] == "quotas:request"]


@pytest.mark.parametrize(
    ("scenario", "outcome", "error"),
    [
        ("ok", "READY", None),
        ("slow", "READY", None),
        ("cluster-failed", "ROLLED_BACK", "is FAILED"),
        ("nodegroup-failed", "ROLLED_BACK", "CREATE_FAILED"),
        ("never", "ROLLED_BACK", "not ACTIVE"),
        ("no-credential-role", "ROLLED_BACK", "credential-service-role not found"),
    ],
)
def test_v1_v2_each_vendor_scenario_ends_as_it_should_and_never_touches_vendor_resources(
    run_sandbox: RunSandbox, scenario: str, outcome: str, error: str | None
) -> None:
    (result,) = run_sandbox(SUCCESS, vendor=scenario, config={"poll_interval_seconds": 300})
    assert result.outcome == outcome, result.error
    if error is None:
        assert result.error is None
    else:
        assert result.error is not None and error in result.error["message"]
        assert result.leftovers == []
    for call in result.api_calls:
        service, operation = call["call"].split(":")
        if operation.startswith(MUTATING):
            assert service != "eks", call
            assert not (service == "iam" and "Role" in operation), call


def test_v1_readiness_is_detected_within_one_poll_interval_of_the_vendor_finishing() -> None:
    interval = 300
    with Sandbox(Options(config={"poll_interval_seconds": interval})) as sandbox:
        result = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
        simulator = vendor.active()
        assert simulator is not None
        ready_at = simulator.readiness_time(MEMBER)
        triggered_at = simulator.trigger_time(MEMBER)
    assert result.outcome == "READY", result.error
    assert ready_at is not None and triggered_at is not None
    waits = entered(result.history, "EksPollDelay")
    # the poll after `waits` intervals saw it ready; the one before did not
    assert (waits - 1) * interval < ready_at - triggered_at <= waits * interval


@pytest.mark.parametrize(
    ("output", "error"),
    [
        (
            {"ready": False, "detail": "x" * 300_000, "attempt": 1, "waited_seconds": 60, "wait_seconds": 60},
            "States.DataLimitExceeded",
        ),
        ({"ready": False}, "States.Runtime"),  # ResultSelector's $.Payload.attempt is missing
    ],
)
def test_a_payload_or_path_mistake_fails_the_execution_as_in_aws_without_a_rollback(
    run_sandbox: RunSandbox, monkeypatch: pytest.MonkeyPatch, output: dict[str, Any], error: str
) -> None:
    """Step Functions developer guide, "Handling errors": States.ALL catches neither States.DataLimitExceeded
    (a task result over 256 KB) nor States.Runtime (a path that is not in the input): the real provision ASL's
    Catch does not send them to Rollback; the execution fails with that error."""
    from mlplane.quotas import apply as quotas_apply

    class Broken:
        def model_dump(self, mode: str = "json") -> dict[str, Any]:
            return output

    monkeypatch.setattr(quotas_apply, "poll", lambda *args, **kwargs: Broken())
    (result,) = run_sandbox(SUCCESS)
    assert result.executions[-1]["status"] == "FAILED"
    assert result.error is not None and result.error["type"] == error
    assert entered(result.history, "WaitForQuotas") == 1
    assert entered(result.history, "Rollback") == 0
