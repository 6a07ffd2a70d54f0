"""member-role.yaml (issue 14 C): the role a delegated hub assumes carries exactly the union of mlplane's member
session policies (one inline policy per purpose, mlplane.member.PURPOSES) and trusts only the hub stack's roles."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlplane import aws
from mlplane.config import Settings
from mlplane.member import PURPOSES, session_policy
from mlplane_sandbox.template import load_template

ROOT = Path(__file__).resolve().parents[2]
HUB = load_template(ROOT / "template.yaml")
ROLE = load_template(ROOT / "member-role.yaml")["Resources"]["MemberRole"]["Properties"]
POLICIES = ROOT / "layers" / "mlplane" / "mlplane" / "session_policies"
# IAM: a role's inline policies together may hold 10,240 characters (whitespace not counted), IAM User Guide,
# "IAM and AWS STS quotas"; each session policy is at most 2,048 filled.
ROLE_INLINE_LIMIT = 10_240


def _as_sub(value: Any) -> Any:
    """The session policy as CloudFormation writes it: each string with a `${Setting}` is a !Sub."""
    if isinstance(value, str):
        return {"Fn::Sub": value} if "${" in value else value
    if isinstance(value, list):
        return [_as_sub(item) for item in value]
    if isinstance(value, dict):
        return {key: _as_sub(item) for key, item in value.items()}
    return value


def test_the_member_role_carries_exactly_the_member_session_policies() -> None:
    """One inline policy per purpose, each the purpose's file: the role allows what the sessions together may."""
    by_name = {policy["PolicyName"]: policy["PolicyDocument"] for policy in ROLE["Policies"]}
    assert list(by_name) == [f"mlplane-member-{purpose.replace('_', '-')}" for purpose in PURPOSES]
    assert sorted(p.stem for p in POLICIES.glob("*.json")) == sorted(PURPOSES)
    for purpose in PURPOSES:
        shipped = json.loads((POLICIES / f"{purpose}.json").read_text())
        assert by_name[f"mlplane-member-{purpose.replace('_', '-')}"] == _as_sub(shipped), purpose
    sids = [s["Sid"] for document in by_name.values() for s in document["Statement"]]
    assert len(sids) == len(set(sids)), "a Sid repeated across purposes"
    total = sum(len(session_policy(Settings(), purpose)) for purpose in PURPOSES)
    assert total <= ROLE_INLINE_LIMIT and aws.STS_SESSION_POLICY_LIMIT * len(PURPOSES) <= ROLE_INLINE_LIMIT
    placeholders = {"SaUserName", "VaultKeyAlias"}
    assert placeholders <= set(load_template(ROOT / "member-role.yaml")["Parameters"])
    assert placeholders <= set(HUB["Parameters"])  # the hub's settings of the same names


def test_the_member_role_parameters_default_to_the_hub_stacks() -> None:
    role = load_template(ROOT / "member-role.yaml")["Parameters"]
    for name in ("SaUserName", "VaultKeyAlias"):
        assert role[name]["Default"] == HUB["Parameters"][name]["Default"]


def test_the_member_role_trusts_only_the_hub_stacks_roles() -> None:
    (statement,) = ROLE["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${HubAccountId}:root"}}
    assert statement["Condition"] == {
        "ArnLike": {
            "aws:PrincipalArn": {"Fn::Sub": "arn:${AWS::Partition}:iam::${HubAccountId}:role/${HubStackName}-*"}
        }
    }
    assert "ManagedPolicyArns" not in ROLE


def test_a_delegated_hub_lets_only_the_named_management_account_put_events_on_its_bus() -> None:
    policy = HUB["Resources"]["ManagementEventsPolicy"]
    assert HUB["Conditions"][policy["Condition"]] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "EventSourceAccountId"}, ""]}]
    }
    statement = policy["Properties"]["Statement"]
    assert statement["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${EventSourceAccountId}:root"}}
    assert statement["Action"] == "events:PutEvents"


def test_the_readmes_delegation_policy_allows_what_the_hubs_functions_call_in_organizations() -> None:
    """A delegated hub reads the organization through the README's delegation policy: it must allow each
    Organizations action the hub stack grants its functions, or every provisioning fails with AccessDenied."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index('"Sid": "MlplaneHubReadsAccounts"') :]
    block = block[block.index('"Action": [') + len('"Action": [') : block.index("]")]
    documented = {action.strip().strip('"') for action in block.split(",")}
    granted = {
        action
        for resource in HUB["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Function"
        for policy in resource["Properties"].get("Policies", [])
        if isinstance(policy, dict)
        for statement in policy.get("Statement", [])
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
        if action.startswith("organizations:")
    }
    assert granted and documented == granted
