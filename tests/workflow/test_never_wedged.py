"""Issue 13 sections 2 and 3 in the sandbox: never wedged (REQUIREMENTS C8), nothing freed while in use (C9).

Each test runs the real ASL; the outcome, what is left in the member account and the notifications are asserted.
Hours of rollback retries are virtual: the Rollback loop counts its waits, the sandbox's clock is compressed.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from mlplane.ledger import Status
from mlplane.network import allocation
from mlplane_sandbox.clock import clock
from mlplane_sandbox.runner import Options, RunResult, Sandbox, notifications
from tests.conftest import RunSandbox, load_event
from tests.workflow.recorded import FAST, MEMBER

SUCCESS = "controltower/create_managed_account_succeeded"
SECOND = "controltower/create_managed_account_second_account"
FATAL = "iam:CreateUser=AccessDenied@1"  # a failure before the hand-off: the run must roll back
SIX_HOURS = 21_600


def entered(result: RunResult, state: str) -> int:
    return sum(1 for e in result.history if e.get("stateEnteredEventDetails", {}).get("name") == state)


def outcomes(account_id: str = MEMBER) -> list[str]:
    """The final notifications sent for the account, in order."""
    return [n["outcome"] for n in notifications() if n.get("account_id") == account_id and n.get("outcome")]


def first_note(account_id: str = MEMBER) -> dict[str, Any]:
    return next(n for n in notifications() if n.get("account_id") == account_id and n.get("outcome"))


def last_note(account_id: str = MEMBER) -> dict[str, Any]:
    return [n for n in notifications() if n.get("account_id") == account_id and n.get("outcome")][-1]


def rollback_outputs(result: RunResult) -> list[dict[str, Any]]:
    import json

    return [
        json.loads(e["stateExitedEventDetails"]["output"])["rollback"]["output"]
        for e in result.history
        if e.get("stateExitedEventDetails", {}).get("name") == "Rollback"
    ]


# -- C8: an outage during rollback is retried for hours, not seconds ------------------------------------------
def test_c8_outage_during_rollback_that_ends_rolls_back_completely(run_sandbox: RunSandbox) -> None:
    """DeleteVpc throttled for its first 50 calls (about ten walks): the Rollback loop waits and walks again."""
    (result,) = run_sandbox(SUCCESS, config=FAST, fails=[FATAL, "ec2:DeleteVpc=RequestLimitExceeded@1-50"])
    assert result.outcome == "ROLLED_BACK", result.error
    assert result.leftovers == []
    assert result.inventory["vpcs"] == []
    assert entered(result, "RollbackRetryDelay") >= 5  # retried after waits, not within one Lambda's retries
    assert outcomes() == ["ROLLED_BACK"]  # one notification, for the final outcome only


def test_c8_route_outage_during_rollback_leaves_nothing(run_sandbox: RunSandbox) -> None:
    """The issue's measured wedge: every DeleteRoute throttled (then let through after 200) left 35 resources.

    The walk goes on past the routes; a route table's delete takes its routes with it (EC2 DeleteRouteTable
    needs only its associations gone), so the next walk finds the routes gone.
    """
    (result,) = run_sandbox(SUCCESS, config=FAST, fails=[FATAL, "ec2:DeleteRoute=RequestLimitExceeded@1-200"])
    assert result.outcome == "ROLLED_BACK", result.error
    assert result.leftovers == []
    assert outcomes() == ["ROLLED_BACK"]
    assert [e["status"] for e in result.executions] == ["FAILED"]


def test_c8_outage_that_never_ends_is_incomplete_after_six_hours_and_a_manual_start_takes_over(
    run_sandbox: RunSandbox,
) -> None:
    """DeleteVpc throttled for all of the first run's rollback (200 calls outlast its 6 hours of retries)."""
    failed, rerun = run_sandbox(
        SUCCESS, "manual/start", config=FAST, fails=[FATAL, "ec2:DeleteVpc=RequestLimitExceeded@1-200"]
    )
    assert failed.outcome == "ROLLBACK_INCOMPLETE", failed.error
    (vpc,) = failed.inventory["vpcs"]
    assert failed.leftovers == [{"type": "ec2:vpc", "id": vpc["id"]}]  # only the VPC: the walk went on past it
    walks = rollback_outputs(failed)
    assert walks[-1]["outcome"] == "ROLLBACK_INCOMPLETE"
    assert walks[-2]["waited_seconds"] >= SIX_HOURS - 900  # hours of waiting, counted in polls
    assert len(walks) < 40  # the waits back off: tens of walks, not hundreds
    note = first_note()
    assert note["outcome"] == "ROLLBACK_INCOMPLETE"
    assert [b["id"] for b in note["blocked"]] == [vpc["id"]]
    assert failed.error is not None and vpc["id"] in failed.error["message"]
    # The outage is over: the next run builds on what is left and creates nothing twice.
    assert rerun.outcome == "READY", rerun.error
    assert rerun.leftovers == []
    assert [v["id"] for v in rerun.inventory["vpcs"]] == [vpc["id"]]
    assert len(rerun.inventory["nat_gateways"]) == 3


def test_c8_rollback_retry_seconds_bounds_the_loop(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(
        SUCCESS,
        config={**FAST, "rollback_retry_seconds": 0},
        fails=[FATAL, "ec2:DeleteVpc=RequestLimitExceeded@1-200"],
    )
    assert result.outcome == "ROLLBACK_INCOMPLETE"
    assert entered(result, "RollbackRetryDelay") == 0
    assert outcomes() == ["ROLLBACK_INCOMPLETE"]


# -- C8: a failing ledger write during rollback still ends in a terminal status, notified ---------------------
def _rollback_put_items(fails: list[str]) -> int:
    """How many dynamodb:PutItem calls a run with `fails` makes before its Rollback's first one."""
    with Sandbox(Options(config=FAST, fails=fails)) as sandbox:
        result = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
    puts = [c for c in result.api_calls if c["call"] == "dynamodb:PutItem"]
    return next(i for i, c in enumerate(puts) if "RollbackFunction" in c["principal"])


def test_c8_ledger_write_failing_at_rollback_start_ends_incomplete_then_a_rerun_finishes(
    run_sandbox: RunSandbox,
) -> None:
    """The Rollback's first write (ROLLING_BACK) is refused: RecordRollbackIncomplete settles the account."""
    n = _rollback_put_items([FATAL]) + 1
    failed, rerun = run_sandbox(
        SUCCESS, "manual/start", config=FAST, fails=[FATAL, f"dynamodb:PutItem=AccessDeniedException@{n}"]
    )
    assert failed.outcome == "ROLLBACK_INCOMPLETE", failed.error
    assert entered(failed, "RecordRollbackIncomplete") == 1
    note = first_note()
    assert note["outcome"] == "ROLLBACK_INCOMPLETE"
    assert {b["type"] for b in note["blocked"]} >= {"ec2:vpc", "ec2:subnet"}  # the ledger's records, named
    assert rerun.outcome == "READY", rerun.error
    assert rerun.leftovers == []
    assert len(rerun.inventory["vpcs"]) == 1 and len(rerun.inventory["nat_gateways"]) == 3


def test_c8_ledger_write_failing_during_the_walk_does_not_stop_it(run_sandbox: RunSandbox) -> None:
    """A record's write refused after its resource was removed: the walk goes on, the re-check finds it gone."""
    n = _rollback_put_items([FATAL]) + 2
    (result,) = run_sandbox(SUCCESS, config=FAST, fails=[FATAL, f"dynamodb:PutItem=AccessDeniedException@{n}"])
    assert result.outcome == "ROLLED_BACK", result.error
    assert result.leftovers == []
    assert outcomes() == ["ROLLED_BACK"]


# -- C8: a status whose owning execution ended blocks nobody ---------------------------------------------------
REDELIVER_FOUR_TIMES = [f"ValidateAccount@{n}" for n in range(1, 5)]


def test_c8_status_left_by_an_ended_execution_is_taken_over_by_the_next_run(run_sandbox: RunSandbox) -> None:
    """Four lost ValidateAccount answers end the execution with the account PROVISIONING (its owner FAILED)."""
    stuck, rerun = run_sandbox(SUCCESS, "manual/start", config=FAST, redeliver=REDELIVER_FOUR_TIMES)
    assert stuck.executions[0]["status"] == "FAILED"
    assert stuck.outcome == "ROLLBACK_INCOMPLETE"  # it changed the account (its status): not REJECTED
    assert rerun.outcome == "READY", rerun.error
    assert rerun.leftovers == []
    assert len(rerun.inventory["vpcs"]) == 1


def test_c8_deprovision_takes_over_a_status_left_by_an_ended_execution() -> None:
    with Sandbox(Options(config=FAST, redeliver=REDELIVER_FOUR_TIMES)) as sandbox:
        stuck = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
        assert sandbox.ledger().status(MEMBER).status == Status.PROVISIONING  # type: ignore[union-attr]
        retired = sandbox.deprovision(MEMBER)
        sandbox.check_faults_fired()
    assert stuck.outcome == "ROLLBACK_INCOMPLETE"
    assert retired.outcome == "DEPROVISIONED", retired.error
    assert outcomes()[-1] == "DEPROVISIONED"


def test_c8_a_running_owner_still_blocks() -> None:
    """Only an owner Step Functions does not report RUNNING is taken over; an unknown one counts as running."""
    with Sandbox(Options(config=FAST)) as sandbox:
        sandbox.world.place_account(MEMBER, "Workloads", role_name="AWSControlTowerExecution")
        sandbox.ledger().set_status(MEMBER, Status.ROLLING_BACK, execution="ct-111111111111-notinstepfunctions")
        result = sandbox.run(load_event("manual", "start"))
    assert result.outcome == "REJECTED"
    assert result.error is not None and "ROLLING_BACK" in result.error["message"]


# -- C8: deprovision ends in a terminal status too -------------------------------------------------------------
def test_c8_deprovision_that_cannot_finish_ends_incomplete_and_notified() -> None:
    with Sandbox(Options(config=FAST, fails=["ec2:DeleteVpc=UnauthorizedOperation"])) as sandbox:
        ready = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
        assert ready.outcome == "READY", ready.error
        retired = sandbox.deprovision(MEMBER)
        status = sandbox.ledger().status(MEMBER)
        sandbox.check_faults_fired()
    assert retired.outcome == "ROLLBACK_INCOMPLETE"
    assert status is not None and status.status == Status.ROLLBACK_INCOMPLETE
    (vpc,) = retired.inventory["vpcs"]
    note = last_note()
    assert note["outcome"] == "ROLLBACK_INCOMPLETE"
    assert vpc["id"] in {b["id"] for b in note["blocked"]}


def test_c8_deprovision_outlasts_an_outage_of_hours_and_finishes() -> None:
    """DeleteVpc throttled for its first 60 calls: each walk of RemoveNetwork meets it (botocore's own retries
    included); the step's TransientError retries back off to 15 minutes for about six hours, so the outage ends
    inside them and the account is DEPROVISIONED with nothing left. Before, RemoveNetwork gave up after ~75 s."""
    with Sandbox(Options(config=FAST, fails=["ec2:DeleteVpc=RequestLimitExceeded@1-60"])) as sandbox:
        ready = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
        start = clock().now()
        retired = sandbox.deprovision(MEMBER)
        took = clock().now() - start
        sandbox.check_faults_fired()
    assert ready.outcome == "READY", ready.error
    assert retired.outcome == "DEPROVISIONED", retired.error
    assert retired.leftovers == [] and retired.inventory["vpcs"] == []
    assert took > 3_600  # the outage took hours of (virtual) waiting, not seconds
    assert last_note()["outcome"] == "DEPROVISIONED"


def test_c8_deprovision_in_an_outage_that_never_ends_is_incomplete_after_hours_and_notified() -> None:
    with Sandbox(Options(config=FAST, fails=["ec2:DeleteVpc=RequestLimitExceeded@1-1000"])) as sandbox:
        sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
        start = clock().now()
        retired = sandbox.deprovision(MEMBER)
        took = clock().now() - start
        status = sandbox.ledger().status(MEMBER)
    assert retired.outcome == "ROLLBACK_INCOMPLETE", retired.error
    assert status is not None and status.status == Status.ROLLBACK_INCOMPLETE
    assert took > 5 * 3_600
    (vpc,) = retired.inventory["vpcs"]
    assert retired.leftovers == [{"type": "ec2:vpc", "id": vpc["id"]}]  # only the VPC: the walks went past it
    assert vpc["id"] in {b["id"] for b in last_note()["blocked"]}


# -- C9: nothing freed while in use ------------------------------------------------------------------------------
TGW = {**FAST, "egress_mode": "tgw"}


def _cidrs(result: RunResult) -> set[str]:
    return {c for v in result.inventory["vpcs"] for c in v["cidrs"]}


def test_c9_blocked_rollback_keeps_the_cidr_slot_and_a_rerun_uses_its_cidrs() -> None:
    """tgw mode: the attachment cannot be deleted, so the VPC stays attached: its slot must stay taken."""
    fails = [FATAL, "ec2:DeleteTransitGatewayVpcAttachment=IncorrectState"]
    with Sandbox(Options(config=TGW, fails=fails)) as sandbox:
        failed = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
        held = allocation.lookup(sandbox.ledger(), MEMBER, sandbox.settings.cidr_pool)
        second = sandbox.run(load_event("controltower", "create_managed_account_second_account"))
        rerun = sandbox.run(load_event("manual", "start"))
        sandbox.check_faults_fired()
    assert failed.outcome == "ROLLBACK_INCOMPLETE", failed.error
    (vpc,) = failed.inventory["vpcs"]
    assert held is not None and set(vpc["cidrs"]) <= set(held.cidrs)  # not freed while the VPC is attached
    assert {"type": "network:cidr-allocation", "id": f"{held.pool}#{held.slot}"} not in failed.leftovers
    assert second.outcome == "READY", second.error
    blocks = [ipaddress.ip_network(c) for c in _cidrs(failed) | _cidrs(second)]
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1 :])
    assert rerun.outcome == "READY", rerun.error  # not InvalidSubnet.Range: the same VPC, its own CIDRs
    assert [v["id"] for v in rerun.inventory["vpcs"]] == [vpc["id"]]
    assert _cidrs(rerun) == set(held.cidrs)
    assert rerun.leftovers == []


def test_c9_rollback_incomplete_names_only_what_is_still_there() -> None:
    """An attachment whose own delete was refused is removed later by the VPC's sweep (the outage is over by
    then): it must not be named as left, and the outcome is ROLLED_BACK."""
    fails = [FATAL, "ec2:DeleteTransitGatewayVpcAttachment=IncorrectState@1"]
    with Sandbox(Options(config=TGW, fails=fails)) as sandbox:
        result = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
        held = allocation.lookup(sandbox.ledger(), MEMBER, sandbox.settings.cidr_pool)
        sandbox.check_faults_fired()
    assert result.outcome == "ROLLED_BACK", result.error
    assert result.leftovers == []
    assert held is None  # the VPC was verified gone: the slot is free
    assert last_note()["blocked"] == []


# -- C8: the ledger's status-and-record read throttled while CreateNetwork builds ----------------------------
def test_c8_ledger_reads_throttled_during_create_network_end_ready_with_each_resource_made_once(
    run_sandbox: RunSandbox,
) -> None:
    """CreateNetwork's one read per resource (BatchGetItem of the status and the record) throttled 12 times in a
    row from its tenth: botocore's four attempts give out three times, the workflow retries the step
    (TransientError), and each re-run finds what the ones before made instead of making it again."""
    throttled = "dynamodb:BatchGetItem=ProvisionedThroughputExceededException@10-21"
    (result,) = run_sandbox(SUCCESS, config=FAST, fails=[throttled])
    assert result.outcome == "READY", result.error
    reads = [c["ok"] for c in result.api_calls if c["call"] == "dynamodb:BatchGetItem"]
    assert reads.count(False) == 12 and reads[-1] is True
    made = [c["call"] for c in result.api_calls if c["ok"] and c["call"].startswith("ec2:Create")]
    assert made.count("ec2:CreateVpc") == 1 and made.count("ec2:CreateSubnet") == 12
    assert made.count("ec2:CreateRouteTable") == 12 and made.count("ec2:CreateNatGateway") == 3
    assert result.leftovers == []


def test_c8_ledger_reads_throttled_past_the_steps_retries_roll_back_to_nothing(run_sandbox: RunSandbox) -> None:
    """The same read throttled 30 times in a row outlasts CreateNetwork's retries (5 attempts of 4 calls): the
    account is rolled back, nothing of mlplane's left, not left half-built."""
    throttled = "dynamodb:BatchGetItem=ProvisionedThroughputExceededException@10-39"
    (result,) = run_sandbox(SUCCESS, config=FAST, fails=[throttled])
    assert result.outcome == "ROLLED_BACK", result.error
    assert result.error is not None and "BatchGetItem" in result.error["message"]
    assert result.leftovers == [] and result.inventory["vpcs"] == []
    assert outcomes() == ["ROLLED_BACK"]
