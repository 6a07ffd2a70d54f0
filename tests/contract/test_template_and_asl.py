"""template.yaml, the ASL and the functions agree: one name per step, errors the ASL can match, lint clean."""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlplane import errors, observability
from mlplane.ledger import Status
from mlplane_sandbox.template import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = load_template(ROOT / "template.yaml")
MACHINES = {
    name: json.loads((ROOT / "statemachines" / f"{name}.asl.json").read_text())
    for name in ("provision", "deprovision", "reconcile_fleet")
}


def all_states(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every state, with those of Parallel branches and of a Map's item processor."""
    found: dict[str, dict[str, Any]] = {}
    for name, state in definition["States"].items():
        found[name] = state
        for branch in [*state.get("Branches", []), *([state["ItemProcessor"]] if "ItemProcessor" in state else [])]:
            found.update(all_states(branch))
    return found


def machine_resource(machine: str) -> str:
    """provision -> ProvisionStateMachine, reconcile_fleet -> ReconcileFleetStateMachine."""
    return "".join(part.capitalize() for part in machine.split("_")) + "StateMachine"


def snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


def functions() -> dict[str, dict[str, Any]]:
    return {k: v for k, v in TEMPLATE["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_every_task_state_maps_to_its_function_directory_and_resource(machine: str) -> None:
    resource = TEMPLATE["Resources"][machine_resource(machine)]["Properties"]
    substitutions = resource["DefinitionSubstitutions"]
    for name, state in all_states(MACHINES[machine]).items():
        if state["Type"] != "Task":
            continue
        assert state["Parameters"]["FunctionName"] == f"${{{name}FunctionArn}}"
        assert substitutions[f"{name}FunctionArn"] == {"Fn::GetAtt": [f"{name}Function", "Arn"]}
        code = functions()[f"{name}Function"]["Properties"]["CodeUri"]
        assert code == f"functions/{snake(name)}/"
        assert (ROOT / code / "app.py").is_file()


def test_every_function_directory_has_its_resource() -> None:
    dirs = {p.name for p in (ROOT / "functions").iterdir() if (p / "app.py").is_file()}
    resources = {f["Properties"]["CodeUri"].strip("/").split("/")[1] for f in functions().values()}
    assert dirs == resources


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_every_substitution_in_the_asl_is_defined(machine: str) -> None:
    text = (ROOT / "statemachines" / f"{machine}.asl.json").read_text()
    used = set(re.findall(r"\$\{([A-Za-z0-9]+)\}", text))
    defined = set(TEMPLATE["Resources"][machine_resource(machine)]["Properties"]["DefinitionSubstitutions"])
    assert used == defined


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_error_names_are_states_lambda_or_mlplane_errors(machine: str) -> None:
    known = {name for name, obj in vars(errors).items() if isinstance(obj, type) and issubclass(obj, Exception)}
    for state in all_states(MACHINES[machine]).values():
        for clause in state.get("Retry", []) + state.get("Catch", []):
            for name in clause["ErrorEquals"]:
                assert name.startswith(("States.", "Lambda.")) or name == "Sandbox.Timedout" or name in known, name


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_retries_never_cover_states_all(machine: str) -> None:
    for state in all_states(MACHINES[machine]).values():
        for clause in state.get("Retry", []):
            assert "States.ALL" not in clause["ErrorEquals"]


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_every_task_retries_a_lambda_that_timed_out_or_ran_out_of_memory(machine: str) -> None:
    """Step Functions developer guide, "Handle Lambda service exceptions": "Unhandled errors in Lambda are
    reported as Lambda.Unknown ... These include out-of-memory errors and function timeouts"; a timeout is
    also reported as Sandbox.Timedout. Every step is idempotent, so every Task retries both."""
    for name, state in all_states(MACHINES[machine]).items():
        if state["Type"] != "Task":
            continue
        retried = {error for clause in state.get("Retry", []) for error in clause["ErrorEquals"]}
        assert {"Sandbox.Timedout", "Lambda.Unknown"} <= retried, name


def test_quota_wait_backs_off_and_lasts_five_days() -> None:
    """REQUIREMENTS Q3: the quota wait lasts days (default 5) and its Wait reads the backed-off delay the
    poll returns, not the fixed poll interval."""
    provision = all_states(MACHINES["provision"])
    assert provision["QuotasPollDelay"]["SecondsPath"] == "$.polls.quotas.wait_seconds"
    assert provision["WaitForQuotas"]["ResultSelector"]["wait_seconds.$"] == "$.Payload.wait_seconds"
    assert TEMPLATE["Parameters"]["QuotaTimeoutSeconds"]["Default"] == 5 * 86_400


def test_contract_state_names_are_present() -> None:
    provision = all_states(MACHINES["provision"])
    for name in (
        "ValidateAccount",
        "CreateNetwork",
        "CreateIam",
        "RequestQuotas",
        "WaitForEks",
        "WaitForCredentialRole",
        "PatchKmsPolicy",
        "MarkReady",
        "Rollback",
    ):
        assert provision[name]["Type"] == "Task", name


def test_rules_listen_for_create_and_update_managed_account_succeeded_in_allowed_ous() -> None:
    events = functions()["StartProvisioningFunction"]["Properties"]["Events"]
    names = sorted(e["Properties"]["Pattern"]["detail"]["eventName"][0] for e in events.values())
    assert names == ["CreateManagedAccount", "UpdateManagedAccount"]
    for event in events.values():
        details = event["Properties"]["Pattern"]["detail"]["serviceEventDetails"]
        (status,) = details.values()
        assert status["state"] == ["SUCCEEDED"]
        assert status["organizationalUnit"]["organizationalUnitName"] == {"Ref": "AllowedOus"}


def test_ledger_table_has_point_in_time_recovery_and_encryption() -> None:
    props = TEMPLATE["Resources"]["LedgerTable"]["Properties"]
    assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
    assert props["SSESpecification"]["SSEEnabled"] is True


def test_template_passes_cfn_lint_offline() -> None:
    lint = Path(sys.executable).parent / "cfn-lint"
    result = subprocess.run([str(lint), str(ROOT / "template.yaml")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


# -- a deployment that is safe and observable (issue 14 D) ---------------------------------------------------
RESOURCES: dict[str, dict[str, Any]] = TEMPLATE["Resources"]
TOPIC = {"Ref": "NotificationTopic"}


def _of_type(kind: str) -> dict[str, dict[str, Any]]:
    return {name: r for name, r in RESOURCES.items() if r["Type"] == kind}


def test_log_retention_allows_exactly_the_values_cloudwatch_logs_accepts() -> None:
    """botocore's logs model, PutRetentionPolicy retentionInDays: "Possible values are: 1, 3, 5, ... 3653"."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("logs")
    doc = model.operation_model("PutRetentionPolicy").input_shape.members["retentionInDays"].documentation
    accepted = [int(n) for n in re.findall(r"\d+", doc.split("Possible values are:")[1].split(".")[0])]
    spec = TEMPLATE["Parameters"]["LogRetentionDays"]
    assert spec["AllowedValues"] == accepted
    assert spec["Default"] in accepted


def test_every_function_logs_to_its_own_log_group_kept_log_retention_days() -> None:
    groups: set[str] = set()
    for name, function in functions().items():
        group = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup", name
        assert RESOURCES[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}, name
        groups.add(group)
    assert len(groups) == len(functions())  # one each


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_both_state_machines_log_to_cloudwatch_and_trace_with_xray(machine: str) -> None:
    props = RESOURCES[machine_resource(machine)]["Properties"]
    assert props["Tracing"] == {"Enabled": True}
    logging = props["Logging"]
    assert logging["Level"] == {"Ref": "StateMachineLogLevel"}
    assert TEMPLATE["Parameters"]["StateMachineLogLevel"]["AllowedValues"] == ["ERROR", "ALL"]
    ((group, attr),) = [d["CloudWatchLogsLogGroup"]["LogGroupArn"]["Fn::GetAtt"] for d in logging["Destinations"]]
    assert attr == "Arn"
    assert RESOURCES[group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    # Step Functions sets up the log delivery as its role: without these the stack's create fails
    (delivery,) = [p for p in props["Policies"] if "Statement" in p]
    (statement,) = delivery["Statement"]
    assert {"logs:CreateLogDelivery", "logs:PutResourcePolicy", "logs:DescribeLogGroups"} <= set(statement["Action"])


def test_the_alarms_watch_failed_executions_and_held_or_incomplete_rollbacks_and_notify_the_topic() -> None:
    alarms = _of_type("AWS::CloudWatch::Alarm")
    for name, alarm in alarms.items():
        assert alarm["Properties"]["AlarmActions"] == [TOPIC], name
        assert alarm["Properties"]["TreatMissingData"] == "notBreaching", name
    failed = {
        name: a["Properties"]["Dimensions"][0]["Value"]["Ref"]
        for name, a in alarms.items()
        if a["Properties"]["Namespace"] == "AWS/States"
    }
    assert failed == {
        "ProvisionFailedAlarm": "ProvisionStateMachine",
        "DeprovisionFailedAlarm": "DeprovisionStateMachine",
    }
    assert all(alarms[n]["Properties"]["MetricName"] == "ExecutionsFailed" for n in failed)
    watched = {
        dimension["Value"]
        for name, alarm in alarms.items()
        if name not in failed
        for dimension in alarm["Properties"]["Dimensions"]
        if dimension["Name"] == observability.STATUS_DIMENSION
    }
    assert watched == {"ROLLBACK_INCOMPLETE", "ROLLBACK_HELD"}
    for name in set(alarms) - set(failed):
        props = alarms[name]["Properties"]
        assert props["MetricName"] == observability.ACCOUNT_STATUS_METRIC
        assert props["Namespace"] == GLOBAL_ENV["POWERTOOLS_METRICS_NAMESPACE"]
        assert {"Name": "service", "Value": GLOBAL_ENV["POWERTOOLS_SERVICE_NAME"]} in props["Dimensions"]


GLOBAL_ENV: dict[str, Any] = TEMPLATE["Globals"]["Function"]["Environment"]["Variables"]


def _dashboard() -> dict[str, Any]:
    (dashboard,) = _of_type("AWS::CloudWatch::Dashboard").values()
    body = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    assert "DashboardName" not in dashboard["Properties"]
    parsed: dict[str, Any] = json.loads(re.sub(r"\$\{([A-Za-z0-9:.]+)\}", r"<\1>", body))
    return parsed


def test_the_dashboard_shows_the_fleet_from_the_functions_own_metrics() -> None:
    namespace = "mlplane/<AWS::StackName>"
    assert GLOBAL_ENV["POWERTOOLS_METRICS_NAMESPACE"] == {"Fn::Sub": "mlplane/${AWS::StackName}"}
    shown: dict[str, set[str]] = {}
    alarms: list[str] = []
    for widget in _dashboard()["widgets"]:
        alarms.extend(widget["properties"].get("alarms", []))
        for metric in widget["properties"].get("metrics", []):
            names = [m for m in metric if isinstance(m, str)]
            if names[0] == "AWS/States":
                shown.setdefault(names[1], set()).add(names[3])
                continue
            assert names[0] == namespace, metric
            dims = dict(zip(names[2::2], names[3::2], strict=True))
            assert dims.pop("service") == GLOBAL_ENV["POWERTOOLS_SERVICE_NAME"]
            ((_, value),) = dims.items()
            shown.setdefault(names[1], set()).add(value)
    written = {s.value for s in Status} - {Status.PENDING.value}  # PENDING is never written, only read
    assert shown[observability.ACCOUNT_STATUS_METRIC] == written
    assert shown[observability.ACCOUNTS_METRIC] == {s.value for s in Status}  # the daily count, zeros included
    assert shown[observability.WAIT_SECONDS_METRIC] == set(observability.WAITS)
    machines = {"<ProvisionStateMachine>", "<DeprovisionStateMachine>"}
    assert shown["ExecutionsStarted"] == shown["ExecutionsFailed"] == machines
    assert sorted(alarms) == sorted(f"<{name}.Arn>" for name in _of_type("AWS::CloudWatch::Alarm"))


def test_an_email_is_subscribed_to_the_topic_only_when_one_is_given() -> None:
    (subscription,) = _of_type("AWS::SNS::Subscription").values()
    assert TEMPLATE["Conditions"][subscription["Condition"]] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "NotificationEmail"}, ""]}]
    }
    assert TEMPLATE["Parameters"]["NotificationEmail"]["Default"] == ""
    assert subscription["Properties"] == {
        "TopicArn": TOPIC,
        "Protocol": "email",
        "Endpoint": {"Ref": "NotificationEmail"},
    }


# Properties that name a resource in its account and region (a fixed value collides between two stacks).
NAME_PROPERTIES = {
    "StateMachineName",
    "TableName",
    "TopicName",
    "LogGroupName",
    "AlarmName",
    "DashboardName",
    "LayerName",
    "FunctionName",
    "Name",
    "StatementId",
    "RoleName",
    "ManagedPolicyName",
    "AliasName",
    "RuleName",
}


SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"  # the SAM CLI's venv holds the SAM translator (Makefile)
_TRANSLATE = """
import json, sys
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:  # the policies are named by ARN; nothing to look up in IAM
    def load(self):
        return {}

template = yaml_parse(open(sys.argv[1], encoding="utf-8").read())
for resource in template.get("Resources", {}).values():  # as `sam package` leaves them
    for key in {"CodeUri", "DefinitionUri", "ContentUri"} & set(resource.get("Properties", {})):
        resource["Properties"][key] = "s3://packaged/" + key
print(json.dumps(transform(template, {}, NoManagedPolicies())))
"""


@functools.cache
def translated(path: str) -> dict[str, Any]:
    """The template as CloudFormation deploys it: after the AWS::Serverless transform, which adds resources
    (schedules, permissions, log groups) and may name them."""
    if not SAM_PYTHON.exists():
        pytest.skip("no .venv-sam with the SAM translator: `make sam` (make test installs it)")
    env = {**os.environ, "AWS_DEFAULT_REGION": "eu-west-1"}
    done = subprocess.run(
        [str(SAM_PYTHON), "-c", _TRANSLATE, str(ROOT / path)], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    document: dict[str, Any] = json.loads(done.stdout)
    return document


@pytest.mark.parametrize("path", ["template.yaml", "forwarder.yaml"])
def test_no_resource_has_a_fixed_physical_name(path: str) -> None:
    """Each name is CloudFormation's (unique per stack) or carries the stack's name, also of what the SAM
    transform adds (a ScheduleV2 event's schedule is named after its logical id unless told otherwise): two
    stacks in one region do not collide. A Ref or GetAtt of the template's own resource is a reference, not a
    name. member-role.yaml's role is named by its RoleName parameter on purpose: the hub's MemberRoleName must
    name it in every member account."""
    resources = translated(path)["Resources"]
    for name, resource in resources.items():
        for key, value in resource.get("Properties", {}).items():
            if key not in NAME_PROPERTIES:
                continue
            if isinstance(value, dict) and (value.get("Ref") in resources or "Fn::GetAtt" in value):
                continue
            assert isinstance(value, dict) and "${AWS::StackName}" in value.get("Fn::Sub", ""), (name, key, value)
    assert not any("FunctionName" in f["Properties"] for f in functions().values())


def test_the_ledger_and_the_notification_key_outlive_the_stack() -> None:
    for name in ("LedgerTable", "NotificationKey"):
        assert RESOURCES[name]["DeletionPolicy"] == "Retain", name
        assert RESOURCES[name]["UpdateReplacePolicy"] == "Retain", name


def test_member_roles_are_assumed_only_in_the_organization() -> None:
    """The one given by OrganizationId, else the hub's own (a member role's account is in the organization of
    the function's role): never a role of that name in an account outside it."""
    org_only = {
        "Fn::If": [
            "HasOrganizationId",
            {"StringEquals": {"aws:ResourceOrgID": {"Ref": "OrganizationId"}}},
            {"StringEquals": {"aws:ResourceOrgID": "${aws:PrincipalOrgID}"}},
        ]
    }
    assumers = 0
    for name, function in functions().items():
        for policy in function["Properties"].get("Policies", []):
            for statement in policy.get("Statement", []):
                if statement["Action"] == "sts:AssumeRole":
                    assert statement["Condition"] == org_only, name
                    assumers += 1
    assert assumers >= 8
