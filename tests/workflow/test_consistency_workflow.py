"""EC2 and IAM eventual consistency through the whole control plane (real ASL in the sandbox): NotFound right
after mlplane's own create is transient, in the provision and in its rollback.

AWS sources: the EC2 API guide, "Eventual consistency in the Amazon EC2 API"; the IAM User Guide, "Changes that I
make are not always immediately visible". The sandbox plays them with `--consistency-delay`
(mlplane_sandbox.fidelity.consistency).
"""

from __future__ import annotations

from typing import Any

import pytest

from mlplane_sandbox import recording
from mlplane_sandbox.runner import Options, Sandbox
from tests.conftest import RunSandbox, load_event
from tests.workflow.recorded import FAST, comparable

SUCCESS = "controltower/create_managed_account_succeeded"


def _answers(result: Any, call: str) -> list[bool]:
    return [c["ok"] for c in result.api_calls if c["call"] == call]


def test_ready_with_a_five_second_consistency_delay(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(SUCCESS, config=FAST, consistency_delay=5)
    assert result.outcome == "READY", result.error
    assert result.leftovers == []
    for call in ("ec2:DescribeVpcAttribute", "ec2:DescribeInternetGateways", "iam:AttachUserPolicy"):
        answers = _answers(result, call)
        assert False in answers and answers[-1] is True, call  # met the delay, retried through it
    assert len(result.inventory["vpcs"]) == 1 and len(result.inventory["nat_gateways"]) == 3
    assert result.inventory["vpcs"][0]["dns_hostnames"] is True
    assert [u["attached_policy_arns"] for u in result.inventory["iam_users"]] == [
        ["arn:aws:iam::111111111111:policy/AAC_MachineLearning_SA_Policy"]
    ]


@pytest.mark.parametrize(
    "fault", ["ec2:DescribeVpcAttribute=InvalidVpcID.NotFound@1", "iam:AttachUserPolicy=NoSuchEntity@1"]
)
def test_not_found_right_after_create_is_retried_not_rolled_back(run_sandbox: RunSandbox, fault: str) -> None:
    (result,) = run_sandbox(SUCCESS, config=FAST, fails=[fault])
    assert result.outcome == "READY", result.error
    assert result.leftovers == []
    answers = _answers(result, fault.split("=", 1)[0])
    assert answers[:2] == [False, True]


def test_rollback_with_a_consistency_delay_leaves_nothing(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(
        SUCCESS, config=FAST, fails=["ec2:CreateNatGateway"], consistency_delay=5, inventory_before=True
    )
    assert result.outcome == "ROLLED_BACK", result.error
    assert result.leftovers == []
    assert comparable(result.inventory) == comparable(result.inventory_before)


def test_rollback_moments_after_the_creates_meets_not_found_and_still_removes_everything() -> None:
    # CreateSubnet refused for the third subnet: the rollback starts while the first two are still invisible.
    options = Options(
        config=FAST, fails=["ec2:CreateSubnet=UnauthorizedOperation@3"], consistency_delay=60, inventory_before=True
    )
    with Sandbox(options) as sandbox:
        result = sandbox.run(load_event(*SUCCESS.split("/", 1)))
        calls = recording.since(0)
    assert result.outcome == "ROLLED_BACK", result.error
    met = {c.call for c in calls if c.actor == "RollbackFunction" and c.error and "NotFound" in c.error}
    assert "ec2:DescribeSubnets" in met  # the rollback did see NotFound for what it made a moment ago
    assert result.leftovers == []
    assert comparable(result.inventory) == comparable(result.inventory_before)
