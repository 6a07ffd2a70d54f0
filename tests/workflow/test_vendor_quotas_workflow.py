"""Issue 6 in the sandbox: Service Quotas done right and every way the vendor's EKS can go (Q1-Q2, V1-V2)."""

from __future__ import annotations

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
    # polls at 0, 300, ..., 1800 s: the one at 1800 s (after six waits) gives up
    assert entered(result.history, "WaitForQuotas") == 7
    assert entered(result.history, "QuotasPollDelay") == 6


@pytest.mark.parametrize(
    ("scenario", "outcome", "error"),
    [
        ("ok", "READY", None),
        ("slow", "READY", None),
        # the vendor's cluster is in the account: held, nothing removed (C7); `never`: nothing there, rolled back
        ("cluster-failed", "ROLLBACK_HELD", "is FAILED"),
        ("nodegroup-failed", "ROLLBACK_HELD", "CREATE_FAILED"),
        ("never", "ROLLED_BACK", "not ACTIVE"),
        ("no-credential-role", "ROLLBACK_HELD", "credential-service-role not found"),
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
