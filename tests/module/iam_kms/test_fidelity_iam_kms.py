"""The sandbox refuses IAM, KMS and STS calls as AWS does where moto does not (REQUIREMENTS K2, I2, I3)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from mlplane.iam.plan import shipped_policy
from mlplane.kms.policy import credential_statement, default_key_policy
from mlplane.member import Member
from mlplane_sandbox.clock import VirtualClock
from mlplane_sandbox.fidelity import iam_kms

from .conftest import HUB, MEMBER, OTHER_MEMBER, REGION, place_role

ROLE_ARN = f"arn:aws:iam::{MEMBER}:role/credential-service-role"


def _seed_literal(account: str, kind: str = "user") -> dict[str, Any]:
    """Seed 000 step 3 taken literally: the default statement deleted, the principal as written."""
    return {
        "Version": "2012-10-17",
        "Id": "key-consolepolicy-3",
        "Statement": [
            {
                "Sid": "Allow use of the key",
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:{kind}/credential-service-role"},
                "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"],
                "Resource": "*",
            }
        ],
    }


def _error(err: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response: Any = err.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def _key(member: Member) -> str:
    return str(member.client("kms").create_key()["KeyMetadata"]["KeyId"])


def test_k2_seed_literal_policy_is_refused_as_kms_refuses_it(member: Member) -> None:
    """The seed's `:user/credential-service-role` names no user: KMS rejects the principal."""
    kms = member.client("kms")
    key_id = _key(member)
    place_role(MEMBER, "credential-service-role")  # the vendor's role exists; the seed's user does not
    with pytest.raises(ClientError) as err:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(_seed_literal(MEMBER)))
    assert _error(err) == ("MalformedPolicyDocumentException", iam_kms.INVALID_PRINCIPALS, 400)
    assert json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == default_key_policy(MEMBER)


def test_k2_deleting_the_default_statement_fails_the_lockout_check(member: Member) -> None:
    """Even with the principal corrected to the role, dropping the root statement locks the account out."""
    kms = member.client("kms")
    key_id = _key(member)
    place_role(MEMBER, "credential-service-role")
    policy = json.dumps(_seed_literal(MEMBER, kind="role"))
    with pytest.raises(ClientError) as err:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy)
    assert _error(err) == ("MalformedPolicyDocumentException", iam_kms.LOCKOUT, 400)
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy, BypassPolicyLockoutSafetyCheck=True)
    assert json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"]) == json.loads(policy)


def test_k2_merged_policy_with_root_statement_and_role_is_accepted(member: Member) -> None:
    kms = member.client("kms")
    key_id = _key(member)
    place_role(MEMBER, "credential-service-role")
    policy = default_key_policy(MEMBER)
    policy["Statement"].append(credential_statement(ROLE_ARN))
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))


def test_k2_lockout_check_accepts_a_grant_to_the_caller_role(member: Member) -> None:
    kms = member.client("kms")
    key_id = _key(member)
    caller = f"arn:aws:iam::{MEMBER}:role/AWSControlTowerExecution"
    policy: dict[str, Any] = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": caller}, "Action": "kms:Put*", "Resource": "*"}],
    }
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
    policy["Statement"][0]["Action"] = "kms:Decrypt"
    with pytest.raises(ClientError) as err:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
    assert _error(err)[1] == iam_kms.LOCKOUT


def test_k2_principal_in_another_account_must_exist_there(member: Member) -> None:
    kms = member.client("kms")
    key_id = _key(member)
    policy = default_key_policy(MEMBER)
    policy["Statement"].append(credential_statement(f"arn:aws:iam::{OTHER_MEMBER}:role/reader"))
    with pytest.raises(ClientError) as err:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))
    assert _error(err)[1] == iam_kms.INVALID_PRINCIPALS
    place_role(OTHER_MEMBER, "reader")
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(policy))


def test_k2_create_key_with_an_invalid_principal_creates_no_key(member: Member) -> None:
    kms = member.client("kms")
    policy = default_key_policy(MEMBER)
    policy["Statement"].append(credential_statement(ROLE_ARN))
    with pytest.raises(ClientError) as err:
        kms.create_key(Policy=json.dumps(policy))
    assert _error(err)[0] == "MalformedPolicyDocumentException"
    assert kms.list_keys()["Keys"] == []


def test_k2_new_role_is_a_valid_principal_only_after_propagation(member: Member, sandbox: VirtualClock) -> None:
    iam_kms.configure(role_propagation_seconds=30)
    kms = member.client("kms")
    key_id = _key(member)
    member.client("iam").create_role(RoleName="credential-service-role", AssumeRolePolicyDocument="{}")
    policy = json.dumps({**default_key_policy(MEMBER), "Statement": [
        *default_key_policy(MEMBER)["Statement"], credential_statement(ROLE_ARN)
    ]})  # fmt: skip
    sandbox.advance(29)
    with pytest.raises(ClientError) as err:
        kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy)
    assert _error(err)[1] == iam_kms.INVALID_PRINCIPALS
    sandbox.advance(1)
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=policy)


def test_i2_delete_policy_while_attached_is_a_delete_conflict(member: Member) -> None:
    iam = member.client("iam")
    arn = iam.create_policy(PolicyName="AAC_MachineLearning_T", PolicyDocument=json.dumps(shipped_policy()))["Policy"][
        "Arn"
    ]
    iam.create_user(UserName="u")
    iam.attach_user_policy(UserName="u", PolicyArn=arn)
    with pytest.raises(ClientError) as err:
        iam.delete_policy(PolicyArn=arn)
    assert _error(err) == ("DeleteConflict", "Cannot delete a policy attached to entities.", 409)
    iam.detach_user_policy(UserName="u", PolicyArn=arn)
    iam.delete_policy(PolicyArn=arn)
    assert iam.list_policies(Scope="Local")["Policies"] == []


def test_i2_policy_over_6144_characters_without_whitespace_is_limit_exceeded(member: Member) -> None:
    iam = member.client("iam")
    padded = json.dumps(shipped_policy(), indent=12)  # far over 6,144 with whitespace, 4,545 without
    assert len(padded) > 6_144
    arn = iam.create_policy(PolicyName="AAC_MachineLearning_Ok", PolicyDocument=padded)["Policy"]["Arn"]
    big = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:" + "x" * 6_200, "Resource": "*"}]}
    with pytest.raises(ClientError) as err:
        iam.create_policy(PolicyName="AAC_MachineLearning_Big", PolicyDocument=json.dumps(big))
    assert _error(err) == ("LimitExceeded", "Cannot exceed quota for PolicySize: 6144", 409)
    with pytest.raises(ClientError) as err:
        iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(big), SetAsDefault=True)
    assert _error(err)[0] == "LimitExceeded"
    assert len(iam.list_policy_versions(PolicyArn=arn)["Versions"]) == 1


def test_i3_assume_role_of_a_missing_role_is_access_denied(member: Member) -> None:
    sts = boto3.client("sts", region_name=REGION)
    arn = f"arn:aws:iam::{OTHER_MEMBER}:role/AWSControlTowerExecution"
    with pytest.raises(ClientError) as err:
        sts.assume_role(RoleArn=arn, RoleSessionName="test")
    code, message, status = _error(err)
    assert (code, status) == ("AccessDenied", 403)
    assert message == f"User: arn:aws:iam::{HUB}:root is not authorized to perform: sts:AssumeRole on resource: {arn}"
    place_role(OTHER_MEMBER, "AWSControlTowerExecution")
    assert sts.assume_role(RoleArn=arn, RoleSessionName="test")["AssumedRoleUser"]["Arn"].startswith("arn:aws:sts::")


def test_i3_assume_role_check_can_be_turned_off_for_fixtures(member: Member) -> None:
    iam_kms.configure(assume_role_check=False)
    sts = boto3.client("sts", region_name=REGION)
    sts.assume_role(RoleArn=f"arn:aws:iam::{OTHER_MEMBER}:role/nobody", RoleSessionName="test")
