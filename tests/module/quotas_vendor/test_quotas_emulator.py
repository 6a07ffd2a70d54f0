"""The sandbox's Service Quotas answers as botocore's model says AWS does (REQUIREMENTS Q1-Q2)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from mlplane_sandbox.clock import VirtualClock
from mlplane_sandbox.emulators import service_quotas

from .conftest import MEMBER, OTHER_MEMBER, REGION


def _client(account: str = MEMBER) -> Any:
    creds = boto3.client("sts", region_name=REGION).assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/AWSControlTowerExecution", RoleSessionName="test"
    )["Credentials"]
    return boto3.client(
        "service-quotas",
        region_name=REGION,
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
    )


def _code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def test_q1_get_service_quota_reports_the_default_applied_value(sandbox: VirtualClock) -> None:
    quota = _client().get_service_quota(ServiceCode="ec2", QuotaCode="L-1216C47A")["Quota"]
    assert quota["Value"] == 5.0
    assert quota["QuotaName"] == "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances"
    assert quota["Adjustable"] is True
    assert quota["Unit"] == "None"
    assert quota["QuotaArn"] == f"arn:aws:servicequotas:{REGION}:{MEMBER}:ec2/L-1216C47A"
    default = _client().get_aws_default_service_quota(ServiceCode="ec2", QuotaCode="L-1216C47A")
    assert default["Quota"]["Value"] == 5.0


def test_unknown_quota_and_request_are_no_such_resource(sandbox: VirtualClock) -> None:
    client = _client()
    with pytest.raises(ClientError) as err:
        client.get_service_quota(ServiceCode="ec2", QuotaCode="L-00000000")
    assert _code(err) == "NoSuchResourceException"
    with pytest.raises(ClientError) as err:
        client.get_requested_service_quota_change(RequestId="nope-1")
    assert _code(err) == "NoSuchResourceException"


def test_q2_second_open_request_is_refused_and_low_values_are_illegal(sandbox: VirtualClock) -> None:
    client = _client()
    with pytest.raises(ClientError) as err:
        client.request_service_quota_increase(ServiceCode="ec2", QuotaCode="L-1216C47A", DesiredValue=5)
    assert _code(err) == "IllegalArgumentException"
    first = client.request_service_quota_increase(ServiceCode="ec2", QuotaCode="L-1216C47A", DesiredValue=2500)[
        "RequestedQuota"
    ]
    assert first["Status"] == "PENDING"
    assert first["DesiredValue"] == 2500.0
    assert isinstance(first["Created"], datetime)
    with pytest.raises(ClientError) as err:
        client.request_service_quota_increase(ServiceCode="ec2", QuotaCode="L-1216C47A", DesiredValue=3000)
    assert _code(err) == "ResourceAlreadyExistsException"


def test_q2_approved_request_moves_on_the_clock_and_raises_the_applied_value(sandbox: VirtualClock) -> None:
    client = _client()
    request_id = client.request_service_quota_increase(ServiceCode="ec2", QuotaCode="L-1216C47A", DesiredValue=2500)[
        "RequestedQuota"
    ]["Id"]

    def status() -> str:
        return str(client.get_requested_service_quota_change(RequestId=request_id)["RequestedQuota"]["Status"])

    sandbox.advance(59)
    assert status() == "PENDING"
    sandbox.advance(1)
    assert status() == "CASE_OPENED"
    assert client.get_service_quota(ServiceCode="ec2", QuotaCode="L-1216C47A")["Quota"]["Value"] == 5.0
    sandbox.advance(240)
    assert status() == "APPROVED"
    assert client.get_service_quota(ServiceCode="ec2", QuotaCode="L-1216C47A")["Quota"]["Value"] == 2500.0
    history = client.list_requested_service_quota_change_history_by_quota(ServiceCode="ec2", QuotaCode="L-1216C47A")[
        "RequestedQuotas"
    ]
    assert [(r["Id"], r["Status"]) for r in history] == [(request_id, "APPROVED")]


@pytest.mark.parametrize(("scenario", "final"), [("denied", "DENIED"), ("pending", "CASE_OPENED")])
def test_q2_denied_and_pending_scenarios(sandbox: VirtualClock, scenario: str, final: str) -> None:
    service_quotas.set_scenario(scenario)
    client = _client()
    request_id = client.request_service_quota_increase(ServiceCode="ec2", QuotaCode="L-1216C47A", DesiredValue=2500)[
        "RequestedQuota"
    ]["Id"]
    sandbox.advance(86_400)
    answer = client.get_requested_service_quota_change(RequestId=request_id)["RequestedQuota"]
    assert answer["Status"] == final
    assert client.get_service_quota(ServiceCode="ec2", QuotaCode="L-1216C47A")["Quota"]["Value"] == 5.0


def test_already_applied_scenario_starts_at_2500_and_accounts_are_separate(sandbox: VirtualClock) -> None:
    service_quotas.set_scenario("already-applied", account_id=OTHER_MEMBER)
    assert _client(OTHER_MEMBER).get_service_quota(ServiceCode="ec2", QuotaCode="L-1216C47A")["Quota"]["Value"] == 2500
    assert _client(MEMBER).get_service_quota(ServiceCode="ec2", QuotaCode="L-1216C47A")["Quota"]["Value"] == 5


def test_history_pages_with_next_token_and_filters_by_status(sandbox: VirtualClock) -> None:
    service_quotas.set_scenario("denied")
    client = _client()
    ids = []
    for _ in range(3):
        ids.append(
            client.request_service_quota_increase(ServiceCode="ec2", QuotaCode="L-1216C47A", DesiredValue=2500)[
                "RequestedQuota"
            ]["Id"]
        )
        sandbox.advance(300)
    paginator = client.get_paginator("list_requested_service_quota_change_history_by_quota")
    pages = list(paginator.paginate(ServiceCode="ec2", QuotaCode="L-1216C47A", PaginationConfig={"PageSize": 2}))
    assert len(pages) == 2
    assert [r["Id"] for page in pages for r in page["RequestedQuotas"]] == list(reversed(ids))
    open_only = client.list_requested_service_quota_change_history_by_quota(
        ServiceCode="ec2", QuotaCode="L-1216C47A", Status="PENDING"
    )
    assert open_only["RequestedQuotas"] == []
    assert [r["status"] for r in service_quotas.requests(MEMBER)] == ["DENIED"] * 3


@pytest.mark.parametrize(
    ("scenario", "open_for", "final", "applied"),
    [
        ("slow", 2 * 86_400, "APPROVED", 2500.0),
        ("partial", 300, "APPROVED", 1000.0),
        ("case-closed", 300, "CASE_CLOSED", 5.0),
    ],
)
def test_q3_support_case_scenarios_stay_open_then_decide_as_aws_does(
    sandbox: VirtualClock, scenario: str, open_for: int, final: str, applied: float
) -> None:
    """A 2,500-vCPU request on a new account is a support case: CASE_OPENED for up to days, then approved
    (possibly at less), or CASE_CLOSED with the outcome only in the case (botocore service-quotas
    service-2.json, RequestStatus: "CASE_CLOSED: The support case associated with this quota increase request
    was closed. Check the support case correspondence for the outcome")."""
    service_quotas.set_scenario(scenario)
    client = _client()
    request_id = client.request_service_quota_increase(ServiceCode="ec2", QuotaCode="L-1216C47A", DesiredValue=2500)[
        "RequestedQuota"
    ]["Id"]

    def status() -> str:
        return str(client.get_requested_service_quota_change(RequestId=request_id)["RequestedQuota"]["Status"])

    def value() -> float:
        return float(client.get_service_quota(ServiceCode="ec2", QuotaCode="L-1216C47A")["Quota"]["Value"])

    sandbox.advance(open_for - 1)
    assert (status(), value()) == ("CASE_OPENED", 5.0)
    sandbox.advance(1)
    answer = client.get_requested_service_quota_change(RequestId=request_id)["RequestedQuota"]
    assert (answer["Status"], value()) == (final, applied)
    assert answer["DesiredValue"] == 2500.0  # what was asked stays on the request; the grant is the applied value
    assert answer["CaseId"]


@pytest.mark.parametrize(
    "code", ["TooManyRequestsException", "QuotaExceededException", "DependencyAccessDeniedException"]
)
def test_refused_requests_answer_with_the_models_error_shape(sandbox: VirtualClock, code: str) -> None:
    """RequestServiceQuotaIncrease lists these errors, each a structure with one `Message` member, sent by
    the awsJson1_1 protocol as HTTP 400 with `__type` (botocore service-quotas service-2.json)."""
    service_quotas.refuse("RequestServiceQuotaIncrease", code, account_id=MEMBER)
    client = _client()
    with pytest.raises(ClientError) as err:
        client.request_service_quota_increase(ServiceCode="ec2", QuotaCode="L-1216C47A", DesiredValue=2500)
    assert _code(err) == code
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err.value.response["Error"]["Message"] == service_quotas.REFUSABLE[code]
    assert service_quotas.requests(MEMBER) == []  # a refused request files nothing
    # other accounts and other operations are unaffected
    assert (
        _client(OTHER_MEMBER).request_service_quota_increase(
            ServiceCode="ec2", QuotaCode="L-1216C47A", DesiredValue=2500
        )["RequestedQuota"]["Status"]
        == "PENDING"
    )
    assert client.get_service_quota(ServiceCode="ec2", QuotaCode="L-1216C47A")["Quota"]["Value"] == 5.0
