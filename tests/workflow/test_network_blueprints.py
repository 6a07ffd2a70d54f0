"""Network blueprints per OU (issue 17, N6; seed 002: OUs with and without corporate connectivity).

Every test runs the real ASL through the sandbox. The fleet: Workloads on the corporate transit gateway
(pool A), Deployments on a second gateway (pool B), Sandbox with its own NAT gateways (seed 002's dev
accounts with direct internet access).
"""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from mlplane.config import BLUEPRINT_TAG, settings_from
from mlplane.errors import ConfigError
from mlplane.network import allocation, blueprint
from mlplane_sandbox.burst import run_burst
from mlplane_sandbox.runner import Options, Sandbox, UsageError
from tests.conftest import load_event

POOL_A = "10.128.0.0/12"
POOL_B = "10.160.0.0/12"
BLUEPRINTS = {
    "corp": {"ous": ["Workloads"], "egress_mode": "tgw", "cidr_pool": POOL_A},
    "deploy": {"ous": ["Deployments"], "egress_mode": "tgw", "cidr_pool": POOL_B},
    "dev": {"ous": ["Sandbox"], "egress_mode": "nat"},
}
FLEET = {
    "allowed_ous": "Workloads,Deployments,Sandbox",
    "network_blueprints": BLUEPRINTS,
    "poll_interval_seconds": 600,
    "vendor_timeout_seconds": 7200,
}
MEMBER = "111111111111"  # the sample event's account, in Workloads


def _inside(cidrs: list[str], pool: str) -> bool:
    return all(ipaddress.ip_network(c).subnet_of(ipaddress.ip_network(pool)) for c in cidrs)  # type: ignore[arg-type]


def _attached_to(result: Any) -> set[str]:
    return {a["transit_gateway_id"] for a in result.inventory.get("transit_gateway_attachments", [])}


def _vpc_cidrs(result: Any) -> list[str]:
    return [c for vpc in result.inventory["vpcs"] for c in vpc["cidrs"]]


def test_a_mixed_fleet_over_three_ous_is_ready_with_no_overlap_among_connected_accounts() -> None:
    """Six accounts here (the 20-account fleet is `make bench`'s "Mixed fleet" and `mlplane local burst 20
    --ous …`: the same code, measured there rather than timed here)."""
    burst = run_burst(6, Options(config=FLEET), ous=["Workloads", "Deployments", "Sandbox"])
    assert burst.outcomes() == {"READY": 6}, {a: r.error for a, r in burst.results.items()}
    assert burst.blueprint_counts() == {"corp": 2, "deploy": 2, "dev": 2}
    assert burst.cidr_overlaps() == 0 and burst.cross_talk() == [] and burst.ok
    assert burst.connected_accounts() == 4
    gateways: dict[str, set[str]] = {"corp": set(), "deploy": set()}
    for account, result in burst.results.items():
        name = burst.blueprints[account]
        if name == "dev":  # nat: NAT gateways of its own, attached to nothing
            assert _attached_to(result) == set()
            assert len(result.inventory["nat_gateways"]) == 3
            assert _vpc_cidrs(result) == ["10.10.0.0/21", "10.64.0.0/18"]
        else:
            assert result.inventory["nat_gateways"] == []
            assert _inside(_vpc_cidrs(result), POOL_A if name == "corp" else POOL_B)
            gateways[name] |= _attached_to(result)
    # each tgw blueprint has its own gateway (the sandbox's network account shares two)
    assert len(gateways["corp"]) == 1 and len(gateways["deploy"]) == 1 and gateways["corp"] != gateways["deploy"]
    report = burst.as_json()
    assert report["egress_mode"] == "mixed" and report["connected_accounts"] == 4 and report["cidr_overlaps"] == 0


def test_the_account_tag_wins_over_the_ou_and_the_plan_shows_the_blueprint() -> None:
    with Sandbox(Options(config=FLEET)) as sandbox:
        sandbox.world.place_account(MEMBER, "Workloads", role_name=sandbox.settings.member_role_name)
        sandbox.world.tag_account(MEMBER, {BLUEPRINT_TAG: "dev"})  # Workloads says corp (tgw)
        plan = sandbox.plan(MEMBER)
        assert plan["verdict"] == "PROVISION"
        assert plan["network_blueprint"]["name"] == "dev" and plan["network"]["egress_mode"] == "nat"
        result = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
        assert result.outcome == "READY", result.error
        assert _attached_to(result) == set() and len(result.inventory["nat_gateways"]) == 3
        ledger = sandbox.ledger()
        assert blueprint.recorded(ledger, MEMBER) == "dev"
        assert allocation.lookup(ledger, MEMBER, POOL_A) is None  # nothing claimed from corp's pool
        assert sandbox.audit(MEMBER)["clean"]


def test_a_tag_naming_an_unknown_blueprint_is_rejected_before_any_change() -> None:
    with Sandbox(Options(config=FLEET)) as sandbox:
        sandbox.world.place_account(MEMBER, "Workloads", role_name=sandbox.settings.member_role_name)
        sandbox.world.tag_account(MEMBER, {BLUEPRINT_TAG: "corporate"})
        result = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
        assert result.outcome == "REJECTED"
        assert result.error is not None and "\n" not in result.error["message"]
        assert (
            f"tagged {BLUEPRINT_TAG}='corporate', which is not a configured network blueprint"
            in (result.error["message"])
        )
        assert not [c for c in result.api_calls if c["principal"].startswith(f"arn:aws:sts::{MEMBER}:")]
        assert result.inventory["vpcs"] == [] and result.leftovers == []


def test_deprovision_of_a_tgw_blueprint_account_frees_its_slot_in_its_own_pool() -> None:
    other = "222222222222"
    with Sandbox(Options(config=FLEET)) as sandbox:
        assert sandbox.run(load_event("controltower", "create_managed_account_succeeded")).outcome == "READY"
        sandbox.world.place_account(other, "Deployments", role_name=sandbox.settings.member_role_name)
        assert sandbox.run({"account_id": other, "requested_by": "test"}).outcome == "READY"
        ledger = sandbox.ledger()
        mine, theirs = allocation.lookup(ledger, MEMBER, POOL_A), allocation.lookup(ledger, other, POOL_B)
        assert mine is not None and theirs is not None
        assert allocation.lookup(ledger, MEMBER, POOL_B) is None and allocation.lookup(ledger, other, POOL_A) is None
        gone = sandbox.deprovision(MEMBER)
        assert gone.outcome == "DEPROVISIONED" and gone.leftovers == []
        assert ledger.items(allocation.pool_pk(POOL_A)) == {}  # its slot is free again
        assert allocation.lookup(ledger, other, POOL_B) == theirs  # the other pool untouched


def test_an_account_moved_to_an_ou_of_another_blueprint_keeps_and_is_torn_down_with_its_own() -> None:
    with Sandbox(Options(config=FLEET)) as sandbox:
        built = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
        assert built.outcome == "READY"
        corp_gateway = _attached_to(built)
        assert len(corp_gateway) == 1 and _inside(_vpc_cidrs(built), POOL_A)
        sandbox.world.place_account(MEMBER, "Deployments", role_name=sandbox.settings.member_role_name)  # moved
        ledger = sandbox.ledger()
        plan = sandbox.plan(MEMBER)
        assert plan["verdict"] == "NOTHING_TO_DO" and plan["network_blueprint"]["name"] == "corp"
        assert sandbox.audit(MEMBER)["clean"]  # judged against corp, as built, not against deploy
        reconciled = sandbox.run({"account_id": MEMBER, "requested_by": "test", "action": "reconcile"})
        assert reconciled.outcome == "READY"
        assert _attached_to(reconciled) == corp_gateway and _inside(_vpc_cidrs(reconciled), POOL_A)
        assert ledger.items(allocation.pool_pk(POOL_B)) == {}  # nothing ever claimed from deploy's pool
        gone = sandbox.deprovision(MEMBER)
        assert gone.outcome == "DEPROVISIONED" and gone.leftovers == []
        assert gone.inventory["vpcs"] == []
        assert ledger.items(allocation.pool_pk(POOL_A)) == {}
        # provisioned again, it is a new build: its OU's blueprint now
        again = sandbox.run({"account_id": MEMBER, "requested_by": "test"})
        assert again.outcome == "READY" and _inside(_vpc_cidrs(again), POOL_B)
        assert blueprint.recorded(ledger, MEMBER) == "deploy"


@pytest.mark.parametrize(
    ("blueprints", "message"),
    [
        ({"corp": {"ous": ["Nowhere"]}}, "blueprint 'corp' names OU 'Nowhere', which is not in allowed_ous"),
        (
            {"a": {"ous": ["Workloads"]}, "b": {"ous": ["Sandbox", "Workloads"]}},
            "OU 'Workloads' is mapped to blueprints 'a' and 'b'",
        ),
        ({"a": {"cidr_pool": "10.128.0.1/12"}}, "network_blueprints.a.cidr_pool: Value error, '10.128.0.1/12' is not"),
        ({"a": {"egress_mode": "bridge"}}, "network_blueprints.a.egress_mode"),
        ({"default": {}}, "blueprint name 'default' must be"),
        (
            {
                "a": {"egress_mode": "tgw", "cidr_pool": "10.128.0.0/10"},
                "b": {"egress_mode": "tgw", "cidr_pool": "10.130.0.0/16"},
            },
            "blueprints 'a' and 'b' share transit gateway (unset) with overlapping pools",
        ),
        ('{"a": {}, "a": {"egress_mode": "tgw"}}', "'a' is given twice"),
    ],
)
def test_bad_blueprint_configs_are_one_line_errors(blueprints: Any, message: str) -> None:
    values = {"allowed_ous": "Workloads,Sandbox", "network_blueprints": blueprints}
    with pytest.raises(ConfigError) as caught:
        settings_from(values)
    assert message in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(UsageError, match=r"^--config: invalid setting network_blueprints"):
        Sandbox(Options(config=values))


def test_blueprints_on_different_gateways_may_reuse_a_pool_and_the_global_settings_stay_the_default() -> None:
    settings = settings_from(
        {
            "allowed_ous": "Workloads,Sandbox",
            "network_blueprints": {
                "a": {"ous": ["Workloads"], "egress_mode": "tgw", "transit_gateway_id": "tgw-0123456789abcdef0"},
                "b": {"ous": ["Sandbox"], "egress_mode": "tgw", "transit_gateway_id": "tgw-0123456789abcdef1"},
            },
        }
    )
    assert settings.network_for("a").cidr_pool == settings.network_for("b").cidr_pool == "10.128.0.0/10"
    assert settings.blueprint_of_ou("Deployments") == "default"
    assert settings.network_for("default") is settings and settings.egress_mode == "nat"
    with pytest.raises(ConfigError, match="network blueprint 'c' is not configured"):
        settings.network_for("c")


def test_a_re_run_on_what_a_failed_rollback_left_keeps_the_blueprint_it_was_built_with() -> None:
    """The rollback could not delete the VPC (corp's, pool A); the account then moves to Deployments (deploy,
    pool B). The next run builds on what is left, with corp: no second VPC, no slot in pool B."""
    fails = ["iam:CreateUser=AccessDenied@1", "ec2:DeleteVpc=UnauthorizedOperation"]
    with Sandbox(Options(config=FLEET, fails=fails)) as sandbox:
        failed = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
        assert failed.outcome == "ROLLBACK_INCOMPLETE"
        (left,) = failed.inventory["vpcs"]
        sandbox.world.place_account(MEMBER, "Deployments", role_name=sandbox.settings.member_role_name)
        again = sandbox.run({"account_id": MEMBER, "requested_by": "test"})
        assert again.outcome == "READY", again.error
        assert [v["id"] for v in again.inventory["vpcs"]] == [left["id"]]
        assert _inside(_vpc_cidrs(again), POOL_A)
        ledger = sandbox.ledger()
        assert blueprint.recorded(ledger, MEMBER) == "corp"
        assert ledger.items(allocation.pool_pk(POOL_B)) == {}


def test_a_burst_over_an_ou_that_is_not_allowed_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"^--ous: 'Nope' is not in allowed_ous"):
        run_burst(2, Options(config=FLEET), ous=["Workloads", "Nope"])
