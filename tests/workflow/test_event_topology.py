"""Events reach the stack through the deployed topology (issue 14 A): the hub stack (template.yaml) in the
Control Tower home region, forwarder.yaml in us-east-1.

AWS sources: Control Tower lifecycle events are delivered to the management account's default bus in the
Control Tower home region ("Lifecycle events in AWS Control Tower", Control Tower user guide); Organizations'
CloudTrail events are delivered to EventBridge in us-east-1 only ("Monitoring Organizations events with
EventBridge"); CloudTrail records a refused call with `errorCode`/`errorMessage` ("CloudTrail record
contents"); a rule targeting an event bus in another region needs a role allowing events:PutEvents on it
("Sending and receiving events between AWS Regions in Amazon EventBridge").
"""

from __future__ import annotations

import copy

import pytest

from mlplane.errors import ConfigError
from mlplane_sandbox import vendor
from mlplane_sandbox.runner import Options, Sandbox, UsageError
from tests.conftest import load_event

MEMBER = "111111111111"
RETIREMENT_OU = "ou-a1b2-retired0"  # events/organizations/move_account.json's destinationParentId


def _machines(result: object) -> list[str]:
    return [e["state_machine"] for e in result.executions]  # type: ignore[attr-defined]


@pytest.mark.parametrize("case", ["create_managed_account_succeeded", "update_managed_account_succeeded"])
def test_control_tower_events_in_the_home_region_start_the_provision_workflow(case: str) -> None:
    with Sandbox(Options()) as sandbox:
        result = sandbox.run(load_event("controltower", case))
    assert result.outcome == "READY", result.error
    assert _machines(result) == ["provision"]


def test_a_control_tower_event_from_another_region_reaches_no_rule() -> None:
    """Control Tower emits its lifecycle events in its home region only; the hub's rules are on that bus."""
    event = load_event("controltower", "create_managed_account_succeeded")
    event["region"] = "us-west-2"
    with Sandbox(Options()) as sandbox:
        result = sandbox.run(event)
    assert result.outcome == "IGNORED"
    assert result.executions == []


def test_close_account_from_us_east_1_reaches_the_deprovision_workflow_through_the_forwarder() -> None:
    with Sandbox(Options()) as sandbox:
        assert sandbox.run(load_event("controltower", "create_managed_account_succeeded")).outcome == "READY"
        forwarders = [r for r in sandbox.rules if r.target_bus]
        assert [r.name for r in forwarders] == ["forwarder.OrganizationsRule"]
        assert forwarders[0].bus == "arn:aws:events:us-east-1:123456789012:event-bus/default"
        assert forwarders[0].target_bus == "arn:aws:events:eu-west-1:123456789012:event-bus/default"
        vendor.teardown(MEMBER)
        closed = sandbox.run(load_event("organizations", "close_account"))
    assert closed.outcome == "DEPROVISIONED", closed.error
    assert _machines(closed) == ["deprovision"]


def test_without_the_forwarder_organizations_events_never_reach_the_hub_region() -> None:
    """The hub's own rules sit on the home region's bus: us-east-1's events do not arrive there by themselves."""
    with Sandbox(Options()) as sandbox:
        assert sandbox.run(load_event("controltower", "create_managed_account_succeeded")).outcome == "READY"
        sandbox.rules = [r for r in sandbox.rules if not r.target_bus]
        vendor.teardown(MEMBER)
        closed = sandbox.run(load_event("organizations", "close_account"))
        status = sandbox.ledger().status(MEMBER)
    assert closed.executions == []
    assert status is not None and status.status == "READY"


def test_move_to_the_retirement_ou_reaches_the_deprovision_workflow() -> None:
    with Sandbox(Options(config={"retirement_ou_id": RETIREMENT_OU})) as sandbox:
        assert sandbox.run(load_event("controltower", "create_managed_account_succeeded")).outcome == "READY"
        vendor.teardown(MEMBER)
        moved = sandbox.run(load_event("organizations", "move_account"))
    assert moved.outcome == "DEPROVISIONED", moved.error
    assert _machines(moved) == ["deprovision"]
    assert moved.inventory["vpcs"] == [] and moved.inventory["iam_users"] == []


def test_move_to_another_ou_starts_nothing() -> None:
    event = load_event("organizations", "move_account")
    event["detail"]["requestParameters"]["destinationParentId"] = "ou-a1b2-sandbox1"
    with Sandbox(Options(config={"retirement_ou_id": RETIREMENT_OU})) as sandbox:
        assert sandbox.run(load_event("controltower", "create_managed_account_succeeded")).outcome == "READY"
        moved = sandbox.run(event)
    assert moved.executions == []
    assert moved.outcome == "READY"


@pytest.mark.parametrize("event_name", ["CloseAccount", "MoveAccount"])
def test_a_failed_organizations_call_starts_no_deprovision(event_name: str) -> None:
    """A refused CloseAccount/MoveAccount is recorded with errorCode: neither the forwarder nor the hub's rules
    match it, and the account (not closed, not moved) stays READY with its network."""
    event = load_event("organizations", "close_account_failed")
    if event_name == "MoveAccount":
        event["detail"]["eventName"] = "MoveAccount"
        event["detail"]["requestParameters"]["destinationParentId"] = RETIREMENT_OU
    with Sandbox(Options(config={"retirement_ou_id": RETIREMENT_OU})) as sandbox:
        ready = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
        assert ready.outcome == "READY"
        vendor.teardown(MEMBER)
        failed = sandbox.run(event)
        status = sandbox.ledger().status(MEMBER)
    assert failed.executions == []
    assert status is not None and status.status == "READY"
    assert failed.inventory["vpcs"] == ready.inventory["vpcs"]


def test_the_failed_call_sample_differs_from_the_successful_one_only_by_its_error() -> None:
    ok = load_event("organizations", "close_account")
    failed = load_event("organizations", "close_account_failed")
    assert failed["detail"]["errorCode"] == "ConstraintViolationException"
    stripped = copy.deepcopy(failed)
    for key in ("errorCode", "errorMessage"):
        del stripped["detail"][key]
    for document in (ok, stripped):
        document.pop("id")
        document["detail"].pop("eventID")
    assert stripped == ok


def test_a_forwarder_whose_role_may_not_put_on_the_hub_bus_loses_the_event() -> None:
    with Sandbox(Options()) as sandbox:
        for rule in sandbox.rules:
            rule.may_put_on = () if rule.target_bus else rule.may_put_on
        with pytest.raises(ConfigError, match="may not events:PutEvents"):
            sandbox.run(load_event("organizations", "close_account"))


def test_a_retirement_ou_id_cloudformation_would_refuse_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="AllowedPattern"):
        Sandbox(Options(config={"retirement_ou_id": "Retired"}))


def test_the_sandbox_refuses_a_member_region_it_cannot_build_in() -> None:
    with pytest.raises(UsageError, match="member_region"):
        Sandbox(Options(config={"member_region": "us-west-2"}))
