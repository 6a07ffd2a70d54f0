"""A manual deprovision input says so (`"action": "deprovision"`) and goes to the deprovision workflow; the
provision workflow refuses it (issue 15: events/manual/deprovision.json used to provision the account)."""

from __future__ import annotations

import json

from mlplane_sandbox import vendor
from mlplane_sandbox.runner import Options, Sandbox
from mlplane_sandbox.world import HUB_ACCOUNT, as_account, sandbox_client
from tests.conftest import load_event

MEMBER = "111111111111"
FAST = {"poll_interval_seconds": 600}


def test_the_sample_manual_deprovision_input_runs_the_deprovision_workflow() -> None:
    with Sandbox(Options(config=FAST)) as sandbox:
        ready = sandbox.run(load_event("manual", "start"))
        assert ready.outcome == "READY", ready.error
        vendor.teardown(MEMBER)  # the AAC admin removed the data plane first, as the README asks
        result = sandbox.run(load_event("manual", "deprovision"))
        cold_starts = [d for d in sandbox.metrics.documents if isinstance(d, dict) and "ColdStart" in d]
    assert cold_starts, "the sandbox collects the handlers' EMF metrics (not printed on the CLI's stdout)"
    assert result.outcome == "DEPROVISIONED", result.error
    assert [e["state_machine"] for e in result.executions] == ["deprovision"]
    assert result.leftovers == []


def test_the_provision_workflow_rejects_a_deprovision_input_with_the_reason() -> None:
    """Sent to the provision state machine as `aws stepfunctions start-execution` would: REJECTED, nothing made."""
    raw = load_event("manual", "deprovision")
    with Sandbox(Options(config=FAST)) as sandbox:
        sandbox.world.place_account(MEMBER, "Workloads", role_name=sandbox.settings.member_role_name)
        known = sandbox._execution_arns()
        with as_account(HUB_ACCOUNT):
            sandbox_client("stepfunctions").start_execution(
                stateMachineArn=sandbox.state_machines["provision"], name="op-by-hand", input=json.dumps(raw)
            )
        result = sandbox._result(MEMBER, sandbox._wait_new(known), 0)
    assert result.outcome == "REJECTED"
    assert result.error is not None and result.error["type"] == "InputRejected"
    assert '"action": "deprovision"' in result.error["message"] and "deprovision workflow" in result.error["message"]
    assert "\n" not in result.error["message"]
    assert result.inventory.get("vpcs") == []
