"""N5 under concurrency: an account that loses every candidate slot to accounts vended with it reads the
pool again instead of calling a pool with free space exhausted (found by a 50-account burst)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from mlplane.errors import ConfigError
from mlplane.ledger import Ledger
from mlplane.network import allocation

POOL = "10.128.0.0/12"  # 32 slots of /17


class RacingLedger:
    """The ledger as `allocate` sees it while `rivals` other accounts claim slots first."""

    def __init__(self, rivals: int) -> None:
        self.items_by_pk: dict[str, dict[str, dict[str, Any]]] = {}
        self.rivals = rivals

    def items(self, pk: str) -> dict[str, dict[str, Any]]:
        return dict(self.items_by_pk.get(pk, {}))

    def put_item(self, pk: str, sk: str, data: dict[str, Any], *, only_if_absent: bool = False) -> bool:
        table = self.items_by_pk.setdefault(pk, {})
        if only_if_absent and self.rivals > 0:  # another account wrote this slot a moment earlier
            self.rivals -= 1
            table[sk] = {**data, "account_id": f"rival-{self.rivals}"}
            return False
        if only_if_absent and sk in table:
            return False
        table[sk] = data
        return True


def allocate(ledger: RacingLedger) -> allocation.Allocation:
    return allocation.allocate(cast(Ledger, ledger), "111111111111", POOL, primary_prefix=21, secondary_prefix=18)


def test_n5_losing_every_candidate_reads_the_pool_again() -> None:
    ledger = RacingLedger(rivals=10)  # more than one round of candidates
    won = allocate(ledger)
    slots = ledger.items(allocation.pool_pk(POOL))
    assert allocation.lookup(cast(Ledger, ledger), "111111111111", POOL) == won
    assert sum(1 for doc in slots.values() if doc["account_id"].startswith("rival-")) == 10


def test_n5_a_full_pool_is_still_reported_exhausted() -> None:
    with pytest.raises(ConfigError, match="exhausted"):
        allocate(RacingLedger(rivals=32))
