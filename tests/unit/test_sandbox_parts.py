"""Sandbox building blocks: fault specs, the template resolver, settings from --config."""

from __future__ import annotations

import copy
import json
import os
from typing import Any
from unittest import mock

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


# -- Step Functions error semantics (mlplane_sandbox.fidelity.stepfunctions) ------------------------------------
def _run_definition(definition: dict[str, Any], execution_input: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run an ASL definition in the sandbox's moto interpreter to its end; returns DescribeExecution."""
    import boto3
    from moto import mock_aws
    from moto.stepfunctions.parser.utils import TMP_THREADS

    from mlplane_sandbox import interceptor

    with (
        mock.patch.dict(
            os.environ,
            {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "eu-west-1"},
        ),
        mock_aws(config={"stepfunctions": {"execute_state_machine": True}}),
    ):
        interceptor.install()
        try:
            sfn = boto3.client("stepfunctions", region_name="eu-west-1")
            arn = sfn.create_state_machine(
                name="errors", definition=json.dumps(definition), roleArn="arn:aws:iam::123456789012:role/sfn"
            )["stateMachineArn"]
            execution = sfn.start_execution(stateMachineArn=arn, input=json.dumps(execution_input or {}))
            for thread in list(TMP_THREADS):
                thread.join()
            described: dict[str, Any] = sfn.describe_execution(executionArn=execution["executionArn"])
            return described
        finally:
            interceptor.uninstall()


def _caught_by(error_equals: list[str], failing_branch: dict[str, Any]) -> dict[str, Any]:
    """A Parallel whose only branch fails; its Catch (`error_equals`) leads to a Succeed state."""
    return {
        "StartAt": "Work",
        "States": {
            "Work": {
                "Type": "Parallel",
                "Branches": [{"StartAt": "Inner", "States": {"Inner": {**failing_branch, "End": True}}}],
                "Catch": [{"ErrorEquals": error_equals, "ResultPath": "$.error", "Next": "Handled"}],
                "End": True,
            },
            "Handled": {"Type": "Succeed"},
        },
    }


MISSING_PATH = {  # a Task whose Parameters name a path its input does not have
    "Type": "Task",
    "Resource": "arn:aws:states:::lambda:invoke",
    "Parameters": {"FunctionName": "nowhere", "Payload": {"value.$": "$.no_such_field"}},
}
OVER_256_KB = {"Type": "Pass", "Result": {"blob": "x" * 300_000}}


def _task_caught_by(error_equals: list[str], retry: list[str] | None = None) -> dict[str, Any]:
    task: dict[str, Any] = {
        **MISSING_PATH,
        "Catch": [{"ErrorEquals": error_equals, "ResultPath": "$.error", "Next": "Handled"}],
        "End": True,
    }
    if retry:
        task["Retry"] = [{"ErrorEquals": retry, "MaxAttempts": 2}]
    return {"StartAt": "Work", "States": {"Work": task, "Handled": {"Type": "Succeed"}}}


def test_states_all_does_not_catch_states_runtime() -> None:
    """Step Functions developer guide, "Handling errors" (States.Runtime): "A States.Runtime error isn't
    retriable, and will always cause the execution to fail. A retry or catch on States.ALL won't catch
    States.Runtime errors." moto's interpreter caught a missing path and the execution SUCCEEDED."""
    for catch, retry in ((["States.ALL"], None), (["States.Runtime"], ["States.Runtime"])):
        described = _run_definition(_task_caught_by(catch, retry))
        assert described["status"] == "FAILED", catch  # not even a clause naming it
        assert described["error"] == "States.Runtime"
    in_a_branch = _run_definition(_caught_by(["States.ALL"], MISSING_PATH))
    assert (in_a_branch["status"], in_a_branch["error"]) == ("FAILED", "States.Runtime")


def test_states_all_does_not_catch_data_limit_exceeded_but_its_name_does() -> None:
    """Step Functions developer guide, "Handling errors": States.ALL "can't catch the
    States.DataLimitExceeded terminal error"; a state output over the 256 KB payload quota is one."""
    described = _run_definition(_caught_by(["States.ALL"], OVER_256_KB))
    assert described["status"] == "FAILED"
    assert described["error"] == "States.DataLimitExceeded"
    named = _run_definition(_caught_by(["States.DataLimitExceeded"], OVER_256_KB))
    assert named["status"] == "SUCCEEDED"


def test_task_input_over_256_kb_after_parameters_is_data_limit_exceeded() -> None:
    """Step Functions developer guide, "Handling errors" (States.DataLimitExceeded): reported when "the input
    of a state is larger than the payload size quota after Parameters processing" (256 KB)."""
    definition = {
        "StartAt": "Invoke",
        "States": {
            "Invoke": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "nowhere", "Payload": {"first.$": "$.blob", "second.$": "$.blob"}},
                "End": True,
            }
        },
    }
    described = _run_definition(definition, {"blob": "y" * 150_000})  # the input is within the quota
    assert described["status"] == "FAILED"
    assert described["error"] == "States.DataLimitExceeded"  # before the Lambda was ever invoked


# -- Lambda timeouts on the virtual clock (mlplane_sandbox.lambdas, mlplane_sandbox.clock) ------------------------
def _function(tmp_path: Any, body: str, timeout: int = 900) -> Any:
    from mlplane_sandbox import lambdas

    (tmp_path / "app.py").write_text(body, encoding="utf-8")
    return lambdas.Function(
        logical_id="SlowFunction",
        name="mlplane-SlowFunction",
        arn="arn:aws:lambda:eu-west-1:123456789012:function:mlplane-SlowFunction",
        code_dir=tmp_path,
        handler="app.handler",
        environment={},
        role_arn="arn:aws:sts::123456789012:assumed-role/r/s",
        timeout=timeout,
    )


WAITS_TWICE = """
from mlplane_sandbox.clock import clock
seen = []
def handler(event, context):
    seen.append(context.get_remaining_time_in_millis())
    clock().sleep(600)  # what botocore's waiter does in the sandbox
    seen.append(context.get_remaining_time_in_millis())
    clock().sleep(600)
    seen.append("finished")
    return {"ok": True}
"""


def test_a_handler_waiting_past_its_timeout_dies_as_lambda_reports_it(tmp_path: Any) -> None:
    """AWS Lambda developer guide ("Configure Lambda function timeout"; the context object's
    get_remaining_time_in_millis "Returns the number of milliseconds left before the execution times out"):
    a function runs at most its Timeout, then Lambda stops it; Step Functions sees `Sandbox.Timedout`.
    The sandbox counts the handler's own waits on the virtual clock."""
    from mlplane_sandbox import clock as clock_module
    from mlplane_sandbox import lambdas

    function = _function(tmp_path, WAITS_TWICE, timeout=900)
    clock = clock_module.reset()
    began = clock.now()
    ok, answer = lambdas.Dispatcher({"SlowFunction": function}, {}).invoke(function, {})
    module = function.entry().__globals__
    assert module["seen"] == [900_000, 300_000]  # the countdown, on the virtual clock; never "finished"
    assert not ok and answer["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 900.00 seconds" in answer["errorMessage"]
    assert clock.now() - began == 900  # it died at its timeout, not after its second wait


def test_a_handler_out_of_memory_surfaces_as_lambda_unknown(tmp_path: Any) -> None:
    """Step Functions developer guide, "Handle Lambda service exceptions": "Unhandled errors in Lambda are
    reported as Lambda.Unknown in the error output. These include out-of-memory errors and function timeouts."
    `--oom STATE@N` makes the Nth invocation die that way."""
    from mlplane_sandbox import lambdas

    function = _function(tmp_path, "def handler(event, context):\n    return {'ok': True}\n")
    dispatcher = lambdas.Dispatcher({"SlowFunction": function}, {}, {"SlowFunction": {2}})
    assert dispatcher.invoke(function, {}) == (True, {"ok": True})
    ok, answer = dispatcher.invoke(function, {})
    assert not ok and answer["errorType"] == "Lambda.Unknown"
    assert "Runtime exited with error: signal: killed" in answer["errorMessage"]
    assert dispatcher.invoke(function, {}) == (True, {"ok": True})


def test_leftovers_name_mlplanes_secrets_and_the_keys_of_its_users_but_not_others() -> None:
    """`local run --json` leftovers: a tagged secret (unless scheduled for deletion) and an access key of a user
    mlplane tagged; a key of someone else's user and someone else's secret are not mlplane's."""
    from mlplane_sandbox.inventory import SECTIONS, mlplane_resources

    mine = {"mlplane:managed": "true", "mlplane:account": "111111111111"}
    inventory: dict[str, Any] = {section: [] for section in SECTIONS}
    inventory["iam_users"] = [{"name": "sa", "tags": mine}, {"name": "theirs", "tags": {}}]
    inventory["access_keys"] = [{"user": "sa", "id": "AKIA1", "status": "Active"}, {"user": "theirs", "id": "AKIA2"}]
    inventory["secrets"] = [
        {"name": "s", "arn": "arn:s", "state": "Active", "tags": mine},
        {"name": "d", "arn": "arn:d", "state": "PendingDeletion", "tags": mine},
        {"name": "o", "arn": "arn:o", "state": "Active", "tags": {}},
    ]
    found = mlplane_resources(inventory, "111111111111")
    assert sorted((r["type"], r["id"]) for r in found) == [
        ("iam:access-key", "AKIA1"),
        ("iam:user", "sa"),
        ("secretsmanager:secret", "arn:s"),
    ]


def test_a_template_is_parsed_once_but_each_caller_gets_its_own_copy(tmp_path: Any) -> None:
    from mlplane_sandbox.template import load_template

    path = tmp_path / "t.yaml"
    path.write_text("Resources:\n  A:\n    Type: X\n    Properties: {Name: !Ref P}\n", encoding="utf-8")
    first = load_template(path)
    first["Resources"]["A"]["Type"] = "changed by its caller"
    assert load_template(path)["Resources"]["A"] == {"Type": "X", "Properties": {"Name": {"Ref": "P"}}}
    path.write_text("Resources:\n  B:\n    Type: Y\n", encoding="utf-8")  # an edited file is read again
    assert list(load_template(path)["Resources"]) == ["B"]


def test_moto_eks_still_refuses_a_role_arn_outside_the_partitions_once_they_are_cached() -> None:
    """moto.eks.utils.validate_role_arn, with the partitions read once (hotpaths): an unknown partition is
    refused, a known one accepted."""
    from moto.eks.exceptions import InvalidParameterException
    from moto.eks.utils import validate_role_arn

    from mlplane_sandbox import hotpaths

    hotpaths.install()
    validate_role_arn("arn:aws:iam::123456789012:role/eks")
    validate_role_arn("arn:aws-cn:iam::123456789012:role/eks")
    with pytest.raises(InvalidParameterException):
        validate_role_arn("arn:nowhere:iam::123456789012:role/eks")


def test_a_cached_jsonpath_answers_each_input_and_a_bad_path_raises_each_time() -> None:
    """moto's Step Functions JSONPaths, parsed once per text (hotpaths): the same path read from two inputs
    gives each its own value, ResultPath writes into each input it is given, and a path that does not parse
    raises on every use (an error is never cached)."""
    from moto.stepfunctions.parser.asl.component.common.path import result_path
    from moto.stepfunctions.parser.asl.utils import json_path

    from mlplane_sandbox import hotpaths

    hotpaths.install()
    assert json_path.extract_json("$.polls.eks.ready", {"polls": {"eks": {"ready": True}}}) is True
    assert json_path.extract_json("$.polls.eks.ready", {"polls": {"eks": {"ready": False}}}) is False
    assert json_path.parse("$.polls.eks.ready") is json_path.parse("$.polls.eks.ready")  # parsed once
    first: dict[str, Any] = {"a": 1}
    second: dict[str, Any] = {"a": 2}
    result_path.parse("$.result").update_or_create(first, {"n": 1})
    result_path.parse("$.result").update_or_create(second, {"n": 2})
    assert (first, second) == ({"a": 1, "result": {"n": 1}}, {"a": 2, "result": {"n": 2}})
    for _ in range(2):
        with pytest.raises(Exception, match="Parse error"):
            json_path.extract_json("$.[[", {})


def test_a_definition_is_validated_once_and_an_invalid_one_is_refused_each_time() -> None:
    """CreateStateMachine's validation, remembered per text (asl_cache): a definition that validated is not
    parsed into a program again; one that does not parse raises InvalidDefinition on every try."""
    from moto.stepfunctions.parser.api import InvalidDefinition

    from mlplane_sandbox import asl_cache

    asl_cache.install()
    definition = json.dumps({"StartAt": "Only", "States": {"Only": {"Type": "Pass", "End": True}}})
    validate = asl_cache.StepFunctionsParserBackend._validate_definition
    with mock.patch.object(asl_cache, "_original_validate", wraps=asl_cache._original_validate) as original:
        validate(definition)
        validate(definition)
        assert original.call_count <= 1  # none if an earlier test of this process validated the same text
        for _ in range(2):
            with pytest.raises(InvalidDefinition):
                validate('{"StartAt": "Nowhere", "States": {}}')
        assert original.call_count >= 2


def test_the_sandbox_reads_the_ec2_model_once_per_process() -> None:
    """moto's import asks boto3 for EC2's regions in each partition with a new Session each time, and each
    new session's loader read EC2's whole JSON model (regions.py): in a fresh process, importing the sandbox
    and making mlplane's EC2 client reads it once."""
    import subprocess
    import sys

    probe = (
        "import botocore.loaders\n"
        "loads = []\n"
        "original = botocore.loaders.JSONFileLoader.load_file\n"
        "def load_file(self, file_path):\n"
        "    loads.append(str(file_path))\n"
        "    return original(self, file_path)\n"
        "botocore.loaders.JSONFileLoader.load_file = load_file\n"
        "import mlplane_sandbox.runner\n"
        "from mlplane.aws import new_session\n"
        "new_session(region_name='eu-west-1').client('ec2')\n"
        "from moto.ec2.models.availability_zones_and_regions import RegionsAndZonesBackend\n"
        "assert any(r.name == 'us-gov-west-1' for r in RegionsAndZonesBackend.regions)\n"
        "print(sum(1 for p in loads if '/ec2/' in p and p.endswith('service-2')))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"AWS_DEFAULT_REGION": "eu-west-1"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    assert done.stdout.strip() == "1"


def test_the_attribute_names_moto_tries_are_cached_per_class_meta_member_and_shape() -> None:
    """moto's serializer picks an attribute by the names its alias providers give (hotpaths caches them): the
    cached answer is the providers' own, and an object whose class declares other aliases gets its own."""
    from moto.core.serialize import AttributePickerContext, XFormedAttributePicker
    from moto.core.utils import get_service_model

    from mlplane_sandbox import hotpaths

    hotpaths.install()
    vpc = get_service_model("ec2").shape_for("Vpc")  # moto's model, one per service
    member = vpc.members["VpcId"]
    member.parent = vpc  # as moto's serializer sets it

    class Plain:
        pass

    class Aliased:
        class Meta:
            serialization_aliases = {"VpcId": "the_id"}  # noqa: RUF012 - moto's convention

    picker = XFormedAttributePicker()
    plain = picker.get_possible_keys(AttributePickerContext(obj=Plain(), key="VpcId", shape=member))
    # as-is, then the shape-prefix alias ("Vpc" + "Id"), then the camelCase one, each also snake_cased
    assert tuple(plain) == ("VpcId", "vpc_id", "Id", "id", "vpcId", "vpc_id")
    assert picker.get_possible_keys(AttributePickerContext(obj=Plain(), key="VpcId", shape=member)) is plain
    aliased = picker.get_possible_keys(AttributePickerContext(obj=Aliased(), key="VpcId", shape=member))
    assert tuple(aliased) == ("the_id", "the_id", *plain)  # the class's own alias first
    assert picker(AttributePickerContext(obj=Aliased(), key="VpcId", shape=member)) is None  # no such attribute


def test_in_process_requests_carry_the_credential_scope_and_no_computed_signature() -> None:
    """hotpaths: SigV4 headers as botocore sets them, the signature not computed (nothing checks it); a
    presigned URL is still signed (other processes and S3 would check it)."""
    import re

    import boto3
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    from botocore.config import Config

    from mlplane_sandbox import hotpaths, interceptor

    hotpaths.install()
    session = boto3.Session(aws_access_key_id="AKIATEST", aws_secret_access_key="x", aws_session_token="t")
    credentials = session.get_credentials()
    assert credentials is not None
    request = AWSRequest(method="POST", url="https://ec2.eu-west-1.amazonaws.com/", data=b"Action=DescribeVpcs")
    botocore.auth.SigV4Auth(credentials, "ec2", "eu-west-1").add_auth(request)
    header = request.headers["Authorization"]
    assert header.startswith("AWS4-HMAC-SHA256 Credential=AKIATEST/")
    assert header.endswith(f"Signature={hotpaths.UNCHECKED_SIGNATURE}")
    match = interceptor._ACCESS_KEY.search(header)
    assert match is not None and match.groups() == ("AKIATEST", "eu-west-1")
    assert request.headers["X-Amz-Security-Token"] == "t" and re.fullmatch(
        r"\d{8}T\d{6}Z", request.headers["X-Amz-Date"]
    )
    s3 = session.client("s3", region_name="eu-west-1", config=Config(signature_version="s3v4"))
    url = s3.generate_presigned_url("get_object", Params={"Bucket": "b", "Key": "k"})
    signature = re.search(r"X-Amz-Signature=([0-9a-f]{64})", url)
    assert signature is not None and signature.group(1) != hotpaths.UNCHECKED_SIGNATURE


def test_a_client_class_is_built_once_per_model_and_handlers_and_each_client_keeps_its_own_state() -> None:
    """hotpaths: two sessions' EC2 clients share the class botocore built from EC2's model; each has its own
    credentials and region; a session with another `creating-client-class` handler gets a class of its own."""
    from mlplane import aws
    from mlplane_sandbox import hotpaths

    hotpaths.install()
    first = aws.new_session(aws_access_key_id="AKIAFIRST", aws_secret_access_key="x", region_name="eu-west-1")
    second = aws.new_session(aws_access_key_id="AKIASECOND", aws_secret_access_key="y", region_name="us-east-1")
    one, two = first.client("ec2"), second.client("ec2")
    assert type(one) is type(two) and type(one) is not type(first.client("iam"))
    assert hasattr(one, "describe_vpcs") and hasattr(one, "generate_presigned_url")  # methods and mixins
    assert one._request_signer._credentials.access_key == "AKIAFIRST"
    assert two._request_signer._credentials.access_key == "AKIASECOND"
    assert (one.meta.region_name, two.meta.region_name) == ("eu-west-1", "us-east-1")

    class Extra:
        def extra(self) -> str:
            return "extra"

    def add_extra(base_classes: list[type], **_: Any) -> None:
        base_classes.insert(0, Extra)

    third = aws.new_session(aws_access_key_id="AKIATHIRD", aws_secret_access_key="z", region_name="eu-west-1")
    third.events.register("creating-client-class.ec2", add_extra)
    extended = third.client("ec2")
    assert type(extended) is not type(one) and extended.extra() == "extra" and not hasattr(one, "extra")


def test_event_aliasers_with_botocores_aliases_share_the_names_they_worked_out_and_others_keep_their_own() -> None:
    """hotpaths: a client's aliaser maps event names as botocore's does (apigateway is api-gateway), the names
    once worked out shared by every aliaser with botocore's aliases; an aliaser with other aliases keeps its own."""
    import botocore.hooks

    from mlplane_sandbox import hotpaths

    hotpaths.install()
    first = botocore.hooks.EventAliaser(botocore.hooks.HierarchicalEmitter())
    second = copy.copy(first)  # what each client gets from its session
    assert first._alias_event_name("before-call.apigateway.GetRestApi") == "before-call.api-gateway.GetRestApi"
    assert second._alias_name_cache is first._alias_name_cache
    assert second._alias_event_name("before-call.ec2.DescribeVpcs") == "before-call.ec2.DescribeVpcs"
    other = botocore.hooks.EventAliaser(botocore.hooks.HierarchicalEmitter(), {"ec2": "elastic-compute"})
    assert other._alias_name_cache is not first._alias_name_cache
    assert other._alias_event_name("before-call.ec2.DescribeVpcs") == "before-call.elastic-compute.DescribeVpcs"
    assert first._alias_event_name("before-call.ec2.DescribeVpcs") == "before-call.ec2.DescribeVpcs"


def test_the_cold_import_bench_imports_under_the_functions_literal_environment() -> None:
    """`make bench` imports each handler with the environment template.yaml gives every function (issue 14),
    pydantic's plugin scan switched off as in Lambda; the stack's references are no literal and are left out."""
    from mlplane_sandbox.bench import function_environment

    env = function_environment()
    assert env["PYDANTIC_DISABLE_PLUGINS"] == "__all__" and env["POWERTOOLS_SERVICE_NAME"] == "mlplane"
    assert "LEDGER_TABLE" not in env and "POWERTOOLS_METRICS_NAMESPACE" not in env
