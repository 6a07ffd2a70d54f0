"""M1, SageMaker Canvas large data processing (seed 001), through the real ASL: ApplyModules, Rollback,
RemoveModules, the pre-checks in ValidateAccount, enablement per OU and by account tag, audit and reconcile."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlplane.modules import canvas
from mlplane_sandbox.runner import Options, Sandbox
from mlplane_sandbox.world import HUB_ACCOUNT, as_account, remove_aws_managed_policy, sandbox_client
from tests.conftest import ROOT, SEEDS, RunSandbox, load_event

MEMBER = "111111111111"
ROLE = "AmazonSageMakerCanvasEMRSExecutionAccess-mlplane"
MANAGED = "arn:aws:iam::aws:policy/AmazonSageMakerCanvasEMRServerlessExecutionRolePolicy"
DOMAIN_ROLE = "AmazonSageMakerExecutionRole-canvas"
FAST: dict[str, Any] = {"vendor_timeout_seconds": 7200}
ENABLED: dict[str, Any] = {**FAST, "modules": {"canvas": {"enabled": True}}}
WITH_BUCKETS: dict[str, Any] = {**FAST, "modules": {"canvas": {"enabled": True, "s3_buckets": ["analytics-data"]}}}
CUSTOM: dict[str, Any] = {
    **FAST,
    "modules": {
        "canvas": {
            "enabled": True,
            "s3_buckets": ["analytics-data", "raw-data"],
            "execution_role_name": DOMAIN_ROLE,
            "vpc_without_internet": True,
            "eni_tag_key": "emr",
            "eni_tag_value": "allowed",
        }
    },
}
SEED_EXCERPT = ROOT / "tests" / "data" / "seed_001_policies.txt"
SUCCESS = "controltower/create_managed_account_succeeded"
# What the module calls (and nothing else of mlplane calls): none of these may appear when it is not enabled.
# (iam:GetRole and iam:GetPolicy are the core steps' calls too: the canvas session's calls are counted apart.)
MODULE_CALLS = frozenset(
    {
        "iam:CreateRole",
        "iam:AttachRolePolicy",
        "iam:PutRolePolicy",
        "iam:GetRolePolicy",
        "iam:ListRolePolicies",
        "iam:ListAttachedRolePolicies",
        "iam:ListRoleTags",
        "iam:DeleteRole",
        "iam:DetachRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:ListInstanceProfilesForRole",
    }
)


def seed_documents() -> list[dict[str, Any]]:
    """Seed 001's five policy texts, verbatim (trust, S3, ECR, ENI, ENI in tagged subnets)."""
    lines = SEED_EXCERPT.read_text(encoding="utf-8").splitlines()
    return [json.loads(line[line.index("{") :]) for line in lines]


def test_the_seed_excerpt_is_the_seeds_text() -> None:
    seeds = sorted(SEEDS.glob("001_*.txt")) if SEEDS.is_dir() else []
    if not seeds:
        pytest.skip("the seeds are not beside this clone")
    text = seeds[0].read_text(encoding="utf-8")
    for line in SEED_EXCERPT.read_text(encoding="utf-8").splitlines():
        assert line in text


def canvas_items(result: Any, kind: str) -> list[dict[str, Any]]:
    return [item for item in result.inventory["canvas"] if item["kind"] == kind]


def module_calls(result: Any) -> list[str]:
    return [c["call"] for c in result.api_calls if c["call"] in MODULE_CALLS]


def with_domain_role(sandbox: Sandbox) -> None:
    """The custom domain's SageMaker execution role, someone else's: a managed and an inline policy of its own."""
    sandbox.world.place_account(MEMBER, "Workloads", role_name=sandbox.settings.member_role_name)
    trust = {"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"}, "Action": "sts:AssumeRole"}
    with as_account(MEMBER):
        iam = sandbox_client("iam")
        iam.create_role(
            RoleName=DOMAIN_ROLE,
            AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]}),
            Tags=[{"Key": "team", "Value": "ml"}],
        )
        own = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}
        iam.put_role_policy(RoleName=DOMAIN_ROLE, PolicyName="team-s3", PolicyDocument=json.dumps(own))
        arn = iam.create_policy(PolicyName="team-managed", PolicyDocument=json.dumps(own))["Policy"]["Arn"]
        iam.attach_role_policy(RoleName=DOMAIN_ROLE, PolicyArn=arn)


def domain_role_state() -> dict[str, Any]:
    with as_account(MEMBER):
        iam = sandbox_client("iam")
        role = iam.get_role(RoleName=DOMAIN_ROLE)["Role"]
        return {
            "trust": role["AssumeRolePolicyDocument"],
            "tags": iam.list_role_tags(RoleName=DOMAIN_ROLE)["Tags"],
            "attached": iam.list_attached_role_policies(RoleName=DOMAIN_ROLE)["AttachedPolicies"],
            "inline": sorted(iam.list_role_policies(RoleName=DOMAIN_ROLE)["PolicyNames"]),
            "team-s3": iam.get_role_policy(RoleName=DOMAIN_ROLE, PolicyName="team-s3")["PolicyDocument"],
        }


def test_enabled_creates_the_role_exactly_as_the_seed_says_and_a_rerun_creates_nothing(
    run_sandbox: RunSandbox,
) -> None:
    first, again = run_sandbox(SUCCESS, "manual/start", config=ENABLED)
    assert first.outcome == "READY" and first.leftovers == []
    (role,) = canvas_items(first, "role")
    trust, _, _, _, _ = seed_documents()
    expected = json.loads(json.dumps(trust).replace("<your-account-id>", MEMBER))
    assert role["name"] == ROLE and role["name"].startswith("AmazonSageMakerCanvasEMRSExecutionAccess-")
    assert role["trust_policy"] == expected
    assert role["attached_policy_arns"] == [MANAGED]
    assert role["inline_policy_names"] == []  # no buckets configured: the managed policy's own S3 access only
    assert role["tags"]["mlplane:managed"] == "true" and role["tags"]["mlplane:account"] == MEMBER
    assert {"iam:CreateRole", "iam:AttachRolePolicy"} <= set(module_calls(first))
    # READY again is a no-op; a manual start of a READY account creates nothing
    assert again.outcome == "READY"
    assert not {"iam:CreateRole", "iam:AttachRolePolicy", "iam:PutRolePolicy"} & set(module_calls(again))


def test_a_rerun_of_apply_modules_on_what_exists_creates_nothing() -> None:
    """The step itself is idempotent: ApplyModules run again (a lost answer, a retry) makes no create call."""
    with Sandbox(Options(config=CUSTOM)) as sandbox:
        with_domain_role(sandbox)
        assert sandbox.run(load_event(*SUCCESS.split("/"))).outcome == "READY"
        from mlplane import modules
        from mlplane.member import member_for
        from mlplane_sandbox import recording

        settings = sandbox.settings_from_env()
        mark = recording.mark()
        output = modules.apply(member_for(MEMBER, "again", "ApplyModules", settings), settings, ["canvas"])
        calls = {c.call for c in recording.since(mark)}
    assert output.created == 0 and output.existing == 4
    assert not {"iam:CreateRole", "iam:AttachRolePolicy", "iam:PutRolePolicy"} & calls


def test_a_custom_domain_gets_the_seeds_statements_as_mlplanes_inline_policy_and_the_role_is_untouched() -> None:
    with Sandbox(Options(config=CUSTOM, then_deprovision=True)) as sandbox:
        with_domain_role(sandbox)
        before = domain_role_state()
        ready = sandbox.run(load_event(*SUCCESS.split("/")))
        assert ready.outcome == "DEPROVISIONED", ready.error
        after = domain_role_state()
    _, s3, ecr, eni, tagged = seed_documents()
    # ready.inventory is read after the deprovision: the run's own record has the policies as ApplyModules put them
    puts = [c for c in ready.api_calls if c["call"] == "iam:PutRolePolicy"]
    assert len(puts) == 2
    assert before == after  # trust, tags, attached and its own inline policies: as they were
    assert ready.inventory["canvas"] == [] and ready.leftovers == []
    wanted = canvas.domain_policy(sandbox.settings.modules.canvas, "aws")
    tagged = json.loads(json.dumps(tagged).replace("KEY", "emr").replace("VALUE", "allowed"))
    assert wanted == {"Version": "2012-10-17", "Statement": [*ecr["Statement"], *eni["Statement"], tagged]}
    scoped = canvas.s3_policy(("analytics-data", "raw-data"), "aws")
    (statement,) = s3["Statement"]
    assert scoped["Statement"][0]["Action"] == statement["Action"] and statement["Resource"] == ["arn:aws:s3:::*"]
    assert scoped["Statement"][0]["Resource"] == ["arn:aws:s3:::analytics-data/*", "arn:aws:s3:::raw-data/*"]


def test_the_inventory_shows_the_custom_domain_policy_and_deprovision_removes_only_it() -> None:
    with Sandbox(Options(config=CUSTOM)) as sandbox:
        with_domain_role(sandbox)
        ready = sandbox.run(load_event(*SUCCESS.split("/")))
        assert ready.outcome == "READY" and ready.leftovers == []
        inline = {(p["role"], p["name"]): p["document"] for p in canvas_items(ready, "inline-policy")}
        assert inline == {
            (DOMAIN_ROLE, canvas.DOMAIN_POLICY_NAME): canvas.domain_policy(sandbox.settings.modules.canvas, "aws"),
            (ROLE, canvas.S3_POLICY_NAME): canvas.s3_policy(("analytics-data", "raw-data"), "aws"),
        }
        from mlplane_sandbox import vendor

        vendor.teardown(MEMBER)
        gone = sandbox.deprovision(MEMBER)
        assert gone.outcome == "DEPROVISIONED"
        assert gone.inventory["canvas"] == [] and gone.leftovers == []
        state = domain_role_state()
    assert state["inline"] == ["team-s3"] and len(state["attached"]) == 1


# The module's creates, in order: the role, the managed policy's attachment, the S3 inline policy on the role,
# mlplane's inline policy on the domain's role.
CREATES = [
    "iam:CreateRole=AccessDenied@1",
    "iam:AttachRolePolicy=AccessDenied@1",
    "iam:PutRolePolicy=AccessDenied@1",
    "iam:PutRolePolicy=AccessDenied@2",
]


@pytest.mark.parametrize("fault", CREATES)
def test_each_create_call_failed_in_turn_rolls_back_to_nothing(fault: str) -> None:
    with Sandbox(Options(config=CUSTOM, fails=[fault])) as sandbox:
        with_domain_role(sandbox)
        before = domain_role_state()
        result = sandbox.run(load_event(*SUCCESS.split("/")))
        sandbox.check_faults_fired()
        after = domain_role_state()
    assert result.outcome == "ROLLED_BACK", result.error
    assert result.inventory["canvas"] == [] and result.leftovers == []
    assert before == after


def test_deprovision_removes_the_role(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(SUCCESS, config=ENABLED, then_deprovision=True)
    assert result.outcome == "DEPROVISIONED"
    assert result.inventory["canvas"] == [] and result.leftovers == []
    assert {"iam:DetachRolePolicy", "iam:DeleteRole"} <= set(module_calls(result))


def canvas_session_calls(sandbox: Sandbox) -> list[str]:
    """Every call made in a member session of the canvas purpose (its own session policy)."""
    from mlplane.member import session_policy
    from mlplane_sandbox import recording

    text = session_policy(sandbox.settings_from_env(), "canvas")
    return [c.call for c in recording.calls() if c.session_policy == text]


def test_disabled_makes_no_call_of_the_module() -> None:
    with Sandbox(Options(config=FAST, then_deprovision=True)) as sandbox:
        result = sandbox.run(load_event(*SUCCESS.split("/")))
        assert canvas_session_calls(sandbox) == []
    assert result.outcome == "DEPROVISIONED"
    assert module_calls(result) == []
    assert result.inventory["canvas"] == []
    entered = [e["stateEnteredEventDetails"]["name"] for e in result.history if "stateEnteredEventDetails" in e]
    assert "ApplyModules" in entered and "RemoveModules" in entered  # they ran, and returned at once


def test_enabled_for_an_ou_only(run_sandbox: RunSandbox) -> None:
    other_ou = {**FAST, "modules": {"canvas": {"ous": ["Sandbox"]}}}
    this_ou = {**FAST, "modules": {"canvas": {"ous": ["Workloads"]}}}
    with Sandbox(Options(config=other_ou)) as sandbox:
        off = sandbox.run(load_event(*SUCCESS.split("/")))
        assert canvas_session_calls(sandbox) == []
    (on,) = run_sandbox(SUCCESS, config=this_ou)
    assert off.outcome == on.outcome == "READY"
    assert module_calls(off) == [] and canvas_items(off, "role") == []
    assert [r["name"] for r in canvas_items(on, "role")] == [ROLE]


@pytest.mark.parametrize(("tag", "config", "expected"), [("true", FAST, [ROLE]), ("false", ENABLED, [])])
def test_the_account_tag_overrides(tag: str, config: dict[str, Any], expected: list[str]) -> None:
    with Sandbox(Options(config=config)) as sandbox:
        sandbox.world.place_account(MEMBER, "Workloads", role_name=sandbox.settings.member_role_name)
        with as_account(HUB_ACCOUNT):
            sandbox_client("organizations").tag_resource(
                ResourceId=MEMBER, Tags=[{"Key": "mlplane:module:canvas", "Value": tag}]
            )
        result = sandbox.run(load_event(*SUCCESS.split("/")))
        calls = canvas_session_calls(sandbox)
    assert result.outcome == "READY"
    assert [r["name"] for r in canvas_items(result, "role")] == expected
    assert bool(module_calls(result)) == bool(calls) == bool(expected)


def _rejected_with_nothing_changed(result: Any, message: str, left: list[dict[str, str]] | None = None) -> None:
    assert result.outcome == "REJECTED", result.outcome
    assert message in result.error["message"]
    mutations = [c["call"] for c in result.api_calls if c["call"].split(":")[1].startswith(("Create", "Put", "Attach"))]
    assert mutations == [] and result.leftovers == (left or [])
    assert result.inventory_before == result.inventory


def test_rejected_when_the_managed_policy_is_not_in_the_partition() -> None:
    with Sandbox(Options(config=ENABLED, inventory_before=True)) as sandbox:
        sandbox.world.place_account(MEMBER, "Workloads", role_name=sandbox.settings.member_role_name)
        remove_aws_managed_policy(MEMBER, canvas.MANAGED_POLICY_NAME)
        result = sandbox.run(load_event(*SUCCESS.split("/")))
    _rejected_with_nothing_changed(result, "does not exist in partition aws")


def test_rejected_when_the_custom_domains_execution_role_does_not_exist(run_sandbox: RunSandbox) -> None:
    (result,) = run_sandbox(SUCCESS, config=CUSTOM, inventory_before=True)
    _rejected_with_nothing_changed(result, f"execution role {DOMAIN_ROLE} does not exist")


def test_rejected_when_the_role_has_no_room_for_the_managed_policy() -> None:
    """IAM: 10 managed policies per role (default quota). mlplane's role, left by an earlier run, now full."""
    with Sandbox(Options(config=ENABLED, inventory_before=True)) as sandbox:
        sandbox.world.place_account(MEMBER, "Workloads", role_name=sandbox.settings.member_role_name)
        with as_account(MEMBER):
            iam = sandbox_client("iam")
            iam.create_role(
                RoleName=ROLE,
                AssumeRolePolicyDocument=json.dumps(canvas.trust_policy(MEMBER)),
                Tags=[{"Key": "mlplane:managed", "Value": "true"}, {"Key": "mlplane:account", "Value": MEMBER}],
            )
            document = json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
                }
            )
            for n in range(10):
                arn = iam.create_policy(PolicyName=f"other-{n}", PolicyDocument=document)["Policy"]["Arn"]
                iam.attach_role_policy(RoleName=ROLE, PolicyArn=arn)
        result = sandbox.run(load_event(*SUCCESS.split("/")))
    # the role an earlier run left is there as it was (a leftover), nothing attached to it
    _rejected_with_nothing_changed(result, "has 10 managed policies attached", [{"type": "canvas:role", "id": ROLE}])


def test_rejected_when_a_role_of_that_name_is_not_mlplanes() -> None:
    with Sandbox(Options(config=ENABLED, inventory_before=True)) as sandbox:
        sandbox.world.place_account(MEMBER, "Workloads", role_name=sandbox.settings.member_role_name)
        with as_account(MEMBER):
            sandbox_client("iam").create_role(
                RoleName=ROLE, AssumeRolePolicyDocument=json.dumps(canvas.trust_policy(MEMBER))
            )
        result = sandbox.run(load_event(*SUCCESS.split("/")))
    _rejected_with_nothing_changed(result, "is not mlplane's")


def test_audit_sees_a_deleted_role_and_a_detached_policy_and_reconcile_puts_them_back() -> None:
    with Sandbox(Options(config=ENABLED)) as sandbox:
        assert sandbox.run(load_event(*SUCCESS.split("/"))).outcome == "READY"
        with as_account(MEMBER):
            sandbox_client("iam").detach_role_policy(RoleName=ROLE, PolicyArn=MANAGED)
        drifted = sandbox.audit(MEMBER)
        found = {(f["type"], f["severity"]) for f in drifted["findings"] if f["domain"] == "canvas"}
        assert found == {("canvas:role-attachment", "missing")}
        with as_account(MEMBER):
            sandbox_client("iam").delete_role(RoleName=ROLE)
        gone = sandbox.audit(MEMBER)
        found = {(f["type"], f["severity"]) for f in gone["findings"] if f["domain"] == "canvas"}
        assert found == {("canvas:role", "missing"), ("canvas:role-attachment", "missing")}
        reconciled = sandbox.run({"account_id": MEMBER, "requested_by": "test", "action": "reconcile"})
        assert reconciled.outcome == "READY"
        assert [r["attached_policy_arns"] for r in canvas_items(reconciled, "role")] == [[MANAGED]]
        clean = sandbox.audit(MEMBER)
    assert [f for f in clean["findings"] if f["domain"] == "canvas"] == []


def test_a_changed_trust_policy_and_s3_policy_are_drift_and_reconcile_puts_the_seeds_back() -> None:
    """Someone widens the role's trust (any principal of the account) and its S3 inline policy: the audit names
    both as drift of mlplane's resources, reconcile restores seed 001's trust and mlplane's document."""
    with Sandbox(Options(config=WITH_BUCKETS)) as sandbox:
        assert sandbox.run(load_event(*SUCCESS.split("/"))).outcome == "READY"
        with as_account(MEMBER):
            iam = sandbox_client("iam")
            wide = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MEMBER}:root"}, "Action": "sts:AssumeRole"}
            iam.update_assume_role_policy(
                RoleName=ROLE, PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [wide]})
            )
            every = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
            iam.put_role_policy(
                RoleName=ROLE,
                PolicyName=canvas.S3_POLICY_NAME,
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [every]}),
            )
        drifted = sandbox.audit(MEMBER)
        found = {(f["type"], f["severity"]) for f in drifted["findings"] if f["domain"] == "canvas"}
        assert found == {("canvas:role", "drift"), ("canvas:inline-policy", "drift")}
        reconciled = sandbox.run({"account_id": MEMBER, "requested_by": "test", "action": "reconcile"})
        assert reconciled.outcome == "READY"
        with as_account(MEMBER):
            trust = sandbox_client("iam").get_role(RoleName=ROLE)["Role"]["AssumeRolePolicyDocument"]
        clean = sandbox.audit(MEMBER)
    assert canvas._document(trust) == canvas.trust_policy(MEMBER)
    assert [f for f in clean["findings"] if f["domain"] == "canvas"] == []


def test_plan_lists_the_modules_resources(tmp_path: Path) -> None:
    del tmp_path
    with Sandbox(Options(config=ENABLED)) as sandbox:
        document = sandbox.plan(load_event(*SUCCESS.split("/")))
    rows = [(c["type"], c["action"]) for c in document["changes"] if c["domain"] == "canvas"]
    assert rows == [("canvas:role", "create"), ("canvas:role-attachment", "create")]
