"""Fixtures of the quotas and vendor module tests: moto with the sandbox's interceptor, a member account."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from moto import mock_aws
from moto.iam.models import iam_backends

from mlplane import aws
from mlplane.config import Settings, reset_settings
from mlplane.member import Member, member_for
from mlplane_sandbox import clock as clock_module
from mlplane_sandbox import interceptor
from mlplane_sandbox.clock import VirtualClock
from mlplane_sandbox.emulators import service_quotas
from tests.module.moto_account import create_ledger_table, use_fake_credentials

REGION = "eu-west-1"
MEMBER = "111111111111"
OTHER_MEMBER = "222222222222"
TABLE = "mlplane-ledger"


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualClock]:
    """moto with the interceptor installed, a fresh clock, Service Quotas emulated ('approved')."""
    use_fake_credentials(monkeypatch, REGION)
    clock = clock_module.reset()
    service_quotas.reset("approved", clock)
    with mock_aws():
        interceptor.install()
        try:
            create_ledger_table(TABLE, REGION)
            for account in (MEMBER, OTHER_MEMBER):
                _execution_role(account)
            yield clock
        finally:
            interceptor.uninstall()
    aws.reset()
    reset_settings()


def _execution_role(account_id: str) -> None:
    """The role Control Tower leaves in a vended account (made in moto's backend: the sandbox checks AssumeRole)."""
    iam_backends[account_id]["aws"].create_role(
        role_name="AWSControlTowerExecution",
        assume_role_policy_document=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
        path="/",
        permissions_boundary=None,
        description="",
        tags=[],
        max_session_duration=None,
    )


@pytest.fixture
def settings() -> Settings:
    return Settings(ledger_table=TABLE, aws_region=REGION, poll_interval_seconds=60)


@pytest.fixture
def member(sandbox: VirtualClock, settings: Settings) -> Member:
    return member_for(MEMBER, "exec-1", "RequestQuotas", settings)
