"""The network plan (REQUIREMENTS N1-N5): pure, deterministic, validated before anything is created."""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest

from mlplane.config import Settings
from mlplane.errors import ConfigError
from mlplane.network import allocation
from mlplane.network.models import NetworkPlan
from mlplane.network.plan import plan_network

AZS = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
TGW = "tgw-0123456789abcdef0"

N2_SUBNETS = {
    "subnet/eks_node/a": ("10.64.0.0/21", "eu-west-1a"),
    "subnet/eks_node/b": ("10.64.8.0/21", "eu-west-1b"),
    "subnet/eks_node/c": ("10.64.16.0/21", "eu-west-1c"),
    "subnet/eks_control/a": ("10.10.0.0/27", "eu-west-1a"),
    "subnet/eks_control/b": ("10.10.0.32/27", "eu-west-1b"),
    "subnet/eks_control/c": ("10.10.0.64/27", "eu-west-1c"),
    "subnet/public/a": ("10.10.0.128/27", "eu-west-1a"),
    "subnet/public/b": ("10.10.0.160/27", "eu-west-1b"),
    "subnet/public/c": ("10.10.0.192/27", "eu-west-1c"),
    "subnet/private/a": ("10.10.1.0/25", "eu-west-1a"),
    "subnet/private/b": ("10.10.1.128/25", "eu-west-1b"),
    "subnet/private/c": ("10.10.2.0/25", "eu-west-1c"),
}


def _plan(azs: list[str] | None = None, **settings: object) -> NetworkPlan:
    return plan_network(Settings.model_validate(settings), azs if azs is not None else AZS)


def _routes(plan: NetworkPlan, key: str) -> set[tuple[str, str, str]]:
    table = next(t for t in plan.route_tables if t.key == key)
    return {(r.destination, r.target, r.target_key) for r in table.routes}


def test_n1_vpc_name_cidrs_and_dns() -> None:
    plan = _plan()
    assert plan.vpc.key == "vpc"
    assert plan.vpc.tags["Name"] == "aac_vpc"
    assert (plan.vpc.cidr, plan.vpc.secondary_cidr) == ("10.10.0.0/21", "10.64.0.0/18")
    assert plan.vpc.dns_support and plan.vpc.dns_hostnames


def test_n2_twelve_subnets_exact_cidrs_azs_and_tags() -> None:
    plan = _plan()
    assert {s.key: (s.cidr, s.az) for s in plan.subnets} == N2_SUBNETS
    for subnet in plan.subnets:
        assert subnet.tags["AACSubnet"] == subnet.group
        assert subnet.tags["Name"] == f"{subnet.group}-{subnet.az}"
        if subnet.group == "public":
            assert subnet.tags["kubernetes.io/role/elb"] == "1"
            assert "kubernetes.io/role/internal-elb" not in subnet.tags
        else:
            assert subnet.tags["kubernetes.io/role/internal-elb"] == "1"
            assert "kubernetes.io/role/elb" not in subnet.tags


def test_n2_uses_first_three_sorted_azs_of_a_bigger_region() -> None:
    plan = _plan(["us-east-1f", "us-east-1d", "us-east-1b", "us-east-1c"], member_region="us-east-1")
    assert plan.azs == ("us-east-1b", "us-east-1c", "us-east-1d")
    assert plan.subnet("subnet/private/c").az == "us-east-1d"


def test_n2_configured_zones_pick_the_azs() -> None:
    plan = plan_network(Settings(), [*AZS, "eu-west-1d"], zones=["eu-west-1b", "eu-west-1c", "eu-west-1d"])
    assert [s.az for s in plan.subnets if s.group == "public"] == ["eu-west-1b", "eu-west-1c", "eu-west-1d"]


def test_n3_nat_mode_routes() -> None:
    plan = _plan()
    assert len(plan.route_tables) == 12
    local = {("10.10.0.0/21", "local", "vpc"), ("10.64.0.0/18", "local", "vpc")}
    for letter in "abc":
        for group in ("eks_node", "eks_control", "private"):
            assert _routes(plan, f"rtb/{group}/{letter}") == local | {
                ("s3-prefix-list", "vpce", "vpce/s3"),
                ("0.0.0.0/0", "nat", f"nat/{letter}"),
            }
        assert _routes(plan, f"rtb/public/{letter}") == local | {("0.0.0.0/0", "igw", "igw")}
    table = next(t for t in plan.route_tables if t.key == "rtb/private/b")
    assert table.subnet_key == "subnet/private/b"
    assert table.association_key == "rtb-assoc/private/b"


def test_n4_nat_mode_gateways_and_endpoint() -> None:
    plan = _plan()
    assert plan.internet_gateway is not None and plan.internet_gateway.key == "igw"
    assert [(n.key, n.eip_key, n.subnet_key) for n in plan.nat_gateways] == [
        ("nat/a", "eip/a", "subnet/public/a"),
        ("nat/b", "eip/b", "subnet/public/b"),
        ("nat/c", "eip/c", "subnet/public/c"),
    ]
    assert plan.endpoint.key == "vpce/s3"
    assert plan.endpoint.service_name == "com.amazonaws.eu-west-1.s3"
    assert set(plan.endpoint.route_table_keys) == {
        f"rtb/{g}/{letter}" for g in ("eks_node", "eks_control", "private") for letter in "abc"
    }
    assert plan.tgw_attachment is None


def test_n3_n4_tgw_mode_routes_via_transit_gateway_without_nat_or_igw() -> None:
    plan = _plan(egress_mode="tgw", transit_gateway_id=TGW)
    assert plan.internet_gateway is None
    assert plan.nat_gateways == ()
    assert plan.tgw_attachment is not None
    assert plan.tgw_attachment.transit_gateway_id == TGW
    assert plan.tgw_attachment.subnet_keys == (
        "subnet/eks_control/a",
        "subnet/eks_control/b",
        "subnet/eks_control/c",
    )
    for table in plan.route_tables:
        defaults = [r for r in table.routes if r.destination == "0.0.0.0/0"]
        assert [(r.target, r.target_key) for r in defaults] == [("tgw", "tgw-attachment")]
        has_s3 = any(r.target == "vpce" for r in table.routes)
        assert has_s3 == (table.group != "public")
    assert len(plan.subnets) == 12


def test_n5_tgw_allocated_cidrs_keep_the_layout() -> None:
    primary, secondary = allocation.slot_for("10.128.0.0/10", 3, primary_prefix=21, secondary_prefix=18)
    assert (primary, secondary) == ("10.129.192.0/21", "10.129.128.0/18")
    settings = Settings(egress_mode="tgw", transit_gateway_id=TGW)
    plan = plan_network(settings, AZS, cidrs=(primary, secondary))
    cidrs = {s.key: s.cidr for s in plan.subnets}
    assert cidrs["subnet/eks_node/b"] == "10.129.136.0/21"
    assert cidrs["subnet/eks_control/c"] == "10.129.192.64/27"
    assert cidrs["subnet/public/a"] == "10.129.192.128/27"
    assert cidrs["subnet/private/c"] == "10.129.194.0/25"


def test_plan_is_deterministic_and_keys_are_stable() -> None:
    first, second = _plan(), _plan()
    assert first == second
    assert first.model_dump_json() == second.model_dump_json()
    keys = first.ledger_keys()
    assert len(keys) == len(set(keys))
    assert keys[:2] == ["vpc", "vpc-cidr/secondary"]
    assert {"igw", "vpce/s3", "nat/a", "eip/c", "rtb/public/b", "route/eks_node/a/default"} <= set(keys)
    assert "tgw-attachment" in _plan(egress_mode="tgw", transit_gateway_id=TGW).ledger_keys()


@pytest.mark.parametrize(
    ("kwargs", "azs", "message"),
    [
        pytest.param(
            {"cidrs": ("10.10.0.0/33", "10.64.0.0/18")},
            AZS,
            "primary VPC CIDR '10.10.0.0/33' is not a valid",
            id="unparseable",
        ),
        pytest.param(
            {"cidrs": ("10.10.0.0/21", "10.64.0.1/18")},
            AZS,
            "secondary VPC CIDR '10.64.0.1/18' is not a valid",
            id="host-bits",
        ),
        pytest.param({"cidrs": ("10.0.0.0/8", "10.64.0.0/18")}, AZS, "must be between /16 and /28", id="too-big"),
        pytest.param(
            {"cidrs": ("10.10.0.0/24", "10.64.0.0/18")},
            AZS,
            "subnet private/a 10.10.1.0/25 is outside every VPC CIDR",
            id="outside",
        ),
        pytest.param(
            {"cidrs": ("10.10.0.0/21", "10.10.0.0/18")},
            AZS,
            "subnet eks_node/a 10.10.0.0/21 overlaps subnet eks_control/a 10.10.0.0/27",
            id="overlap",
        ),
        pytest.param(
            {"cidrs": ("10.64.32.0/21", "10.64.0.0/18")},
            AZS,
            "secondary CIDR 10.64.0.0/18 overlaps primary CIDR 10.64.32.0/21",
            id="vpc-overlap",
        ),
        pytest.param(
            {}, AZS[:2], "region eu-west-1 has 2 AZs (eu-west-1a, eu-west-1b), the plan needs 3", id="too-few-azs"
        ),
        pytest.param({}, ["eu-west-1a", "eu-west-1a", "eu-west-1b"], "has 2 AZs", id="duplicate-azs"),
        pytest.param(
            {"zones": [*AZS, "eu-west-1d"]}, [*AZS, "eu-west-1d"], "exactly 3 distinct AZs", id="too-many-zones"
        ),
        pytest.param(
            {"zones": ["eu-west-1a", "eu-west-1a", "eu-west-1b"]}, AZS, "exactly 3 distinct AZs", id="repeated-zone"
        ),
        pytest.param(
            {"zones": ["eu-west-1a", "eu-west-1b", "eu-west-1z"]},
            AZS,
            "AZ eu-west-1z is not in region eu-west-1",
            id="unknown-az",
        ),
    ],
)
def test_n5_rejects_with_one_line_message(kwargs: dict[str, object], azs: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        plan_network(Settings(), azs, **kwargs)  # type: ignore[arg-type]
    text = str(caught.value)
    assert message in text
    assert "\n" not in text


def test_n5_tgw_mode_needs_a_transit_gateway() -> None:
    with pytest.raises(ConfigError, match="egress mode tgw needs a transit_gateway_id"):
        _plan(egress_mode="tgw")


def test_n5_pool_slots_are_disjoint_and_bounded() -> None:
    import ipaddress

    blocks = []
    for slot in range(allocation.slot_count("10.128.0.0/10", primary_prefix=21, secondary_prefix=18)):
        primary, secondary = allocation.slot_for("10.128.0.0/10", slot, primary_prefix=21, secondary_prefix=18)
        blocks += [ipaddress.IPv4Network(primary), ipaddress.IPv4Network(secondary)]
    assert len(blocks) == 256
    assert all(b.subnet_of(ipaddress.IPv4Network("10.128.0.0/10")) for b in blocks)
    ordered = sorted(blocks)
    assert all(not a.overlaps(b) for a, b in itertools.pairwise(ordered))
    with pytest.raises(ConfigError, match="too small"):
        allocation.slot_for("10.0.0.0/20", 0, primary_prefix=21, secondary_prefix=18)


def test_plan_module_is_pure() -> None:
    """No boto3/botocore, clock or uuid in the pure modules (STYLE: plan vs apply)."""
    root = Path(__file__).resolve().parents[2] / "layers" / "mlplane" / "mlplane" / "network"
    for name in ("plan.py", "models.py"):
        tree = ast.parse((root / name).read_text())
        imported: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
        assert not imported & {"boto3", "botocore", "time", "datetime", "uuid", "random"}, name
