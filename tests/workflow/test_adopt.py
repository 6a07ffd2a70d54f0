"""`mlplane adopt` (REQUIREMENTS D3, issue 16), through the real ASL: an account prepared by hand per seed 000 is
taken into the ledger without creating what exists; deprovision and rollback leave the adopted resources in place."""

from __future__ import annotations

import json
from typing import Any

from mlplane.ledger import ResourceState, Status
from mlplane_cli.main import HAND_BUILT_DIFFERENCES
from mlplane_sandbox import handbuilt
from mlplane_sandbox.runner import Options, RunResult, Sandbox
from mlplane_sandbox.world import as_account, sandbox_client
from tests.conftest import Cli
from tests.workflow.recorded import FAST, MEMBER

ADOPT = {"account_id": MEMBER, "requested_by": "test", "reason": "built by hand", "action": "adopt"}
START = {"account_id": MEMBER, "requested_by": "test", "reason": "back-fill"}
# What seed 000 has the admin make by hand, and so what adopt must never create.
HAND_MADE = (
    "ec2:CreateVpc",
    "ec2:CreateSubnet",
    "ec2:CreateRouteTable",
    "ec2:CreateInternetGateway",
    "ec2:CreateNatGateway",
    "ec2:AllocateAddress",
    "ec2:CreateVpcEndpoint",
    "ec2:AssociateVpcCidrBlock",
    "ec2:AssociateRouteTable",
    "iam:CreateUser",
    "iam:CreatePolicy",
    "iam:CreatePolicyVersion",
    "iam:AttachUserPolicy",
    "kms:CreateKey",
    "kms:CreateAlias",
)


def calls(result: RunResult, prefix: str = "") -> list[str]:
    return [c["call"] for c in result.api_calls if c["call"].startswith(prefix)]


def _still_there(sandbox: Sandbox) -> dict[str, Any]:
    ids = sandbox.hand_built[MEMBER]
    with as_account(MEMBER):
        ec2, iam, kms = sandbox_client("ec2"), sandbox_client("iam"), sandbox_client("kms")
        vpc = ec2.describe_vpcs(VpcIds=[ids["vpc"]])["Vpcs"][0]
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [ids["vpc"]]}])["Subnets"]
        user_tags = iam.list_user_tags(UserName="aac_automation_sa")["Tags"]
        policy_tags = iam.list_policy_tags(PolicyArn=ids["iam/policy"])["Tags"]
        key = kms.describe_key(KeyId=ids["kms/key"])["KeyMetadata"]
        key_tags = kms.list_resource_tags(KeyId=ids["kms/key"])["Tags"]
        routes = ec2.describe_route_tables(RouteTableIds=[ids["rtb/eks_node/a"]])["RouteTables"][0]["Routes"]
    tags = [t["Key"] for t in vpc.get("Tags", [])]
    tags += [t["Key"] for s in subnets for t in s.get("Tags", [])]
    tags += [t["Key"] for t in user_tags] + [t["Key"] for t in policy_tags] + [t["TagKey"] for t in key_tags]
    return {
        "subnets": len(subnets),
        "mlplane_tags": sorted({t for t in tags if t.startswith("mlplane:")}),
        "key_state": key["KeyState"],
        "default_route": [r for r in routes if r.get("DestinationCidrBlock") == "0.0.0.0/0"],
    }


def test_adopt_creates_nothing_that_exists_records_it_adopted_and_reports_the_differences() -> None:
    options = Options(config=FAST, hand_built=True, hand_built_differences=["missing-route", "dns-off"])
    with Sandbox(options) as sandbox:
        result = sandbox.run(ADOPT)
        records = sandbox.ledger().resources(MEMBER)
        status = sandbox.ledger().status(MEMBER)
        audit = sandbox.audit(MEMBER)
        there = _still_there(sandbox)
    assert result.outcome == "READY", result.error
    assert status is not None and status.status == Status.READY
    assert [c for c in calls(result) if c.split(":", 1)[0] in ("ec2", "iam", "kms") and c in HAND_MADE] == []
    assert calls(result, "ec2:CreateRoute") == ["ec2:CreateRoute"]  # the one route missing: created as normal
    adopted = {r.key for r in records if r.state == ResourceState.ADOPTED}
    assert {
        "vpc",
        "vpc-cidr/secondary",
        "igw",
        "vpce/s3",
        "iam/user",
        "iam/policy",
        "iam/attachment",
        "kms/key",
    } <= adopted
    assert len([k for k in adopted if k.startswith("subnet/")]) == 12
    created = {r.key for r in records if r.state == ResourceState.CREATED}
    assert [k for k in created if k.startswith("route/")] == ["route/eks_node/a/default"], created
    # the difference adopt leaves as found is an audit finding (reconcile fixes it)
    assert [f["key"] for f in audit["findings"] if f["severity"] != "vendor"] == ["vpc"]
    assert there["mlplane_tags"] == ["mlplane:account", "mlplane:execution", "mlplane:key", "mlplane:managed"]


def test_a_deprovision_after_adopt_leaves_the_adopted_resources_and_removes_what_mlplane_made() -> None:
    options = Options(config=FAST, hand_built=True, hand_built_differences=["missing-route"])
    with Sandbox(options) as sandbox:
        assert sandbox.run(ADOPT).outcome == "READY"
        result = sandbox.deprovision(MEMBER)
        there = _still_there(sandbox)
        left = sandbox.ledger().resources(MEMBER)
    assert result.outcome == "DEPROVISIONED", result.error
    assert there["subnets"] == 12 and there["key_state"] == "Enabled"
    assert there["mlplane_tags"] == []  # mlplane's tags taken off
    assert there["default_route"] == []  # the route mlplane created is gone
    assert left == []
    removing = [c for c in calls(result) if c.split(":", 1)[1].startswith(("Delete", "ScheduleKeyDeletion", "Release"))]
    assert set(removing) == {"ec2:DeleteRoute", "ec2:DeleteTags"}
    assert removing.count("ec2:DeleteRoute") == 1


def test_a_manual_start_on_a_hand_built_account_is_rejected_with_a_pointer_to_adopt() -> None:
    with Sandbox(Options(config=FAST, hand_built=True)) as sandbox:
        result = sandbox.run(START)
    assert result.outcome == "REJECTED"
    assert result.error is not None and f"mlplane adopt {MEMBER}" in str(result.error)
    member_changes = [
        c
        for c in result.api_calls
        if c["call"].split(":", 1)[0] in ("ec2", "iam", "kms")
        and not c["call"].split(":", 1)[1].startswith(("Describe", "Get", "List"))
    ]
    assert member_changes == []


def test_a_fault_after_adopt_rolls_back_releasing_the_adopted_resources_in_place() -> None:
    """The one route adopt must create is refused: the rollback ends ROLLED_BACK (the hand-made NAT gateways'
    interfaces are not the vendor's), nothing made by hand is removed and mlplane's tags are off it."""
    options = Options(
        config=FAST,
        hand_built=True,
        hand_built_differences=["missing-route"],
        fails=["ec2:CreateRoute=UnauthorizedOperation@1"],
    )
    with Sandbox(options) as sandbox:
        result = sandbox.run(ADOPT)
        there = _still_there(sandbox)
        left = sandbox.ledger().resources(MEMBER)
    assert result.outcome == "ROLLED_BACK", result.error
    assert result.error is not None and "UnauthorizedOperation" in str(result.error)
    assert there["subnets"] == 12 and there["key_state"] == "Enabled"
    assert there["mlplane_tags"] == []
    assert left == []
    removing = [c for c in calls(result) if c.split(":", 1)[1].startswith(("Delete", "ScheduleKeyDeletion", "Release"))]
    assert set(removing) == {"ec2:DeleteTags"}


def test_mlplane_adopt_local_builds_by_hand_adopts_and_audits_the_difference_it_left(cli: Cli) -> None:
    """`mlplane adopt --local` (the sandbox's adopt, as `audit --local`): READY, then the audit names the VPC's
    DNS attribute the hand-made account had off; the CLI's difference names are the sandbox's."""
    assert HAND_BUILT_DIFFERENCES == handbuilt.DIFFERENCES
    done = cli("adopt", "--local", "--hand-built-difference", "dns-off", "--json")
    assert done.exit_code == 0, done.stderr[-2000:]
    document = json.loads(done.stdout)
    assert document["run"]["outcome"] == "READY"
    assert [f["key"] for f in document["audit"]["findings"] if f["severity"] != "vendor"] == ["vpc"]


def test_local_run_hand_built_with_the_adopt_sample_input_is_ready(cli: Cli) -> None:
    """`mlplane local run --hand-built events/manual/adopt.json`: the sample adopt start on a hand-built account."""
    done = cli("local", "run", "events/manual/adopt.json", "--hand-built", "--json")
    assert done.exit_code == 0, done.stderr[-2000:]
    assert json.loads(done.stdout)["outcome"] == "READY"


def test_audit_judges_adopted_iam_and_kms_as_mlplanes_and_reconcile_restores_them() -> None:
    """After adopt, the hand-made service account, policy and key are judged as mlplane's (D3): the policy
    detached by hand and the KMS statement dropped are findings; reconcile puts them
    back and a second audit is clean. A hand-made subnet carrying mlplane's adopted tags unknown to the ledger is
    untracked."""
    from mlplane_sandbox import drift

    with Sandbox(Options(config=FAST, hand_built=True)) as sandbox:
        assert sandbox.run(ADOPT).outcome == "READY"
        settings = sandbox.settings_from_env()
        clean = sandbox.audit(MEMBER)
        drift.apply("detach-policy", MEMBER, settings)
        drift.apply("drop-kms-statement", MEMBER, settings)
        with as_account(MEMBER):
            ec2 = sandbox_client("ec2")
            vpc_id = sandbox.hand_built[MEMBER]["vpc"]
            stray = ec2.create_subnet(VpcId=vpc_id, CidrBlock="10.10.7.0/24")["Subnet"]["SubnetId"]
            tags = {"mlplane:managed": "adopted", "mlplane:account": MEMBER, "mlplane:key": "subnet/stray"}
            ec2.create_tags(Resources=[stray], Tags=[{"Key": k, "Value": v} for k, v in tags.items()])
        drifted = sandbox.audit(MEMBER)
        with as_account(MEMBER):
            sandbox_client("ec2").delete_subnet(SubnetId=stray)
        reconciled = sandbox.run({**ADOPT, "action": "reconcile"})
        after = sandbox.audit(MEMBER)
    assert clean["clean"], clean["findings"]
    found = {(f["type"], f["severity"]) for f in drifted["findings"] if f["severity"] != "vendor"}
    assert found == {("iam:attachment", "missing"), ("kms:key-policy", "drift"), ("subnets", "untracked")}, found
    assert reconciled.outcome == "READY", reconciled.error
    assert after["clean"], after["findings"]
