"""The optional modules (issue 17): an explicit table, each enabled globally, per OU or by an account tag.

ValidateAccount resolves once which modules are enabled for the account (`enabled_for`: the account's
Organizations tag `mlplane:module:<name>`, then the module's `ous`, then its `enabled`), runs their pre-checks
and passes the list on (`ValidateAccountOutput.modules`); later steps only test membership. A module that is not
enabled makes no AWS call at all. Rollback and RemoveModules undo the modules' ledger records with the one
walker (`handlers`), whether or not the module is still enabled.

The table names each module's code rather than importing it: a module's code is imported (`load`) when a run
uses it, enabled for the account or met in the ledger by one of its types, so a module that no account uses is
no part of any function's cold start (issue 14). Its ledger types all begin with its `type_prefix`, which is
how a record alone says whose it is.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, NamedTuple

from mlplane.changes import PlannedChange
from mlplane.config import MODULE_TAG_PREFIX, Settings
from mlplane.errors import ConfigError, MlplaneError
from mlplane.observability import logger
from mlplane.steps import StepOutput

if TYPE_CHECKING:
    from mlplane.member import Member
    from mlplane.modules.base import Module
    from mlplane.rollback.handler import Handler


class ModuleListing(NamedTuple):
    """What the table knows of a module without importing its code (a NamedTuple: a frozen dataclass costs
    every cold start that imports the table ~0.4 ms more)."""

    type_prefix: str  # every ledger type the module records begins with it
    code: str  # the Python module whose `MODULE` is the module


MODULES: Mapping[str, ModuleListing] = MappingProxyType(
    {
        "canvas": ModuleListing(type_prefix="canvas:", code="mlplane.modules.canvas"),
        "service_catalog": ModuleListing(type_prefix="servicecatalog:", code="mlplane.modules.service_catalog"),
    }
)
"""Every optional module, by the name its settings (`Settings.modules`) and account tag use, in the order they
are checked, applied and planned."""


def load(name: str) -> Module:
    """The module's code (imported on its first use)."""
    module: Module = importlib.import_module(MODULES[name].code).MODULE
    return module


def enabled_for(settings: Settings, *, ou: str, tags: Mapping[str, str]) -> tuple[str, ...]:
    """The modules enabled for an account in `ou` with these Organizations tags, in the table's order."""
    enabled: list[str] = []
    for name in MODULES:
        enablement = settings.modules.enablement(name)
        tag = tags.get(MODULE_TAG_PREFIX + name)
        if tag is not None:
            on = tag.strip().lower()
            if on not in ("true", "false"):
                raise ConfigError(f"account tag {MODULE_TAG_PREFIX}{name}={tag!r}: the value must be true or false")
            if on == "true":
                enabled.append(name)
        elif ou in enablement.ous or enablement.enabled:
            enabled.append(name)
    return tuple(enabled)


def _selected(names: Iterable[str]) -> list[Module]:
    chosen = set(names)
    unknown = sorted(chosen - set(MODULES))
    if unknown:
        raise ConfigError(f"unknown module {unknown[0]!r}")
    return [load(name) for name in MODULES if name in chosen]


def check(member: Member, settings: Settings, names: Iterable[str]) -> None:
    """The enabled modules' pre-checks (read-only); InputRejected names the first problem."""
    for module in _selected(names):
        module.check(member, settings)


def plan(member: Member, settings: Settings, names: Iterable[str]) -> list[PlannedChange]:
    """Each enabled module's plan. A module whose state cannot be read (a refused or failed read) is one `change`
    row naming the error, so the audit names it and a reconcile still runs every step (it is not fatal)."""
    changes: list[PlannedChange] = []
    for module in _selected(names):
        try:
            changes += module.plan(member, settings)
        except MlplaneError as err:
            logger.warning("module plan failed", module_name=module.name, error=str(err))
            unread = {"domain": module.name, "type": f"{module.name}:state", "key": module.name, "action": "change"}
            changes.append(PlannedChange.model_validate({**unread, "detail": f"could not be read: {err}"}))
    return changes


def apply(member: Member, settings: Settings, names: Iterable[str]) -> StepOutput:
    """ApplyModules: converge each enabled module, in the table's order; a re-run creates nothing."""
    outputs: list[StepOutput] = []
    for module in _selected(names):
        output = module.apply(member, settings)
        logger.info("module applied", module_name=module.name, made=output.created, existing=output.existing)
        outputs.append(output.model_copy(update={"detail": {module.name: output.detail}}))
    return StepOutput.combine(*outputs)


def recorded(types: Iterable[str]) -> list[Module]:
    """The modules that have resources of these ledger types (enabled or not now); only theirs are imported."""
    present = set(types)
    owners = [name for name, listing in MODULES.items() if any(t.startswith(listing.type_prefix) for t in present)]
    return [module for module in map(load, owners) if present & set(module.handlers)]


def deprovision_check(member: Member, settings: Settings, types: Iterable[str]) -> None:
    """ValidateDeprovision: each recorded module may refuse (Conflict) before anything is removed."""
    for module in recorded(types):
        if module.deprovision_check is not None:
            module.deprovision_check(member, settings)


def prepare_removal(member: Member, settings: Settings, types: Iterable[str]) -> None:
    """RemoveModules, before the walk: what a recorded module does first (terminate what it launched)."""
    for module in recorded(types):
        if module.prepare_removal is not None:
            module.prepare_removal(member, settings)


def handlers(types: Iterable[str]) -> dict[str, Handler]:
    """The undo handlers of the modules that have records of these ledger types (`mlplane.rollback`)."""
    return {kind: handler for module in recorded(types) for kind, handler in module.handlers.items()}
