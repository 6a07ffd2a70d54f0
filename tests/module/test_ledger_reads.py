"""The ledger's one read of an account's status with a resource's record (`Ledger.status_and_resource`), which
CreateNetwork makes before each resource: one BatchGetItem instead of two GetItems.

DynamoDB may leave keys of a BatchGetItem unprocessed (the botocore model's BatchGetItem: "If DynamoDB returns
any unprocessed items, you should retry the batch operation on those items ... we strongly recommend that you
use an exponential backoff algorithm"); botocore does not retry them and moto never leaves any, so a client that
does is played here."""

from __future__ import annotations

from typing import Any

import pytest

from mlplane.errors import TransientError
from mlplane.ledger import Ledger, ResourceState, Status
from mlplane.ledger import store as ledger_store
from tests.module.conftest import LEDGER_TABLE

TABLE = LEDGER_TABLE
MEMBER = "111111111111"


class Unprocessing:
    """A DynamoDB client that leaves every key of the first `times` BatchGetItems unprocessed, as DynamoDB does
    when the table is throttled, and counts the BatchGetItems."""

    def __init__(self, client: Any, times: int) -> None:
        self._client = client
        self.times = times
        self.batches: list[dict[str, Any]] = []

    def batch_get_item(self, **kwargs: Any) -> dict[str, Any]:
        self.batches.append(kwargs["RequestItems"])
        if len(self.batches) <= self.times:
            return {"Responses": {TABLE: []}, "UnprocessedKeys": kwargs["RequestItems"]}
        answer: dict[str, Any] = self._client.batch_get_item(**kwargs)
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_status_and_record_come_from_one_consistent_read(dynamodb: Any) -> None:
    counting = Unprocessing(dynamodb, times=0)
    ledger = Ledger(counting, TABLE)  # type: ignore[arg-type]
    assert ledger.status_and_resource(MEMBER, "vpc") == (None, None)
    ledger.set_status(MEMBER, Status.PROVISIONING, execution="exec-1")
    ledger.record_intent(MEMBER, key="vpc", type="ec2:vpc", step="CreateNetwork", execution="exec-1")
    status, record = ledger.status_and_resource(MEMBER, "vpc")
    assert status is not None and status.status == Status.PROVISIONING and status.execution == "exec-1"
    assert record is not None and record.key == "vpc" and record.state == ResourceState.INTENT
    assert ledger.status_and_resource(MEMBER, "subnet-a") == (status, None)
    assert len(counting.batches) == 3
    assert all(batch[TABLE]["ConsistentRead"] is True for batch in counting.batches)


def test_unprocessed_keys_are_read_again_after_a_back_off(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(ledger_store.time, "sleep", slept.append)
    Ledger(dynamodb, TABLE).set_status(MEMBER, Status.PROVISIONING, execution="exec-1")
    throttled = Unprocessing(dynamodb, times=2)
    status, record = Ledger(throttled, TABLE).status_and_resource(MEMBER, "vpc")  # type: ignore[arg-type]
    assert status is not None and status.status == Status.PROVISIONING and record is None
    assert len(throttled.batches) == 3
    assert slept == sorted(slept) and slept[0] > 0 and slept[1] > slept[0]  # backing off, not a tight loop


def test_keys_left_unprocessed_on_every_try_are_a_transient_error(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_store.time, "sleep", lambda seconds: None)
    throttled = Unprocessing(dynamodb, times=1000)
    with pytest.raises(TransientError, match="BatchGetItem mlplane-ledger: keys of 111111111111 left unprocessed"):
        Ledger(throttled, TABLE).status_and_resource(MEMBER, "vpc")  # type: ignore[arg-type]
    assert len(throttled.batches) == ledger_store._BATCH_TRIES
