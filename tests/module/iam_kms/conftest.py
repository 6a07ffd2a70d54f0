"""Fixtures of the IAM and KMS module tests: moto with the sandbox's interceptor (fidelity rules), a member."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import pytest
from moto import mock_aws
from moto.iam.models import iam_backends

from mlplane import aws
from mlplane.config import Settings, reset_settings
from mlplane.member import Member, member_for
from mlplane_sandbox import clock as clock_module
from mlplane_sandbox import interceptor
from mlplane_sandbox.clock import VirtualClock
from mlplane_sandbox.fidelity import iam_kms
from tests.module.moto_account import create_ledger_table, use_fake_credentials

REGION = "eu-west-1"
HUB = "123456789012"
MEMBER = "111111111111"
OTHER_MEMBER = "222222222222"
TABLE = "mlplane-ledger"
EXECUTION_ROLE = "AWSControlTowerExecution"
# An RSA public key in OpenSSH form (iam:UploadSSHPublicKey validates it), for users someone gave a CodeCommit key.
SSH_KEY = (
    "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDBsRCJCtaX8m/bqiXiJWvEdRH9aXXi2cZtANN51hEYVYPoNvT6k38aHvcChtIT05MJ6jd"
    "Gsmkk0gjNvCtH9wcBUTsRC0wSv2NGhVvP/iBvYkUbjNtMhHWqNfYUQySs9b0gNGrS8F+lSl7IANsR3JXdE4F/OzplgMQyi4S0lAJHo+p63"
    "I5mjLCS4nkj4Kbx/8iqaMzBtW9PRlSzqnT3fWMDeEtNfaJPJeMhxqQsO/rNJbuuhMAbT+7ODW2NfZZhS1Mz6HtPLNv6ipqk4i3xTCjxrhCU"
    "LtbHWQ5kMtWYoDQDc9U4BR6BhZqJyEB9f5dLqPvBQ2GmILrbWvDUdJAFpJFLB test@example.com"
)


def place_role(account_id: str, name: str, trusted: str = HUB) -> str:
    """A role made straight in moto's backend, as Control Tower vends it (no CreateRole call, no delay)."""
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{trusted}:root"}, "Action": "sts:AssumeRole"}
        ],
    }
    role = iam_backends[account_id]["aws"].create_role(
        role_name=name,
        assume_role_policy_document=json.dumps(trust),
        path="/",
        permissions_boundary=None,
        description="",
        tags=[],
        max_session_duration=None,
    )
    return str(role.arn)


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualClock]:
    """moto with the interceptor installed, a fresh clock, default fidelity settings, the ledger table."""
    use_fake_credentials(monkeypatch, REGION)
    clock = clock_module.reset()
    iam_kms.reset()
    with mock_aws():
        interceptor.install()
        try:
            create_ledger_table(TABLE, REGION)
            yield clock
        finally:
            interceptor.uninstall()
            iam_kms.reset()
    aws.reset()
    reset_settings()


@pytest.fixture
def settings() -> Settings:
    return Settings(ledger_table=TABLE, aws_region=REGION)


@pytest.fixture
def member(sandbox: VirtualClock, settings: Settings) -> Member:
    place_role(MEMBER, EXECUTION_ROLE)
    iam_kms.configure(assume_role_check=True)  # the role exists, as in a vended account
    return member_for(MEMBER, "exec-1", "CreateIam", settings)


@pytest.fixture
def calls(member: Member) -> Callable[[str, str], list[dict[str, object]]]:
    """`calls(service, operation)`: the parameters of every such call the member's mlplane clients made."""
    seen: dict[tuple[str, str], list[dict[str, object]]] = {}

    def hook(service: str) -> Callable[..., None]:
        def record(params: dict[str, object], model: object, **_: object) -> None:
            seen.setdefault((service, str(getattr(model, "name", ""))), []).append(params)

        return record

    for service in ("iam", "kms"):
        member.client(service).meta.events.register(f"provide-client-params.{service}.*", hook(service))

    def lookup(service: str, operation: str) -> list[dict[str, object]]:
        return seen.get((service, operation), [])

    return lookup
