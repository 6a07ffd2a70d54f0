"""Per-account VPC CIDRs from a pool (REQUIREMENTS N5, egress mode tgw): no two accounts overlap.

Accounts on one transit gateway route to each other, so their VPC blocks must be disjoint. The pool is cut
into equal *slots*, each twice the size of the larger block: the secondary block (by default the /18) sits at
the start of the slot, the primary block (the /21) at its middle. A slot is claimed with a conditional write
in the hub ledger (pk `CIDR_POOL#<pool>`, sk `SLOT#<n>`), so two accounts provisioned at once never get the
same slot. An account-side pointer (pk `<account>`, sk `CIDR_ALLOCATION`), written before the claim, lets
`release` find the pool again on deprovision or rollback.
"""

import ipaddress
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlplane.errors import ConfigError
from mlplane.ledger import Ledger

POINTER_SK = "CIDR_ALLOCATION"
_SLOT_PREFIX = "SLOT#"


class Allocation(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    account_id: str
    pool: str
    slot: int
    primary: str
    secondary: str

    @property
    def cidrs(self) -> tuple[str, str]:
        return self.primary, self.secondary


def pool_pk(pool: str) -> str:
    return f"CIDR_POOL#{pool}"


def slot_for(pool: str, slot: int, *, primary_prefix: int, secondary_prefix: int) -> tuple[str, str]:
    """(primary, secondary) CIDRs of slot `slot` of the pool (pure)."""
    network = _pool(pool)
    slot_prefix = min(primary_prefix, secondary_prefix) - 1
    if slot_prefix < network.prefixlen:
        raise ConfigError(
            f"CIDR pool {pool} is too small for a /{primary_prefix} + /{secondary_prefix} pair per account"
        )
    count = 2 ** (slot_prefix - network.prefixlen)
    if not 0 <= slot < count:
        raise ConfigError(f"CIDR pool {pool} has no slot {slot} ({count} slots)")
    start = int(network.network_address) + slot * 2 ** (32 - slot_prefix)
    middle = start + 2 ** (32 - slot_prefix - 1)
    secondary = ipaddress.IPv4Network((start, secondary_prefix))
    primary = ipaddress.IPv4Network((middle, primary_prefix))
    return str(primary), str(secondary)


def slot_count(pool: str, *, primary_prefix: int, secondary_prefix: int) -> int:
    network = _pool(pool)
    slot_prefix = min(primary_prefix, secondary_prefix) - 1
    return 0 if slot_prefix < network.prefixlen else 2 ** (slot_prefix - network.prefixlen)


def lookup(ledger: Ledger, account_id: str, pool: str) -> Allocation | None:
    """The account's current allocation in `pool`, if any (read-only)."""
    for doc in ledger.items(pool_pk(pool)).values():
        if doc.get("account_id") == account_id:
            return Allocation.model_validate(doc)
    return None


def preview(ledger: Ledger, account_id: str, pool: str, *, primary_prefix: int, secondary_prefix: int) -> Allocation:
    """The account's allocation, or the one `allocate` would claim now (read-only, for `mlplane plan`)."""
    existing = lookup(ledger, account_id, pool)
    if existing is not None:
        return existing
    taken = ledger.items(pool_pk(pool))
    return _free_slots(account_id, pool, taken, primary_prefix=primary_prefix, secondary_prefix=secondary_prefix)[0]


def allocate(ledger: Ledger, account_id: str, pool: str, *, primary_prefix: int, secondary_prefix: int) -> Allocation:
    """Claim (once) a slot of the pool for the account and return it; a re-run returns the same slot."""
    existing = lookup(ledger, account_id, pool)
    if existing is not None:
        return existing
    ledger.put_item(account_id, POINTER_SK, {"pool": pool})
    # Accounts vended together race for the same free slots: after losing every candidate, read the pool
    # again; each round someone won a slot, so the pool's size bounds the rounds.
    for _ in range(slot_count(pool, primary_prefix=primary_prefix, secondary_prefix=secondary_prefix)):
        taken = ledger.items(pool_pk(pool))
        candidates = _free_slots(  # raises ConfigError once the pool is full
            account_id, pool, taken, primary_prefix=primary_prefix, secondary_prefix=secondary_prefix
        )
        for candidate in candidates:
            doc: dict[str, Any] = candidate.model_dump(mode="json")
            if ledger.put_item(pool_pk(pool), _sk(candidate.slot), doc, only_if_absent=True):
                return candidate
    raise ConfigError(f"CIDR pool {pool} is exhausted")


def pointer_pool(ledger: Ledger, account_id: str) -> str | None:
    """The pool the account's allocation pointer names (written before a claim, deleted on release)."""
    pointer = ledger.get_item(account_id, POINTER_SK)
    return str(pointer["pool"]) if pointer else None


def release(ledger: Ledger, account_id: str, *, pool: str | None = None) -> int:
    """Free every slot the account holds (in `pool`, or the pool its pointer names); returns how many."""
    pointer = ledger.get_item(account_id, POINTER_SK)
    name = pool or (str(pointer["pool"]) if pointer else None)
    freed = 0
    if name is not None:
        for sk, doc in ledger.items(pool_pk(name)).items():
            if doc.get("account_id") == account_id:
                ledger.delete_item(pool_pk(name), sk)
                freed += 1
    if pointer is not None:
        ledger.delete_item(account_id, POINTER_SK)
    return freed


def _free_slots(
    account_id: str, pool: str, taken: dict[str, dict[str, Any]], *, primary_prefix: int, secondary_prefix: int
) -> list[Allocation]:
    used = [
        ipaddress.IPv4Network(cidr)
        for doc in taken.values()
        for cidr in (doc.get("primary"), doc.get("secondary"))
        if isinstance(cidr, str)
    ]
    free: list[Allocation] = []
    total = slot_count(pool, primary_prefix=primary_prefix, secondary_prefix=secondary_prefix)
    if total == 0:
        slot_for(pool, 0, primary_prefix=primary_prefix, secondary_prefix=secondary_prefix)  # raises the message
    for slot in range(total):
        if _sk(slot) in taken:
            continue
        primary, secondary = slot_for(pool, slot, primary_prefix=primary_prefix, secondary_prefix=secondary_prefix)
        mine = (ipaddress.IPv4Network(primary), ipaddress.IPv4Network(secondary))
        if any(block.overlaps(other) for block in mine for other in used):
            continue
        free.append(Allocation(account_id=account_id, pool=pool, slot=slot, primary=primary, secondary=secondary))
        if len(free) >= 8:  # a few candidates are plenty: a lost race moves on to the next one
            break
    if not free:
        raise ConfigError(f"CIDR pool {pool} is exhausted")
    return free


def _pool(pool: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(pool, strict=True)
    except ValueError:
        raise ConfigError(f"CIDR pool {pool!r} is not a valid IPv4 CIDR block") from None


def _sk(slot: int) -> str:
    return f"{_SLOT_PREFIX}{slot:05d}"
