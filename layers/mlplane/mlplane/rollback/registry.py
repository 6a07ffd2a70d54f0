"""The table of undo handlers: ledger resource type -> how it is found again and undone.

Each domain lists its own handlers in a `HANDLERS` constant next to the code that creates the resources
(`mlplane.rollback.handler` says what a handler must do); this table joins the core domains'. An optional
module's handlers are looked up by type (`mlplane.modules.undo_handler`), which imports that module's code only
when a walk meets one of its records: most accounts have none, and the steps that walk the ledger would otherwise
import every module. Nothing registers itself at import, and no domain imports the rollback walker
(`mlplane.rollback.run`), which imports this table.
"""

from __future__ import annotations

from types import MappingProxyType

from mlplane import modules
from mlplane.errors import RollbackIncomplete
from mlplane.iam import access_key
from mlplane.iam import apply as iam
from mlplane.kms import apply as kms
from mlplane.network import undo as network
from mlplane.quotas import apply as quotas
from mlplane.rollback.handler import Handler

HANDLERS = MappingProxyType(
    {**network.HANDLERS, **iam.HANDLERS, **access_key.HANDLERS, **kms.HANDLERS, **quotas.HANDLERS}
)
"""The core domains' handlers (the optional modules' are not in it)."""

DOMAIN_TYPES = MappingProxyType(
    {
        "network": frozenset(network.HANDLERS),
        "iam": frozenset(iam.HANDLERS) | frozenset(access_key.HANDLERS),
        "kms": frozenset(kms.HANDLERS),
        "quotas": frozenset(quotas.HANDLERS),
    }
)
"""The resource types of each core domain (what a deprovision step of that domain undoes)."""


def handler_for(type: str) -> Handler:
    handler = HANDLERS.get(type) or modules.undo_handler(type)
    if handler is None:
        raise RollbackIncomplete(f"no undo handler for resource type {type}")
    return handler


def in_domain(type: str, domain: str) -> bool:
    """Whether the deprovision step of `domain` undoes records of `type`; "modules": every module's types,
    enabled or not (RemoveModules)."""
    if domain == "modules":
        return modules.undo_handler(type) is not None
    return type in DOMAIN_TYPES[domain]
