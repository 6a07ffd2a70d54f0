"""A hub in a delegated account (issue 14 C): it reaches members through member-role.yaml's role, deployed to
every vended account by a service-managed StackSet, not through AWSControlTowerExecution (which trusts only
the management account: Control Tower user guide, "About the AWSControlTowerExecution role").

The sandbox places each account with the configured role; a role named as member-role.yaml's gets the
template's trust and inline policy, and STS refuses a caller the trust policy does not allow (IAM User
Guide, "IAM JSON policy elements: Principal"; fidelity/iam_kms.py).
"""

from __future__ import annotations

import dataclasses

from mlplane.member import PURPOSES
from mlplane_sandbox.runner import Options, Sandbox
from mlplane_sandbox.world import as_account, sandbox_client
from tests.conftest import load_event

MEMBER = "111111111111"
DELEGATED = {"member_role_name": "mlplane-member"}


def test_a_delegated_hub_provisions_through_the_shipped_member_role() -> None:
    with Sandbox(Options(config=DELEGATED)) as sandbox:
        result = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
        with as_account(MEMBER):
            iam = sandbox_client("iam")
            role = iam.get_role(RoleName="mlplane-member")["Role"]
            inline = iam.list_role_policies(RoleName="mlplane-member")["PolicyNames"]
    assert result.outcome == "READY", result.error
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Condition"]["ArnLike"]["aws:PrincipalArn"] == "arn:aws:iam::123456789012:role/mlplane-*"
    assert sorted(inline) == sorted(f"mlplane-member-{p.replace('_', '-')}" for p in PURPOSES)  # one per purpose
    assumed = {
        c["principal"].split("/")[1] for c in result.api_calls if c["principal"].startswith(f"arn:aws:sts::{MEMBER}:")
    }
    assert assumed == {"mlplane-member"}


def test_a_member_role_trusting_another_hub_cannot_be_assumed() -> None:
    with Sandbox(Options(config=DELEGATED)) as sandbox:
        role = sandbox.world.stackset_role
        assert role is not None
        sandbox.world.stackset_role = dataclasses.replace(
            role, trust_policy=role.trust_policy.replace("123456789012", "222222222222")
        )
        result = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
    assert result.outcome == "REJECTED"
    assert result.error is not None and "mlplane-member" in result.error["message"]
    assert result.inventory["vpcs"] == []
