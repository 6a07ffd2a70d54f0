"""Account closure as Organizations plays it (issue 12 item 9), where moto suspends at once and lets anyone in.

Source: AWS Organizations API reference, CloseAccount: "While the close account request is in progress, Account
status will indicate PENDING_CLOSURE. When the close account request completes, the status will change to
SUSPENDED." and "During this 90-day period, the resources won't be available".
"""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from mlplane_sandbox.clock import clock
from mlplane_sandbox.fidelity import organizations
from mlplane_sandbox.runner import Options, Sandbox
from mlplane_sandbox.world import HUB_ACCOUNT, as_account, sandbox_client

MEMBER = "111111111111"


def _state() -> str:
    with as_account(HUB_ACCOUNT):
        return str(sandbox_client("organizations").describe_account(AccountId=MEMBER)["Account"]["State"])


def _assume() -> None:
    with as_account(HUB_ACCOUNT):
        sandbox_client("sts").assume_role(
            RoleArn=f"arn:aws:iam::{MEMBER}:role/AWSControlTowerExecution", RoleSessionName="probe"
        )


def test_a_closed_account_is_pending_closure_then_suspended_and_its_role_cannot_be_assumed() -> None:
    with Sandbox(Options()) as sandbox:
        sandbox.world.place_account(MEMBER, "Workloads", role_name="AWSControlTowerExecution")
        _assume()  # an ACTIVE account's execution role can be assumed
        organizations.close(HUB_ACCOUNT, MEMBER)
        assert _state() == "PENDING_CLOSURE"
        with pytest.raises(ClientError) as refused:
            _assume()
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        clock().advance(organizations.CLOSURE_SECONDS)
        assert _state() == "SUSPENDED"
        with pytest.raises(ClientError) as still:
            _assume()
        assert still.value.response["Error"]["Code"] == "AccessDenied"
