"""The deployed topology (issue 14 A): the hub stack names the member region; forwarder.yaml carries
Organizations' events from us-east-1 to the hub's bus; no pattern matches a failed call."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from mlplane import aws
from mlplane.accounts.retire import parse_retire, parse_retire_shape
from mlplane.config import settings_from
from mlplane.errors import ConfigError, InputRejected
from mlplane.member import member_for
from mlplane_sandbox.template import load_template
from tests.conftest import load_event
from tests.module.moto_account import use_fake_credentials

ROOT = Path(__file__).resolve().parents[2]
HUB = load_template(ROOT / "template.yaml")
FORWARDER = load_template(ROOT / "forwarder.yaml")
NO_ERROR = [{"exists": False}]


def _organizations_patterns() -> list[dict[str, Any]]:
    hub = HUB["Resources"]["StartDeprovisioningFunction"]["Properties"]["Events"]
    forwarded = [
        r["Properties"]["EventPattern"] for r in FORWARDER["Resources"].values() if r["Type"] == "AWS::Events::Rule"
    ]
    return [e["Properties"]["Pattern"] for e in hub.values()] + [
        p for p in forwarded if p["source"] == ["aws.organizations"]
    ]


def test_every_organizations_pattern_excludes_failed_calls() -> None:
    patterns = _organizations_patterns()
    assert len(patterns) == 3
    for pattern in patterns:
        assert pattern["detail"]["errorCode"] == NO_ERROR, pattern


def test_the_forwarder_sends_organizations_events_from_us_east_1_to_the_hub_default_bus() -> None:
    resources = FORWARDER["Resources"]
    rule = resources["OrganizationsRule"]
    assert FORWARDER["Conditions"][rule["Condition"]] == {"Fn::Equals": [{"Ref": "AWS::Region"}, "us-east-1"]}
    assert rule["Properties"]["EventPattern"]["detail"]["eventName"] == ["CloseAccount", "MoveAccount"]
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"]["Fn::Sub"][0] == "arn:${AWS::Partition}:events:${HubRegion}:${Hub}:event-bus/default"
    assert target["RoleArn"] == {"Fn::GetAtt": ["ForwardRole", "Arn"]}
    (policy,) = resources["ForwardRole"]["Properties"]["Policies"]
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert statement["Action"] == "events:PutEvents"
    assert statement["Resource"] == target["Arn"]  # exactly the hub's bus, nothing else


def test_forwarder_passes_cfn_lint_offline() -> None:
    lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(lint), str(ROOT / "forwarder.yaml")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_member_region_is_a_parameter_without_default_passed_to_every_function() -> None:
    spec = HUB["Parameters"]["MemberRegion"]
    assert "Default" not in spec
    env = HUB["Globals"]["Function"]["Environment"]["Variables"]
    assert env["MEMBER_REGION"] == {"Ref": "MemberRegion"}
    assert re.fullmatch(spec["AllowedPattern"], "eu-west-1")
    assert not re.fullmatch(spec["AllowedPattern"], "eu-west")


def test_members_are_reached_in_the_member_region_and_the_ledger_in_the_hub_region(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    use_fake_credentials(monkeypatch, "eu-west-1")
    settings = settings_from({"aws_region": "eu-west-1", "member_region": "eu-central-1"})
    try:
        with mock_aws():
            member = member_for("111111111111", "ex", "CreateNetwork", settings)
            assert member.region == "eu-central-1"
            assert member.session.region_name == "eu-central-1"
            assert member.ledger._db.meta.region_name == "eu-west-1"
    finally:
        aws.reset()


def test_a_member_region_that_is_no_region_name_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="member_region"):
        settings_from({"member_region": "Ireland"})


def test_the_retirement_ou_pattern_accepts_the_sample_move_and_refuses_names() -> None:
    pattern = HUB["Parameters"]["RetirementOuId"]["AllowedPattern"]
    destination = load_event("organizations", "move_account")["detail"]["requestParameters"]["destinationParentId"]
    assert re.fullmatch(pattern, destination)
    assert re.fullmatch(pattern, "")
    assert not re.fullmatch(pattern, "Retired")


def test_a_failed_call_event_is_refused_by_the_start_function_too() -> None:
    """Should a rule ever let it through: CloudTrail's errorCode means nothing was closed."""
    failed = load_event("organizations", "close_account_failed")
    assert parse_retire_shape(failed).account_id == "111111111111"
    with pytest.raises(InputRejected, match="ConstraintViolationException"):
        parse_retire(failed)
    assert parse_retire(load_event("organizations", "move_account")).account_id == "111111111111"


def test_local_run_of_a_failed_call_event_exits_zero_and_starts_nothing() -> None:
    """The CLI passes a failed call's event on (it is what AWS would deliver); the rules do not match it."""
    mlplane = Path(sys.executable).parent / "mlplane"
    sample = ROOT / "events" / "organizations" / "close_account_failed.json"
    result = subprocess.run(
        [str(mlplane), "local", "run", str(sample), "--json"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["outcome"] == "IGNORED"
    assert document["executions"] == []
