"""The only code that reads and writes the ledger table."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

from botocore.exceptions import ClientError

from mlplane import observability
from mlplane.errors import Conflict, TransientError, error_code, translate
from mlplane.ledger.models import ENDED, AccountEntry, AccountStatus, ResourceRecord, ResourceState, Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_STATUS_SK = "STATUS"
_RESOURCE_PREFIX = "RES#"
_NOTIFIED_PREFIX = "NOTIFIED#"
_OU_SK = "OU"  # the account's OU when ValidateAccount last claimed it (`mlplane accounts --ou`)
_BATCH_TRIES = 5  # tries of a BatchGetItem/BatchWriteItem whose keys DynamoDB left unprocessed (throttled), backing off
_seq_lock = threading.Lock()
_seq_counter = itertools.count()


class Unread(Enum):
    """`known=UNREAD`: the caller has not read the record (None means it read it and there is none)."""

    UNREAD = "unread"


UNREAD = Unread.UNREAD


def _notified_sk(execution: str, event: str) -> str:
    return f"{_NOTIFIED_PREFIX}{execution}#{event}"


def _next_seq() -> int:
    # Wall-clock ns keeps order across Lambda invocations; the counter breaks ties inside one process.
    with _seq_lock:
        return time.time_ns() * 1000 + next(_seq_counter) % 1000


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Ledger:
    """Account status and resource records in DynamoDB (table from template.yaml: pk, sk)."""

    def __init__(self, dynamodb: DynamoDBClient, table: str) -> None:
        self._db = dynamodb
        self._table = table
        self._behind: ResourceRecord | None = None  # a CREATED record not yet written (`writing_behind`)
        self._writing_behind = False

    @contextmanager
    def writing_behind(self) -> Iterator[None]:
        """Within: a CREATED record is written with the next resource's INTENT (one BatchWriteItem for both)
        instead of on its own, halving the writes of a step that makes many resources (CreateNetwork: 58).

        Until then the ledger holds the resource as INTENT, which is what a crash between create and ledger
        write always left (C6): a re-run or the rollback finds it by mlplane's tags. Every other write, and every
        read that could see it, writes the held record first; leaving the block writes it whatever ends it, on
        condition that the record is still this run's INTENT, so that a record a rollback has meanwhile marked
        deleted is never made live again.
        """
        self._writing_behind = True
        try:
            yield
        except BaseException:
            self._writing_behind = False
            try:
                self._flush(conditional=True)
            except Exception as err:  # the step's own error is the one to report
                observability.logger.warning("held ledger record not written: it stays INTENT", error=str(err))
            raise
        self._writing_behind = False
        self._flush(conditional=True)

    def _flush_if_held(self, pk: str, sk: str) -> None:
        """Write the held record first if a read of (pk, sk) would see it."""
        held = self._behind
        if held is not None and (held.account_id, _RESOURCE_PREFIX + held.key) == (pk, sk):
            self._flush()

    def _flush(self, *, conditional: bool = False) -> None:
        record, self._behind = self._behind, None
        if record is None:
            return
        if not conditional:
            self._put(record)
            return
        try:
            self._db.put_item(
                TableName=self._table,
                Item=_item_of(record),
                ConditionExpression="#state = :intent AND #execution = :execution",
                ExpressionAttributeNames={"#state": "state", "#execution": "execution"},
                ExpressionAttributeValues={
                    ":intent": {"S": ResourceState.INTENT.value},
                    ":execution": {"S": record.execution},
                },
            )
        except ClientError as err:
            if error_code(err) != "ConditionalCheckFailedException":
                raise translate(err, f"dynamodb:PutItem {self._table}") from err
            observability.logger.warning("ledger record changed by another run: not marked created", key=record.key)

    # -- account status -------------------------------------------------------------------------------
    def status(self, account_id: str) -> AccountStatus | None:
        item = self._get(account_id, _STATUS_SK)
        return None if item is None else _status_from(account_id, item)

    def set_status(
        self,
        account_id: str,
        status: Status,
        *,
        execution: str,
        error: str | None = None,
        only_from: frozenset[Status] | None = None,
    ) -> AccountStatus:
        """Write the account's status; with `only_from`, refuse (Conflict) unless the current one is in it."""
        self._flush()
        item: dict[str, Any] = {
            "pk": {"S": account_id},
            "sk": {"S": _STATUS_SK},
            "status": {"S": status.value},
            "execution": {"S": execution},
            "updated_at": {"S": _now()},
        }
        if error:
            item["error"] = {"S": error[:1000]}
        kwargs: dict[str, Any] = {}
        if only_from is not None:
            names = {f":s{i}": {"S": s.value} for i, s in enumerate(sorted(only_from))}
            kwargs = {
                "ConditionExpression": "attribute_not_exists(pk) OR #st IN (" + ", ".join(names) + ")",
                "ExpressionAttributeNames": {"#st": "status"},
                "ExpressionAttributeValues": names,
            }
        try:
            self._db.put_item(TableName=self._table, Item=item, **kwargs)
        except ClientError as err:
            if error_code(err) == "ConditionalCheckFailedException":
                current = self.status(account_id)
                raise Conflict(
                    f"account {account_id} is {current.status if current else 'unknown'}"
                    f" (execution {current.execution if current else '-'}), cannot become {status}"
                ) from err
            raise translate(err, f"dynamodb:PutItem {self._table}") from err
        observability.count_status(status.value)
        return AccountStatus(
            account_id=account_id, status=status, execution=execution, updated_at=item["updated_at"]["S"], error=error
        )

    def record_ou(self, account_id: str, ou: str, modules: tuple[str, ...] = ()) -> None:
        """The OU the account was in when a run claimed it (Organizations is the truth; this is for listing),
        and the optional modules ValidateAccount enabled for it (what `mlplane audit` and reconcile look at)."""
        self.put_item(account_id, _OU_SK, {"ou": ou, "modules": list(modules), "at": _now()})

    def modules(self, account_id: str) -> tuple[str, ...]:
        """The modules enabled for the account when a run last claimed it (`record_ou`)."""
        item = self.get_item(account_id, _OU_SK) or {}
        return tuple(str(name) for name in item.get("modules", []))

    def accounts(self) -> list[AccountEntry]:
        """Every account with a status item, with its OU and resource records (one Scan of the table)."""
        self._flush()
        statuses: dict[str, AccountStatus] = {}
        ous: dict[str, str] = {}
        records: dict[str, list[ResourceRecord]] = {}
        paginator = self._db.get_paginator("scan")
        try:
            for page in paginator.paginate(TableName=self._table, ConsistentRead=True):
                for item in page.get("Items", []):
                    pk, sk = item["pk"]["S"], item["sk"]["S"]
                    if sk == _STATUS_SK:
                        statuses[pk] = _status_from(pk, item)
                    elif sk == _OU_SK:
                        ous[pk] = str(json.loads(item["doc"]["S"])["ou"])
                    elif sk.startswith(_RESOURCE_PREFIX):
                        records.setdefault(pk, []).append(_record_from(item))
        except ClientError as err:
            raise translate(err, f"dynamodb:Scan {self._table}") from err
        return [
            AccountEntry(
                status=status,
                ou=ous.get(account_id),
                resources=sorted(records.get(account_id, []), key=lambda r: r.seq),
            )
            for account_id, status in sorted(statuses.items())
        ]

    # -- resources ------------------------------------------------------------------------------------
    def record_intent(
        self,
        account_id: str,
        *,
        key: str,
        type: str,
        step: str,
        execution: str,
        data: dict[str, Any] | None = None,
        known: ResourceRecord | Literal[Unread.UNREAD] | None = UNREAD,
    ) -> ResourceRecord:
        """Record that `key` is about to be created; a live record keeps its seq.

        `known`: the record the caller just read, or None if it found none (saves a read per new resource).
        """
        existing = self.resource(account_id, key) if known is UNREAD else known
        if existing is not None and existing.state not in ENDED:
            return existing
        record = ResourceRecord(
            account_id=account_id,
            key=key,
            type=type,
            step=step,
            execution=execution,
            state=ResourceState.INTENT,
            data=data or {},
            seq=_next_seq(),
        )
        held, self._behind = self._behind, None
        if held is None:
            self._put(record)
        else:
            self._put_both(held, record)
        return record

    def record_created(
        self,
        account_id: str,
        *,
        key: str,
        resource_id: str,
        data: dict[str, Any] | None = None,
        known: ResourceRecord | Literal[Unread.UNREAD] | None = UNREAD,
    ) -> ResourceRecord:
        record = self.resource(account_id, key) if known is UNREAD else known
        if record is None:
            raise Conflict(f"no intent recorded for {key} in {account_id}")
        updated = record.model_copy(
            update={"state": ResourceState.CREATED, "resource_id": resource_id, "data": {**record.data, **(data or {})}}
        )
        if self._writing_behind:
            self._flush()
            self._behind = updated
        else:
            self._put(updated)
        return updated

    def record_adopted(
        self,
        account_id: str,
        *,
        key: str,
        type: str,
        step: str,
        execution: str,
        resource_id: str,
        data: dict[str, Any] | None = None,
    ) -> ResourceRecord:
        """Record a resource made by hand that mlplane takes over (D3): tracked, never deleted; keeps a live seq."""
        existing = self.resource(account_id, key)
        seq = existing.seq if existing is not None and existing.state not in ENDED else _next_seq()
        record = ResourceRecord(
            account_id=account_id,
            key=key,
            type=type,
            step=step,
            execution=execution,
            state=ResourceState.ADOPTED,
            resource_id=resource_id,
            data=data or {},
            seq=seq,
        )
        self._put(record)
        return record

    def record_released(self, account_id: str, *, key: str) -> None:
        """An adopted resource is no longer mlplane's to track (its tags were taken off); it stays in AWS."""
        record = self.resource(account_id, key)
        if record is not None and record.state != ResourceState.RELEASED:
            self._put(record.model_copy(update={"state": ResourceState.RELEASED}))

    def record_deleted(self, account_id: str, *, key: str) -> None:
        record = self.resource(account_id, key)
        if record is not None and record.state != ResourceState.DELETED:
            self._put(record.model_copy(update={"state": ResourceState.DELETED}))

    def record_deferred(self, account_id: str, *, key: str, reason: str) -> None:
        """AWS cannot undo this at once: keep it listed, with why, instead of deleting the record."""
        record = self.resource(account_id, key)
        if record is not None:
            self._put(
                record.model_copy(update={"state": ResourceState.DEFERRED, "data": {**record.data, "deferred": reason}})
            )

    def deferred(self, account_id: str) -> list[ResourceRecord]:
        return [r for r in self.resources(account_id, live_only=False) if r.state == ResourceState.DEFERRED]

    def resource(self, account_id: str, key: str) -> ResourceRecord | None:
        item = self._get(account_id, _RESOURCE_PREFIX + key)
        return None if item is None else _record_from(item)

    def status_and_resource(self, account_id: str, key: str) -> tuple[AccountStatus | None, ResourceRecord | None]:
        """The account's status and the record of `key`, in one consistent read (BatchGetItem): a step that checks
        the status before each resource it makes reads both per resource."""
        self._flush_if_held(account_id, _RESOURCE_PREFIX + key)
        keys = [{"pk": {"S": account_id}, "sk": {"S": sk}} for sk in (_STATUS_SK, _RESOURCE_PREFIX + key)]
        items: dict[str, dict[str, Any]] = {}
        request = {self._table: {"Keys": keys, "ConsistentRead": True}}
        for answer in self._until_processed("BatchGetItem", request, account_id):
            items |= {item["sk"]["S"]: item for item in answer.get("Responses", {}).get(self._table, [])}
        status, record = items.get(_STATUS_SK), items.get(_RESOURCE_PREFIX + key)
        return (
            None if status is None else _status_from(account_id, status),
            None if record is None else _record_from(record),
        )

    def resources(self, account_id: str, *, live_only: bool = True) -> list[ResourceRecord]:
        """The account's records, oldest first (intent and created; with live_only=False deleted too)."""
        self._flush()
        records: list[ResourceRecord] = []
        paginator = self._db.get_paginator("query")
        try:
            for page in paginator.paginate(
                TableName=self._table,
                KeyConditionExpression="pk = :pk AND begins_with(sk, :res)",
                ExpressionAttributeValues={":pk": {"S": account_id}, ":res": {"S": _RESOURCE_PREFIX}},
                ConsistentRead=True,
            ):
                records.extend(_record_from(item) for item in page.get("Items", []))
        except ClientError as err:
            raise translate(err, f"dynamodb:Query {self._table}") from err
        if live_only:
            records = [r for r in records if r.state not in ENDED]
        return sorted(records, key=lambda r: r.seq)

    # -- notifications delivered (REQUIREMENTS C10) ----------------------------------------------------
    def notified(self, account_id: str, *, execution: str, event: str) -> bool:
        return self._get(account_id, _notified_sk(execution, event)) is not None

    def mark_notified(self, account_id: str, *, execution: str, event: str) -> None:
        self.put_item(account_id, _notified_sk(execution, event), {"at": _now()})

    # -- generic items (e.g. CIDR allocations) ----------------------------------------------------------
    def put_item(self, pk: str, sk: str, data: dict[str, Any], *, only_if_absent: bool = False) -> bool:
        """Store a JSON document under (pk, sk); with only_if_absent, return False if it exists."""
        self._flush()
        item = {"pk": {"S": pk}, "sk": {"S": sk}, "doc": {"S": json.dumps(data, sort_keys=True)}}
        kwargs: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"} if only_if_absent else {}
        try:
            self._db.put_item(TableName=self._table, Item=item, **kwargs)
        except ClientError as err:
            if error_code(err) == "ConditionalCheckFailedException":
                return False
            raise translate(err, f"dynamodb:PutItem {self._table}") from err
        return True

    def get_item(self, pk: str, sk: str) -> dict[str, Any] | None:
        item = self._get(pk, sk)
        return None if item is None else dict(json.loads(item["doc"]["S"]))

    def items(self, pk: str) -> dict[str, dict[str, Any]]:
        self._flush()
        out: dict[str, dict[str, Any]] = {}
        paginator = self._db.get_paginator("query")
        try:
            for page in paginator.paginate(
                TableName=self._table,
                KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": {"S": pk}},
                ConsistentRead=True,
            ):
                for item in page.get("Items", []):
                    if "doc" in item:
                        out[item["sk"]["S"]] = json.loads(item["doc"]["S"])
        except ClientError as err:
            raise translate(err, f"dynamodb:Query {self._table}") from err
        return out

    def delete_item(self, pk: str, sk: str) -> None:
        self._flush()
        try:
            self._db.delete_item(TableName=self._table, Key={"pk": {"S": pk}, "sk": {"S": sk}})
        except ClientError as err:
            raise translate(err, f"dynamodb:DeleteItem {self._table}") from err

    # -- internals ------------------------------------------------------------------------------------
    def _get(self, pk: str, sk: str) -> dict[str, Any] | None:
        self._flush_if_held(pk, sk)
        try:
            answer = self._db.get_item(
                TableName=self._table, Key={"pk": {"S": pk}, "sk": {"S": sk}}, ConsistentRead=True
            )
        except ClientError as err:
            raise translate(err, f"dynamodb:GetItem {self._table}") from err
        return answer.get("Item")

    def _put(self, record: ResourceRecord) -> None:
        self._flush()
        try:
            self._db.put_item(TableName=self._table, Item=_item_of(record))
        except ClientError as err:
            raise translate(err, f"dynamodb:PutItem {self._table}") from err

    def _put_both(self, created: ResourceRecord, intent: ResourceRecord) -> None:
        """One resource's CREATED and the next one's INTENT in one BatchWriteItem; what DynamoDB leaves unprocessed
        (throttling: botocore does not retry it) is written again with back-off, in the same order."""
        request = {self._table: [{"PutRequest": {"Item": _item_of(r)}} for r in (created, intent)]}
        for _ in self._until_processed("BatchWriteItem", request, intent.account_id):
            pass

    def _until_processed(self, operation: str, request: dict[str, Any], account_id: str) -> Iterator[dict[str, Any]]:
        """Each answer of a BatchGetItem or BatchWriteItem, sent again with what DynamoDB left unprocessed
        (throttling: botocore does not retry it) after a back-off, until nothing is left; TransientError after
        _BATCH_TRIES tries. A read's answers each hold some of the items; a write's, nothing to keep."""
        calls: dict[str, tuple[Callable[..., Any], str, str]] = {
            "BatchGetItem": (self._db.batch_get_item, "UnprocessedKeys", "keys"),
            "BatchWriteItem": (self._db.batch_write_item, "UnprocessedItems", "items"),
        }
        send, left, what = calls[operation]
        pending: Any = request
        for attempt in range(_BATCH_TRIES):
            try:
                answer: dict[str, Any] = dict(send(RequestItems=pending))
            except ClientError as err:
                raise translate(err, f"dynamodb:{operation} {self._table}") from err
            yield answer
            pending = answer.get(left) or {}
            if not pending:
                return
            time.sleep(0.05 * 2**attempt)  # DynamoDB asks for back-off before what it left is sent again
        raise TransientError(f"dynamodb:{operation} {self._table}: {what} of {account_id} left unprocessed")


def _item_of(record: ResourceRecord) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": record.account_id},
        "sk": {"S": _RESOURCE_PREFIX + record.key},
        "type": {"S": record.type},
        "step": {"S": record.step},
        "execution": {"S": record.execution},
        "state": {"S": record.state.value},
        "data": {"S": json.dumps(record.data, sort_keys=True)},
        "seq": {"N": str(record.seq)},
    }
    if record.resource_id:
        item["resource_id"] = {"S": record.resource_id}
    return item


def _status_from(account_id: str, item: dict[str, Any]) -> AccountStatus:
    return AccountStatus(
        account_id=account_id,
        status=Status(item["status"]["S"]),
        execution=item["execution"]["S"],
        updated_at=item["updated_at"]["S"],
        error=item.get("error", {}).get("S"),
    )


def _record_from(item: dict[str, Any]) -> ResourceRecord:
    return ResourceRecord(
        account_id=item["pk"]["S"],
        key=item["sk"]["S"][len(_RESOURCE_PREFIX) :],
        type=item["type"]["S"],
        step=item["step"]["S"],
        execution=item["execution"]["S"],
        state=ResourceState(item["state"]["S"]),
        resource_id=item.get("resource_id", {}).get("S"),
        data=json.loads(item["data"]["S"]),
        seq=int(item["seq"]["N"]),
    )
