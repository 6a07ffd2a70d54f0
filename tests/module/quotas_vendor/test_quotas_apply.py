"""RequestQuotas and its wait loop against the emulated Service Quotas (REQUIREMENTS Q1-Q2)."""

from __future__ import annotations

import pytest

from mlplane.config import QuotaTarget, Settings
from mlplane.errors import AccessDenied, AwsCallFailed, QuotaDenied, TimedOut
from mlplane.ledger import ResourceState
from mlplane.member import Member
from mlplane.quotas import apply
from mlplane.quotas.models import quota_key
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
    waited, polled_at = 0, []
    for attempt in range(4):  # polls at 0, 60, 180, 420 s (the interval doubles): still inside the 600 s timeout
        polled_at.append(sandbox.now() - began)
        output = apply.poll(member, settings, attempt, waited)
        assert not output.ready
        sandbox.advance(output.wait_seconds)
        waited = output.waited_seconds
    assert polled_at == [0, 60, 180, 420]
    assert sandbox.now() - began == waited == 600  # the last wait is cut to end on the timeout
    with pytest.raises(TimedOut) as err:
        apply.poll(member, settings, 4, waited)
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
    handler = apply.HANDLERS["quotas:request"]
    assert handler.find(member, record) == record.resource_id
    undone = handler.undo(member, record, record.resource_id)
    assert undone.outcome == "deferred"
    assert undone.reason == f"quota increase request {record.resource_id} cannot be withdrawn"
    assert service_quotas.requests(MEMBER)[0]["status"] == "PENDING"


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ("partial", "quota ec2/L-1216C47A in {member} approved at 1000, not 2500 (request {request})"),
        (
            "case-closed",
            "quota ec2/L-1216C47A in {member} case closed with the applied value 5, not 2500 (request {request})",
        ),
    ],
)
def test_q3_partial_approval_and_closed_case_fail_naming_the_granted_value_and_request(
    member: Member, settings: Settings, sandbox: VirtualClock, scenario: str, message: str
) -> None:
    """REQUIREMENTS Q3: an approval below the desired value, or a closed support case, fails the run with the
    granted value and the request id (RequestStatus in botocore service-quotas service-2.json)."""
    service_quotas.set_scenario(scenario)
    apply.run(member, settings)
    request_id = service_quotas.requests(MEMBER)[0]["id"]
    assert not apply.poll(member, settings, 0).ready
    sandbox.advance(300)
    with pytest.raises(QuotaDenied) as err:
        apply.poll(member, settings, 1, 60)
    assert str(err.value) == message.format(member=MEMBER, request=request_id)


def test_q3_slow_case_is_waited_for_with_backoff_and_is_ready_after_two_days(
    member: Member, sandbox: VirtualClock
) -> None:
    """REQUIREMENTS Q3: the default quota timeout is 5 days and the polls back off (x2 up to 15 min), so a
    2-day support case costs a couple of hundred polls, not the 2,880 of a fixed 60 s interval."""
    settings = Settings(ledger_table="mlplane-ledger", poll_interval_seconds=60)
    assert settings.quota_timeout_seconds == 5 * 86_400
    service_quotas.set_scenario("slow")
    apply.run(member, settings)
    waits: list[int] = []
    attempt = waited = 0
    while True:
        output = apply.poll(member, settings, attempt, waited)
        if output.ready:
            break
        waits.append(output.wait_seconds)
        sandbox.advance(output.wait_seconds)
        attempt, waited = output.attempt, output.waited_seconds
    assert waits[:6] == [60, 120, 240, 480, 900, 900]
    assert set(waits[4:]) == {900}
    assert 2 * 86_400 <= waited < 2 * 86_400 + 900  # seen within one capped interval of the approval
    assert len(waits) + 1 < 200  # polls: 3 state transitions each


def test_q2_throttled_requests_are_retried_and_refusals_fail_with_their_code(
    member: Member, settings: Settings, sandbox: VirtualClock
) -> None:
    """TooManyRequestsException is throttling (botocore retries it); QuotaExceededException and
    DependencyAccessDeniedException are answers no retry changes (botocore service-quotas service-2.json)."""
    service_quotas.refuse("RequestServiceQuotaIncrease", "TooManyRequestsException", account_id=MEMBER, times=2)
    assert apply.run(member, settings).created == 1
    for code, error in (("QuotaExceededException", AwsCallFailed), ("DependencyAccessDeniedException", AccessDenied)):
        service_quotas.reset("approved", sandbox)  # the request above is forgotten: the next run files again
        service_quotas.refuse("RequestServiceQuotaIncrease", code, account_id=MEMBER)
        with pytest.raises(error) as err:
            apply.run(member, settings)
        assert f"RequestServiceQuotaIncrease ec2/L-1216C47A in {MEMBER} failed: {code}" in str(err.value)
