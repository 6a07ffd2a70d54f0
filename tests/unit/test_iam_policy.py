"""The sandbox's IAM policy evaluator (mlplane_sandbox.iam_policy) on known allow and deny cases.

Each case follows the IAM User Guide: "Policy evaluation logic" (explicit deny wins, no allow = deny),
"IAM JSON policy elements: Condition operators" (String*, Arn*, Bool, Null, ...IfExists) and "Single-valued vs.
multivalued context keys" (ForAnyValue / ForAllValues; an absent key makes ForAllValues true and ForAnyValue
false).
"""

from __future__ import annotations

from typing import Any

import pytest

from mlplane_sandbox.authorization import Authorization, Resource
from mlplane_sandbox.iam_policy import Unsupported, allows, denied_resources

VPC = "arn:aws:ec2:eu-west-1:111111111111:vpc/vpc-1"
IGW = "arn:aws:ec2:eu-west-1:111111111111:internet-gateway/igw-1"
MANAGED = {"aws:ResourceTag/mlplane:managed": ("true",)}


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def _allow(action: Any, resource: Any = "*", condition: dict[str, Any] | None = None) -> dict[str, Any]:
    statement: dict[str, Any] = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition is not None:
        statement["Condition"] = condition
    return statement


def _request(action: str, *resources: Resource, context: dict[str, tuple[str, ...]] | None = None) -> Authorization:
    return Authorization(action, resources, context or {})


def test_action_wildcards_are_case_insensitive_and_nothing_else_is_allowed() -> None:
    policy = _policy(_allow(["ec2:Describe*", "iam:Get?ser"]))
    assert allows(policy, _request("ec2:DescribeVpcs"))
    assert allows(policy, _request("EC2:describevpcs"))
    assert allows(policy, _request("iam:GetUser"))
    assert not allows(policy, _request("iam:GetUsers"))  # ? is one character
    assert not allows(policy, _request("ec2:DeleteVpc"))  # implicit deny


def test_not_action_allows_everything_else() -> None:
    policy = _policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert allows(policy, _request("ec2:DeleteVpc"))
    assert not allows(policy, _request("iam:CreateUser"))


def test_an_explicit_deny_wins_over_an_allow() -> None:
    policy = _policy(_allow("ec2:*"), {"Effect": "Deny", "Action": "ec2:DeleteVpc", "Resource": VPC})
    assert not allows(policy, _request("ec2:DeleteVpc", Resource(VPC)))
    assert allows(policy, _request("ec2:DeleteVpc", Resource(VPC.replace("vpc-1", "vpc-2"))))


def test_resource_wildcards_match_per_arn_segment() -> None:
    policy = _policy(_allow("iam:CreatePolicyVersion", "arn:aws:iam::*:policy/AAC_MachineLearning*"))
    ours = Resource("arn:aws:iam::111111111111:policy/AAC_MachineLearning_SA_Policy")
    theirs = Resource("arn:aws:iam::111111111111:policy/AdministratorAccess")
    assert allows(policy, _request("iam:CreatePolicyVersion", ours))
    assert not allows(policy, _request("iam:CreatePolicyVersion", theirs))
    # `*` in the account segment does not reach across a colon into the resource
    assert not allows(policy, _request("iam:CreatePolicyVersion", Resource("arn:aws:iam::1:x:policy/AAC_Machine")))


def test_a_request_without_described_resources_is_allowed_only_by_resource_star() -> None:
    scoped = _policy(_allow("ec2:DeleteVpc", "arn:aws:ec2:*:*:vpc/*"))
    assert not allows(scoped, _request("ec2:DeleteVpc"))
    assert allows(_policy(_allow("ec2:DeleteVpc")), _request("ec2:DeleteVpc"))


def test_every_resource_of_a_request_must_be_allowed() -> None:
    policy = _policy(
        _allow("ec2:DetachInternetGateway", condition={"StringEquals": {"aws:ResourceTag/mlplane:managed": "true"}})
    )
    request = _request("ec2:DetachInternetGateway", Resource(IGW, MANAGED), Resource(VPC, {}))
    assert not allows(policy, request)
    assert denied_resources(policy, request) == [VPC]
    assert allows(policy, _request("ec2:DetachInternetGateway", Resource(IGW, MANAGED), Resource(VPC, MANAGED)))


def test_string_equals_on_a_resource_tag_denies_an_untagged_or_other_valued_resource() -> None:
    policy = _policy(_allow("ec2:DeleteVpc", condition={"StringEquals": {"aws:resourcetag/mlplane:managed": "true"}}))
    assert allows(policy, _request("ec2:DeleteVpc", Resource(VPC, MANAGED)))  # keys are case-insensitive
    assert not allows(policy, _request("ec2:DeleteVpc", Resource(VPC, {"aws:ResourceTag/mlplane:managed": ("True",)})))
    assert not allows(policy, _request("ec2:DeleteVpc", Resource(VPC)))


def test_string_like_and_arn_like_with_if_exists() -> None:
    condition = {"ArnLikeIfExists": {"iam:PolicyARN": "arn:aws:iam::*:policy/AAC_MachineLearning*"}}
    policy = _policy(_allow(["iam:AttachUserPolicy", "iam:CreateUser"], "arn:aws:iam::*:user/sa", condition))
    user = Resource("arn:aws:iam::111111111111:user/sa")
    ours = ("arn:aws:iam::111111111111:policy/AAC_MachineLearning_SA_Policy",)
    admin = ("arn:aws:iam::aws:policy/AdministratorAccess",)
    assert allows(policy, _request("iam:AttachUserPolicy", user, context={"iam:PolicyARN": ours}))
    assert not allows(policy, _request("iam:AttachUserPolicy", user, context={"iam:PolicyARN": admin}))
    assert allows(policy, _request("iam:CreateUser", user))  # IfExists: no iam:PolicyARN in the request
    strict = _policy(_allow("iam:AttachUserPolicy", "*", {"ArnLike": condition["ArnLikeIfExists"]}))
    assert not allows(strict, _request("iam:AttachUserPolicy", user))  # absent key: ArnLike does not hold
    like = _policy(_allow("ec2:CreateTags", "*", {"StringLike": {"ec2:CreateAction": ["Create*", "Allocate?ddress"]}}))
    assert allows(like, _request("ec2:CreateTags", context={"ec2:CreateAction": ("CreateVpc",)}))
    assert allows(like, _request("ec2:CreateTags", context={"ec2:CreateAction": ("AllocateAddress",)}))
    assert not allows(like, _request("ec2:CreateTags", context={"ec2:CreateAction": ("ModifyVpcAttribute",)}))
    assert not allows(like, _request("ec2:CreateTags"))


def test_for_any_value_and_for_all_values_on_a_multivalued_key() -> None:
    any_alias = _policy(
        _allow("kms:PutKeyPolicy", condition={"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/vault"}})
    )
    key = "arn:aws:kms:eu-west-1:111111111111:key/k"
    aliases = {"kms:ResourceAliases": ("alias/other", "alias/vault")}
    assert allows(any_alias, _request("kms:PutKeyPolicy", Resource(key, aliases)))
    assert not allows(any_alias, _request("kms:PutKeyPolicy", Resource(key, {"kms:ResourceAliases": ("alias/x",)})))
    assert not allows(any_alias, _request("kms:PutKeyPolicy", Resource(key)))  # no alias: ForAnyValue is false
    all_tags = _policy(_allow("iam:TagUser", condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}))
    assert allows(all_tags, _request("iam:TagUser", context={"aws:TagKeys": ("a", "b")}))
    assert not allows(all_tags, _request("iam:TagUser", context={"aws:TagKeys": ("a", "c")}))
    assert allows(all_tags, _request("iam:TagUser"))  # absent key: ForAllValues is (vacuously) true


def test_a_single_valued_operator_on_a_multivalued_key_is_refused() -> None:
    policy = _policy(_allow("kms:PutKeyPolicy", condition={"StringEquals": {"kms:ResourceAliases": "alias/vault"}}))
    with pytest.raises(Unsupported, match="several values"):
        allows(policy, _request("kms:PutKeyPolicy", Resource("k", {"kms:ResourceAliases": ("alias/a", "alias/b")})))


def test_bool_null_and_and_or_semantics() -> None:
    policy = _policy(
        _allow(
            "ec2:DeleteVpc",
            condition={
                "Bool": {"aws:SecureTransport": True},
                "Null": {"aws:ResourceTag/owner": "false"},
                "StringEquals": {"aws:ResourceTag/env": ["dev", "test"]},
            },
        )
    )
    keys = {"aws:SecureTransport": ("true",), "aws:ResourceTag/owner": ("me",), "aws:ResourceTag/env": ("test",)}
    assert allows(policy, _request("ec2:DeleteVpc", Resource(VPC, keys)))
    for missing in keys:
        assert not allows(
            policy, _request("ec2:DeleteVpc", Resource(VPC, {k: v for k, v in keys.items() if k != missing}))
        )
    absent = _policy(_allow("ec2:CreateVpc", condition={"Null": {"aws:RequestTag/mlplane:managed": "true"}}))
    assert allows(absent, _request("ec2:CreateVpc"))
    assert not allows(absent, _request("ec2:CreateVpc", context={"aws:RequestTag/mlplane:managed": ("true",)}))


def test_a_policy_variable_in_a_condition_is_the_requests_value_of_its_key() -> None:
    """IAM policy elements, "Variables and tags": `${aws:PrincipalOrgID}` is the caller's organization; a role in
    another organization, or a request without the key, does not match."""
    same_org = _policy(
        _allow("sts:AssumeRole", condition={"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}})
    )
    role = Resource("arn:aws:iam::111111111111:role/mlplane-member", {"aws:ResourceOrgID": ("o-abcdefghij",)})
    assert allows(same_org, _request("sts:AssumeRole", role, context={"aws:PrincipalOrgID": ("o-abcdefghij",)}))
    assert not allows(same_org, _request("sts:AssumeRole", role, context={"aws:PrincipalOrgID": ("o-otherorgid",)}))
    assert not allows(same_org, _request("sts:AssumeRole", role))
    # an unresolved variable beside a literal value: the condition does not hold (AWS may drop the statement)
    either = _policy(
        _allow(
            "sts:AssumeRole",
            condition={"StringEquals": {"aws:ResourceOrgID": ["o-abcdefghij", "${aws:PrincipalOrgID}"]}},
        )
    )
    assert not allows(either, _request("sts:AssumeRole", role))
    embedded = _policy(_allow("s3:GetObject", condition={"StringLike": {"s3:prefix": "home/${aws:username}/*"}}))
    ana = {"aws:username": ("ana",)}
    assert allows(embedded, _request("s3:GetObject", context={"s3:prefix": ("home/ana/a",), **ana}))
    assert not allows(embedded, _request("s3:GetObject", context={"s3:prefix": ("home/bo/a",), **ana}))


@pytest.mark.parametrize(
    "statement",
    [
        _allow("ec2:DeleteVpc", condition={"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}),
        _allow("ec2:DeleteVpc", condition={"ForSomeValues:StringEquals": {"k": "v"}}),
        _allow("ec2:DeleteVpc", condition={"NullIfExists": {"k": "true"}}),
        {"Effect": "Allow", "Action": "ec2:DeleteVpc", "NotResource": VPC},
        {"Effect": "Allow", "Action": "ec2:DeleteVpc"},
        _allow("ec2:DeleteVpc", "arn:aws:ec2:*:${aws:PrincipalAccount}:vpc/*"),
        _allow("ec2:DeleteVpc", condition={"StringLike": {"k": "${*}"}}),
        _allow("ec2:DeleteVpc", condition={"StringEquals": {"k": "${aws:username, 'nobody'}"}}),
    ],
)
def test_what_it_does_not_implement_fails_loudly(statement: dict[str, Any]) -> None:
    with pytest.raises(Unsupported):
        allows(_policy(statement), _request("ec2:DeleteVpc", Resource(VPC, MANAGED)))
