"""Further customer policies shipped as files (issue 14 D): SaExtraPolicies names files of mlplane/policies/.

Through the real ASL: each named policy is created in the member account tagged like the seed policy (I2:
AACResource=aac_sa_custom_policy and mlplane's tags), attached to the service account and recorded; a re-run
creates nothing; a failure of each of its create calls rolls back to nothing; a changed file reaches the account
as a new default version on reconcile (IAM's five versions at most) and `audit` reports the drift before; a
deprovision removes them. A bad file or name is REJECTED by ValidateAccount before any change.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlplane.iam import plan as iam_plans
from mlplane.iam import policy as iam_policy
from mlplane.member import KEY_TAG, MANAGED_TAG
from mlplane_sandbox import vendor
from mlplane_sandbox.runner import Options, RunResult, Sandbox
from mlplane_sandbox.world import as_account, sandbox_client
from tests.conftest import load_event

MEMBER = "111111111111"
EXTRA = "AAC_MachineLearning_EksLogsRead"
EXTRA_ARN = f"arn:aws:iam::{MEMBER}:policy/{EXTRA}"
SEED_ARN = f"arn:aws:iam::{MEMBER}:policy/AAC_MachineLearning_SA_Policy"
CONFIG = {"poll_interval_seconds": 600, "sa_extra_policies": EXTRA}
SHIPPED = Path(iam_policy.__file__).parent.parent / "policies"


def _success() -> dict[str, Any]:
    return load_event("controltower", "create_managed_account_succeeded")


def _reconcile() -> dict[str, Any]:
    return {"account_id": MEMBER, "requested_by": "test", "action": "reconcile"}


def _policies(result: RunResult) -> dict[str, dict[str, Any]]:
    return {p["arn"]: p for p in result.inventory["iam_policies"]}


def _versions(arn: str) -> list[dict[str, Any]]:
    with as_account(MEMBER):
        listed: list[dict[str, Any]] = sandbox_client("iam").list_policy_versions(PolicyArn=arn)["Versions"]
        return listed


def _default_document(arn: str) -> Any:
    with as_account(MEMBER):
        iam = sandbox_client("iam")
        default = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
        return iam.get_policy_version(PolicyArn=arn, VersionId=default)["PolicyVersion"]["Document"]


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped policies/ that a test may change (the layer's files stand in for it)."""
    target = tmp_path / "policies"
    shutil.copytree(SHIPPED, target)
    monkeypatch.setattr(iam_policy, "policies_folder", lambda: target)
    return target


@pytest.fixture
def ready() -> Iterator[tuple[Sandbox, RunResult]]:
    with Sandbox(Options(config=CONFIG)) as sandbox:
        yield sandbox, sandbox.run(_success())


def test_the_shipped_example_is_a_valid_policy_and_the_default_is_none() -> None:
    from mlplane.config import Settings

    assert EXTRA in iam_policy.shipped_policy_files()
    assert Settings().sa_extra_policies == ()
    assert iam_policy.extra_policies(Settings()) == {}
    document = json.loads((SHIPPED / f"{EXTRA}.json").read_text(encoding="utf-8"))
    assert iam_policy.document_problem(document) == ""
    actions = [
        a for s in document["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    ]
    assert all(a.startswith(("logs:Describe", "logs:Get", "logs:Filter")) for a in actions)  # read-only: harmless


def test_each_extra_policy_is_created_tagged_attached_and_recorded(ready: tuple[Sandbox, RunResult]) -> None:
    sandbox, result = ready
    assert result.outcome == "READY", result.error
    policies = _policies(result)
    assert set(policies) == {SEED_ARN, EXTRA_ARN}
    tags = policies[EXTRA_ARN]["tags"]
    assert tags["AACResource"] == "aac_sa_custom_policy" == policies[SEED_ARN]["tags"]["AACResource"]
    assert tags[MANAGED_TAG] == "true" and tags["mlplane:account"] == MEMBER
    assert tags[KEY_TAG] == f"iam/policy/{EXTRA}"
    assert _default_document(EXTRA_ARN) == json.loads((SHIPPED / f"{EXTRA}.json").read_text(encoding="utf-8"))
    (user,) = result.inventory["iam_users"]
    assert set(user["attached_policy_arns"]) == {SEED_ARN, EXTRA_ARN}
    records = {r.key: r for r in sandbox.ledger().resources(MEMBER)}
    assert records[f"iam/policy/{EXTRA}"].resource_id == EXTRA_ARN
    assert records[f"iam/attachment/{EXTRA}"].resource_id == f"aac_automation_sa|{EXTRA_ARN}"
    assert records["iam/policy"].resource_id == SEED_ARN  # the seed's keys are unchanged


def test_a_re_run_creates_nothing(ready: tuple[Sandbox, RunResult]) -> None:
    sandbox, first = ready
    assert first.outcome == "READY"
    again = sandbox.run(_reconcile())
    assert again.outcome == "READY", again.error
    made = [c["call"] for c in again.api_calls if c["call"] in ("iam:CreatePolicy", "iam:AttachUserPolicy")]
    made += [c["call"] for c in again.api_calls if c["call"] == "iam:CreatePolicyVersion"]
    assert made == []
    assert [v["VersionId"] for v in _versions(EXTRA_ARN)] == ["v1"]


@pytest.mark.parametrize("fault", ["iam:CreatePolicy=LimitExceeded@2", "iam:AttachUserPolicy=LimitExceeded@2"])
def test_a_failed_create_of_the_extra_policy_rolls_back_to_nothing(fault: str) -> None:
    """The second CreatePolicy / AttachUserPolicy is the extra policy's (the seed's comes first)."""
    with Sandbox(Options(config=CONFIG, fails=[fault])) as sandbox:
        result = sandbox.run(_success())
        sandbox.check_faults_fired()
        assert result.outcome == "ROLLED_BACK", result.error
        assert result.error is not None and EXTRA in result.error["message"]
        assert result.inventory["iam_policies"] == [] and result.inventory["iam_users"] == []
        assert result.leftovers == []
        assert sandbox.ledger().resources(MEMBER) == []


def test_a_changed_file_is_drift_and_reconcile_makes_it_the_default_version_within_five(folder: Path) -> None:
    path = folder / f"{EXTRA}.json"
    with Sandbox(Options(config=CONFIG)) as sandbox:
        assert sandbox.run(_success()).outcome == "READY"
        for n in range(1, 7):
            document = json.loads(path.read_text(encoding="utf-8"))
            document["Statement"][0]["Sid"] = f"FindLogGroups{n}"
            path.write_text(json.dumps(document), encoding="utf-8")
            report = sandbox.audit(MEMBER)
            drift = [f for f in report["findings"] if f["type"] == "iam:policy"]
            assert [(f["severity"], f["key"]) for f in drift] == [("drift", EXTRA)], report
            again = sandbox.run(_reconcile())
            assert again.outcome == "READY", again.error
            assert _default_document(EXTRA_ARN) == document
            assert len(_versions(EXTRA_ARN)) <= iam_plans.MAX_POLICY_VERSIONS
        assert sandbox.audit(MEMBER)["clean"]
        assert len(_versions(SEED_ARN)) == 1  # the seed policy did not change


def test_deprovision_detaches_and_removes_every_version(folder: Path) -> None:
    with Sandbox(Options(config=CONFIG)) as sandbox:
        assert sandbox.run(_success()).outcome == "READY"
        path = folder / f"{EXTRA}.json"
        path.write_text(path.read_text(encoding="utf-8").replace("FindLogGroups", "FindGroups"), encoding="utf-8")
        assert sandbox.run(_reconcile()).outcome == "READY"
        assert len(_versions(EXTRA_ARN)) == 2
        vendor.teardown(MEMBER)
        done = sandbox.deprovision(MEMBER)
        assert done.outcome == "DEPROVISIONED", done.error
        assert done.inventory["iam_policies"] == [] and done.inventory["iam_users"] == []
        assert done.leftovers == []
        calls = [(c["call"], c["ok"]) for c in done.api_calls if c["call"].startswith("iam:De")]
        assert ("iam:DeletePolicyVersion", True) in calls
        detach = [c for c in done.api_calls if c["call"] == "iam:DetachUserPolicy"]
        assert len(detach) == 2 and all(c["ok"] for c in detach)


_ALLOW = {"Effect": "Allow", "Action": "logs:GetLogEvents", "Resource": "*"}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("AAC_MachineLearning_Missing", None, "no policy file policies/AAC_MachineLearning_Missing.json"),
        ("AAC_MachineLearning_Broken", '{"Version": "2012-10-17",', "is not JSON"),
        ("AAC_MachineLearning_NoStatement", '{"Version": "2012-10-17"}', "not an IAM policy document: no Statement"),
        (
            "AAC_MachineLearning_Principal",
            json.dumps({"Version": "2012-10-17", "Statement": [{**_ALLOW, "Principal": "*"}]}),
            "has no Principal",
        ),
        (
            "AAC_MachineLearning_Big",
            json.dumps({"Version": "2012-10-17", "Statement": [{**_ALLOW, "Action": "s3:" + "x" * 6_200}]}),
            "over IAM's 6144",
        ),
        ("AAC_MachineLearning_" + "x" * 110, json.dumps({"Version": "2012-10-17", "Statement": [_ALLOW]}), "1-128"),
        ("Other_Policy", json.dumps({"Version": "2012-10-17", "Statement": [_ALLOW]}), "must start with"),
        (",".join(f"AAC_MachineLearning_{n}" for n in range(10)), None, "over IAM's 10 managed policies per user"),
    ],
)
def test_a_bad_file_or_name_is_rejected_before_any_change(
    folder: Path, name: str, text: str | None, message: str
) -> None:
    if text is not None:
        (folder / f"{name}.json").write_text(text, encoding="utf-8")
    with Sandbox(Options(config={**CONFIG, "sa_extra_policies": name})) as sandbox:
        result = sandbox.run(_success())
    assert result.outcome == "REJECTED"
    assert result.error is not None and message in result.error["message"]
    assert "\n" not in result.error["message"].strip()
    changes = [c for c in result.api_calls if not c["call"].split(":")[1].startswith(("Get", "List", "Describe"))]
    assert [c["call"] for c in changes if c["principal"].startswith(f"arn:aws:sts::{MEMBER}:")] == []
    assert result.inventory["iam_policies"] == [] and result.inventory["iam_users"] == []
