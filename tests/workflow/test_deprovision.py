"""The deprovision workflow: the real statemachines/deprovision.asl.json in the sandbox (C4, V2, issue 7)."""

from __future__ import annotations

from mlplane_sandbox.recording import MUTATING_PREFIXES as MUTATING
from mlplane_sandbox.runner import Options, Sandbox, notifications
from tests.conftest import RunSandbox, load_event

SUCCESS = "controltower/create_managed_account_succeeded"
MEMBER = "111111111111"


def vendor_touches(calls: list[dict[str, object]]) -> list[str]:
    """mlplane creates no EKS resource and no IAM role: any such mutation would be of a vendor resource (V2)."""
    touched = []
    for call in calls:
        service, operation = str(call["call"]).split(":")
        mutating = operation.startswith(MUTATING)
        if mutating and (service == "eks" or (service == "iam" and "Role" in operation)):
            touched.append(str(call["call"]))
    return touched


def test_then_deprovision_removes_what_mlplane_made_and_reports_what_aws_defers(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(SUCCESS, then_deprovision=True)
    assert result.outcome == "DEPROVISIONED", result.error
    assert [e["state_machine"] for e in result.executions] == ["provision", "deprovision"]
    assert result.leftovers == []
    inventory = result.inventory
    assert inventory["vpcs"] == [] and inventory["subnets"] == [] and inventory["nat_gateways"] == []
    assert inventory["iam_policies"] == [] and inventory["iam_users"] == []
    assert [k["state"] for k in inventory["kms_keys"]] == ["PendingDeletion"]
    assert sorted(d["type"] for d in result.deferred) == ["kms:key", "quotas:request"]
    assert vendor_touches(result.api_calls) == []


def test_deprovision_is_refused_while_the_vendor_cluster_exists_and_removes_nothing() -> None:
    with Sandbox(Options()) as sandbox:
        ready = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
        assert ready.outcome == "READY"
        refused = sandbox.deprovision(MEMBER, vendor_first=False)
    assert refused.outcome == "REJECTED"
    assert refused.error is not None
    assert "deprovision the data plane in AAC first" in refused.error["message"]
    assert refused.inventory["vpcs"] == ready.inventory["vpcs"]
    assert refused.inventory["eks_clusters"] == ready.inventory["eks_clusters"]
    assert not [
        c
        for c in refused.api_calls
        if c["call"].split(":")[1].startswith(MUTATING) and not c["call"].startswith(("dynamodb:", "states:"))
    ]


def test_deprovision_again_is_a_no_op_success() -> None:
    with Sandbox(Options(then_deprovision=True)) as sandbox:
        first = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
        again = sandbox.deprovision(MEMBER)
    assert first.outcome == again.outcome == "DEPROVISIONED"
    member_mutations = [
        c
        for c in again.api_calls
        if c["principal"].startswith(f"arn:aws:sts::{MEMBER}:") and c["call"].split(":")[1].startswith(MUTATING)
    ]
    assert member_mutations == []


def test_account_closure_event_settles_the_ledger_without_reaching_into_the_closed_account() -> None:
    """Issue 12 item 9. After CloseAccount the account is PENDING_CLOSURE, then SUSPENDED, and its roles can no
    longer be assumed (Organizations API reference, CloseAccount): the deprovision does what it still can."""
    with Sandbox(Options()) as sandbox:
        assert sandbox.run(load_event("controltower", "create_managed_account_succeeded")).outcome == "READY"
        from mlplane_sandbox import vendor

        vendor.teardown(MEMBER)  # the AAC admin removed the data plane first
        closed = sandbox.run(load_event("organizations", "close_account"))
        status = sandbox.ledger().status(MEMBER)
    assert closed.outcome == "DEPROVISIONED", closed.error
    assert [e["state_machine"] for e in closed.executions] == ["deprovision"]
    assert status is not None and status.status == "DEPROVISIONED"
    member_calls = [c for c in closed.api_calls if c["principal"].startswith(f"arn:aws:sts::{MEMBER}:")]
    assert member_calls == []  # nothing tried in an account that cannot be reached
    assert not [c for c in closed.api_calls if c["call"] == "sts:AssumeRole"]
    # What mlplane made is still in the closed account (AWS deletes it 90 days after closure): each piece is named.
    assert closed.leftovers
    deferred = {d["id"]: d["reason"] for d in closed.deferred}
    assert {r["id"] for r in closed.leftovers} <= set(deferred)
    assert all("closed account" in deferred[r["id"]] for r in closed.leftovers)


def test_closed_account_in_tgw_mode_keeps_its_cidr_slot_while_its_attachment_cannot_be_verified_gone() -> None:
    """REQUIREMENTS C9: a CIDR allocation is released only when the VPC holding it is verified gone."""
    from mlplane.network import allocation

    with Sandbox(Options(config={"egress_mode": "tgw"})) as sandbox:
        ready = sandbox.run(load_event("controltower", "create_managed_account_succeeded"))
        assert ready.outcome == "READY", ready.error
        from mlplane_sandbox import vendor

        vendor.teardown(MEMBER)
        closed = sandbox.run(load_event("organizations", "close_account"))
        held = allocation.lookup(sandbox.ledger(), MEMBER, sandbox.settings.cidr_pool)
    assert closed.outcome == "DEPROVISIONED", closed.error
    assert held is not None
    assert held.primary in {c for v in ready.inventory["vpcs"] for c in v["cidrs"]}
    assert any(d["type"] == "ec2:tgw-attachment" for d in closed.deferred)


def test_closed_account_step_retried_after_a_failed_publish_still_keeps_the_cidr_slot() -> None:
    """C9 with C10: the retried MarkDeprovisioned (its DEPROVISIONED publish failed once) finds every record
    already deferred; the attachment it cannot verify gone still holds the slot, and the notification goes out."""
    from mlplane.network import allocation

    options = Options(config={"egress_mode": "tgw"}, fails=["sns:Publish=AuthorizationError@3"])
    with Sandbox(options) as sandbox:
        assert sandbox.run(load_event("controltower", "create_managed_account_succeeded")).outcome == "READY"
        from mlplane_sandbox import vendor

        vendor.teardown(MEMBER)
        closed = sandbox.run(load_event("organizations", "close_account"))
        sandbox.check_faults_fired()
        held = allocation.lookup(sandbox.ledger(), MEMBER, sandbox.settings.cidr_pool)
    assert closed.outcome == "DEPROVISIONED", closed.error
    assert held is not None
    assert [n["event"] for n in notifications()][-1] == "DEPROVISIONED"
    (note,) = [n for n in notifications() if n["event"] == "DEPROVISIONED"]
    assert [b["type"] for b in note["blocked"]] == ["network:cidr-allocation"]
