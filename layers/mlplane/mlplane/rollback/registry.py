"""How each resource type is found again and undone; domains register theirs, rollback walks the ledger.

A domain's apply module registers, per resource type it creates:
- `find(member, record)`: the id of the resource mlplane made for `record.key` (by tag or client token),
  or None; used when a crash left only the intent in the ledger;
- `undo(member, record, resource_id)`: remove it (or restore what it changed). It must check mlplane's
  tags before deleting anything taggable, treat "already gone" as success, and raise `Blocked` naming
  the blocking resources when something mlplane does not own prevents the delete.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from mlplane.errors import RollbackIncomplete

if TYPE_CHECKING:
    from mlplane.ledger import ResourceRecord
    from mlplane.member import Member


class Blocked(RollbackIncomplete):
    """Something mlplane does not own (e.g. a vendor ENI) keeps a resource from being removed."""


@dataclass(frozen=True)
class Undone:
    """What undoing one resource achieved."""

    outcome: Literal["removed", "gone", "deferred"]
    reason: str = ""


FindFn = Callable[["Member", "ResourceRecord"], "str | None"]
UndoFn = Callable[["Member", "ResourceRecord", str], Undone]


@dataclass(frozen=True)
class Handler:
    find: FindFn
    undo: UndoFn


_HANDLERS: dict[str, Handler] = {}


def register(type: str, *, find: FindFn, undo: UndoFn) -> None:
    _HANDLERS[type] = Handler(find=find, undo=undo)


def handler_for(type: str) -> Handler:
    try:
        return _HANDLERS[type]
    except KeyError:
        raise RollbackIncomplete(f"no undo registered for resource type {type}") from None


def registered_types() -> list[str]:
    return sorted(_HANDLERS)
