"""A burst (issue 8): several accounts vended at once through EventBridge, in one sandbox, stay apart."""

from __future__ import annotations

from mlplane.member import ACCOUNT_TAG
from mlplane_sandbox.burst import account_ids, run_burst
from mlplane_sandbox.runner import Options

TGW = {"egress_mode": "tgw", "poll_interval_seconds": 600}


def test_burst_of_three_in_tgw_mode_is_ready_with_disjoint_cidrs_and_no_cross_talk() -> None:
    burst = run_burst(3, Options(config=TGW))
    assert burst.outcomes() == {"READY": 3}, {a: r.error for a, r in burst.results.items()}
    assert burst.cidr_overlaps() == 0
    assert burst.cross_talk() == []
    assert burst.ok
    for account, result in burst.results.items():
        assert [e["state_machine"] for e in result.executions] == ["provision"]
        assert result.leftovers == []
        tagged = [
            item["tags"][ACCOUNT_TAG]
            for section in ("vpcs", "subnets", "route_tables", "iam_users", "iam_policies", "kms_keys")
            for item in result.inventory[section]
            if ACCOUNT_TAG in item.get("tags", {})
        ]
        assert tagged and set(tagged) == {account}
        assert len(result.inventory["subnets"]) == 12
        assert {c.principal.split(":")[4] for c in burst.member_calls(account)} == {account}
    report = burst.as_json()
    assert set(report) >= {"accounts", "outcomes", "cidr_overlaps", "wall_seconds", "peak_rss_mb"}
    assert report["accounts"] == 3 and report["cidr_overlaps"] == 0


def test_burst_account_ids_are_obviously_fake_and_deterministic() -> None:
    assert account_ids(3) == ["200000000000", "200000000001", "200000000002"]
    assert all(len(a) == 12 and a.isdigit() for a in account_ids(50))
