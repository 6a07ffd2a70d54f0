"""`mlplane audit` (REQUIREMENTS D1, issue 16): read-only; a READY account is clean, each kind of drift is found
and named, the vendor's resources are reported and never judged."""

from __future__ import annotations

from typing import Any

import pytest

from mlplane_sandbox import drift
from mlplane_sandbox.recording import is_mutating
from mlplane_sandbox.runner import Options, Sandbox
from tests.conftest import load_event
from tests.workflow.recorded import FAST, MEMBER

SUCCESS = ("controltower", "create_managed_account_succeeded")


def judged(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for f in document["findings"] if f["severity"] != "vendor"]


def test_a_ready_account_is_clean_and_the_vendor_is_reported_not_judged() -> None:
    with Sandbox(Options(config=FAST)) as sandbox:
        assert sandbox.run(load_event(*SUCCESS)).outcome == "READY"
        document = sandbox.audit(MEMBER)
    assert document["audited"] and document["clean"], judged(document)
    assert judged(document) == []
    vendor = {f["type"] for f in document["findings"] if f["severity"] == "vendor"}
    assert {"eks:cluster", "iam:role", "ec2:network-interface"} <= vendor
    assert document["api_calls"] and not [c for c in document["api_calls"] if is_mutating(c["call"])]


@pytest.mark.parametrize(
    ("name", "type_", "severity", "says"),
    [
        ("delete-route", "ec2:route", "missing", "0.0.0.0/0 via nat/a"),
        ("untag-subnet", "ec2:subnet", "drift", "AACSubnet=eks_node"),
        ("dns-off", "ec2:vpc", "drift", "enableDnsHostnames on"),
        ("drop-kms-statement", "kms:key-policy", "drift", "add the statement for credential-service-role"),
        ("detach-policy", "iam:attachment", "missing", "the policy attached to the user"),
    ],
)
def test_each_kind_of_drift_is_found_and_named(name: str, type_: str, severity: str, says: str) -> None:
    with Sandbox(Options(config=FAST)) as sandbox:
        assert sandbox.run(load_event(*SUCCESS)).outcome == "READY"
        drift.apply(name, MEMBER, sandbox.settings_from_env())
        document = sandbox.audit(MEMBER)
    assert not document["clean"]
    (finding,) = judged(document)
    assert finding["type"] == type_ and finding["severity"] == severity
    assert says in finding["expected"] + finding["actual"]


def test_an_account_mlplane_has_not_provisioned_is_not_audited() -> None:
    with Sandbox(Options(config=FAST)) as sandbox:
        sandbox.world.place_account(MEMBER, "Workloads", role_name=sandbox.settings.member_role_name)
        document = sandbox.audit(MEMBER)
    assert document == {**document, "audited": False, "status": "unknown to mlplane", "findings": []}


def test_the_scheduled_audit_notifies_each_drifted_account_once_a_day() -> None:
    """AuditFleetFunction (EventBridge Scheduler, `AuditSchedule`): every READY/held account; DRIFT notified."""
    from mlplane_sandbox.runner import notifications

    second = load_event("controltower", "create_managed_account_second_account")
    with Sandbox(Options(config=FAST)) as sandbox:
        assert sandbox.run(load_event(*SUCCESS)).outcome == "READY"
        other = sandbox.run(second)
        assert other.outcome == "READY"
        drift.apply("delete-route", MEMBER, sandbox.settings_from_env())
        first = sandbox.scheduled_audit()
        again = sandbox.scheduled_audit()  # the same day: DRIFT is not sent twice
    assert first["accounts"] == 2 and first["drifted"] == [MEMBER] and first["not_audited"] == []
    assert again["drifted"] == [MEMBER]
    drifts = [n for n in notifications() if n["event"] == "DRIFT"]
    assert len(drifts) == 1 and drifts[0]["account_id"] == MEMBER and drifts[0]["outcome"] is None
    assert [f["type"] for f in drifts[0]["findings"]] == ["ec2:route"]
