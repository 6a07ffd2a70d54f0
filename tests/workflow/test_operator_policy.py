"""The IAM an operator needs to run the CLI (issue 14): the stack's OperatorPolicy, and nothing more.

Every operator command runs in AWS mode against the sandbox, as typed (the stack found by DescribeStacks, the
functions' settings read from Lambda, the ledger, the state machines, the member roles for plan and audit).
Then every call the CLI made in the hub is allowed by OperatorPolicy as deployed, for the resource it acted on
and with the request's organization keys (mlplane_sandbox.authorization.describe_hub, evaluated by
mlplane_sandbox.iam_policy); every action the policy grants was called; and the same calls on another stack's
resources, or on a role outside the organization, are refused.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import pytest
from typer.testing import CliRunner

from mlplane_cli import operate
from mlplane_cli.main import app
from mlplane_sandbox import recording, vendor
from mlplane_sandbox.authorization import Authorization, Resource
from mlplane_sandbox.iam_policy import allows
from mlplane_sandbox.options import Options
from mlplane_sandbox.recording import ApiCall
from mlplane_sandbox.runner import Sandbox
from mlplane_sandbox.world import HUB_ACCOUNT, as_account, sandbox_client
from tests.workflow.recorded import FAST, MEMBER

# One sandbox walk for the module (~5 s): one xdist worker runs all of its tests (`make test` runs --dist loadgroup).
pytestmark = pytest.mark.xdist_group("operator_policy")
OPERATOR = "operator"


@dataclass(frozen=True)
class Operated:
    policy: dict[str, Any]
    exits: dict[str, int]
    calls: list[ApiCall]  # the CLI's calls in the hub


def _deployed_policy(arn: str) -> dict[str, Any]:
    with as_account(HUB_ACCOUNT):
        iam = sandbox_client("iam")
        version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    return document if isinstance(document, dict) else json.loads(document)


@pytest.fixture(scope="module")
def operated() -> Iterator[Operated]:
    commands = {
        "plan-new": ["plan", MEMBER, "--json"],  # PROVISION: reads the member account through its role
        "provision": ["provision", MEMBER, "--wait"],
        "status": ["status", MEMBER],
        "accounts": ["accounts", "--json"],
        "plan": ["plan", MEMBER, "--json"],
        "audit": ["audit", MEMBER, "--json"],
        "audit-all": ["audit", "--all", "--json"],
        "adopt": ["adopt", MEMBER],  # started; ValidateAccount refuses an account mlplane holds
        "reconcile": ["reconcile", MEMBER, "--wait"],
        "reconcile-all": ["reconcile", "--all"],
        "resume": ["resume", MEMBER],  # refused: READY, not ROLLBACK_HELD (the ledger read decides)
        "deprovision-refused": ["deprovision", MEMBER, "--wait"],  # the vendor's cluster is there (C7)
    }
    runner = CliRunner()
    with pytest.MonkeyPatch.context() as patch, Sandbox(Options(config=FAST)) as sandbox:
        # the sandbox's executions end in about a second: poll often (AWS's 5 s is not what is tested here)
        patch.setattr(operate, "follow", functools.partial(operate.follow, every=0.1))
        sandbox.world.place_account(MEMBER, "Workloads", role_name=sandbox.settings.member_role_name)
        mark = recording.mark()
        exits = {}
        with recording.actor(OPERATOR):
            for name, args in commands.items():
                exits[name] = runner.invoke(app, args).exit_code
            vendor.teardown(MEMBER)  # the AAC admin removed the data plane
            exits["deprovision"] = runner.invoke(app, ["deprovision", MEMBER, "--wait"]).exit_code
            executions = json.loads(runner.invoke(app, ["status", MEMBER]).stdout)["status"]["execution"]
            exits["watch"] = runner.invoke(app, ["watch", executions]).exit_code
        calls = [c for c in recording.since(mark) if c.actor == OPERATOR and c.account_id == HUB_ACCOUNT]
        yield Operated(_deployed_policy(sandbox.outputs["OperatorPolicyArn"]), exits, calls)


def test_every_command_did_what_an_operator_asked(operated: Operated) -> None:
    assert operated.exits == {
        "plan-new": 0,
        "provision": 0,
        "status": 0,
        "accounts": 0,
        "plan": 0,
        "audit": 0,
        "audit-all": 0,
        "adopt": 0,
        "reconcile": 0,
        "reconcile-all": 0,
        "resume": 1,
        "deprovision-refused": 1,
        "deprovision": 0,
        "watch": 0,
    }


def test_every_hub_call_of_the_cli_is_allowed_by_the_operator_policy(operated: Operated) -> None:
    refused = [
        (c.call, [r.arn for r in a.resources], a.context)
        for c in operated.calls
        for a in c.authorizations
        if not allows(operated.policy, a)
    ]
    assert operated.calls and not refused, refused
    described = {c.call for c in operated.calls for a in c.authorizations if a.resources}
    assert described >= {"states:StartExecution", "dynamodb:Query", "sts:AssumeRole", "cloudformation:DescribeStacks"}


def test_every_action_the_operator_policy_grants_is_called(operated: Operated) -> None:
    granted = {
        action
        for statement in operated.policy["Statement"]
        for action in ([statement["Action"]] if isinstance(statement["Action"], str) else statement["Action"])
    }
    assert granted == {c.call for c in operated.calls}


def test_the_same_calls_on_what_is_not_the_stacks_are_refused(operated: Operated) -> None:
    """Scoped, not `*`: another stack's state machine, table and function, and a role outside the organization."""

    def elsewhere(authorization: Authorization) -> Authorization:
        resources = tuple(
            replace(r, arn=r.arn.replace("mlplane-", "other-").replace("/mlplane/", "/other/"), keys={})
            for r in authorization.resources
        )
        return replace(authorization, resources=resources)

    scoped = [a for c in operated.calls for a in c.authorizations if a.resources]
    assert scoped
    assert [a.action for a in scoped if allows(operated.policy, elsewhere(a))] == []
    outsider = Authorization(
        "sts:AssumeRole",
        (Resource("arn:aws:iam::999999999999:role/AWSControlTowerExecution", {"aws:ResourceOrgID": ("o-other0000",)}),),
        {"aws:PrincipalOrgID": ("o-mine000000",)},
    )
    assert not allows(operated.policy, outsider)
