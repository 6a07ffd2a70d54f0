"""Pure planning of the service account and its policy (REQUIREMENTS I1, I2): no AWS calls, no clock."""

from __future__ import annotations

import json
import re
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

from mlplane.config import Settings
from mlplane.errors import ConfigError
from mlplane.iam.models import IamObserved, IamPlan, ObservedPolicy, PolicyAction, PolicyPlan, PolicyVersion, UserAction

POLICY_FILE = "aac_ml_sa_policy.json"
POLICIES_DIR = "policies"  # mlplane/policies/AAC_MachineLearning*.json: further customer policies (SaExtraPolicies)
POLICY_NAME_LIMIT = 128  # IAM: characters of a policy name
MAX_USER_POLICIES = 10  # IAM: managed policies attached to one user (the default quota; 20 on request)
POLICY_VERSIONS = ("2012-10-17", "2008-10-17")
POLICY_NAME_PREFIX = "AAC_MachineLearning"
POLICY_SIZE_LIMIT = 6_144  # IAM: characters of a managed policy document, whitespace not counted
MAX_POLICY_VERSIONS = 5  # IAM keeps at most five versions of a managed policy
AAC_RESOURCE_TAG = "AACResource"
AAC_RESOURCE_VALUE = "aac_sa_custom_policy"  # seed 000 step 1b
AAC_USER_TAG_VALUE = "aac_iam_user"  # the service account's, from the vendor's prerequisite page (REQUIREMENTS I4)

_WHITESPACE = re.compile(r"\s")
_IAM_NAME = re.compile(r"[A-Za-z0-9+=,.@_-]+")


def shipped_policy() -> dict[str, Any]:
    """The exact policy document of seed 000 step 1a, as shipped beside this module."""
    text = resources.files("mlplane.iam").joinpath(POLICY_FILE).read_text(encoding="utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


def policy_size(document: dict[str, Any]) -> int:
    """The document's size as IAM counts it against the managed-policy limit: whitespace is not counted."""
    return len(_WHITESPACE.sub("", json.dumps(document, separators=(",", ":"))))


def check_policy(name: str, document: dict[str, Any]) -> int:
    """Refuse (ConfigError, before any call) a name without the vendor's prefix or an oversized document."""
    if not name.startswith(POLICY_NAME_PREFIX):
        raise ConfigError(f"policy name {name!r} must start with {POLICY_NAME_PREFIX!r}")
    size = policy_size(document)
    if size > POLICY_SIZE_LIMIT:
        raise ConfigError(f"policy {name} is {size} characters without whitespace, over IAM's {POLICY_SIZE_LIMIT}")
    return size


def policies_folder() -> Traversable:
    """mlplane/policies/ as shipped in the layer (the package's data files)."""
    return resources.files("mlplane").joinpath(POLICIES_DIR)


def shipped_policy_files() -> tuple[str, ...]:
    """The further customer policies shipped in mlplane/policies/, by name (the file's stem)."""
    folder = policies_folder()
    if not folder.is_dir():
        return ()
    return tuple(
        sorted(
            f.name.removesuffix(".json")
            for f in folder.iterdir()
            if f.name.startswith(POLICY_NAME_PREFIX) and f.name.endswith(".json")
        )
    )


def extra_policies(settings: Settings) -> dict[str, dict[str, Any]]:
    """The documents of the further customer policies SaExtraPolicies names, each checked as IAM would check it
    (ConfigError naming the policy, before any AWS call: ValidateAccount and CreateIam both call this)."""
    names = settings.sa_extra_policies
    if 1 + len(names) > MAX_USER_POLICIES:
        raise ConfigError(
            f"SaExtraPolicies names {len(names)} policies: with {settings.sa_policy_name} that is over IAM's"
            f" {MAX_USER_POLICIES} managed policies per user"
        )
    shipped = shipped_policy_files()
    documents: dict[str, dict[str, Any]] = {}
    for name in names:
        if name in documents or name == settings.sa_policy_name:
            raise ConfigError(f"SaExtraPolicies names policy {name} twice (or it is SaPolicyName)")
        if len(name) > POLICY_NAME_LIMIT or not _IAM_NAME.fullmatch(name):
            raise ConfigError(
                f"policy name {name!r} must be 1-{POLICY_NAME_LIMIT} of the characters A-Z a-z 0-9 + = . @ _ -"
            )
        if not name.startswith(POLICY_NAME_PREFIX):
            raise ConfigError(f"policy name {name!r} must start with {POLICY_NAME_PREFIX!r}")
        if name not in shipped:
            known = ", ".join(shipped) or "none"
            raise ConfigError(f"no policy file {POLICIES_DIR}/{name}.json is shipped (shipped: {known})")
        text = policies_folder().joinpath(f"{name}.json").read_text(encoding="utf-8")
        try:
            document = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(f"{POLICIES_DIR}/{name}.json is not JSON: {err}") from err
        problem = document_problem(document)
        if problem:
            raise ConfigError(f"{POLICIES_DIR}/{name}.json is not an IAM policy document: {problem}")
        check_policy(name, document)
        documents[name] = document
    return documents


def document_problem(document: Any) -> str:
    """Why `document` is not an identity-based policy IAM's CreatePolicy would accept, or ""."""
    if not isinstance(document, dict):
        return "not a JSON object"
    if document.get("Version") not in POLICY_VERSIONS:
        return f"Version must be one of {', '.join(POLICY_VERSIONS)}"
    statements = document.get("Statement")
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not statements:
        return "no Statement"
    for number, statement in enumerate(statements, 1):
        problem = _statement_problem(statement)
        if problem:
            return f"statement {number}: {problem}"
    return ""


def _statement_problem(statement: Any) -> str:
    if not isinstance(statement, dict):
        return "not an object"
    if statement.get("Effect") not in ("Allow", "Deny"):
        return "Effect must be Allow or Deny"
    if ("Action" in statement) == ("NotAction" in statement):
        return "exactly one of Action and NotAction"
    if ("Resource" in statement) == ("NotResource" in statement):
        return "exactly one of Resource and NotResource"
    if "Principal" in statement or "NotPrincipal" in statement:
        return "an identity-based policy has no Principal"
    return ""


def plan_policy(
    name: str,
    arn: str,
    document: dict[str, Any],
    observed: ObservedPolicy | None,
    attached: tuple[str, ...] | None,
    *,
    suffix: str = "",
) -> PolicyPlan:
    """What CreateIam must do to one customer-managed policy (`attached`: the user's policies, None: no user)."""
    prune: tuple[str, ...] = ()
    if observed is None:
        action = PolicyAction.CREATE
    elif observed.default_document == document:
        action = PolicyAction.KEEP
    else:
        action = PolicyAction.UPDATE
        prune = versions_to_prune(observed.versions)
    return PolicyPlan(
        name=name,
        arn=arn,
        action=action,
        is_mlplanes=observed is None or observed.owned,
        size=policy_size(document),
        prune_versions=prune,
        tag_policy=observed is not None and observed.tags.get(AAC_RESOURCE_TAG) != AAC_RESOURCE_VALUE,
        attach=attached is None or arn not in attached,
        suffix=suffix,
    )


def versions_to_prune(versions: tuple[PolicyVersion, ...]) -> tuple[str, ...]:
    """The oldest non-default versions to delete so that one more version fits in IAM's five."""
    excess = len(versions) + 1 - MAX_POLICY_VERSIONS
    if excess <= 0:
        return ()
    candidates = sorted((v for v in versions if not v.is_default), key=lambda v: version_number(v.version_id))
    return tuple(v.version_id for v in candidates[:excess])


def plan(
    settings: Settings,
    observed: IamObserved,
    *,
    document: dict[str, Any],
    policy_arn: str,
    extra: dict[str, tuple[str, dict[str, Any]]] | None = None,
) -> IamPlan:
    """What CreateIam must do to reach I1/I2 from the observed state (`extra`: name -> (arn, document) of the
    further customer policies, `extra_policies`)."""
    check_policy(settings.sa_policy_name, document)
    user = observed.user
    if user is None:
        user_action = UserAction.CREATE
    elif user.owned:
        user_action = UserAction.ADOPT
    else:
        user_action = UserAction.REUSE
    attached = user.attached_policy_arns if user is not None else None
    seed = plan_policy(settings.sa_policy_name, policy_arn, document, observed.policy, attached)
    further = tuple(
        plan_policy(name, arn, doc, observed.extra_policies.get(name), attached, suffix=f"/{name}")
        for name, (arn, doc) in (extra or {}).items()
    )
    return IamPlan(
        user_name=settings.sa_user_name,
        user_action=user_action,
        user_is_mlplanes=user_action != UserAction.REUSE,
        policy_name=seed.name,
        policy_arn=seed.arn,
        policy_action=seed.action,
        policy_is_mlplanes=seed.is_mlplanes,
        policy_size=seed.size,
        prune_versions=seed.prune_versions,
        tag_policy=seed.tag_policy,
        tag_user=user is not None and user.tags.get(AAC_RESOURCE_TAG) != AAC_USER_TAG_VALUE,
        attach=seed.attach,
        extra_policies=further,
    )


def version_number(version_id: str) -> int:
    """2 for 'v2': IAM numbers a policy's versions in creation order."""
    digits = version_id.lstrip("vV")
    return int(digits) if digits.isdigit() else 0
