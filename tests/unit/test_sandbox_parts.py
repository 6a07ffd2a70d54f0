"""Sandbox building blocks: fault specs, the template resolver, settings from --config."""

from __future__ import annotations

import pytest

from mlplane.config import settings_from
from mlplane.errors import ConfigError
from mlplane_sandbox import faults
from mlplane_sandbox.template import Resolver, parameter_values, pascal


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("ec2:CreateVpc", faults.Fault("ec2", "CreateVpc", "InternalError", None)),
        ("ec2:CreateNatGateway=InternalError@2", faults.Fault("ec2", "CreateNatGateway", "InternalError", 2)),
        ("iam:AttachUserPolicy=AccessDenied", faults.Fault("iam", "AttachUserPolicy", "AccessDenied", None)),
        ("kms:PutKeyPolicy@*", faults.Fault("kms", "PutKeyPolicy", "InternalError", None)),
        (
            "ec2:DeleteRoute=RequestLimitExceeded@1-200",
            faults.Fault("ec2", "DeleteRoute", "RequestLimitExceeded", 1, 200),
        ),
    ],
)
def test_fail_specs_parse_with_design_defaults(spec: str, expected: faults.Fault) -> None:
    parsed = faults.parse_fault(spec)
    assert (parsed.service, parsed.operation, parsed.code, parsed.nth, parsed.last) == (
        expected.service,
        expected.operation,
        expected.code,
        expected.nth,
        expected.last,
    )
    assert parsed.spec == spec


@pytest.mark.parametrize(
    "spec",
    [
        "ec2CreateVpc",
        "ec2:createVpc",
        "ec2:CreateVpc@0",
        "ec2:CreateVpc@x",
        "",
        "ec2:CreateVpc@5-2",  # a range that ends before it starts
        "ec2:CreateVpc@*-3",
        "ec2:CreateVcp",  # no such operation in botocore's ec2 model
        "foo:Bar",  # no such service
        "service-quotas:RequestServiceQuotaIncrease",  # mlplane's call names use the IAM prefix, servicequotas
    ],
)
def test_bad_fail_specs_are_usage_errors(spec: str) -> None:
    with pytest.raises(faults.FaultSpecError):
        faults.parse_fault(spec)


def test_crash_on_an_operation_botocore_does_not_have_is_a_usage_error() -> None:
    with pytest.raises(faults.FaultSpecError, match="CreateVcp"):
        faults.parse_fault("ec2:CreateVcp", crash=True)


def test_a_range_fails_its_calls_and_then_lets_them_through() -> None:
    plan = faults.FaultPlan(fails=[faults.parse_fault("ec2:DeleteRoute@2-4")])
    outcomes = [plan.failure_for("ec2:DeleteRoute", plan.count("ec2:DeleteRoute")) is not None for _ in range(6)]
    assert outcomes == [False, True, True, True, False, False]


def test_the_plan_names_the_faults_that_never_fired() -> None:
    plan = faults.FaultPlan(
        fails=[faults.parse_fault("ec2:CreateVpc@2"), faults.parse_fault("ec2:CreateSubnet")],
        crashes=[faults.parse_fault("ec2:CreateNatGateway@3", crash=True)],
    )
    for _ in range(2):
        plan.failure_for("ec2:CreateVpc", plan.count("ec2:CreateVpc"))
    assert plan.unfired() == ["--fail ec2:CreateSubnet", "--crash ec2:CreateNatGateway@3"]


def test_crash_defaults_to_the_first_call_and_takes_no_error_code() -> None:
    assert faults.parse_fault("ec2:CreateNatGateway", crash=True).nth == 1
    with pytest.raises(faults.FaultSpecError):
        faults.parse_fault("ec2:CreateNatGateway=InternalError", crash=True)


def test_every_failing_call_counts_and_only_the_nth_fails() -> None:
    plan = faults.FaultPlan(fails=[faults.parse_fault("ec2:CreateVpc@2")])
    outcomes = [plan.failure_for("ec2:CreateVpc", plan.count("ec2:CreateVpc")) is not None for _ in range(3)]
    assert outcomes == [False, True, False]


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("InternalError", 500),
        ("RequestLimitExceeded", 503),
        ("ThrottlingException", 400),
        ("AccessDenied", 403),
        ("InvalidParameterValue", 400),
    ],
)
def test_injected_errors_carry_the_real_http_status(code: str, status: int) -> None:
    assert faults.status_for(code) == status


def test_resolver_handles_ref_getatt_sub_join() -> None:
    resolver = Resolver(
        parameters={"Role": "Exec", "Ous": ["Workloads", "ML"]},
        refs={"Table": "t1"},
        attrs={"Fn.Arn": "arn:fn"},
        pseudo={"AWS::Partition": "aws"},
    )
    assert resolver.resolve({"Ref": "Table"}) == "t1"
    assert resolver.resolve({"Fn::GetAtt": ["Fn", "Arn"]}) == "arn:fn"
    assert resolver.resolve({"Fn::Sub": "arn:${AWS::Partition}:iam::*:role/${Role}"}) == "arn:aws:iam::*:role/Exec"
    assert resolver.resolve({"Fn::Join": [",", {"Ref": "Ous"}]}) == "Workloads,ML"


def test_comma_delimited_parameters_become_lists() -> None:
    template = {"Parameters": {"AllowedOus": {"Type": "CommaDelimitedList", "Default": "Workloads"}}}
    assert parameter_values(template, {})["AllowedOus"] == ["Workloads"]
    assert parameter_values(template, {"AllowedOus": "A, B"})["AllowedOus"] == ["A", "B"]


def test_config_keys_map_to_template_parameters() -> None:
    assert pascal("egress_mode") == "EgressMode"
    assert pascal("allowed_ous") == "AllowedOus"


def test_policy_name_without_prefix_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="AAC_MachineLearning"):
        settings_from({"sa_policy_name": "MyPolicy"})


def test_config_accepts_stack_parameters_that_only_rules_use() -> None:
    from mlplane_sandbox.runner import Options, Sandbox, UsageError

    sandbox = Sandbox(Options(config={"retirement_ou_id": "ou-a1b2-retired0"}))
    assert sandbox.settings.egress_mode == "nat"
    with pytest.raises(UsageError, match="unknown key 'no_such_key'"):
        Sandbox(Options(config={"no_such_key": 1}))
