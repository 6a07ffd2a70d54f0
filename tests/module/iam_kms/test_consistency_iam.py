"""IAM eventual consistency: the sandbox's rule (mlplane_sandbox.fidelity.consistency) and CreateIam's answer.

AWS source: the IAM User Guide, "Changes that I make are not always immediately visible"
(troubleshoot_general.html#troubleshoot_general_eventual-consistency); the error is botocore's IAM model's
NoSuchEntityException (code NoSuchEntity, HTTP 404).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlplane.config import Settings
from mlplane.errors import AccessDenied
from mlplane.iam import apply
from mlplane.member import Member
from mlplane.rollback.registry import HANDLERS
from mlplane.rollback.run import undo_all
from mlplane_sandbox import faults, interceptor, recording
from mlplane_sandbox.clock import VirtualClock, budget
from mlplane_sandbox.fidelity import consistency as rule

from .conftest import MEMBER

DELAY = 5.0
ACTOR = "CreateIamFunction"
USER = "aac_automation_sa"
ARN = f"arn:aws:iam::{MEMBER}:policy/AAC_MachineLearning_SA_Policy"
DOCUMENT = '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:ListBucket","Resource":"*"}]}'


@pytest.fixture
def iam(member: Member, sandbox: VirtualClock) -> Iterator[Any]:
    rule.reset()
    rule.configure(delay_seconds=DELAY)
    yield member.client("iam")
    rule.reset()


def _as_mlplane(fn: Callable[..., Any], **kwargs: Any) -> Any:
    with recording.actor(ACTOR):
        return fn(**kwargs)


def _no_such_entity(fn: Callable[..., Any], **kwargs: Any) -> None:
    with pytest.raises(ClientError) as caught:
        _as_mlplane(fn, **kwargs)
    assert caught.value.response["Error"]["Code"] == "NoSuchEntity", fn
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_new_user_answers_no_such_entity_within_the_delay_and_is_found_after(iam: Any, sandbox: VirtualClock) -> None:
    _as_mlplane(iam.create_user, UserName="u1")
    _no_such_entity(iam.get_user, UserName="u1")
    _no_such_entity(iam.list_attached_user_policies, UserName="u1")
    sandbox.advance(DELAY - 0.5)
    _no_such_entity(iam.get_user, UserName="u1")
    sandbox.advance(0.5)
    assert _as_mlplane(iam.get_user, UserName="u1")["User"]["UserName"] == "u1"


def test_a_sibling_branch_waiting_does_not_age_a_create_within_the_creating_invocation(
    iam: Any, sandbox: VirtualClock
) -> None:
    """Parallel branches share the sandbox's clock; in AWS their waits overlap, so a sibling waiting minutes
    (NAT gateways) between CreateUser and the next call of the same Lambda must not make the user visible."""
    with budget(900) as invocation:
        _as_mlplane(iam.create_user, UserName="u1")
        sandbox.advance(300)  # what a concurrent CreateNetwork's waiter does to the shared clock
        _no_such_entity(iam.get_user, UserName="u1")
        sandbox.sleep(DELAY)  # this invocation's own back-off
        assert invocation.used == DELAY
        assert _as_mlplane(iam.get_user, UserName="u1")["User"]["UserName"] == "u1"
    # Outside the invocation (a later task), the shared clock counts.
    _as_mlplane(iam.create_user, UserName="u2")
    _no_such_entity(iam.get_user, UserName="u2")
    sandbox.advance(DELAY)
    assert _as_mlplane(iam.get_user, UserName="u2")["User"]["UserName"] == "u2"


def test_new_policy_answers_no_such_entity_within_the_delay_and_is_found_after(iam: Any, sandbox: VirtualClock) -> None:
    arn = _as_mlplane(iam.create_policy, PolicyName="p1", PolicyDocument=DOCUMENT)["Policy"]["Arn"]
    _no_such_entity(iam.get_policy, PolicyArn=arn)
    sandbox.advance(DELAY)
    assert _as_mlplane(iam.get_policy, PolicyArn=arn)["Policy"]["Arn"] == arn


def test_attach_user_policy_right_after_the_creates_answers_no_such_entity_and_attaches_nothing(
    iam: Any, sandbox: VirtualClock
) -> None:
    _as_mlplane(iam.create_user, UserName="u1")
    arn = _as_mlplane(iam.create_policy, PolicyName="p1", PolicyDocument=DOCUMENT)["Policy"]["Arn"]
    _no_such_entity(iam.attach_user_policy, UserName="u1", PolicyArn=arn)
    sandbox.advance(DELAY)
    assert iam.list_attached_user_policies(UserName="u1")["AttachedPolicies"] == []
    _as_mlplane(iam.attach_user_policy, UserName="u1", PolicyArn=arn)


def test_create_iam_attaches_while_the_new_user_and_policy_answer_no_such_entity(
    iam: Any, member: Member, settings: Settings
) -> None:
    mark = len(recording.since(0))
    with recording.actor(ACTOR):
        output = apply.run(member, settings)
    assert output.created == 3
    failed = [c.call for c in recording.since(mark) if c.error == "NoSuchEntity"]
    assert "iam:AttachUserPolicy" in failed  # met the delay, and retried it
    attached = [p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=USER)["AttachedPolicies"]]
    assert attached == [ARN]


def test_rollback_right_after_create_iam_failed_removes_the_new_user_and_policy(
    iam: Any, member: Member, settings: Settings
) -> None:
    # AttachUserPolicy refused at once: the rollback comes while the new user and policy are still invisible.
    interceptor.configure(plan=faults.FaultPlan(fails=[faults.parse_fault("iam:AttachUserPolicy=AccessDenied")]))
    try:
        with recording.actor(ACTOR), pytest.raises(AccessDenied):
            apply.run(member, settings)
        mark = len(recording.since(0))
        with recording.actor("RollbackFunction"):
            report = undo_all(member, member.ledger.resources(MEMBER), HANDLERS)
    finally:
        interceptor.configure()
    met = {c.call for c in recording.since(mark) if c.error == "NoSuchEntity"}
    assert "iam:GetPolicy" in met  # the rollback met the delay (newest first: the policy), did not call it gone
    assert report.removed == 2 and report.blocked == []
    assert USER not in {u["UserName"] for u in iam.list_users()["Users"]}
    assert ARN not in {p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]}
