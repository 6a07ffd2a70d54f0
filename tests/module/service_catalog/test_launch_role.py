"""The launch role is least privilege (M2): every call a launch and a termination of the product make as the
launch role in the sandbox is allowed by its policy, with its resources and conditions, and every action of
the policy is used; what the seed's role would allow and this one must not is denied.

The record is the sandbox's (mlplane_sandbox.recording: the calls Service Catalog and CloudFormation make as
the launch role, actor `ServiceCatalog`), with the resources and condition keys IAM would evaluate
(mlplane_sandbox.authorization), decided by mlplane_sandbox.iam_policy, as tests/contract/test_least_privilege.py
does for mlplane's own functions.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlplane.modules.service_catalog import product
from mlplane_sandbox import iam_policy, recording
from mlplane_sandbox.authorization import Authorization, Resource
from mlplane_sandbox.emulators import service_catalog

from .conftest import MEMBER, REGION, Account
from .test_service_catalog_emulator import _catalog, _provision, _token, session_as


def _launched_and_terminated(account: Account) -> list[Authorization]:
    _, product_id, artifact = _catalog(account)
    start = recording.mark()
    record = _provision(product_id, artifact)
    session_as("DataAnalyst").client("servicecatalog").terminate_provisioned_product(
        ProvisionedProductId=record["ProvisionedProductId"], TerminateToken=_token()
    )
    calls = [c for c in recording.since(start) if c.actor == service_catalog.LAUNCH_ACTOR]
    assert calls and all(c.ok for c in calls), [c.call for c in calls if not c.ok]
    assert all(f":assumed-role/{product.LAUNCH_ROLE_NAME}/" in c.principal for c in calls)
    return [a for c in calls for a in c.authorizations]


def _actions(policy: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for statement in policy["Statement"]:
        actions = statement["Action"]
        found.update([actions] if isinstance(actions, str) else actions)
    return found


def test_every_call_of_a_launch_and_a_termination_is_allowed_by_the_launch_role(account: Account) -> None:
    policy = account.launch_policy()
    refused = iam_policy.refused(policy, _launched_and_terminated(account))
    assert not refused, [(a.action, [r.arn for r in a.resources]) for a in refused]


def test_every_action_of_the_launch_role_is_used(account: Account) -> None:
    used = {a.action for a in _launched_and_terminated(account)}
    unused = _actions(account.launch_policy()) - used
    assert not unused, sorted(unused)


def test_the_launch_creates_and_deletes_each_resource_of_the_template(account: Account) -> None:
    used = {a.action for a in _launched_and_terminated(account)}
    for create, delete in (
        ("iam:CreateRole", "iam:DeleteRole"),
        ("ec2:CreateSecurityGroup", "ec2:DeleteSecurityGroup"),
        ("sagemaker:CreateNotebookInstance", "sagemaker:DeleteNotebookInstance"),
        ("cloudformation:CreateStack", "cloudformation:DeleteStack"),
    ):
        assert {create, delete} <= used


def _with(request: Authorization, **context: tuple[str, ...]) -> Authorization:
    return dataclasses.replace(request, context={**request.context, **context})


def test_what_the_seeds_role_allows_and_this_one_must_not_is_denied(account: Account) -> None:
    policy = account.launch_policy()
    calls = {a.action: a for a in _launched_and_terminated(account)}
    notebook = calls["sagemaker:CreateNotebookInstance"]
    other_role = Resource(f"arn:aws:iam::{MEMBER}:role/Admin")
    untagged_group = Resource(f"arn:aws:ec2:{REGION}:{MEMBER}:security-group/sg-0customer")
    other_key = Resource(f"arn:aws:kms:{REGION}:{MEMBER}:key/00000000-0000-0000-0000-000000000000")
    denied = {
        "a notebook with direct internet access": _with(notebook, **{"sagemaker:DirectInternetAccess": ("Enabled",)}),
        "a notebook with root access": _with(notebook, **{"sagemaker:RootAccess": ("Enabled",)}),
        "a notebook in another subnet": _with(notebook, **{"sagemaker:VpcSubnets": ("subnet-0other",)}),
        "a notebook with another volume key": _with(notebook, **{"sagemaker:VolumeKmsKey": (other_key.arn,)}),
        "a notebook of a size outside the list": _with(notebook, **{"sagemaker:InstanceTypes": ("ml.p4d.24xlarge",)}),
        "passing another role": Authorization(
            "iam:PassRole", (other_role,), {"iam:PassedToService": ("sagemaker.amazonaws.com",)}
        ),
        "passing the notebook role to another service": dataclasses.replace(
            calls["iam:PassRole"], context={"iam:PassedToService": ("ec2.amazonaws.com",)}
        ),
        "deleting a security group no launch made": Authorization("ec2:DeleteSecurityGroup", (untagged_group,)),
        "creating another role": Authorization("iam:CreateRole", (other_role,)),
        "a grant on another key": Authorization(
            "kms:CreateGrant", (other_key,), {"kms:GrantIsForAWSResource": ("true",)}
        ),
        "a grant for a person, not an AWS service": dataclasses.replace(
            calls["kms:CreateGrant"], context={"kms:GrantIsForAWSResource": ("false",)}
        ),
        "reading any S3 object": Authorization("s3:GetObject", (Resource("arn:aws:s3:::customer-data/x.csv"),)),
        "another stack": Authorization(
            "cloudformation:DeleteStack", (Resource(f"arn:aws:cloudformation:{REGION}:{MEMBER}:stack/mlplane/1"),)
        ),
    }
    allowed = [why for why, request in denied.items() if not iam_policy.refused(policy, [request])]
    assert not allowed, allowed
    assert not [a for a in _actions(policy) if "*" in a], "no wildcard action, unlike the seed's"


def _cfn_lint() -> str:
    local = Path(sys.executable).parent / "cfn-lint"
    if not local.exists():
        pytest.skip("cfn-lint is not installed (make install)")
    return str(local)


def test_the_shipped_and_the_rendered_template_pass_cfn_lint(tmp_path: Path) -> None:
    shipped = tmp_path / "shipped.yaml"
    shipped.write_text(product.template_text(), encoding="utf-8")
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(
        product.render(
            subnet_id="subnet-0123456789abcdef0",
            vpc_id="vpc-0123456789abcdef0",
            kms_key_arn=f"arn:aws:kms:{REGION}:{MEMBER}:key/11111111-2222-3333-4444-555555555555",
        ),
        encoding="utf-8",
    )
    done = subprocess.run([_cfn_lint(), str(shipped), str(rendered)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
