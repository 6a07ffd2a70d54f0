"""Fixtures of the network module tests: moto behind the sandbox's interceptor (fidelity rules on), members."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlplane import aws
from mlplane.config import Settings, reset_settings
from mlplane.member import Member, member_for
from mlplane_sandbox import clock as clock_module
from mlplane_sandbox import interceptor, recording
from mlplane_sandbox.clock import VirtualClock
from mlplane_sandbox.fidelity import network as network_rules
from tests.module.moto_account import create_ledger_table, use_fake_credentials

REGION = "eu-west-1"
MEMBER = "111111111111"
OTHER_MEMBER = "222222222222"
TABLE = "mlplane-ledger"
MUTATING = ("Create", "Allocate", "Associate", "Attach", "Modify", "Replace", "Delete", "Release", "Detach")


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch) -> Iterator[VirtualClock]:
    """moto with the interceptor (and so the network fidelity rules) installed, a fresh virtual clock."""
    use_fake_credentials(monkeypatch, REGION)
    clock = clock_module.reset()
    recording.reset()
    with mock_aws():
        interceptor.install()
        interceptor.configure()
        try:
            network_rules.reset()
            create_ledger_table(TABLE, REGION)
            yield clock
        finally:
            interceptor.configure()
            interceptor.uninstall()
    aws.reset()
    reset_settings()


@pytest.fixture
def settings() -> Settings:
    return Settings(ledger_table=TABLE, aws_region=REGION)


@pytest.fixture
def member(sandbox: VirtualClock, settings: Settings) -> Member:
    return member_for(MEMBER, "exec-1", "CreateNetwork", settings)


@pytest.fixture
def other_member(sandbox: VirtualClock, settings: Settings) -> Member:
    return member_for(OTHER_MEMBER, "exec-2", "CreateNetwork", settings)


CallLog = Callable[[], list[str]]


@pytest.fixture
def ec2_calls(member: Member) -> CallLog:
    """Every EC2 operation the member's client makes from now on (a botocore event hook on the client)."""
    seen: list[str] = []

    def hook(model: Any, **_: Any) -> None:
        seen.append(model.name)

    member.client("ec2").meta.events.register("before-call.ec2", hook)
    return lambda: list(seen)


def mutating(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith(MUTATING)]


def shared_transit_gateway(*accounts: str, auto_accept: bool = True) -> str:
    """seed 002's hub and spoke: a transit gateway in the hub account (123456789012), shared through RAM.

    It accepts the accounts' attachments itself (AutoAcceptSharedAttachments=enable), as the sandbox's network
    account does by default; `auto_accept=False` is AWS's default, where each one waits for the owner.
    """
    options = {"AutoAcceptSharedAttachments": "enable" if auto_accept else "disable"}
    tgw = boto3.client("ec2", region_name=REGION).create_transit_gateway(Description="network hub", Options=options)[
        "TransitGateway"
    ]
    boto3.client("ram", region_name=REGION).create_resource_share(
        name="egress", resourceArns=[tgw["TransitGatewayArn"]], principals=list(accounts)
    )
    return str(tgw["TransitGatewayId"])
