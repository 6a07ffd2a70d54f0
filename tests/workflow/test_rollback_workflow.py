"""Issue 7 in the sandbox: whatever fails, the account ends READY or exactly as it was (C1-C6, V2)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from moto.ec2.models import ec2_backends

from mlplane.ledger import Status
from mlplane_sandbox import clock, vendor
from mlplane_sandbox.runner import Options, Sandbox, notifications
from tests.conftest import RunSandbox, load_event
from tests.workflow.recorded import (
    FAST,
    GOLDEN,
    MEMBER,
    before_hand_off_mutations,
    comparable,
    handed_off_mutations,
    member_mutations,
    record_run,
    recorded_mutations,
)

SUCCESS = "controltower/create_managed_account_succeeded"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "mutating_call" in metafunc.fixturenames:
        metafunc.parametrize("mutating_call", before_hand_off_mutations())
    if "handed_off_call" in metafunc.fixturenames:
        metafunc.parametrize("handed_off_call", handed_off_mutations())


def test_c3_failing_any_mutating_call_rolls_back_to_the_account_as_it_was(
    run_sandbox: RunSandbox, mutating_call: str
) -> None:
    (result,) = run_sandbox(SUCCESS, config=FAST, fails=[mutating_call], inventory_before=True)
    assert result.outcome == "ROLLED_BACK", (mutating_call, result.error)
    assert result.leftovers == []
    assert comparable(result.inventory) == comparable(result.inventory_before)
    assert result.error is not None and mutating_call in result.error["message"]


def test_c7_failing_any_mutating_call_after_the_hand_off_is_held_with_nothing_removed(
    run_sandbox: RunSandbox, handed_off_call: str
) -> None:
    """The vendor is in the account by then (C7): ROLLBACK_HELD, every mlplane resource still there."""
    (result,) = run_sandbox(SUCCESS, config=FAST, fails=[handed_off_call])
    assert result.outcome == "ROLLBACK_HELD", (handed_off_call, result.error)
    assert result.leftovers == []
    assert not [c for c in member_mutations(result) if c.split(":")[1].startswith(("Delete", "Schedule"))]
    assert len(result.inventory["vpcs"]) == 1 and len(result.inventory["nat_gateways"]) == 3
    assert result.error is not None and handed_off_call in result.error["message"]


def test_recorded_run_matches_its_golden_file() -> None:
    """The fault tests are parametrized from tests/data/recorded_run.json; a change to what a READY run does
    must show in that file's diff. `MLPLANE_RERECORD=1` rewrites it instead of failing."""
    recorded = record_run()
    if os.environ.get("MLPLANE_RERECORD") == "1":
        GOLDEN.write_text(json.dumps(recorded, indent=2) + "\n")
    assert recorded == {"mutations": recorded_mutations(), "handed_off": handed_off_mutations()}, (
        "a READY run's mutating calls changed: review, then MLPLANE_RERECORD=1 make test"
    )


def test_recorded_run_covers_every_kind_of_resource() -> None:
    calls = recorded_mutations()
    for expected in (
        "ec2:CreateVpc",
        "ec2:CreateNatGateway",
        "iam:CreatePolicy",
        "kms:PutKeyPolicy",
        "servicequotas:RequestServiceQuotaIncrease",
    ):
        assert expected in calls


@pytest.mark.parametrize(
    "crash", ["ec2:CreateVpc", "ec2:CreateSubnet@5", "ec2:CreateNatGateway@2", "iam:CreatePolicy", "kms:CreateKey"]
)
def test_c6_crash_between_create_and_ledger_write_converges(run_sandbox: RunSandbox, crash: str) -> None:
    ready, rolled_back = run_sandbox(SUCCESS, config=FAST, crashes=[crash]), None
    (ready_result,) = ready
    assert ready_result.outcome == "READY", ready_result.error
    assert ready_result.leftovers == []  # nothing created twice, nothing the ledger does not own
    assert len(ready_result.inventory["vpcs"]) == 1 and len(ready_result.inventory["nat_gateways"]) == 3
    # A rollback of the whole account: denied quotas, before the hand-off (after it, the rollback is held, C7).
    (rolled_back,) = run_sandbox(SUCCESS, config=FAST, crashes=[crash], quota="denied", inventory_before=True)
    assert rolled_back.outcome == "ROLLED_BACK", rolled_back.error
    assert rolled_back.leftovers == []
    assert comparable(rolled_back.inventory) == comparable(rolled_back.inventory_before)


def test_c1_concurrent_start_for_a_provisioning_account_is_refused() -> None:
    with Sandbox(Options(config=FAST)) as sandbox:
        sandbox.world.place_account(MEMBER, "Workloads", role_name="AWSControlTowerExecution")
        sandbox.ledger().set_status(MEMBER, Status.PROVISIONING, execution="ct-111111111111-otherexecution")
        result = sandbox.run(load_event("manual", "start"))
    assert result.outcome == "REJECTED"
    assert result.error is not None and "PROVISIONING" in result.error["message"]
    assert member_mutations(result) == []


def test_c1_rolled_back_account_provisions_afresh_on_rerun(run_sandbox: RunSandbox) -> None:
    # Refused before the hand-off, so rolled back (after it, a failure is held and a re-run resumes: C7).
    failed, rerun = run_sandbox(SUCCESS, "manual/start", config=FAST, fails=["iam:CreateUser=AccessDenied@1"])
    assert failed.outcome == "ROLLED_BACK"
    assert rerun.outcome == "READY", rerun.error
    assert rerun.leftovers == []
    assert len(rerun.inventory["vpcs"]) == 1


def test_c5_notifications_carry_account_execution_outcome_and_error(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(SUCCESS, config=FAST, quota="denied")
    assert result.outcome == "ROLLED_BACK"
    (last,) = [n for n in notifications() if n["outcome"]]
    assert set(last) == {"source", "event", "account_id", "execution", "outcome", "error", "deferred", "blocked"}
    assert last["event"] == last["outcome"] == "ROLLED_BACK"
    assert last["account_id"] == MEMBER and last["execution"] == result.executions[0]["name"]
    assert "QuotaDenied" in last["error"] and "L-1216C47A" in last["error"]
    assert [n["event"] for n in notifications()] == ["ROLLED_BACK"]


def test_c5_c7_a_held_rollback_is_notified_with_the_vendor_resources_and_the_ways_out(
    run_sandbox: RunSandbox,
) -> None:
    (result,) = run_sandbox(SUCCESS, config=FAST, fails=["kms:PutKeyPolicy"])
    assert result.outcome == "ROLLBACK_HELD"
    (last,) = [n for n in notifications() if n["outcome"]]
    assert set(last) == {
        "source",
        "event",
        "account_id",
        "execution",
        "outcome",
        "error",
        "deferred",
        "blocked",
        "vendor_resources",
        "ways_out",
    }
    assert last["event"] == last["outcome"] == "ROLLBACK_HELD"
    assert last["account_id"] == MEMBER and last["execution"] == result.executions[0]["name"]
    assert "kms:PutKeyPolicy" in last["error"]
    assert ("iam:role", "credential-service-role") in {(r["type"], r["id"]) for r in last["vendor_resources"]}
    assert len(last["ways_out"]) == 2
    assert [n["event"] for n in notifications()] == ["READY_FOR_VENDOR", "ROLLBACK_HELD"]


def test_v2_c7_vendor_eni_in_an_mlplane_subnet_holds_the_rollback_and_names_it() -> None:
    created: list[str] = []

    def vendor_leaves_an_eni(now: float) -> None:
        simulator = vendor.active()
        if created or simulator is None or simulator.readiness_time(MEMBER) is None:
            return
        backend = ec2_backends[MEMBER]["eu-west-1"]
        (subnet, *_) = backend.describe_subnets(filters={"tag:AACSubnet": ["eks_node"]})
        eni = backend.create_network_interface(subnet, None, description="aac eks node", tags={"aac:managed": "true"})
        created.append(eni.id)

    with Sandbox(Options(config=FAST, fails=["kms:PutKeyPolicy"])) as sandbox:
        clock.clock().on_advance(vendor_leaves_an_eni)
        result = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
        status = sandbox.ledger().status(MEMBER)
    assert created
    # Before C7 this rollback deleted the NAT gateways and routes under the vendor and stopped at the subnet
    # (ROLLBACK_INCOMPLETE); now nothing is removed and the ENI is named.
    assert result.outcome == "ROLLBACK_HELD"
    assert status is not None and status.status == Status.ROLLBACK_HELD
    assert status.error is not None and created[0] in status.error
    (held,) = [n for n in notifications() if n["event"] == "ROLLBACK_HELD"]
    assert ("ec2:network-interface", created[0]) in {(r["type"], r["id"]) for r in held["vendor_resources"]}
    assert not [c for c in member_mutations(result) if c.split(":")[1].startswith("Delete")]
    assert result.leftovers == []


# -- Lambda timeouts (virtual time) ------------------------------------------------------------------------------
def task_failures(history: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(error, cause) of every failed task attempt (TaskFailed), in order."""
    return [
        (e["taskFailedEventDetails"].get("error", ""), e["taskFailedEventDetails"].get("cause", ""))
        for e in history
        if e["type"] == "TaskFailed"
    ]


@pytest.fixture
def slow_nat_deletion(monkeypatch: pytest.MonkeyPatch) -> None:
    """NAT gateways take 600 s to delete, as they can in AWS: three of them, waited for one after another,
    need twice a Lambda's 900 s timeout."""
    from mlplane_sandbox.fidelity import network as fidelity_network

    monkeypatch.setattr(fidelity_network, "NAT_DELETE_SECONDS", 600.0)


def test_rollback_that_outlasts_its_lambda_timeout_stops_before_it_and_resumes(
    run_sandbox: RunSandbox, slow_nat_deletion: None
) -> None:
    """A step whose waits exceed the function's Timeout (template.yaml, 900 s) checks the Lambda context's
    remaining time and stops before Lambda would kill it (AWS Lambda developer guide, context object:
    get_remaining_time_in_millis); Rollback reports what it did not reach as unfinished and the ASL's Rollback
    loop walks again after a wait (REQUIREMENTS C8), until it finishes."""
    (result,) = run_sandbox(SUCCESS, quota="denied")
    assert result.outcome == "ROLLED_BACK", result.error
    assert result.leftovers == []
    failures = task_failures(result.history)
    assert "Sandbox.Timedout" not in [error for error, _ in failures]
    walks = [
        json.loads(e["stateExitedEventDetails"]["output"])["rollback"]["output"]
        for e in result.history
        if e.get("stateExitedEventDetails", {}).get("name") == "Rollback"
    ]
    resumed = [item["reason"] for walk in walks if walk["retry"] for item in walk["blocked"]]
    assert resumed and all("before the Lambda timeout" in r or "before the timeout" in r for r in resumed)
    assert walks[-1]["outcome"] == "ROLLED_BACK"
    assert result.error is not None and result.error["type"] == "QuotaDenied"  # the original error is kept


def test_a_lambda_killed_at_its_timeout_is_retried_by_the_workflow(
    run_sandbox: RunSandbox, slow_nat_deletion: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Step Functions reports a Lambda that ran past its timeout as `Sandbox.Timedout` (or `Lambda.Unknown`:
    developer guide, "Handle Lambda service exceptions"); every Task's Retry covers both, so a step killed
    halfway through (here one that ignores its deadline) is run again and the rollback completes."""
    from mlplane.deadline import Deadline

    monkeypatch.setattr(Deadline, "seconds_left", lambda self: float("inf"))
    (result,) = run_sandbox(SUCCESS, quota="denied")
    assert result.outcome == "ROLLED_BACK", result.error
    assert result.leftovers == []
    timed_out = [cause for error, cause in task_failures(result.history) if error == "Sandbox.Timedout"]
    assert timed_out and all("Task timed out after 900.00 seconds" in cause for cause in timed_out)


def test_a_lambda_out_of_memory_is_retried_and_creates_nothing_twice(run_sandbox: RunSandbox) -> None:
    """Step Functions developer guide, "Handle Lambda service exceptions": out-of-memory errors are reported
    as `Lambda.Unknown`; the ASL retries it like a timeout, and the re-run step finds what it made."""
    (result,) = run_sandbox(SUCCESS, out_of_memory=["CreateNetwork@1"])
    assert result.outcome == "READY", result.error
    assert "Lambda.Unknown" in [error for error, _ in task_failures(result.history)]
    assert len(result.inventory["vpcs"]) == 1
    assert len(result.inventory["nat_gateways"]) == 3
    assert result.leftovers == []
