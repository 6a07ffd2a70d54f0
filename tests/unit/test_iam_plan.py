"""The shipped service-account policy and the pure IAM plan (REQUIREMENTS I1, I2)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

import mlplane.iam.plan as plan_module
import mlplane.iam.policy as iam_policy_module
import mlplane.kms.policy as policy_module
from mlplane.config import Settings, settings_from
from mlplane.errors import ConfigError
from mlplane.iam.models import IamObserved, ObservedPolicy, ObservedUser, PolicyAction, PolicyVersion, UserAction
from mlplane.iam.plan import plan, versions_to_prune
from mlplane.iam.policy import check_policy, policy_size, shipped_policy
from tests.conftest import SEED_STEP_1A, SEEDS, seed_policy_text

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "111111111111"
ARN = f"arn:aws:iam::{ACCOUNT}:policy/AAC_MachineLearning_SA_Policy"


def _seed_policy_text() -> str:
    return seed_policy_text()


def test_i2_shipped_policy_is_exactly_the_seed_document() -> None:
    assert shipped_policy() == json.loads(_seed_policy_text())


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the project's seed documents are not beside this clone")
def test_i2_the_repos_excerpt_is_verbatim_from_seed_000() -> None:
    seed = next(SEEDS.glob("000_*.txt")).read_text(encoding="utf-8")
    assert SEED_STEP_1A.read_text(encoding="utf-8") in seed


def test_i2_shipped_file_is_pretty_printed_json() -> None:
    text = (REPO / "layers/mlplane/mlplane/iam/aac_ml_sa_policy.json").read_text(encoding="utf-8")
    assert text == json.dumps(json.loads(text), indent=2) + "\n"


def test_i2_policy_size_without_whitespace_is_4545_under_the_6144_limit() -> None:
    assert policy_size(shipped_policy()) == 4_545
    assert len(re.sub(r"\s", "", _seed_policy_text())) == 4_545  # as IAM counts the seed's own text
    assert check_policy("AAC_MachineLearning_SA_Policy", shipped_policy()) == 4_545


@pytest.mark.parametrize("name", ["MyPolicy", "aac_machinelearning_x", "AAC_Machine_Learning", ""])
def test_i2_policy_name_without_the_vendor_prefix_is_rejected(name: str) -> None:
    with pytest.raises(ConfigError) as err:
        check_policy(name, shipped_policy())
    assert "AAC_MachineLearning" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(ConfigError):
        settings_from({"sa_policy_name": name})


def test_i2_oversized_document_is_rejected_before_any_call() -> None:
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "s3:" + "x" * 6_200, "Resource": "*"}],
    }
    with pytest.raises(ConfigError, match="over IAM's 6144"):
        check_policy("AAC_MachineLearning_Big", document)


def test_i2_whitespace_is_not_counted() -> None:
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:Get Object", "Resource": "*"}]}
    compact = json.dumps(document, separators=(",", ":"))
    assert policy_size(document) == len(compact) - 1


def _observed(user: ObservedUser | None = None, policy: ObservedPolicy | None = None) -> IamObserved:
    return IamObserved(account_id=ACCOUNT, user=user, policy=policy)


def _policy(
    document: dict[str, Any], *, owned: bool = True, versions: int = 1, tags: dict[str, str] | None = None
) -> ObservedPolicy:
    return ObservedPolicy(
        arn=ARN,
        owned=owned,
        tags={"AACResource": "aac_sa_custom_policy"} if tags is None else tags,
        default_document=document,
        default_version_id=f"v{versions}",
        versions=tuple(PolicyVersion(version_id=f"v{i}", is_default=i == versions) for i in range(1, versions + 1)),
    )


def test_i1_i2_empty_account_creates_user_policy_and_attachment() -> None:
    decided = plan(Settings(), _observed(), document=shipped_policy(), policy_arn=ARN)
    assert (decided.user_action, decided.policy_action, decided.attach) == (
        UserAction.CREATE,
        PolicyAction.CREATE,
        True,
    )
    assert decided.user_name == "aac_automation_sa"
    assert decided.user_is_mlplanes and decided.policy_is_mlplanes and not decided.tag_policy


def test_i1_existing_user_not_mlplanes_is_reused_not_owned() -> None:
    decided = plan(
        Settings(), _observed(ObservedUser(name="aac_automation_sa")), document=shipped_policy(), policy_arn=ARN
    )
    assert decided.user_action == UserAction.REUSE and not decided.user_is_mlplanes


def test_i1_i2_converged_account_needs_nothing() -> None:
    user = ObservedUser(name="aac_automation_sa", owned=True, attached_policy_arns=(ARN,))
    decided = plan(Settings(), _observed(user, _policy(shipped_policy())), document=shipped_policy(), policy_arn=ARN)
    assert (decided.user_action, decided.policy_action, decided.attach) == (UserAction.ADOPT, PolicyAction.KEEP, False)
    assert decided.prune_versions == ()


def test_i2_different_document_gets_a_new_version_pruning_the_oldest_at_five() -> None:
    old = {"Version": "2012-10-17", "Statement": []}
    decided = plan(Settings(), _observed(None, _policy(old, versions=5)), document=shipped_policy(), policy_arn=ARN)
    assert decided.policy_action == PolicyAction.UPDATE
    assert decided.prune_versions == ("v1",)


def test_i2_existing_policy_without_the_aac_tag_is_tagged() -> None:
    decided = plan(
        Settings(),
        _observed(None, _policy(shipped_policy(), owned=False, tags={})),
        document=shipped_policy(),
        policy_arn=ARN,
    )
    assert decided.tag_policy and not decided.policy_is_mlplanes


@pytest.mark.parametrize(
    ("versions", "expected"),
    [
        ((("v1", True),), ()),
        ((("v1", False), ("v2", False), ("v3", False), ("v4", True)), ()),
        ((("v1", False), ("v2", False), ("v3", True), ("v4", False), ("v5", False)), ("v1",)),
        ((("v10", False), ("v9", False), ("v11", True), ("v12", False), ("v13", False)), ("v9",)),
        ((("v1", True), ("v2", False), ("v3", False), ("v4", False), ("v5", False)), ("v2",)),
    ],
)
def test_i2_prune_keeps_within_five_versions_and_never_the_default(
    versions: tuple[tuple[str, bool], ...], expected: tuple[str, ...]
) -> None:
    observed = tuple(PolicyVersion(version_id=v, is_default=d) for v, d in versions)
    assert versions_to_prune(observed) == expected


def test_plan_module_is_pure() -> None:
    """No boto3/botocore, clock or uuid in iam/plan.py, iam/policy.py and kms/policy.py (STYLE: plan vs apply)."""
    for module in (plan_module, iam_policy_module, policy_module):
        tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
        names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert not {name for name in names if name.split(".")[0] in {"boto3", "botocore", "time", "uuid", "datetime"}}
