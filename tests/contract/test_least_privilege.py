"""Least privilege (issue 8): what each Lambda may do is what it does, in the hub and in member accounts.

A few sandbox scenarios run the real workflows (READY then deprovision through EventBridge in tgw mode,
READY then deprovision by hand in nat mode, a rollback from an outage, a rollback of a complete account),
and the sandbox's call record says which function made which call in which account. Then:

- hub: every call a function made is allowed by its `Policies` in template.yaml (SAM policy templates
  expanded below), and every action it is granted was used, or is listed here with a reason;
- state machines: each may invoke exactly the functions its Task states name;
- member accounts: mlplane assumes the member role with one session policy per purpose
  (layers/mlplane/mlplane/session_policies/<purpose>.json, mlplane.member.PURPOSES, filled with the stack's
  service account and key alias). moto does not enforce session policies, so this test does: the sandbox
  records, per member-account call, the session policy its credentials carry, the resources IAM authorises it
  against (ARNs, their tags and aliases at call time) and the request's condition keys
  (mlplane_sandbox.authorization); every recorded call is allowed by the policy of the session that made it
  with those resources and conditions (mlplane_sandbox.iam_policy), calls mlplane must not make are denied, and
  every action of each purpose's policy was used by a session of that purpose or is listed here with a reason;
- checkov passes on template.yaml with only the checks `.checkov.yaml` skips (each with its reason there and
  in the README); cfn-lint runs in test_template_and_asl.py.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlplane import aws
from mlplane.config import Settings
from mlplane.member import MANAGED_TAG, PURPOSES, session_policy
from mlplane.modules import canvas
from mlplane_sandbox import iam_policy, recording
from mlplane_sandbox.authorization import Authorization, describe
from mlplane_sandbox.recording import ApiCall
from mlplane_sandbox.rules import Call
from mlplane_sandbox.runner import Options, Sandbox
from mlplane_sandbox.template import load_template, project_root
from mlplane_sandbox.world import HUB_ACCOUNT, REGION, as_account, sandbox_client
from tests.conftest import load_event

# The recorded scenarios are one module fixture (about 50 s): one xdist worker runs all of this module's tests,
# not each worker its own copy of the fixture (`make test` runs `--dist loadgroup`).
pytestmark = pytest.mark.xdist_group("least_privilege")

MEMBER = "111111111111"
FAST = {"poll_interval_seconds": 600}  # fewer polls; the calls made are the same kinds
ACCESS_KEY = {"sa_access_key_secret_reader_role": "aac-key-reader"}  # the optional access key (I4)
EXTRA_POLICY = {"sa_extra_policies": "AAC_MachineLearning_EksLogsRead"}  # a further customer policy (a file)

# The SAM policy templates template.yaml uses, expanded to their actions as SAM documents them:
# https://docs.aws.amazon.com/serverless-application-model/latest/developerguide/serverless-policy-template-list.html
# (source: aws/serverless-application-model, samtranslator/policy_templates_data/policy_templates.json).
SAM_POLICY_TEMPLATES: dict[str, tuple[str, ...]] = {
    "DynamoDBCrudPolicy": (
        "dynamodb:GetItem",
        "dynamodb:DeleteItem",
        "dynamodb:PutItem",
        "dynamodb:Scan",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
        "dynamodb:BatchWriteItem",
        "dynamodb:BatchGetItem",
        "dynamodb:DescribeTable",
        "dynamodb:ConditionCheckItem",
    ),
    "DynamoDBReadPolicy": (
        "dynamodb:GetItem",
        "dynamodb:Scan",
        "dynamodb:Query",
        "dynamodb:BatchGetItem",
        "dynamodb:DescribeTable",
    ),
    "SNSPublishMessagePolicy": ("sns:Publish",),
    "LambdaInvokePolicy": ("lambda:InvokeFunction",),
}

# Actions a SAM policy template grants as one unit beyond what the function calls. A template none of whose
# actions is used fails the test: it should not be there at all.
TEMPLATE_EXTRAS: dict[str, str] = dict.fromkeys(
    SAM_POLICY_TEMPLATES["DynamoDBCrudPolicy"],
    "granted as one unit by SAM's DynamoDB policy templates (the table's only access path)",
)

# Actions a function's own statements grant without the scenarios seeing it call them: (function, action).
_SSE = "SNS calls KMS on the publisher's behalf to encrypt for the topic's key (SSE); moto's SNS does not"
STATEMENT_EXTRAS: dict[tuple[str, str], str] = {
    (function, action): _SSE
    for function in (
        "ValidateAccountFunction",  # a READY an earlier run could not publish (C10)
        "AuditFleetFunction",
        "ReconcileAccountFunction",
        "NotifyReadyForVendorFunction",
        "WaitForQuotasFunction",
        "WaitForEksFunction",
        "MarkReadyFunction",
        "RollbackFunction",
        "MarkDeprovisionedFunction",
        "RecordRollbackIncompleteFunction",
    )
    for action in ("kms:GenerateDataKey*", "kms:Decrypt")
}

# Member-account actions in a purpose's session policy that the scenarios do not call, each with its reason.
SESSION_POLICY_EXTRAS: dict[str, dict[str, str]] = {
    "core": {
        "iam:UntagPolicy": "an existing policy's stale mlplane tag is replaced (iam/apply.py)",
        "iam:CreatePolicyVersion": "an existing AAC policy whose document differs is updated (iam/apply.py)",
        "iam:SetDefaultPolicyVersion": "restores the previous default version on rollback of such an update",
        "iam:DeletePolicyVersion": "IAM keeps five versions: the oldest non-default one is deleted first",
        "ec2:ReplaceRoute": "a re-run finds a route with a different target and points it back (network/apply.py)",
        "ec2:ModifyVpcEndpoint": "a re-run finds the S3 endpoint missing a route table and adds it",
        "iam:CreateServiceLinkedRole": "Service Quotas creates AWSServiceRoleForServiceQuotas on an account's "
        "first request, EC2 AWSServiceRoleForVPCTransitGateway on its first transit gateway attachment, each as "
        "the caller (condition: iam:AWSServiceName servicequotas.amazonaws.com or transitgateway.amazonaws.com)",
    },
    "access_key": dict.fromkeys(
        ("kms:GenerateDataKey", "kms:Decrypt"),
        "Secrets Manager calls KMS with the caller's credentials (kms:ViaService secretsmanager) to encrypt the "
        "secret with the vault key: GenerateDataKey on CreateSecret, Decrypt as CreateSecret's API reference "
        "requires for a customer managed key; moto's Secrets Manager does not call KMS",
    ),
}
# Purposes whose work no step runs yet: no session of theirs may appear in the record (each with its reason).
UNWIRED_PURPOSES: dict[str, str] = {}
# The Canvas module's scenario (M1): a custom domain in a VPC without internet access, ENIs only in tagged subnets.
DOMAIN_ROLE = "AmazonSageMakerExecutionRole-canvas"
CANVAS = {
    "canvas": {
        "enabled": True,
        "s3_buckets": ["analytics-data"],
        "execution_role_name": DOMAIN_ROLE,
        "vpc_without_internet": True,
        "eni_tag_key": "emr",
        "eni_tag_value": "allowed",
    }
}
# The scenarios run with the default service account name and key alias (the canvas policy names DOMAIN_ROLE).
SETTINGS = Settings(modules=CANVAS)


@dataclass
class Recorded:
    calls: list[ApiCall] = field(default_factory=list)
    assumers: set[str] = field(default_factory=set)  # functions that assumed the member role
    session_policies: list[str | None] = field(default_factory=list)  # Policy of each member-role session
    functions: set[str] = field(default_factory=set)
    outcomes: list[str] = field(default_factory=list)

    def hub_actions(self, function: str) -> set[str]:
        used = {c.call for c in self.calls if c.actor == function and c.account_id == HUB_ACCOUNT}
        if function in self.assumers:
            # Each Lambda assumes the member role itself; the sandbox shares one session cache across them,
            # so only the first caller's sts:AssumeRole reaches the record.
            used.add("sts:AssumeRole")
        return used

    def member_calls(self) -> list[ApiCall]:
        return [c for c in self.calls if c.account_id != HUB_ACCOUNT and c.actor in self.functions]

    def member_authorizations(self) -> list[tuple[ApiCall, Authorization]]:
        """Each member call's authorisations: its own action and the tagging a create with tags implies."""
        return [(c, a) for c in self.member_calls() for a in c.authorizations]


def _session_policies(sandbox: Sandbox) -> list[str | None]:
    from moto.sts.models import sts_backends

    return [
        role.policy
        for account in sandbox.world.accounts
        if account != HUB_ACCOUNT
        for role in sts_backends[account]["aws"].assumed_roles
        # mlplane's member sessions (not an analyst's, nor Service Catalog's of the launch role)
        if role.role_arn.endswith(f":role/{sandbox.settings.member_role_name}")
    ]


@pytest.fixture(scope="module")
def recorded() -> Iterator[Recorded]:  # noqa: PLR0915 - one block per scenario
    found = Recorded()
    original = aws.session_for

    def spy(*args: Any, **kwargs: Any) -> Any:
        actor = recording.current_actor()
        if actor is not None:
            found.assumers.add(actor)
        return original(*args, **kwargs)

    def keep(sandbox: Sandbox) -> None:
        found.calls.extend(recording.calls())
        found.functions.update(sandbox.functions)
        found.session_policies.extend(_session_policies(sandbox))

    success = load_event("controltower", "create_managed_account_succeeded")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(aws, "session_for", spy)
        # READY, then deprovisioned through EventBridge (account closed: only the hub's records are settled)
        with Sandbox(Options(config=FAST)) as sandbox:
            found.outcomes.append(sandbox.run(success).outcome)
            from mlplane_sandbox import vendor

            vendor.teardown(MEMBER)  # the AAC admin removed the data plane first
            found.outcomes.append(sandbox.run(load_event("organizations", "close_account")).outcome)
            keep(sandbox)
        for options in (
            # READY, deprovisioned (tgw, by the OU's network blueprint: the account's tag is read, N6)
            Options(
                config={**FAST, "network_blueprints": {"corp": {"ous": ["Workloads"], "egress_mode": "tgw"}}},
                then_deprovision=True,
            ),
            # READY with the access key and a further policy, then deprovisioned by hand (nat mode)
            Options(config={**FAST, **ACCESS_KEY, **EXTRA_POLICY}, then_deprovision=True),
            Options(config=FAST, quota="slow", vendor="late"),  # days of waiting: the waits' daily reminders
            Options(config=FAST, fails=["ec2:CreateNatGateway"]),  # an outage: rollback of a partial network
            # rollback of a complete account (before the hand-off), its access key, secret and further policy too
            Options(config={**FAST, **ACCESS_KEY, **EXTRA_POLICY}, quota="denied"),
            Options(config=FAST, vendor="cluster-failed"),  # a rollback held for the vendor (C7)
        ):
            with Sandbox(options) as sandbox:
                found.outcomes.append(sandbox.run(success).outcome)
                keep(sandbox)
        # A status left by an execution that ended (four lost ValidateAccount answers) is taken over
        # (states:DescribeExecution) by a deprovision, and by a run; a deprovision that cannot finish is
        # settled by RecordRollbackIncomplete.
        stuck = Options(config=FAST, redeliver=[f"ValidateAccount@{n}" for n in range(1, 5)])
        with Sandbox(stuck) as sandbox:
            found.outcomes.append(sandbox.run(success).outcome)
            found.outcomes.append(sandbox.deprovision(MEMBER).outcome)
            keep(sandbox)
        # The scheduled fleet audit (AuditFleetFunction) over a READY account someone changed by hand.
        with Sandbox(Options(config=FAST)) as sandbox:
            found.outcomes.append(sandbox.run(success).outcome)
            from mlplane_sandbox import drift

            drift.apply("delete-route", MEMBER, sandbox.settings_from_env())
            sandbox.scheduled_audit()
            reconcile = {"account_id": MEMBER, "requested_by": "test", "action": "reconcile"}
            found.outcomes.append(sandbox.run(reconcile).outcome)  # ReconcileAccount puts the route back
            sandbox.reconcile_fleet()  # ListReadyAccounts, then ReconcileAccount per READY account
            keep(sandbox)
        # M2 enabled: the Service Catalog module (ApplyModules), an analyst's launch, a deprovision configured to
        # terminate it (RemoveModules) before the catalog goes.
        from tests.workflow.test_module_service_catalog import (
            ANALYST_ARN,
            TERMINATE,
            change_launch_constraint,
            launch_as_analyst,
            with_analyst_role,
        )

        with Sandbox(Options(config=TERMINATE)) as sandbox:
            with_analyst_role(sandbox)
            found.outcomes.append(sandbox.run(success).outcome)
            change_launch_constraint(sandbox, ANALYST_ARN)
            reconcile = {"account_id": MEMBER, "requested_by": "test", "action": "reconcile"}
            found.outcomes.append(sandbox.run(reconcile).outcome)  # DescribeConstraint, UpdateConstraint
            launch_as_analyst(sandbox, "analyst-notebook")
            found.outcomes.append(sandbox.deprovision(MEMBER).outcome)
            keep(sandbox)
        # READY not published for a day (MarkReady's retries give up); the next run publishes it (C10).
        with Sandbox(Options(config=FAST, fails=["sns:Publish=AuthorizationError@2-102"])) as sandbox:
            found.outcomes.append(sandbox.run(success).outcome)
            found.outcomes.append(sandbox.run(load_event("manual", "start")).outcome)
            keep(sandbox)
        # The Canvas module enabled (ApplyModules), its role's trust changed by hand and put back by a reconcile,
        # then deprovisioned (RemoveModules): its own session purpose.
        with Sandbox(Options(config={**FAST, "modules": CANVAS})) as sandbox:
            sandbox.world.place_account(MEMBER, "Workloads", role_name=SETTINGS.member_role_name)
            with as_account(MEMBER):
                trust = {
                    "Effect": "Allow",
                    "Principal": {"Service": "sagemaker.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
                sandbox_client("iam").create_role(
                    RoleName=DOMAIN_ROLE,
                    AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]}),
                )
            found.outcomes.append(sandbox.run(success).outcome)
            with as_account(MEMBER):
                sandbox_client("iam").update_assume_role_policy(
                    RoleName=canvas.role_name(SETTINGS.modules.canvas),
                    PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]}),
                )
            found.outcomes.append(sandbox.run(reconcile).outcome)  # UpdateAssumeRolePolicy puts the trust back
            found.outcomes.append(sandbox.deprovision(MEMBER).outcome)
            keep(sandbox)
        stuck.fails = ["ec2:DeleteVpc=UnauthorizedOperation"]
        with Sandbox(stuck) as sandbox:
            found.outcomes.append(sandbox.run(success).outcome)
            found.outcomes.append(sandbox.run(load_event("manual", "start")).outcome)
            found.outcomes.append(sandbox.deprovision(MEMBER).outcome)
            keep(sandbox)
        _adopted_then_deprovisioned(found, keep)
    yield found


def _adopted_then_deprovisioned(found: Recorded, keep: Callable[[Sandbox], None]) -> None:
    """An account built by hand per seed 000 (one route missing), adopted, then deprovisioned: the adopt session
    tags the hand-made resources, adds the route to an adopted table, then removes it and the tags (D3)."""
    adopt = {"account_id": MEMBER, "requested_by": "test", "reason": "built by hand", "action": "adopt"}
    with Sandbox(Options(config=FAST, hand_built=True, hand_built_differences=["missing-route"])) as sandbox:
        found.outcomes.append(sandbox.run(adopt).outcome)
        found.outcomes.append(sandbox.deprovision(MEMBER).outcome)
        keep(sandbox)


def _template() -> dict[str, Any]:
    return load_template(project_root() / "template.yaml")


def _grants(policies: list[Any]) -> dict[str, str]:
    """action -> where it comes from ("statement" or the SAM policy template's name)."""
    granted: dict[str, str] = {}
    for policy in policies:
        assert isinstance(policy, dict), f"managed policy {policy!r}: list its actions in this test first"
        for name, value in policy.items():
            if name == "Statement":
                for statement in value:
                    assert statement["Effect"] == "Allow"
                    actions = statement["Action"]
                    for action in [actions] if isinstance(actions, str) else actions:
                        granted[action] = "statement"
            else:
                assert name in SAM_POLICY_TEMPLATES, f"policy template {name}: expand it in this test first"
                for action in SAM_POLICY_TEMPLATES[name]:
                    granted.setdefault(action, name)
    return granted


def _functions() -> dict[str, dict[str, str]]:
    resources = _template()["Resources"]
    return {
        name: _grants(resource["Properties"].get("Policies", []))
        for name, resource in resources.items()
        if resource["Type"] == "AWS::Serverless::Function"
    }


def _allowed(action: str, patterns: list[str]) -> bool:
    return any(fnmatch.fnmatchcase(action.lower(), pattern.lower()) for pattern in patterns)


def test_scenarios_exercise_every_function(recorded: Recorded) -> None:
    assert recorded.outcomes == [
        "READY",
        "DEPROVISIONED",
        "DEPROVISIONED",
        "DEPROVISIONED",
        "READY",
        "ROLLED_BACK",
        "ROLLED_BACK",
        "ROLLBACK_HELD",
        "ROLLBACK_INCOMPLETE",  # PROVISIONING by an execution that failed
        "DEPROVISIONED",  # taken over by a deprovision
        "READY",  # then audited by the schedule, drift notified
        "READY",  # ... and reconciled
        "READY",  # M2 enabled: the catalog made, an analyst launches its product
        "READY",  # ... its LAUNCH constraint pointed elsewhere by hand and put back by a reconcile
        "DEPROVISIONED",  # ... terminated first (on_deprovision terminate), then the catalog removed
        "READY",  # its READY not published for a day
        "READY",  # ... and published by the next run's ValidateAccount
        "READY",  # the Canvas module applied
        "READY",  # ... its role's changed trust put back by a reconcile
        "DEPROVISIONED",  # ... then removed
        "ROLLBACK_INCOMPLETE",
        "READY",  # taken over by a run
        "ROLLBACK_INCOMPLETE",  # a deprovision that cannot delete the VPC
        "READY",  # adopted (D3)
        "DEPROVISIONED",  # ... the adopted resources left in place, mlplane's tags off
    ]
    acted = {c.actor for c in recorded.calls} | recorded.assumers
    assert set(_functions()) <= acted, sorted(set(_functions()) - acted)


def test_every_hub_call_of_a_function_is_allowed_by_its_template_policy(recorded: Recorded) -> None:
    denied = {
        f"{function}: {action}"
        for function, granted in _functions().items()
        for action in recorded.hub_actions(function)
        if not _allowed(action, list(granted))
    }
    assert not denied, sorted(denied)


def test_every_action_a_function_is_granted_is_used_or_justified(recorded: Recorded) -> None:
    unjustified: list[str] = []
    for function, granted in _functions().items():
        used = recorded.hub_actions(function)
        for template in set(granted.values()) - {"statement"}:
            if not set(SAM_POLICY_TEMPLATES[template]) & used:
                unjustified.append(f"{function}: {template} is granted and none of its actions is used")
        for action, source in granted.items():
            if action in used:
                continue
            if source == "statement" and (function, action) not in STATEMENT_EXTRAS:
                unjustified.append(f"{function}: {action} (its own statement) is never called")
            if source != "statement" and action not in TEMPLATE_EXTRAS:
                unjustified.append(f"{function}: {action} (from {source}) is never called")
    assert not unjustified, unjustified


def test_state_machines_may_invoke_exactly_their_task_functions() -> None:
    resources = _template()["Resources"]
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Serverless::StateMachine":
            continue
        props = resource["Properties"]
        definition = (project_root() / props["DefinitionUri"]).read_text(encoding="utf-8")
        tasks = {
            value["Fn::GetAtt"][0] if isinstance(value["Fn::GetAtt"], list) else value["Fn::GetAtt"].split(".")[0]
            for key, value in props["DefinitionSubstitutions"].items()
            if "${" + key + "}" in definition and isinstance(value, dict) and "Fn::GetAtt" in value
        }
        invokable = {
            policy["LambdaInvokePolicy"]["FunctionName"]["Ref"]
            for policy in props["Policies"]
            if "LambdaInvokePolicy" in policy
        }
        assert invokable == tasks, name
        others = [policy for policy in props["Policies"] if set(policy) != {"LambdaInvokePolicy"}]
        assert others == [STATE_MACHINE_LOG_DELIVERY], name


# What a state machine's role needs for its Logging (Step Functions developer guide, "IAM policies for logging
# to CloudWatch Logs"): Step Functions sets the log delivery up as the role; these actions take no resource.
STATE_MACHINE_LOG_DELIVERY = {
    "Statement": [
        {
            "Effect": "Allow",
            "Action": [
                "logs:CreateLogDelivery",
                "logs:GetLogDelivery",
                "logs:UpdateLogDelivery",
                "logs:DeleteLogDelivery",
                "logs:ListLogDeliveries",
                "logs:PutResourcePolicy",
                "logs:DescribeResourcePolicies",
                "logs:DescribeLogGroups",
            ],
            "Resource": "*",
        }
    ]
}


def _session_policy(purpose: str = "core") -> dict[str, Any]:
    document: dict[str, Any] = json.loads(session_policy(SETTINGS, purpose))
    return document


def _policies() -> dict[str, str]:
    """The filled session policy of each purpose, by its text (what a recorded call carries) -> purpose."""
    return {session_policy(SETTINGS, purpose): purpose for purpose in PURPOSES}


def _session_actions(purpose: str) -> list[str]:
    actions: list[str] = []
    for statement in _session_policy(purpose)["Statement"]:
        assert statement["Effect"] == "Allow"
        listed = statement["Action"]
        actions.extend([listed] if isinstance(listed, str) else listed)
    return actions


def test_member_roles_are_assumed_with_a_purposes_session_policy(recorded: Recorded) -> None:
    assert recorded.session_policies
    assert set(recorded.session_policies) <= set(_policies()), "a member session without a purpose's policy"
    assert session_policy(SETTINGS) in recorded.session_policies
    for purpose in PURPOSES:
        assert len(session_policy(SETTINGS, purpose)) <= aws.STS_SESSION_POLICY_LIMIT, purpose


def test_every_member_call_is_made_with_a_purposes_session_policy(recorded: Recorded) -> None:
    """The record knows which session a call's credentials belong to: no member call escapes the evaluation."""
    calls = recorded.member_calls()
    assert calls
    unknown = sorted({f"{c.actor}: {c.call}" for c in calls if c.session_policy not in _policies()})
    assert not unknown, unknown
    seen = {_policies()[str(c.session_policy)] for c in calls}
    assert seen == set(PURPOSES) - set(UNWIRED_PURPOSES), seen


def test_every_member_call_is_allowed_by_the_session_policy_with_its_resources_and_conditions(
    recorded: Recorded,
) -> None:
    """Each call against the policy of the session that made it (a call's purpose decides what it may do)."""
    pairs = recorded.member_authorizations()
    assert pairs
    policies = {text: json.loads(text) for text in _policies()}
    denied = sorted(
        {
            f"{c.actor} ({_policies()[str(c.session_policy)]}): {a.action} on "
            f"{iam_policy.denied_resources(policies[str(c.session_policy)], a)}"
            for c, a in pairs
            if not iam_policy.allows(policies[str(c.session_policy)], a)
        }
    )
    assert not denied, denied


def test_the_record_describes_the_resources_of_every_scoped_member_call(recorded: Recorded) -> None:
    """The evaluation above is only as good as the record: each call of an action the policy scopes (a
    Resource other than `*`, or a Condition) names its resources, and a tag-scoped call's resource existed and
    carried mlplane's tag when it was made (a call on a resource that is already gone is not authorised by tag)."""
    scoped = {
        action
        for purpose in PURPOSES
        for statement in _session_policy(purpose)["Statement"]
        if statement["Resource"] != "*" or "Condition" in statement
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    undescribed = sorted(
        {a.action for _, a in recorded.member_authorizations() if _allowed(a.action, list(scoped)) and not a.resources}
        # scoped by request keys only, no resource; kms:TagResource: tag on create (CreateKey), no key yet
        - {"ec2:CreateTags", "iam:CreateServiceLinkedRole", "kms:TagResource"}
    )
    assert not undescribed, undescribed
    tag = f"aws:ResourceTag/{MANAGED_TAG}"
    tagged = [r for _, a in recorded.member_authorizations() for r in a.resources if tag in r.keys]
    assert tagged, "no call on an mlplane-tagged resource recorded"
    vpcs = [r for r in tagged if re.fullmatch(rf"arn:aws:ec2:{REGION}:111111111111:vpc/vpc-[0-9a-f]+", r.arn)]
    # mlplane's own VPCs, and the hand-made one it adopted (D3), tagged so only by the adopt session
    assert vpcs and {r.keys[tag] for r in vpcs} == {("true",), ("adopted",)}


def test_every_session_policy_action_is_used_or_justified(recorded: Recorded) -> None:
    """Per purpose: each action of its policy was called by a session of that purpose, or has its reason."""
    unjustified = []
    stale = []
    for purpose in PURPOSES:
        if purpose in UNWIRED_PURPOSES:
            continue
        text = session_policy(SETTINGS, purpose)
        used = {a.action for c, a in recorded.member_authorizations() if c.session_policy == text}
        extras = SESSION_POLICY_EXTRAS.get(purpose, {})
        for action in _session_actions(purpose):
            if "*" in action:
                if not any(_allowed(call, [action]) for call in used):
                    unjustified.append(f"{purpose}: {action} matches no call")
            elif action not in used and action not in extras:
                unjustified.append(f"{purpose}: {action} is never called")
        stale += [f"{purpose}: {action}" for action in extras if action in used]
    assert not unjustified, unjustified
    assert not stale, f"now used; drop the reason: {sorted(stale)}"
    assert set(SESSION_POLICY_EXTRAS) <= set(PURPOSES) and set(UNWIRED_PURPOSES) <= set(PURPOSES)


@dataclass(frozen=True)
class Forbidden:
    """A member call mlplane must not be able to make, and the call like it that it does make."""

    why: str
    action: str
    params: dict[str, Any]
    allowed_twin: dict[str, Any] | None = None  # the same action on mlplane's own resource: allowed


@pytest.fixture
def member_world() -> Iterator[dict[str, str]]:
    """A READY member account with the customer's own things next to mlplane's: an untagged VPC, an IAM user,
    a customer-managed policy and a key without the vault alias or mlplane's tag."""
    from moto.ec2.models import ec2_backends
    from moto.iam.models import iam_backends
    from moto.kms.models import kms_backends

    with Sandbox(Options(config=FAST)) as sandbox:
        assert sandbox.run(load_event("controltower", "create_managed_account_succeeded")).outcome == "READY"
        ec2 = ec2_backends[MEMBER][REGION]
        kms = kms_backends[MEMBER][REGION]
        iam = iam_backends[MEMBER]["global"]
        ours = next(v.id for v in ec2.vpcs.values() if ec2.tags.get(v.id, {}).get(MANAGED_TAG) == "true")
        theirs = ec2.create_vpc("10.200.0.0/16").id
        vault = kms.any_id_to_key_id(SETTINGS.vault_key_alias)
        customer_key = kms.create_key(None, "ENCRYPT_DECRYPT", "SYMMETRIC_DEFAULT", "the customer's", None).id
        iam.create_user(REGION, "someone-else", "/", None)
        yield {"ours": ours, "theirs": theirs, "vault": vault, "customer_key": customer_key}


def _authorizations(action: str, params: dict[str, Any]) -> tuple[Authorization, ...]:
    service, _, operation = action.partition(":")
    call = Call(service, operation, MEMBER, REGION, params, "arn:aws:sts::111111111111:assumed-role/x/y", True)
    return describe(call, action)


def test_calls_mlplane_must_not_make_are_denied_and_their_twins_allowed(member_world: dict[str, str]) -> None:
    """Scoping that holds: the same recorder and evaluator that allow every recorded call deny these."""
    policy = _session_policy()
    aac = f"arn:aws:iam::{MEMBER}:policy/{SETTINGS.sa_policy_name}"
    world = member_world
    cases = [
        Forbidden("a VPC without mlplane's tag", "ec2:DeleteVpc", {"VpcId": world["theirs"]}, {"VpcId": world["ours"]}),
        Forbidden(
            "tagging an existing resource (only tag on create is allowed)",
            "ec2:CreateTags",
            {"ResourceId.1": world["theirs"], "Tag.1.Key": MANAGED_TAG, "Tag.1.Value": "true"},
        ),
        Forbidden(
            "attaching a policy that is not AAC_MachineLearning* to the service account",
            "iam:AttachUserPolicy",
            {"UserName": SETTINGS.sa_user_name, "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"},
            {"UserName": SETTINGS.sa_user_name, "PolicyArn": aac},
        ),
        Forbidden(
            "attaching the AAC policy to another user",
            "iam:AttachUserPolicy",
            {"UserName": "someone-else", "PolicyArn": aac},
        ),
        Forbidden(
            "a new version of a policy that is not AAC_MachineLearning*",
            "iam:CreatePolicyVersion",
            {"PolicyArn": f"arn:aws:iam::{MEMBER}:policy/CustomerAdmin"},
            {"PolicyArn": aac},
        ),
        Forbidden("deleting another user", "iam:DeleteUser", {"UserName": "someone-else"}),
        Forbidden(
            "the key policy of a key without the vault alias",
            "kms:PutKeyPolicy",
            {"KeyId": world["customer_key"]},
            {"KeyId": world["vault"]},
        ),
        Forbidden(
            "deleting a key without mlplane's tag",
            "kms:ScheduleKeyDeletion",
            {"KeyId": world["customer_key"]},
            {"KeyId": world["vault"]},
        ),
        Forbidden(
            "another alias, even on mlplane's key",
            "kms:CreateAlias",
            {"AliasName": "alias/elsewhere", "TargetKeyId": world["vault"]},
        ),
        Forbidden(
            "pointing the vault alias at a key without mlplane's tag",
            "kms:CreateAlias",
            {"AliasName": SETTINGS.vault_key_alias, "TargetKeyId": world["customer_key"]},
        ),
    ]
    _assert_denied(policy, cases)
    _assert_denied(_session_policy("access_key"), _key_cases())


def _assert_denied(policy: dict[str, Any], cases: list[Forbidden]) -> None:
    for case in cases:
        refused = iam_policy.refused(policy, _authorizations(case.action, case.params))
        assert refused, f"{case.action} allowed: {case.why}"
        if case.allowed_twin is not None:
            twin = _authorizations(case.action, case.allowed_twin)
            assert not iam_policy.refused(policy, twin), f"{case.action} on mlplane's own is denied: {twin}"


def _key_cases() -> list[Forbidden]:
    """The access_key session: the service account's keys and its one secret, nothing else, never reading it."""
    ours = f"aac/{SETTINGS.sa_user_name}/access-key"
    return [
        Forbidden(
            "a key for another user",
            "iam:CreateAccessKey",
            {"UserName": "someone-else"},
            {"UserName": SETTINGS.sa_user_name},
        ),
        Forbidden("deleting another user's key", "iam:DeleteAccessKey", {"UserName": "someone-else"}),
        Forbidden("another secret", "secretsmanager:DeleteSecret", {"SecretId": "prod/db"}, {"SecretId": ours}),
        Forbidden("a secret under aac/ for another user", "secretsmanager:CreateSecret", {"Name": "aac/x/access-key"}),
        Forbidden("reading the key back", "secretsmanager:GetSecretValue", {"SecretId": ours}),
        Forbidden("the VPCs (core's work)", "ec2:DeleteVpc", {"VpcId": "vpc-12345678"}),
    ]


def _tags(**tags: str) -> dict[str, str]:
    """EC2 query parameters of CreateTags / DeleteTags' `Tag.N.Key` / `Tag.N.Value`."""
    params: dict[str, str] = {}
    for n, (key, value) in enumerate(tags.items(), start=1):
        params[f"Tag.{n}.Key"] = key.replace("__", ":")
        params[f"Tag.{n}.Value"] = value
    return params


def test_the_adopt_session_may_only_put_mlplanes_adopted_tags_on_and_take_them_off(
    member_world: dict[str, str],
) -> None:
    """The adopt purpose (D3): tags a hand-made resource with mlplane:* keys and mlplane:managed=adopted only,
    never makes anything look like mlplane's own (=true), never touches mlplane's own or another key's tags."""
    policy = _session_policy("adopt")
    world = member_world
    theirs, ours = world["theirs"], world["ours"]
    adopted = _tags(mlplane__managed="adopted", mlplane__account=MEMBER)
    cases = [
        Forbidden(
            "making a hand-made VPC look like mlplane's own",
            "ec2:CreateTags",
            {"ResourceId.1": theirs, **_tags(mlplane__managed="true")},
            {"ResourceId.1": theirs, **adopted},
        ),
        Forbidden(
            "a tag key that is not mlplane's",
            "ec2:CreateTags",
            {"ResourceId.1": theirs, **_tags(mlplane__managed="adopted", Name="x")},
        ),
        Forbidden("re-marking mlplane's own VPC adopted", "ec2:CreateTags", {"ResourceId.1": ours, **adopted}),
        Forbidden("untagging a VPC mlplane never adopted", "ec2:DeleteTags", {"ResourceId.1": theirs, **adopted}),
        Forbidden("untagging mlplane's own VPC", "ec2:DeleteTags", {"ResourceId.1": ours, **adopted}),
        Forbidden(
            "a route in a table mlplane did not adopt",
            "ec2:CreateRoute",
            {"RouteTableId": "rtb-0123456789abcdef0", "DestinationCidrBlock": "0.0.0.0/0"},
        ),
        Forbidden(
            "tagging a key without the vault alias",
            "kms:TagResource",
            {"KeyId": world["customer_key"], "Tags": [{"TagKey": MANAGED_TAG, "TagValue": "adopted"}]},
        ),
        Forbidden(
            "untagging mlplane's own vault key",
            "kms:UntagResource",
            {"KeyId": world["vault"], "TagKeys": [MANAGED_TAG]},
        ),
        Forbidden(
            "a tag on another user",
            "iam:TagUser",
            {"UserName": "someone-else", "Tags.member.1.Key": MANAGED_TAG, "Tags.member.1.Value": "adopted"},
            {"UserName": SETTINGS.sa_user_name, "Tags.member.1.Key": MANAGED_TAG, "Tags.member.1.Value": "adopted"},
        ),
        Forbidden(
            "another tag key on the service account",
            "iam:UntagUser",
            {"UserName": SETTINGS.sa_user_name, "TagKeys.member.1": "AACResource"},
            {"UserName": SETTINGS.sa_user_name, "TagKeys.member.1": MANAGED_TAG},
        ),
    ]
    _assert_denied(policy, cases)


def test_template_passes_checkov_with_only_the_listed_skips() -> None:
    local = Path(sys.executable).parent / "checkov"
    checkov = str(local) if local.exists() else shutil.which("checkov")
    if checkov is None:
        pytest.skip("checkov is not installed (it belongs in the dev dependencies)")
    root = project_root()
    done = subprocess.run(
        [checkov, "-f", "template.yaml", "--config-file", ".checkov.yaml", "-o", "json"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report = json.loads(done.stdout)
    report = report[0] if isinstance(report, list) else report
    failed = [f"{c['check_id']} {c['resource']}" for c in report.get("results", {}).get("failed_checks", [])]
    assert failed == [], failed
    assert report["summary"]["parsing_errors"] == 0
    assert report["summary"]["passed"] > 0
    assert done.returncode == 0, done.stderr[-2000:]


def test_the_further_policys_calls_are_recorded_on_its_arn(recorded: Recorded) -> None:
    """The scenarios with EXTRA_POLICY create, attach, detach and delete it: the checks above covered those calls
    with the policy's own ARN (core's ServiceAccount statement, policy/AAC_MachineLearning*)."""
    arn = f"arn:aws:iam::{MEMBER}:policy/{EXTRA_POLICY['sa_extra_policies']}"
    acted = {
        c.call
        for c in recorded.calls
        if c.ok
        and any(
            arn in (r.arn for r in a.resources) or arn in a.context.get("iam:PolicyARN", ()) for a in c.authorizations
        )
    }
    assert {"iam:CreatePolicy", "iam:AttachUserPolicy", "iam:DetachUserPolicy", "iam:DeletePolicy"} <= acted, acted
