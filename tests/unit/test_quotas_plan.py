"""The pure quota decisions (REQUIREMENTS Q1-Q2)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mlplane.quotas.plan as plan_module
from mlplane.config import QuotaTarget
from mlplane.quotas.models import ObservedQuota, QuotaRequest, quota_key
from mlplane.quotas.plan import plan, progress

TARGET = QuotaTarget()  # ec2 / L-1216C47A / 2500
KEY = quota_key("ec2", "L-1216C47A")


def _seen(applied: float, *requests: tuple[str, str, float]) -> dict[str, ObservedQuota]:
    return {
        KEY: ObservedQuota(
            service="ec2",
            quota_code="L-1216C47A",
            applied=applied,
            requests=tuple(QuotaRequest(id=i, status=s, desired=2500, created=c) for i, s, c in requests),
        )
    }


@pytest.mark.parametrize(
    ("applied", "requests", "action", "request_id"),
    [
        (2500, (), "met", None),
        (3000, (("r1", "PENDING", 1.0),), "met", None),
        (5, (), "request", None),
        (5, (("r1", "DENIED", 1.0),), "request", None),
        (5, (("r1", "APPROVED", 1.0),), "request", None),
        (5, (("r1", "PENDING", 1.0),), "reuse", "r1"),
        (5, (("r1", "DENIED", 1.0), ("r2", "CASE_OPENED", 2.0)), "reuse", "r2"),
    ],
)
def test_q2_plan_skips_met_reuses_open_and_requests_otherwise(
    applied: float, requests: tuple[tuple[str, str, float], ...], action: str, request_id: str | None
) -> None:
    (decision,) = plan((TARGET,), _seen(applied, *requests)).decisions
    assert (decision.action, decision.request_id) == (action, request_id)
    assert decision.key == KEY


@pytest.mark.parametrize(
    ("applied", "requests", "recorded", "state", "request_id"),
    [
        (2500, (("r1", "APPROVED", 1.0),), {KEY: "r1"}, "met", "r1"),
        (2500, (("r1", "CASE_CLOSED", 1.0),), {KEY: "r1"}, "met", "r1"),
        (5, (("r1", "PENDING", 1.0),), {KEY: "r1"}, "waiting", "r1"),
        (5, (("r1", "APPROVED", 1.0),), {KEY: "r1"}, "waiting", "r1"),  # applied value not propagated yet
        (5, (("r1", "DENIED", 1.0),), {KEY: "r1"}, "failed", "r1"),
        (5, (("r1", "NOT_APPROVED", 1.0),), {}, "failed", "r1"),
        (5, (("r1", "INVALID_REQUEST", 1.0),), {}, "failed", "r1"),
        (5, (("old", "DENIED", 1.0), ("r1", "CASE_OPENED", 2.0)), {KEY: "old"}, "waiting", "r1"),
        (5, (("r1", "APPROVED", 1.0), ("r2", "DENIED", 2.0)), {KEY: "r1"}, "waiting", "r1"),
        (5, (), {}, "waiting", None),
    ],
)
def test_q2_progress_tracks_the_deciding_request(
    applied: float,
    requests: tuple[tuple[str, str, float], ...],
    recorded: dict[str, str],
    state: str,
    request_id: str | None,
) -> None:
    (result,) = progress((TARGET,), _seen(applied, *requests), recorded)
    assert (result.state, result.request_id) == (state, request_id)
    assert result.label == "ec2/L-1216C47A"


@pytest.mark.parametrize(
    ("applied", "status", "before", "state"),
    [
        (1000, "APPROVED", 5, "failed"),  # approved at less: the applied value moved, short of 2500
        (5, "APPROVED", 5, "waiting"),  # approved, the new value not propagated yet
        (5, "CASE_CLOSED", 5, "failed"),  # the case closed, nothing granted
        (2500, "CASE_CLOSED", 5, "met"),  # the case granted it
        (1000, "CASE_OPENED", 5, "waiting"),
    ],
)
def test_q3_approval_at_less_and_closed_case_fail_with_the_granted_value(
    applied: float, status: str, before: float, state: str
) -> None:
    """REQUIREMENTS Q3 (RequestStatus in botocore service-quotas service-2.json: CASE_CLOSED "Check the
    support case correspondence for the outcome"): a decided request that leaves the quota short fails."""
    (result,) = progress((TARGET,), _seen(applied, ("r1", status, 1.0)), {KEY: "r1"}, {KEY: before})
    assert (result.state, result.applied, result.request_id) == (state, applied, "r1")


def test_plan_module_imports_no_aws_sdk() -> None:
    tree = ast.parse(Path(plan_module.__file__).read_text())
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in names if name.split(".")[0] in {"boto3", "botocore", "time", "uuid"}}
