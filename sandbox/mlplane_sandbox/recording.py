"""Who is calling: the record of every AWS call mlplane's own code makes (principal, service:Operation, ok).

A call also carries what an IAM policy evaluation of it needs (`authorizations`: resource ARNs, their tags and
aliases at call time, request condition keys; see `mlplane_sandbox.authorization`): a member-account call for
its session policy, a hub call for the stack's policies (the operators' OperatorPolicy).

A call is mlplane's when it is made while an actor is set on the thread: the sandbox sets one around each
in-process Lambda invocation (the function's name) and around the CLI's own calls. World-building and the
vendor simulator run with no actor (or inside `suppressed()`), so they are not in the record.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlplane_sandbox.authorization import Authorization

# Operation-name prefixes of AWS calls that change something (the rest describe, get or list).
MUTATING_PREFIXES = (
    "Create",
    "Delete",
    "Put",
    "Attach",
    "Detach",
    "Associate",
    "Disassociate",
    "Allocate",
    "Release",
    "Modify",
    "Request",
    "Schedule",
    "Update",
    "Tag",
    "Untag",
    "Replace",
    "Enable",
    "Disable",
    "Authorize",
    "Revoke",
    "BatchWrite",  # DynamoDB's BatchWriteItem (the ledger)
)


def is_mutating(call: str) -> bool:
    """`service:Operation` changes something."""
    return call.partition(":")[2].startswith(MUTATING_PREFIXES)


@dataclass(frozen=True)
class ApiCall:
    principal: str
    call: str
    ok: bool
    actor: str
    account_id: str
    error: str | None = None
    authorizations: tuple[Authorization, ...] = ()  # what IAM would evaluate
    session_policy: str | None = None  # the session policy of the credentials that made it (None: none)

    def as_json(self) -> dict[str, object]:
        return {"principal": self.principal, "call": self.call, "ok": self.ok}

    def full(self) -> dict[str, object]:
        return asdict(self)


_local = threading.local()
_lock = threading.Lock()
_calls: list[ApiCall] = []


def current_actor() -> str | None:
    stack: list[str | None] = getattr(_local, "stack", [])
    return stack[-1] if stack else None


@contextmanager
def actor(name: str | None) -> Iterator[None]:
    stack: list[str | None] = getattr(_local, "stack", None) or []
    _local.stack = stack
    stack.append(name)
    try:
        yield
    finally:
        stack.pop()


@contextmanager
def suppressed() -> Iterator[None]:
    """Calls inside are the sandbox's own (world, vendor), not mlplane's."""
    with actor(None):
        yield


def record(call: ApiCall) -> None:
    with _lock:
        _calls.append(call)


def calls() -> list[ApiCall]:
    with _lock:
        return list(_calls)


def mark() -> int:
    with _lock:
        return len(_calls)


def since(index: int) -> list[ApiCall]:
    with _lock:
        return list(_calls[index:])


def reset() -> None:
    with _lock:
        _calls.clear()
