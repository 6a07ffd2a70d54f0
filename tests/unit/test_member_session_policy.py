"""The member session policies, one per purpose, filled with a stack's settings (mlplane.aws.member_session_policy).

STS AssumeRole, `Policy`: "The plaintext that you use for both inline and managed session policies can't exceed
2,048 characters" (STS API reference, AssumeRole; botocore sts service-2.json, `sessionPolicyDocumentType`
max 2048).
"""

from __future__ import annotations

import json

import pytest

from mlplane import aws
from mlplane.config import Settings
from mlplane.errors import ConfigError
from mlplane.member import PURPOSES, session_policies, session_policy


@pytest.mark.parametrize("purpose", PURPOSES)
def test_the_default_settings_fill_every_placeholder_within_the_sts_limit(purpose: str) -> None:
    text = session_policy(Settings(), purpose)
    print(f"{purpose} member session policy: {len(text)} of {aws.STS_SESSION_POLICY_LIMIT} characters")
    assert len(text) <= aws.STS_SESSION_POLICY_LIMIT
    assert "${" not in text
    document = json.loads(text)
    assert all("Sid" not in statement for statement in document["Statement"])
    # every purpose acts for the service account only; canvas (M1) only on its roles (seed 001); service_catalog
    # (M2) only on its launch role and bucket
    scope = {
        "canvas": "AmazonSageMakerCanvasEMRSExecutionAccess-",
        "service_catalog": "role/mlplane-sc-launch",
    }.get(purpose, "aac_automation_sa")
    assert scope in json.dumps(document)


def test_the_canvas_policy_names_the_custom_domains_execution_role_and_only_mlplanes_roles() -> None:
    settings = Settings(modules={"canvas": {"execution_role_name": "SageMakerDomainRole"}})
    document = json.loads(session_policy(settings, "canvas"))
    resources = {
        resource
        for statement in document["Statement"]
        for resource in ([statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"])
    }
    assert resources == {
        "arn:*:iam::*:role/AmazonSageMakerCanvasEMRSExecutionAccess-*",
        "arn:*:iam::*:role/SageMakerDomainRole",
        "arn:*:iam::aws:policy/AmazonSageMakerCanvasEMRServerlessExecutionRolePolicy",
    }
    writes_on_the_domain_role = {
        action
        for statement in document["Statement"]
        if statement["Resource"] == "arn:*:iam::*:role/SageMakerDomainRole"
        for action in statement["Action"]
    }
    assert writes_on_the_domain_role == {"iam:PutRolePolicy", "iam:DeleteRolePolicy"}  # its inline policy only


def test_the_core_policy_names_the_service_account_and_the_vault_alias() -> None:
    resources = session_policy(Settings())
    assert "user/aac_automation_sa" in resources
    assert "alias/aac-secure-vault" in resources
    assert session_policy(Settings()) == session_policy(Settings(), "core")


def test_each_purpose_has_its_own_policy_and_an_unknown_purpose_is_a_bug() -> None:
    policies = session_policies(Settings())
    assert list(policies) == list(PURPOSES) and len(set(policies.values())) == len(PURPOSES)
    with pytest.raises(ValueError, match="unknown member session purpose 'nope'"):
        session_policy(Settings(), "nope")


def test_other_settings_are_what_the_policy_scopes_to() -> None:
    text = session_policy(Settings(sa_user_name="svc", vault_key_alias="alias/v"))
    assert "arn:*:iam::*:user/svc" in text and "arn:*:kms:*:*:alias/v" in text
    assert "aac_automation_sa" not in text and "aac-secure-vault" not in text


def test_names_too_long_for_sts_are_refused_before_any_call() -> None:
    long_alias = "alias/" + "k" * 200
    with pytest.raises(ConfigError, match=r"^the core member session policy for .* STS allows 2048"):
        session_policy(Settings(vault_key_alias=long_alias))
    with pytest.raises(ConfigError, match=r"^the core member session policy"):
        session_policies(Settings(vault_key_alias=long_alias))  # what ValidateAccount checks first


def test_the_service_catalog_purpose_passes_only_its_launch_role_only_to_service_catalog() -> None:
    document = json.loads(session_policy(Settings(), "service_catalog"))
    passing = [s for s in document["Statement"] if "iam:PassRole" in s["Action"]]
    assert passing == [
        {
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": "arn:*:iam::*:role/mlplane-sc-launch",
            "Condition": {"StringEquals": {"iam:PassedToService": "servicecatalog.amazonaws.com"}},
        }
    ]
    assert all(not a.startswith(("ec2:", "kms:", "sagemaker:")) for s in document["Statement"] for a in s["Action"])
