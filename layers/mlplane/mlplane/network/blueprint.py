"""Which network blueprint an account is built with (REQUIREMENTS N6, seed 002's OUs with and without
corporate connectivity).

The blueprint is chosen once, by ValidateAccount when a run claims the account: the account's tag
`mlplane:network-blueprint` in Organizations if it has one, else the blueprint naming its OU, else the global
network settings (`default`). The name is recorded in the hub ledger (pk `<account>`, sk `NETWORK_BLUEPRINT`)
and carried in the workflow's state to CreateNetwork; every later use (plan, audit, reconcile, a re-run on what
a failed rollback left) reads that record instead of resolving again, so an account moved to another OU is
still judged, reconciled and torn down with the blueprint it was built with. (Teardown itself needs no
settings: the ledger's records carry the pool and the transit gateway they were made with.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mlplane.config import BLUEPRINT_TAG, DEFAULT_BLUEPRINT, Settings
from mlplane.errors import InputRejected
from mlplane.ledger import Ledger, ResourceState
from mlplane.network import NETWORK_TYPES

RECORD_SK = "NETWORK_BLUEPRINT"


def resolve(account_id: str, ou: str, settings: Settings, tags: Mapping[str, str]) -> str:
    """The blueprint a new build of the account gets: its tag, else its OU's, else the default.

    Without configured blueprints there is nothing to choose and Organizations is not asked. A tag naming a
    blueprint that is not configured is rejected (nothing has been changed yet).
    """
    if not settings.network_blueprints:
        return DEFAULT_BLUEPRINT
    tagged = tags.get(BLUEPRINT_TAG)  # the account's Organizations tags (ValidateAccount reads them once)
    if tagged is not None:
        if tagged not in settings.blueprint_names():
            raise InputRejected(
                f"account {account_id} is tagged {BLUEPRINT_TAG}={tagged!r}, which is not a configured network "
                f"blueprint ({', '.join(settings.blueprint_names())})"
            )
        return tagged
    return settings.blueprint_of_ou(ou)


def recorded(ledger: Ledger, account_id: str) -> str | None:
    """The blueprint the account was (last) claimed with, as ValidateAccount recorded it."""
    item = ledger.get_item(account_id, RECORD_SK)
    return None if item is None else str(item["name"])


def record(ledger: Ledger, account_id: str, name: str, *, ou: str) -> None:
    ledger.put_item(account_id, RECORD_SK, {"name": name, "ou": ou})


def built_with(ledger: Ledger, account_id: str) -> str:
    """The blueprint of what the account has: the recorded one (an account from before blueprints: default)."""
    return recorded(ledger, account_id) or DEFAULT_BLUEPRINT


def has_network(ledger: Ledger, account_id: str) -> bool:
    """Whether the ledger still lists network resources of the account (live or deferred, not deleted)."""
    return any(
        r.type in NETWORK_TYPES and r.state != ResourceState.DELETED
        for r in ledger.resources(account_id, live_only=False)
    )


def settings_for(settings: Settings, ledger: Ledger, account_id: str) -> Settings:
    """The settings with the network of the blueprint the account was built with (plan, audit, reconcile)."""
    name = built_with(ledger, account_id)
    if name not in settings.blueprint_names():
        raise InputRejected(
            f"account {account_id} was built with network blueprint {name!r}, which is no longer configured "
            f"(network_blueprints: {', '.join(settings.blueprint_names())})"
        )
    return settings.network_for(name)


def describe(settings: Settings, name: str) -> dict[str, Any]:
    """What `mlplane plan` shows of a blueprint."""
    network = settings.network_for(name)
    shown: dict[str, Any] = {"name": name, "egress_mode": network.egress_mode}
    if network.egress_mode == "tgw":
        shown |= {"cidr_pool": network.cidr_pool, "transit_gateway_id": network.transit_gateway_id}
    else:
        shown |= {"vpc_cidr": network.vpc_cidr, "secondary_cidr": network.secondary_cidr}
    return shown
