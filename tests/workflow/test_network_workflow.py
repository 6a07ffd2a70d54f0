"""Issue 4 in the sandbox: seed 000's network exactly, idempotent, and rejected before any change (N1-N5)."""

from __future__ import annotations

import re
from typing import Any

from mlplane_sandbox.recording import MUTATING_PREFIXES as MEMBER_MUTATIONS
from tests.conftest import RunSandbox

SUCCESS = "controltower/create_managed_account_succeeded"
SECOND = "controltower/create_managed_account_second_account"
FAST = {"poll_interval_seconds": 600}  # fewer vendor polls; the timeouts keep their meaning
N2 = {
    "eks_node": ["10.64.0.0/21", "10.64.8.0/21", "10.64.16.0/21"],
    "eks_control": ["10.10.0.0/27", "10.10.0.32/27", "10.10.0.64/27"],
    "public": ["10.10.0.128/27", "10.10.0.160/27", "10.10.0.192/27"],
    "private": ["10.10.1.0/25", "10.10.1.128/25", "10.10.2.0/25"],
}
AZS = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]


def tables_by_subnet(inventory: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {subnet: table for table in inventory["route_tables"] for subnet in table["subnet_ids"]}


def test_n1_n4_ready_account_has_exactly_the_seed_network(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(SUCCESS, config=FAST)
    assert result.outcome == "READY", result.error
    inv = result.inventory
    (vpc,) = inv["vpcs"]
    assert vpc["tags"]["Name"] == "aac_vpc"
    assert vpc["cidrs"] == ["10.10.0.0/21", "10.64.0.0/18"]
    assert vpc["dns_support"] is True and vpc["dns_hostnames"] is True
    by_group: dict[str, list[tuple[str, str]]] = {}
    for subnet in inv["subnets"]:
        by_group.setdefault(subnet["tags"]["AACSubnet"], []).append((subnet["az"], subnet["cidr"]))
    assert {group: [cidr for _, cidr in sorted(items)] for group, items in by_group.items()} == N2
    assert all(sorted(az for az, _ in items) == AZS for items in by_group.values())
    nats = {nat["subnet_id"]: nat for nat in inv["nat_gateways"]}
    public = {s["id"]: s for s in inv["subnets"] if s["tags"]["AACSubnet"] == "public"}
    assert set(nats) == set(public) and len(nats) == 3
    nat_in_az = {public[subnet_id]["az"]: nat["id"] for subnet_id, nat in nats.items()}
    (igw,) = inv["internet_gateways"]
    (endpoint,) = inv["vpc_endpoints"]
    assert endpoint["service"] == "com.amazonaws.eu-west-1.s3"
    tables = tables_by_subnet(inv)
    for subnet in inv["subnets"]:
        routes = {r["destination"]: r["target"] for r in tables[subnet["id"]]["routes"]}
        if subnet["tags"]["AACSubnet"] == "public":
            assert routes["0.0.0.0/0"] == igw["id"]
        else:
            assert routes["0.0.0.0/0"] == nat_in_az[subnet["az"]]  # the NAT gateway of its own AZ
            assert [t for d, t in routes.items() if d.startswith("pl-")] == [endpoint["id"]]
            assert tables[subnet["id"]]["id"] in endpoint["route_table_ids"]
    assert len({t["id"] for t in tables.values()}) == 12


def test_c6_redelivered_create_network_creates_nothing_twice(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(SUCCESS, config=FAST, redeliver=["CreateNetwork"])
    assert result.outcome == "READY", result.error
    assert result.leftovers == []
    created = [c["call"] for c in result.api_calls if c["ok"] and c["call"].startswith("ec2:Create")]
    assert created.count("ec2:CreateVpc") == 1
    assert created.count("ec2:CreateSubnet") == 12
    assert created.count("ec2:CreateNatGateway") == 3
    assert len(result.inventory["subnets"]) == 12


def test_rerun_of_a_ready_account_makes_no_create_call(run_sandbox: RunSandbox) -> None:
    first, again, update = run_sandbox(
        SUCCESS, "manual/start", "controltower/update_managed_account_succeeded", config=FAST
    )
    assert first.outcome == again.outcome == update.outcome == "READY"
    for rerun in (again, update):
        in_member = [c for c in rerun.api_calls if c["principal"].startswith("arn:aws:sts::111111111111:")]
        assert [c for c in in_member if c["call"].split(":")[1].startswith(MEMBER_MUTATIONS)] == []
        assert rerun.inventory == first.inventory
    # Control Tower updating a READY account reconciles it (issue 16 D2): the steps run again and find it all.
    entered = {e["stateEnteredEventDetails"]["name"] for e in update.history if "stateEnteredEventDetails" in e}
    assert "ReconcileAccount" in entered


def test_n4_n5_tgw_mode_gives_two_accounts_disjoint_cidrs_and_no_nat(run_sandbox: RunSandbox) -> None:
    first, second = run_sandbox(SUCCESS, SECOND, config={**FAST, "egress_mode": "tgw"})
    assert first.outcome == second.outcome == "READY", (first.error, second.error)
    import ipaddress

    blocks = [ipaddress.ip_network(c) for r in (first, second) for v in r.inventory["vpcs"] for c in v["cidrs"]]
    assert len(blocks) == 4
    assert not any(a.overlaps(b) for i, a in enumerate(blocks) for b in blocks[i + 1 :])
    for result in (first, second):
        inv = result.inventory
        assert inv["nat_gateways"] == []
        (attachment,) = inv["transit_gateway_attachments"]
        control = {s["id"] for s in inv["subnets"] if s["tags"]["AACSubnet"] == "eks_control"}
        assert set(attachment["subnet_ids"]) == control
        tables = tables_by_subnet(inv)
        for subnet in inv["subnets"]:
            if subnet["tags"]["AACSubnet"] != "public":
                routes = {r["destination"]: r["target"] for r in tables[subnet["id"]]["routes"]}
                assert routes["0.0.0.0/0"] == attachment["transit_gateway_id"]


def test_n5_invalid_plan_is_rejected_before_any_member_change(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(SUCCESS, config={"vpc_cidr": "10.10.0.0/21", "secondary_cidr": "10.10.0.0/18"})
    assert result.outcome == "REJECTED"
    assert result.error is not None and "\n" not in result.error["message"]
    assert "overlap" in result.error["message"]
    member = "arn:aws:sts::111111111111:"
    assert [
        c
        for c in result.api_calls
        if c["principal"].startswith(member) and c["call"].split(":")[1].startswith(MEMBER_MUTATIONS)
    ] == []


TGW = {**FAST, "egress_mode": "tgw"}


def test_n4_auto_accepted_attachment_is_ready_and_made_the_service_linked_role(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(SUCCESS, config=TGW, tgw_auto_accept="enable")
    assert result.outcome == "READY", result.error
    (attachment,) = result.inventory["transit_gateway_attachments"]
    assert attachment["state"] == "available"
    assert attachment["tags"]["mlplane:managed"] == "true"
    assert "AWSServiceRoleForVPCTransitGateway" in {r["name"] for r in result.inventory["iam_roles"]}


def test_n4_attachment_left_pending_acceptance_fails_clearly_and_rolls_back(run_sandbox: RunSandbox) -> None:
    """The network account's transit gateway does not auto-accept (AWS's default): the member account cannot
    accept its own attachment, so CreateNetwork fails at once, naming the attachment and the fix, and rolls back."""
    (result,) = run_sandbox(SUCCESS, config=TGW, tgw_auto_accept="disable")
    assert result.outcome == "ROLLED_BACK"
    assert result.error is not None and result.error["type"] == "Conflict"
    message = result.error["message"]
    assert re.search(r"transit gateway attachment tgw-attach-[0-9a-f]+ .* is pendingAcceptance", message), message
    assert "network account's admin must enable AutoAcceptSharedAttachments" in message
    assert result.leftovers == []
    inv = result.inventory
    assert (inv["vpcs"], inv["subnets"], inv["transit_gateway_attachments"]) == ([], [], [])
    deletes = [c for c in result.api_calls if c["call"] == "ec2:DeleteTransitGatewayVpcAttachment"]
    assert [c["ok"] for c in deletes] == [True]
