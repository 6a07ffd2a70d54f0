"""StartExecution's input limit as Step Functions measures it (issue 13 section 6).

Source: Step Functions quotas, "Maximum input or output size for a task, state, or execution: 256 KiB of data
as a UTF-8 encoded string".
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.stub import Stubber

from mlplane import aws
from mlplane.accounts.start import MAX_INPUT_BYTES, start_execution
from mlplane.config import settings_from
from mlplane.errors import InputRejected

REGION = "eu-west-1"
MACHINE = "arn:aws:states:eu-west-1:123456789012:stateMachine:mlplane-ProvisionStateMachine"


@pytest.fixture
def stepfunctions(monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws.reset()
    yield aws.client(aws.hub_session(REGION), "stepfunctions")
    aws.reset()


class _Captured:
    """Matches any expected parameter and keeps what was sent."""

    value: str = ""

    def __eq__(self, other: object) -> bool:
        self.value = str(other)
        return True

    __hash__ = object.__hash__


def _start(raw: Any) -> dict[str, Any]:
    return start_execution(
        raw, account_id="111111111111", name="op-111111111111-x", settings=settings_from({}), state_machine_arn=MACHINE
    )


def test_an_input_is_measured_in_utf8_bytes_and_sent_as_measured(stepfunctions: Any) -> None:
    raw = {"account_id": "111111111111", "note": "é" * 60_000}  # 120 KB in UTF-8, 360 KB escaped as \\u00e9
    sent = _Captured()
    with Stubber(stepfunctions) as stub:
        stub.add_response(
            "start_execution",
            {"executionArn": f"{MACHINE}:op-111111111111-x".replace(":stateMachine:", ":execution:"), "startDate": 0},
            {"stateMachineArn": MACHINE, "name": "op-111111111111-x", "input": sent},
        )
        started = _start(raw)
        stub.assert_no_pending_responses()
    assert started["started"] is True
    assert json.loads(sent.value) == raw
    assert "é" in sent.value  # sent unescaped, as measured


def test_an_input_over_256_kib_of_utf8_is_refused_before_any_call(stepfunctions: Any) -> None:
    raw = {"account_id": "111111111111", "note": "é" * (MAX_INPUT_BYTES // 2)}
    with Stubber(stepfunctions), pytest.raises(InputRejected, match="over Step Functions"):
        _start(raw)  # a call would fail the Stubber: there is no response queued
