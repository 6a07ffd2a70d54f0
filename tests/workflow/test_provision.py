"""The provision workflow: the real statemachines/provision.asl.json run by the sandbox (issue 3, C1-C3)."""

from __future__ import annotations

from typing import Any

from tests.conftest import RunSandbox

SUCCESS = "controltower/create_managed_account_succeeded"
MEMBER = "111111111111"


def states_entered(history: list[dict[str, Any]]) -> list[str]:
    return [e["stateEnteredEventDetails"]["name"] for e in history if "stateEnteredEventDetails" in e]


def test_success_event_on_eventbridge_reaches_ready_through_every_state(run_sandbox: RunSandbox) -> None:
    # Given the Control Tower success event, When it is put on the sandbox's EventBridge
    (result,) = run_sandbox(SUCCESS)
    # Then the account is READY, from one execution of the provision state machine
    assert result.outcome == "READY", result.error
    assert [e["state_machine"] for e in result.executions] == ["provision"]
    assert result.executions[0]["status"] == "SUCCEEDED"
    assert result.leftovers == []
    visited = states_entered(result.history)
    for state in (
        "ValidateAccount",
        "PrepareAccount",
        "CreateNetwork",
        "CreateIam",
        "RequestQuotas",
        "WaitForQuotas",
        "NotifyReadyForVendor",
        "WaitForEks",
        "EksPollDelay",
        "WaitForCredentialRole",
        "PatchKmsPolicy",
        "MarkReady",
        "Ready",
    ):
        assert state in visited, state
    assert "Rollback" not in visited
    assert any(e["type"] == "ParallelStateEntered" for e in result.history)


def test_failed_and_other_ou_events_are_ignored_without_an_execution(run_sandbox: RunSandbox) -> None:
    failed, other_ou = run_sandbox(
        "controltower/create_managed_account_failed", "controltower/create_managed_account_other_ou"
    )
    for result in (failed, other_ou):
        assert result.outcome == "IGNORED"
        assert result.executions == []
        assert not [c for c in result.api_calls if c["call"].startswith("states:")]


def test_manual_start_input_reaches_ready(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox("manual/start")
    assert result.outcome == "READY", result.error
    assert result.executions[0]["name"].startswith(f"op-{MEMBER}-")


def test_outage_of_create_vpc_rolls_back_with_nothing_left(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(SUCCESS, fails=["ec2:CreateVpc"])
    assert result.outcome == "ROLLED_BACK"
    assert result.leftovers == []
    assert result.inventory["vpcs"] == []
    assert result.error is not None and "ec2:CreateVpc" in result.error["message"]
    assert "Rollback" in states_entered(result.history)


def test_transient_fault_on_one_call_is_absorbed_by_retries(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(SUCCESS, fails=["ec2:CreateVpc=RequestLimitExceeded@1"])
    assert result.outcome == "READY", result.error
    create_vpc = [c["ok"] for c in result.api_calls if c["call"] == "ec2:CreateVpc"]
    assert create_vpc == [False, True]
    assert len(result.inventory["vpcs"]) == 1


def test_an_outage_that_ends_rolls_back_the_first_run_and_the_next_run_finishes(run_sandbox: RunSandbox) -> None:
    """`@N-M` (DESIGN.md contract): CreateVpc throttled for its first 30 calls, then answered."""
    first, second = run_sandbox(SUCCESS, "manual/start", fails=["ec2:CreateVpc=RequestLimitExceeded@1-30"])
    assert first.outcome == "ROLLED_BACK"
    assert first.leftovers == []
    assert [c["ok"] for c in first.api_calls if c["call"] == "ec2:CreateVpc"] == [False] * 25  # every attempt
    assert second.outcome == "READY", second.error
    assert len(second.inventory["vpcs"]) == 1


def test_member_calls_are_made_as_the_assumed_role_and_hub_calls_as_the_function(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(SUCCESS)
    member_calls = [c for c in result.api_calls if c["call"].startswith(("ec2:", "iam:", "kms:"))]
    assert member_calls
    assert all(
        c["principal"].startswith(f"arn:aws:sts::{MEMBER}:assumed-role/AWSControlTowerExecution/") for c in member_calls
    )
    hub_calls = [c for c in result.api_calls if c["call"].startswith(("dynamodb:", "organizations:", "sts:"))]
    assert hub_calls
    assert all(c["principal"].startswith("arn:aws:sts::123456789012:assumed-role/mlplane-") for c in hub_calls)


def test_duplicate_delivery_starts_one_execution_and_changes_nothing(run_sandbox: RunSandbox) -> None:
    first, second = run_sandbox(SUCCESS, SUCCESS)
    assert first.outcome == second.outcome == "READY"
    assert len(first.executions) == 1
    assert second.executions == []
    assert not [c for c in second.api_calls if c["call"].split(":")[1].startswith(("Create", "Allocate"))]


PAYLOAD_QUOTA = 256 * 1024


def largest_payload(history: list[dict[str, Any]]) -> tuple[int, str]:
    """The largest state input, state output or task result of a run (UTF-8 bytes), and where it was."""
    largest = (0, "")
    for event in history:
        for key in ("stateEnteredEventDetails", "stateExitedEventDetails", "taskSucceededEventDetails"):
            details = event.get(key)
            if not isinstance(details, dict):
                continue
            text = details.get("input") or details.get("output") or ""
            size = len(str(text).encode("utf-8"))
            if size > largest[0]:
                largest = (size, f"{event['type']} {details.get('name', '')}")
    return largest


def test_no_state_payload_comes_near_the_256_kb_quota_with_the_largest_config(run_sandbox: RunSandbox) -> None:
    """Step Functions service quotas: a state's input or output, or a task's result, is at most 256 KB, and
    going over is States.DataLimitExceeded, which States.ALL does not catch (developer guide, "Handling
    errors"): the execution would fail without a rollback. With the largest configuration (the most quota
    targets settings allow, tgw and nat egress) and on the rollback path, every payload stays far below."""
    from mlplane.config import MAX_QUOTA_TARGETS
    from mlplane_sandbox.emulators import service_quotas

    def targets(n: int) -> list[dict[str, Any]]:
        return [{"service": "ec2", "quota_code": f"L-{i:08X}", "desired": 2500} for i in range(n)]

    for i in range(MAX_QUOTA_TARGETS):
        service_quotas.KNOWN_QUOTAS += (
            service_quotas.QuotaSpec("ec2", "Amazon EC2", f"L-{i:08X}", f"Quota {i} " + "n" * 200, 5.0),
        )
    try:
        sizes = []
        for egress, quota in (("nat", "approved"), ("tgw", "approved"), ("nat", "partial")):
            config = {"egress_mode": egress, "quota_targets": targets(MAX_QUOTA_TARGETS), "poll_interval_seconds": 300}
            (result,) = run_sandbox(SUCCESS, config=config, quota=quota)
            assert result.outcome == ("READY" if quota == "approved" else "ROLLED_BACK"), result.error
            sizes.append(largest_payload(result.history))
    finally:
        service_quotas.KNOWN_QUOTAS = service_quotas.KNOWN_QUOTAS[:1]
    biggest = max(sizes)
    assert biggest[0] < PAYLOAD_QUOTA // 4, biggest  # a 4x margin: nothing grows with the account's history
