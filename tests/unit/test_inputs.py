"""Inputs: Control Tower events and manual starts parse, or are rejected with one line (C1, C2)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from mlplane.accounts.events import ControlTowerEvent, ManualStart, parse_start
from mlplane.accounts.start import execution_name
from mlplane.errors import InputRejected
from tests.conftest import load_event


def success() -> dict[str, Any]:
    return copy.deepcopy(load_event("controltower", "create_managed_account_succeeded"))


def test_control_tower_success_event_parses_account_and_ou() -> None:
    start = parse_start(success())
    assert isinstance(start, ControlTowerEvent)
    assert start.account_id == "111111111111"
    assert start.status.organizationalUnit.organizationalUnitName == "Workloads"
    assert start.status.state == "SUCCEEDED"


def test_update_managed_account_event_parses_its_own_status_key() -> None:
    start = parse_start(load_event("controltower", "update_managed_account_succeeded"))
    assert isinstance(start, ControlTowerEvent)
    assert start.detail.eventName == "UpdateManagedAccount"
    assert start.account_id == "111111111111"


def test_manual_start_parses() -> None:
    start = parse_start(load_event("manual", "start"))
    assert isinstance(start, ManualStart)
    assert start.account_id == "111111111111"


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda e: e["detail"]["serviceEventDetails"]["createManagedAccountStatus"]["account"].pop("accountId"),
            "accountId",
        ),
        (
            lambda e: e["detail"]["serviceEventDetails"]["createManagedAccountStatus"]["account"].update(
                accountId="1111"
            ),
            "accountId",
        ),
        (lambda e: e.update(source="aws.organizations"), "source"),
        (lambda e: e["detail"].update(eventName="DeleteManagedAccount"), "eventName"),
    ],
    ids=["no-account-id", "short-account-id", "other-source", "other-event-name"],
)
def test_bad_events_are_rejected_with_one_line_naming_the_field(mutate: Any, expected: str) -> None:
    event = success()
    mutate(event)
    with pytest.raises(InputRejected) as caught:
        parse_start(event)
    message = str(caught.value)
    assert expected in message
    assert "\n" not in message


@pytest.mark.parametrize("raw", [[], "text", 7, None, {"account_id": "111111111111", "extra": 1}])
def test_non_objects_and_unknown_manual_fields_are_rejected(raw: Any) -> None:
    with pytest.raises(InputRejected):
        parse_start(raw)


def test_same_event_gets_the_same_execution_name_and_other_events_another() -> None:
    first = execution_name(parse_start(success()))
    again = execution_name(parse_start(success()))
    other = execution_name(parse_start(load_event("controltower", "update_managed_account_succeeded")))
    assert first == again
    assert first != other
    assert first.startswith("ct-111111111111-")
    assert len(first) <= 80
