"""The table of undo handlers: ledger resource type -> how it is found again and undone.

Each domain lists its own handlers in a `HANDLERS` constant next to the code that creates the resources
(`mlplane.rollback.handler` says what a handler must do); this table joins the core domains' for the walks of
the whole ledger (`mlplane.rollback.whole`). A deprovision step that tears down one domain walks with that
domain's `HANDLERS` alone (`mlplane.rollback.run.teardown`) and does not import this table. An optional module's
handlers join it only for a ledger that has records of the module's types (`mlplane.modules.handlers`): most
accounts have none. Nothing registers itself at import, and no domain imports the rollback walker.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from mlplane import modules
from mlplane.iam import access_key
from mlplane.iam import apply as iam
from mlplane.kms import apply as kms
from mlplane.network import undo as network
from mlplane.quotas import apply as quotas
from mlplane.rollback.handler import Handler

HANDLERS: Mapping[str, Handler] = MappingProxyType(
    {**network.HANDLERS, **iam.HANDLERS, **access_key.HANDLERS, **kms.HANDLERS, **quotas.HANDLERS}
)
"""Every core domain's handlers (the optional modules' are not in it)."""


def handlers_for(types: Iterable[str]) -> Mapping[str, Handler]:
    """The handlers a walk of records of these types needs: the core domains' and those of the modules that
    have records among them (enabled or not now)."""
    return {**HANDLERS, **modules.handlers(types)}
