"""The ledger writing behind (`Ledger.writing_behind`, CreateNetwork): a resource's CREATED record goes with the
next resource's INTENT in one BatchWriteItem, and whatever ends the block writes the one still held.

DynamoDB may leave items of a BatchWriteItem unprocessed when the table is throttled (the botocore model's
BatchWriteItem: "If DynamoDB returns any unprocessed items, you should retry the batch operation on those
items"); botocore does not retry them and moto never leaves any, so a client that does is played here."""

from __future__ import annotations

from typing import Any

import pytest

from mlplane.errors import Conflict, TransientError
from mlplane.ledger import Ledger, ResourceState, Status
from mlplane.ledger import store as ledger_store
from tests.module.conftest import LEDGER_TABLE

TABLE = LEDGER_TABLE
MEMBER = "111111111111"
EXECUTION = "exec-1"


class Counting:
    """A DynamoDB client that counts the writes, and leaves every item of the first `unprocessed`
    BatchWriteItems unprocessed, as DynamoDB does when the table is throttled."""

    def __init__(self, client: Any, unprocessed: int = 0) -> None:
        self._client = client
        self.unprocessed = unprocessed
        self.writes: list[tuple[str, list[str]]] = []  # (operation, the sort keys and states written)

    def batch_write_item(self, **kwargs: Any) -> dict[str, Any]:
        items = [request["PutRequest"]["Item"] for request in kwargs["RequestItems"][TABLE]]
        self.writes.append(("BatchWriteItem", [f"{i['sk']['S']}={i['state']['S']}" for i in items]))
        if sum(1 for op, _ in self.writes if op == "BatchWriteItem") <= self.unprocessed:
            return {"UnprocessedItems": kwargs["RequestItems"]}
        answer: dict[str, Any] = self._client.batch_write_item(**kwargs)
        return answer

    def put_item(self, **kwargs: Any) -> dict[str, Any]:
        item = kwargs["Item"]
        self.writes.append(("PutItem", [f"{item['sk']['S']}={item.get('state', item.get('status', {})).get('S')}"]))
        answer: dict[str, Any] = self._client.put_item(**kwargs)
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _make(ledger: Ledger, key: str, resource_id: str) -> None:
    """What Member.ensure does for a fresh resource: intent, (create), created."""
    intent = ledger.record_intent(MEMBER, key=key, type="ec2:subnet", step="CreateNetwork", execution=EXECUTION)
    ledger.record_created(MEMBER, key=key, resource_id=resource_id, known=intent)


def _state(dynamodb: Any, key: str) -> ResourceState | None:
    record = Ledger(dynamodb, TABLE).resource(MEMBER, key)
    return None if record is None else record.state


def test_each_created_goes_with_the_next_intent_and_the_last_is_written_on_leaving(dynamodb: Any) -> None:
    counting = Counting(dynamodb)
    ledger = Ledger(counting, TABLE)  # type: ignore[arg-type]
    with ledger.writing_behind():
        _make(ledger, "subnet-a", "subnet-1")
        _make(ledger, "subnet-b", "subnet-2")
        _make(ledger, "subnet-c", "subnet-3")
        assert _state(dynamodb, "subnet-c") == ResourceState.INTENT  # held: the ledger says what a crash leaves
    assert counting.writes == [
        ("PutItem", ["RES#subnet-a=intent"]),
        ("BatchWriteItem", ["RES#subnet-a=created", "RES#subnet-b=intent"]),
        ("BatchWriteItem", ["RES#subnet-b=created", "RES#subnet-c=intent"]),
        ("PutItem", ["RES#subnet-c=created"]),
    ]
    records = {r.key: r for r in Ledger(dynamodb, TABLE).resources(MEMBER)}
    assert {k: (r.state, r.resource_id) for k, r in records.items()} == {
        "subnet-a": (ResourceState.CREATED, "subnet-1"),
        "subnet-b": (ResourceState.CREATED, "subnet-2"),
        "subnet-c": (ResourceState.CREATED, "subnet-3"),
    }


def test_outside_the_block_every_record_is_written_at_once(dynamodb: Any) -> None:
    counting = Counting(dynamodb)
    ledger = Ledger(counting, TABLE)  # type: ignore[arg-type]
    _make(ledger, "subnet-a", "subnet-1")
    _make(ledger, "subnet-b", "subnet-2")
    assert [op for op, _ in counting.writes] == ["PutItem"] * 4


def test_a_read_that_could_see_the_held_record_writes_it_first(dynamodb: Any) -> None:
    ledger = Ledger(Counting(dynamodb), TABLE)  # type: ignore[arg-type]
    with ledger.writing_behind():
        _make(ledger, "subnet-a", "subnet-1")
        assert ledger.status_and_resource(MEMBER, "subnet-b")[1] is None  # another key: still held
        assert _state(dynamodb, "subnet-a") == ResourceState.INTENT
        record = ledger.resource(MEMBER, "subnet-a")
        assert record is not None and record.state == ResourceState.CREATED and record.resource_id == "subnet-1"
        _make(ledger, "subnet-b", "subnet-2")
        assert [r.key for r in ledger.resources(MEMBER) if r.state == ResourceState.CREATED] == [
            "subnet-a",
            "subnet-b",
        ]


def test_the_held_record_is_written_when_the_step_fails(dynamodb: Any) -> None:
    ledger = Ledger(dynamodb, TABLE)
    with pytest.raises(Conflict), ledger.writing_behind():
        _make(ledger, "subnet-a", "subnet-1")
        raise Conflict("account is ROLLING_BACK: CreateNetwork stopped")
    assert _state(dynamodb, "subnet-a") == ResourceState.CREATED


def test_a_record_a_rollback_has_marked_deleted_meanwhile_is_not_made_live_again(dynamodb: Any) -> None:
    """Compound: CreateNetwork holds subnet-a's CREATED when the rollback, started by a failed sibling branch,
    finds subnet-a by its tags, deletes it and marks its record DELETED; CreateNetwork then stops (Conflict) and
    leaves the block: the record stays DELETED (a conditional write), nothing is resurrected."""
    ledger = Ledger(dynamodb, TABLE)
    rollback = Ledger(dynamodb, TABLE)
    with pytest.raises(Conflict), ledger.writing_behind():
        _make(ledger, "subnet-a", "subnet-1")
        rollback.set_status(MEMBER, Status.ROLLING_BACK, execution=EXECUTION)
        rollback.record_deleted(MEMBER, key="subnet-a")
        raise Conflict("account is ROLLING_BACK: CreateNetwork stopped")
    assert _state(dynamodb, "subnet-a") == ResourceState.DELETED


def test_unprocessed_items_are_written_again_after_a_back_off(dynamodb: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(ledger_store.time, "sleep", slept.append)
    throttled = Counting(dynamodb, unprocessed=2)
    ledger = Ledger(throttled, TABLE)  # type: ignore[arg-type]
    with ledger.writing_behind():
        _make(ledger, "subnet-a", "subnet-1")
        _make(ledger, "subnet-b", "subnet-2")
    assert [op for op, _ in throttled.writes].count("BatchWriteItem") == 3
    assert slept == sorted(slept) and slept[0] > 0 and slept[1] > slept[0]  # backing off, not a tight loop
    assert (_state(dynamodb, "subnet-a"), _state(dynamodb, "subnet-b")) == (ResourceState.CREATED,) * 2


def test_items_left_unprocessed_on_every_try_are_a_transient_error_and_nothing_more_is_made(
    dynamodb: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The next resource's INTENT was not written: the step stops before creating it (TransientError, which
    the workflow retries); subnet-a stays INTENT, found by its tags on the retry as after a crash (C6)."""
    monkeypatch.setattr(ledger_store.time, "sleep", lambda seconds: None)
    throttled = Counting(dynamodb, unprocessed=1000)
    ledger = Ledger(throttled, TABLE)  # type: ignore[arg-type]
    with (
        pytest.raises(TransientError, match="BatchWriteItem mlplane-ledger: items of 111111111111 left unprocessed"),
        ledger.writing_behind(),
    ):
        _make(ledger, "subnet-a", "subnet-1")
        _make(ledger, "subnet-b", "subnet-2")
    assert [op for op, _ in throttled.writes].count("BatchWriteItem") == ledger_store._BATCH_TRIES
    assert (_state(dynamodb, "subnet-a"), _state(dynamodb, "subnet-b")) == (ResourceState.INTENT, None)


def test_a_failed_write_of_the_held_record_does_not_hide_the_steps_own_error(dynamodb: Any) -> None:
    """Compound: the step fails (here: DynamoDB refuses everything, an outage) and the held record cannot be
    written either: the step's own error is what the workflow sees; the record stays INTENT (C6)."""

    class Refusing(Counting):
        refuse = False

        def put_item(self, **kwargs: Any) -> dict[str, Any]:
            if self.refuse:
                raise dynamodb.exceptions.InternalServerError(
                    {"Error": {"Code": "InternalServerError", "Message": "outage"}}, "PutItem"
                )
            return super().put_item(**kwargs)

    refusing = Refusing(dynamodb)
    ledger = Ledger(refusing, TABLE)  # type: ignore[arg-type]
    with pytest.raises(Conflict, match="the step's own"), ledger.writing_behind():
        _make(ledger, "subnet-a", "subnet-1")
        refusing.refuse = True
        raise Conflict("the step's own error")
    assert _state(dynamodb, "subnet-a") == ResourceState.INTENT
