"""RequestQuotas and its wait loop against the emulated Service Quotas (REQUIREMENTS Q1-Q2)."""

from __future__ import annotations

import pytest

from mlplane.config import QuotaTarget, Settings
from mlplane.errors import QuotaDenied, TimedOut
from mlplane.ledger import ResourceState
from mlplane.member import Member
from mlplane.quotas import apply
from mlplane.quotas.models import quota_key
from mlplane.rollback.registry import handler_for
from mlplane_sandbox.clock import VirtualClock
from mlplane_sandbox.emulators import service_quotas

from .conftest import MEMBER

KEY = quota_key("ec2", "L-1216C47A")


def test_q2_skips_a_quota_whose_applied_value_already_meets_the_target(member: Member, settings: Settings) -> None:
    service_quotas.set_scenario("already-applied")
    output = apply.run(member, settings)
    assert (output.created, output.existing) == (0, 1)
    assert output.detail["quotas"][0]["action"] == "met"
    assert service_quotas.requests(MEMBER) == []
    assert member.ledger.resource(MEMBER, KEY) is None
    assert apply.poll(member, settings, 0).ready


def test_q1_q2_files_one_request_records_its_id_and_a_rerun_files_no_second(member: Member, settings: Settings) -> None:
    first = apply.run(member, settings)
    assert first.created == 1
    filed = service_quotas.requests(MEMBER)
    assert [(r["service"], r["quota_code"], r["desired"]) for r in filed] == [("ec2", "L-1216C47A", 2500.0)]
    record = member.ledger.resource(MEMBER, KEY)
    assert record is not None
    assert (record.type, record.state, record.resource_id) == ("quotas:request", ResourceState.CREATED, filed[0]["id"])

    again = apply.run(member, settings)
    assert (again.created, again.existing) == (0, 1)
    assert again.detail["quotas"][0]["action"] == "reuse"
    assert len(service_quotas.requests(MEMBER)) == 1


def test_q2_reuses_an_open_request_someone_else_filed(member: Member, settings: Settings) -> None:
    theirs = member.client("service-quotas").request_service_quota_increase(
        ServiceCode="ec2", QuotaCode="L-1216C47A", DesiredValue=3000
    )["RequestedQuota"]["Id"]
    output = apply.run(member, settings)
    assert output.created == 0
    assert output.detail["quotas"][0]["request_id"] == theirs
    assert len(service_quotas.requests(MEMBER)) == 1
    record = member.ledger.resource(MEMBER, KEY)
    assert record is not None and record.resource_id == theirs


def test_q2_poll_waits_while_open_and_is_ready_once_approved(
    member: Member, settings: Settings, sandbox: VirtualClock
) -> None:
    apply.run(member, settings)
    waiting = apply.poll(member, settings, 0)
    assert (waiting.ready, waiting.attempt) == (False, 1)
    assert "PENDING" in waiting.detail
    sandbox.advance(60)
    assert "CASE_OPENED" in apply.poll(member, settings, 1).detail
    sandbox.advance(240)
    done = apply.poll(member, settings, 2)
    assert (done.ready, done.attempt) == (True, 3)


def test_q2_denied_request_fails_naming_quota_account_and_request(
    member: Member, settings: Settings, sandbox: VirtualClock
) -> None:
    service_quotas.set_scenario("denied")
    apply.run(member, settings)
    request_id = service_quotas.requests(MEMBER)[0]["id"]
    assert not apply.poll(member, settings, 0).ready
    sandbox.advance(300)
    with pytest.raises(QuotaDenied) as err:
        apply.poll(member, settings, 1)
    assert str(err.value) == f"quota ec2/L-1216C47A in {MEMBER} denied (request {request_id})"


def test_q2_pending_request_times_out_at_the_timeout_and_not_before(member: Member, sandbox: VirtualClock) -> None:
    settings = Settings(ledger_table="mlplane-ledger", poll_interval_seconds=60, quota_timeout_seconds=600)
    service_quotas.set_scenario("pending")
    apply.run(member, settings)
    began = sandbox.now()
    for attempt in range(10):  # polls at 0, 60, ..., 540 s: still inside the 600 s timeout
        assert not apply.poll(member, settings, attempt).ready
        sandbox.advance(settings.poll_interval_seconds)
    assert sandbox.now() - began == 600
    with pytest.raises(TimedOut) as err:
        apply.poll(member, settings, 10)
    assert str(err.value).startswith(f"quota ec2/L-1216C47A in {MEMBER} not raised to 2500 after 600 s (request ")
    assert "CASE_OPENED" in str(err.value)


def test_q1_quota_without_applied_value_falls_back_to_the_aws_default(member: Member) -> None:
    service_quotas.add_quota(
        service_quotas.QuotaSpec(
            service_code="emr-serverless",
            service_name="Amazon EMR Serverless",
            quota_code="L-D05C8A75",
            quota_name="Max concurrent vCPUs per account",
            default=16,
            applied_available=False,
        )
    )
    settings = Settings(
        ledger_table="mlplane-ledger",
        quota_targets=(QuotaTarget(service="emr-serverless", quota_code="L-D05C8A75", desired=8),),
    )
    output = apply.run(member, settings)
    assert output.detail["quotas"][0] == {
        "service": "emr-serverless",
        "quota_code": "L-D05C8A75",
        "applied": 16.0,
        "desired": 8.0,
        "action": "met",
        "request_id": None,
    }


def test_rollback_defers_a_quota_request_it_cannot_withdraw(member: Member, settings: Settings) -> None:
    apply.run(member, settings)
    record = member.ledger.resource(MEMBER, KEY)
    assert record is not None and record.resource_id
    handler = handler_for("quotas:request")
    assert handler.find(member, record) == record.resource_id
    undone = handler.undo(member, record, record.resource_id)
    assert undone.outcome == "deferred"
    assert undone.reason == f"quota increase request {record.resource_id} cannot be withdrawn"
    assert service_quotas.requests(MEMBER)[0]["status"] == "PENDING"
