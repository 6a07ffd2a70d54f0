"""What an optional module is (`mlplane.modules.MODULES` lists them, `load` imports one): four functions and
its undo handlers.

- `check(member, settings)`: read-only pre-checks, run by ValidateAccount before anything is changed; raises
  InputRejected naming what is wrong (the run is REJECTED with nothing changed);
- `plan(member, settings)`: read-only, what `apply` would do to each resource now (`mlplane plan`'s rows; the
  audit's measure of drift, as for the core domains);
- `apply(member, settings)`: converge (ApplyModules, ReconcileAccount): idempotent, every create in the ledger
  first (`Member.ensure`);
- `handlers`: the undo handlers of its ledger types, walked by the one walker (`mlplane.rollback`) on rollback
  and by RemoveModules on deprovision;
- `deprovision_check(member, settings)` (optional): ValidateDeprovision, read-only, for a module with records in
  the ledger; raises Conflict to refuse the deprovision with the account left as it is;
- `prepare_removal(member, settings)` (optional): RemoveModules, before the walk, for a module with records.

A module imports neither the rollback walker nor the table; nothing registers itself at import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlplane.changes import PlannedChange
    from mlplane.config import Settings
    from mlplane.member import Member
    from mlplane.rollback.handler import Handler
    from mlplane.steps import StepOutput


@dataclass(frozen=True)
class Module:
    name: str
    check: Callable[[Member, Settings], None]
    plan: Callable[[Member, Settings], list[PlannedChange]]
    apply: Callable[[Member, Settings], StepOutput]
    handlers: Mapping[str, Handler]
    deprovision_check: Callable[[Member, Settings], None] | None = None
    prepare_removal: Callable[[Member, Settings], None] | None = None
