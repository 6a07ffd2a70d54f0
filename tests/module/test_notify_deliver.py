"""notify.deliver: at least once per (account, execution, event), with the ledger's mark (REQUIREMENTS C10).

moto plays SNS and DynamoDB; the faults are the two that matter: the publish fails (nothing marked, the step is
retried) and the mark's write fails after the publish went out (the retry publishes again: at least once).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from mlplane import notify
from mlplane.config import Settings
from mlplane.errors import NotificationFailed, TransientError
from mlplane.ledger import Ledger
from tests.module.moto_account import create_ledger_table, use_fake_credentials

REGION = "eu-west-1"
TABLE = "mlplane-ledger"
MEMBER = "111111111111"


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Settings, Ledger]]:
    use_fake_credentials(monkeypatch, REGION)
    with mock_aws():
        create_ledger_table(TABLE, REGION)
        topic = boto3.client("sns", region_name=REGION).create_topic(Name="mlplane")["TopicArn"]
        yield Settings(topic_arn=topic), Ledger(boto3.client("dynamodb", region_name=REGION), TABLE)


def sent(settings: Settings) -> list[Any]:
    return list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].topics[settings.topic_arn].sent_notifications)


def ready(execution: str = "ct-1") -> dict[str, Any]:
    return notify.message("READY", account_id=MEMBER, execution=execution)


def test_c10_delivered_once_then_the_mark_stops_a_second_publish(hub: tuple[Settings, Ledger]) -> None:
    settings, ledger = hub
    assert notify.deliver(settings, ledger, ready()) is True
    assert notify.deliver(settings, ledger, ready()) is False
    assert len(sent(settings)) == 1
    assert ledger.notified(MEMBER, execution="ct-1", event="READY")
    assert not ledger.notified(MEMBER, execution="ct-2", event="READY")  # per execution: a later run notifies
    assert notify.deliver(settings, ledger, ready("ct-2")) is True and len(sent(settings)) == 2


def test_c10_a_failed_publish_marks_nothing_and_the_next_attempt_publishes(hub: tuple[Settings, Ledger]) -> None:
    settings, ledger = hub
    broken = settings.model_copy(update={"topic_arn": settings.topic_arn + "-gone"})
    with pytest.raises(NotificationFailed, match=f"READY notification for {MEMBER} not published"):
        notify.deliver(broken, ledger, ready())
    assert not ledger.notified(MEMBER, execution="ct-1", event="READY")
    assert notify.deliver(settings, ledger, ready()) is True and len(sent(settings)) == 1


def test_c10_a_crash_between_the_publish_and_the_mark_publishes_again(
    hub: tuple[Settings, Ledger], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, ledger = hub

    def mark_fails(account_id: str, *, execution: str, event: str) -> None:
        raise TransientError("dynamodb:PutItem mlplane-ledger failed: InternalServerError")

    with monkeypatch.context() as patched:
        patched.setattr(ledger, "mark_notified", mark_fails)
        with pytest.raises(TransientError):
            notify.deliver(settings, ledger, ready())
    assert len(sent(settings)) == 1
    assert notify.deliver(settings, ledger, ready()) is True
    assert len(sent(settings)) == 2  # at least once, not exactly once
    assert notify.deliver(settings, ledger, ready()) is False


def test_c10_the_marks_are_not_resources_of_the_account(hub: tuple[Settings, Ledger]) -> None:
    settings, ledger = hub
    notify.deliver(settings, ledger, ready())
    assert ledger.resources(MEMBER, live_only=False) == []
