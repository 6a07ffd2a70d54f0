"""Issue 13.1 in the sandbox: after the hand-off a rollback never removes what the vendor uses (REQUIREMENTS C7).

Once the AAC admin triggered the data plane, EKS has its interfaces in mlplane's subnets and its security group in
mlplane's VPC: a failure then ends ROLLBACK_HELD with everything mlplane made still there and not one delete call,
notified with the vendor's resources and the two ways out. Without a vendor footprint, rollback removes everything.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mlplane_sandbox.runner import RunResult, notifications
from tests.conftest import RunSandbox
from tests.workflow.recorded import FAST, MEMBER, comparable

SUCCESS = "controltower/create_managed_account_succeeded"
ROOT = Path(__file__).resolve().parents[2]
CLUSTER = f"aac-{MEMBER}"
# Every call that removes or gives back something: none may happen while the rollback is held.
REMOVING = ("Delete", "Detach", "Disassociate", "Release", "Revoke", "ScheduleKeyDeletion", "Untag")


def removals(result: RunResult) -> list[str]:
    return [c["call"] for c in result.api_calls if c["call"].split(":", 1)[1].startswith(REMOVING)]


def creates(result: RunResult) -> list[str]:
    return [c["call"] for c in result.api_calls if c["call"].split(":", 1)[1].startswith(("Create", "Allocate"))]


def assert_everything_of_mlplane_is_there(result: RunResult) -> None:
    inventory = result.inventory
    assert len(inventory["vpcs"]) == 1
    assert len(inventory["subnets"]) == 12
    assert [n["state"] for n in inventory["nat_gateways"]] == ["available"] * 3
    assert len(inventory["internet_gateways"]) == 1 and len(inventory["vpc_endpoints"]) == 1
    assert [u["name"] for u in inventory["iam_users"]] == ["aac_automation_sa"]
    assert [p["name"] for p in inventory["iam_policies"]] == ["AAC_MachineLearning_SA_Policy"]
    (key,) = inventory["kms_keys"]
    assert key["state"] == "Enabled" and key["aliases"] == ["alias/aac-secure-vault"]
    assert result.leftovers == []  # held on purpose and recorded in the ledger: nothing lost track of


def held_notification() -> dict[str, Any]:
    (held,) = [n for n in notifications() if n["event"] == "ROLLBACK_HELD"]
    return held


@pytest.mark.parametrize(
    ("options", "error_type", "vendor_interfaces"),
    [
        ({"vendor": "cluster-failed"}, "VendorFailed", 0),  # EKS released the failed cluster's interfaces
        ({"vendor": "nodegroup-failed"}, "VendorFailed", 5),  # 3 of the cluster, 2 nodes of the group that came up
        # a 2-hour vendor timeout keeps the never-coming role's wait short (the default is 7 days)
        ({"vendor": "no-credential-role", "config": {**FAST, "vendor_timeout_seconds": 7200}}, "TimedOut", 7),
        ({"fails": ["kms:PutKeyPolicy=AccessDeniedException"]}, "AccessDenied", 7),
    ],
    ids=["cluster-failed", "nodegroup-failed", "no-credential-role", "put-key-policy-denied"],
)
def test_c7_a_failure_after_the_hand_off_is_held_with_nothing_removed(
    run_sandbox: RunSandbox, options: dict[str, Any], error_type: str, vendor_interfaces: int
) -> None:
    (result,) = run_sandbox(SUCCESS, **{"config": FAST, **options})
    assert result.outcome == "ROLLBACK_HELD", result.error
    assert result.error is not None and result.error["type"] == error_type
    assert result.executions[0]["status"] == "FAILED"
    assert removals(result) == []
    assert_everything_of_mlplane_is_there(result)
    vendor_enis = [e["id"] for e in result.inventory["network_interfaces"] if e["owner"] == "vendor"]
    (vendor_sg,) = [g["id"] for g in result.inventory["security_groups"] if g["owner"] == "vendor"]
    assert len(vendor_enis) == vendor_interfaces
    assert [c["name"] for c in result.inventory["eks_clusters"]] == [CLUSTER]
    # the notification names what holds the rollback and the two ways out
    held = held_notification()
    assert held["account_id"] == MEMBER and held["outcome"] == "ROLLBACK_HELD"
    named = {(r["type"], r["id"]) for r in held["vendor_resources"]}
    assert ("eks:cluster", CLUSTER) in named and ("ec2:security-group", vendor_sg) in named
    assert {("ec2:network-interface", eni) for eni in vendor_enis} <= named
    assert any(f"mlplane deprovision {MEMBER}" in way for way in held["ways_out"])
    assert any(f"mlplane resume {MEMBER}" in way for way in held["ways_out"])
    assert CLUSTER in held["error"] and "nothing it uses was removed" in held["error"]


@pytest.mark.parametrize(
    ("options", "error_type"),
    [
        # a 2-hour vendor timeout keeps `never` short (the 7-day default is shown by test_vendor_quotas_workflow)
        ({"vendor": "never", "config": {**FAST, "vendor_timeout_seconds": 7200}}, "TimedOut"),
        ({"quota": "denied"}, "QuotaDenied"),
    ],
    ids=["vendor-never", "quota-denied"],
)
def test_c7_without_a_vendor_footprint_rollback_removes_everything(
    run_sandbox: RunSandbox, options: dict[str, Any], error_type: str
) -> None:
    (result,) = run_sandbox(SUCCESS, **{"config": FAST, **options}, inventory_before=True)
    assert result.outcome == "ROLLED_BACK", result.error
    assert result.error is not None and result.error["type"] == error_type
    assert result.leftovers == []
    assert comparable(result.inventory) == comparable(result.inventory_before)
    assert result.inventory["network_interfaces"] == [] and result.inventory["security_groups"] == []
    assert "ec2:DeleteVpc" in removals(result)
    assert [n["event"] for n in notifications() if n["outcome"]] == ["ROLLED_BACK"]


def test_c7_a_held_account_started_again_resumes_at_the_waits_and_creates_nothing(run_sandbox: RunSandbox) -> None:
    """The AAC admin's retry worked (here: the first PutKeyPolicy was refused); a manual start resumes."""
    held, resumed = run_sandbox(
        SUCCESS, "manual/start", config=FAST, fails=["kms:PutKeyPolicy=AccessDeniedException@1"]
    )
    assert held.outcome == "ROLLBACK_HELD", held.error
    assert resumed.outcome == "READY", resumed.error
    assert creates(resumed) == [] and removals(resumed) == []
    assert [c["ok"] for c in resumed.api_calls if c["call"] == "kms:PutKeyPolicy"] == [True]
    entered = [e["stateEnteredEventDetails"]["name"] for e in resumed.history if "stateEnteredEventDetails" in e]
    assert entered[:3] == ["ValidateAccount", "AlreadyReady", "WaitForEks"]
    assert "PrepareAccount" not in entered and "NotifyReadyForVendor" not in entered
    assert_everything_of_mlplane_is_there(resumed)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    mlplane = str(Path(sys.executable).parent / "mlplane")
    return subprocess.run([mlplane, "local", "run", *args], capture_output=True, text=True, cwd=ROOT, check=False)


def test_c7_held_then_deprovision_removes_the_data_plane_first_and_ends_deprovisioned() -> None:
    """`--then-deprovision` after a held account: the simulated AAC admin removes the data plane, then mlplane
    deprovisions (subnets and VPC can go once EKS's interfaces and security group are gone)."""
    result = _cli(f"events/{SUCCESS}.json", "--vendor", "cluster-failed", "--then-deprovision", "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    document = json.loads(result.stdout)
    assert document["outcome"] == "DEPROVISIONED", document["error"]
    assert [(e["state_machine"], e["status"]) for e in document["executions"]] == [
        ("provision", "FAILED"),
        ("deprovision", "SUCCEEDED"),
    ]
    assert document["leftovers"] == []
    inventory = document["inventory"]
    assert inventory["vpcs"] == [] and inventory["network_interfaces"] == [] and inventory["security_groups"] == []
    assert inventory["eks_clusters"] == []


def test_c7_held_outcome_exits_1_on_the_command_line() -> None:
    result = _cli(f"events/{SUCCESS}.json", "--vendor", "nodegroup-failed", "--json")
    assert result.returncode == 1, result.stderr[-2000:]
    document = json.loads(result.stdout)
    assert document["outcome"] == "ROLLBACK_HELD"
    assert {e["owner"] for e in document["inventory"]["network_interfaces"]} == {"mlplane", "vendor"}
