"""What an undo handler is: how one resource type is found again and undone (see `mlplane.rollback.registry`).

- `find(member, record)`: the id of the resource mlplane made for `record.key` (by tag or client token), or
  None; used when a crash left only the intent in the ledger;
- `release(member, record, resource_id)`: for a resource made by hand and adopted (D3): never delete it, only take
  off what mlplane added to it (its tags); None: nothing to take off;
- `undo(member, record, resource_id)`: remove it (or restore what it changed). It must check mlplane's tags
  before deleting anything taggable, treat "already gone" as success, and raise `mlplane.errors.Blocked`
  naming the blocking resources when something mlplane does not own prevents the delete.

This module imports no domain, so every domain can import it without importing the others.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal, NamedTuple

if TYPE_CHECKING:
    from mlplane.ledger import ResourceRecord
    from mlplane.member import Member


# NamedTuples rather than frozen dataclasses: every domain imports this module, and on CPython 3.11 each frozen
# dataclass costs a cold start ~0.5 ms of generated methods (a NamedTuple a tenth of that).


class Undone(NamedTuple):
    """What undoing one resource achieved."""

    outcome: Literal["removed", "gone", "deferred"]
    reason: str = ""


FindFn = Callable[["Member", "ResourceRecord"], "str | None"]
UndoFn = Callable[["Member", "ResourceRecord", str], Undone]


class Handler(NamedTuple):
    find: FindFn
    undo: UndoFn
    purpose: str = "core"  # the member session (mlplane.member.PURPOSES) whose policy allows find and undo
    release: UndoFn | None = None
