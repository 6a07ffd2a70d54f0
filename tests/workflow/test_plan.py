"""`mlplane plan` is a plan (issue 15): the verdict a run would get, then create / keep / change / refuse per
resource, from read-only calls, through the same checks (`validate.admit`) and finders the steps use."""

from __future__ import annotations

from collections import Counter
from typing import Any

from mlplane_sandbox.runner import Options, Sandbox
from mlplane_sandbox.world import as_account, sandbox_client
from tests.conftest import load_event
from tests.workflow.recorded import FAST, MEMBER

SUCCESS = ("controltower", "create_managed_account_succeeded")
READ_ONLY = ("Describe", "Get", "List", "AssumeRole")


def actions(document: dict[str, Any]) -> Counter[str]:
    return Counter(c["action"] for c in document["changes"])


def by_type(document: dict[str, Any], type_: str) -> list[dict[str, Any]]:
    return [c for c in document["changes"] if c["type"] == type_]


def read_only(document: dict[str, Any]) -> bool:
    return all(c["call"].split(":")[1].startswith(READ_ONLY) for c in document["api_calls"])


def test_a_fresh_account_plans_every_resource_as_create_with_read_only_calls() -> None:
    with Sandbox(Options(config=FAST)) as sandbox:
        document = sandbox.plan(load_event(*SUCCESS))
    assert document["verdict"] == "PROVISION", document.get("reason")
    assert read_only(document)
    assert len(by_type(document, "ec2:subnet")) == 12 and len(by_type(document, "ec2:route-table")) == 12
    assert len(by_type(document, "ec2:nat")) == 3 and len(by_type(document, "ec2:route")) == 12
    assert {c["action"] for c in document["changes"] if c["domain"] != "kms" or c["type"] == "kms:key"} == {"create"}
    (policy,) = by_type(document, "kms:key-policy")
    assert policy["action"] == "wait" and "credential-service-role" in policy["detail"]
    (quota,) = by_type(document, "quotas:request")
    assert quota["action"] == "create" and "2500" in quota["detail"]
    assert document["summary"] == dict(actions(document)) | {"change": 0, "keep": 0, "refuse": 0}


def test_after_an_incomplete_rollback_the_plan_keeps_what_is_left_and_names_the_drift_it_would_fix() -> None:
    """The rollback could not delete the VPC (DeleteVpc refused): a run now would find it and build on it;
    someone also turned its DNS hostnames off, which the run would set again."""
    fails = ["iam:CreateUser=AccessDenied@1", "ec2:DeleteVpc=UnauthorizedOperation"]
    with Sandbox(Options(config=FAST, fails=fails)) as sandbox:
        failed = sandbox.run(load_event(*SUCCESS))
        (vpc,) = failed.inventory["vpcs"]
        with as_account(MEMBER):
            sandbox_client("ec2").modify_vpc_attribute(VpcId=vpc["id"], EnableDnsHostnames={"Value": False})
        document = sandbox.plan({"account_id": MEMBER, "requested_by": "test", "reason": "plan"})
    assert failed.outcome == "ROLLBACK_INCOMPLETE"
    assert document["verdict"] == "PROVISION"
    (planned_vpc,) = by_type(document, "ec2:vpc")
    assert planned_vpc["action"] == "change" and planned_vpc["id"] == vpc["id"]
    assert "enableDnsHostnames on" in planned_vpc["detail"]
    assert {c["action"] for c in by_type(document, "ec2:subnet")} == {"create"}
    assert read_only(document)


def test_a_ready_account_has_nothing_to_do_and_a_held_one_resumes() -> None:
    with Sandbox(Options(config=FAST)) as sandbox:
        assert sandbox.run(load_event(*SUCCESS)).outcome == "READY"
        ready = sandbox.plan(MEMBER)
    assert ready["verdict"] == "NOTHING_TO_DO" and ready["reason"].startswith("READY since")
    assert ready["changes"] == []
    with Sandbox(Options(config=FAST, vendor="cluster-failed")) as sandbox:
        assert sandbox.run(load_event(*SUCCESS)).outcome == "ROLLBACK_HELD"
        held = sandbox.plan(MEMBER)
    assert held["verdict"] == "RESUME"


def test_events_the_rules_do_not_match_are_ignored_and_refused_starts_are_rejected_with_the_reason() -> None:
    with Sandbox(Options(config=FAST)) as sandbox:
        failed = sandbox.plan(load_event("controltower", "create_managed_account_failed"))
        other_ou = sandbox.plan(load_event("controltower", "create_managed_account_other_ou"))
        sandbox.world.place_account(MEMBER, "Security", role_name=sandbox.settings.member_role_name)
        rejected = sandbox.plan(MEMBER)
    assert failed["verdict"] == "IGNORED" and "FAILED" in failed["reason"]
    assert other_ou["verdict"] == "IGNORED" and "AllowedOus" in other_ou["reason"]
    assert rejected["verdict"] == "REJECTED" and "'Security'" in rejected["reason"]
    assert failed["changes"] == other_ou["changes"] == rejected["changes"] == []


def test_plan_of_a_reconcile_shows_what_reconcile_would_change_in_a_ready_account() -> None:
    from mlplane_sandbox import drift

    with Sandbox(Options(config=FAST)) as sandbox:
        assert sandbox.run(load_event(*SUCCESS)).outcome == "READY"
        drift.apply("dns-off", MEMBER, sandbox.settings_from_env())
        document = sandbox.plan({"account_id": MEMBER, "action": "reconcile"})
    assert document["verdict"] == "RECONCILE"
    assert [(c["type"], c["action"]) for c in document["changes"] if c["action"] != "keep"] == [("ec2:vpc", "change")]
    assert read_only(document)
