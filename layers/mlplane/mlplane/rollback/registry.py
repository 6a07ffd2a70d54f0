"""The table of undo handlers: ledger resource type -> how it is found again and undone.

Each domain lists its own handlers in a `HANDLERS` constant next to the code that creates the resources
(`mlplane.rollback.handler` says what a handler must do); this table joins them. Nothing registers itself at
import, and no domain imports the rollback walker (`mlplane.rollback.run`), which imports this table.
"""

from __future__ import annotations

from types import MappingProxyType

from mlplane import modules
from mlplane.errors import RollbackIncomplete
from mlplane.iam import apply as iam
from mlplane.kms import apply as kms
from mlplane.network import undo as network
from mlplane.quotas import apply as quotas
from mlplane.rollback.handler import Handler

HANDLERS = MappingProxyType(
    {**network.HANDLERS, **iam.HANDLERS, **kms.HANDLERS, **quotas.HANDLERS, **modules.handlers()}
)

DOMAIN_TYPES = MappingProxyType(
    {
        "network": frozenset(network.HANDLERS),
        "iam": frozenset(iam.HANDLERS),
        "kms": frozenset(kms.HANDLERS),
        "quotas": frozenset(quotas.HANDLERS),
        "modules": frozenset(modules.handlers()),  # every module's, enabled or not: RemoveModules
    }
)
"""The resource types of each domain (what a deprovision step of that domain undoes)."""


def handler_for(type: str) -> Handler:
    try:
        return HANDLERS[type]
    except KeyError:
        raise RollbackIncomplete(f"no undo handler for resource type {type}") from None


def registered_types() -> list[str]:
    return sorted(HANDLERS)
