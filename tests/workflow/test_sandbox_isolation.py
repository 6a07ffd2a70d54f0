"""Sandboxes in one process are independent: a second sandbox sees nothing of the first (accounts, ledger,
executions, call record, clock, faults, mlplane's session and settings caches). The suite runs hundreds of
sandboxes per pytest worker and every speed-up of the machinery (process-wide caches) must keep this true."""

from __future__ import annotations

from mlplane import aws
from mlplane_sandbox import clock, interceptor, recording
from mlplane_sandbox.runner import Options, Sandbox
from mlplane_sandbox.world import HUB_ACCOUNT, as_account, sandbox_client
from tests.conftest import load_event

MEMBER = "111111111111"
FAST = {"vendor_timeout_seconds": 7200}


def test_a_second_sandbox_sees_nothing_of_the_first() -> None:
    success = load_event("controltower", "create_managed_account_succeeded")
    first_options = Options(
        config={**FAST, "poll_interval_seconds": 600}, fails=["ec2:CreateVpc=RequestLimitExceeded@1"]
    )
    with Sandbox(first_options) as first:
        ready = first.run(success)
        assert ready.outcome == "READY"
        assert first.ledger().status(MEMBER) is not None
        assert clock.clock().slept > 0
        assert recording.calls()
        assert aws._members  # mlplane assumed the member role and cached the session
        first_executions = [e["name"] for e in first.last_executions]

    with Sandbox(Options(config=FAST)) as second:
        assert second.ledger().status(MEMBER) is None
        assert MEMBER not in second.world.accounts
        with as_account(HUB_ACCOUNT):
            org = sandbox_client("organizations")
            assert [a["Id"] for a in org.list_accounts()["Accounts"]] == [HUB_ACCOUNT]
            sfn = sandbox_client("stepfunctions")
            for arn in second.state_machines.values():
                assert sfn.list_executions(stateMachineArn=arn)["executions"] == []
        assert recording.calls() == []
        assert clock.clock().slept == 0
        assert aws._members == {} and aws._clients == {}
        assert second.settings_from_env().poll_interval_seconds != 600  # the first's --config is gone
        assert interceptor._fault_plan.unfired() == []  # no fault plan of the first
        again = second.run(success)
        assert again.outcome == "READY"
        # The first's fault is not applied here: CreateVpc succeeds on its first attempt.
        assert [c["ok"] for c in again.api_calls if c["call"] == "ec2:CreateVpc"] == [True]
        with as_account(HUB_ACCOUNT):
            listed = {
                e["executionArn"]
                for arn in second.state_machines.values()
                for e in sfn.list_executions(stateMachineArn=arn)["executions"]
            }
        assert listed == {e["executionArn"] for e in second.last_executions}  # only this sandbox's own
        assert first_executions  # the first did run executions
