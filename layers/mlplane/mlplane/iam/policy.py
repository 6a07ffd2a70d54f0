"""The service account's customer-managed policy documents (REQUIREMENTS I2, SaExtraPolicies): the shipped files
and the limits IAM would refuse them for, checked before any AWS call.

Apart from the plan (`mlplane.iam.plan`): ValidateAccount checks the documents and plans nothing, and the plan's
models would otherwise be part of its cold start.
"""

from __future__ import annotations

import json
import re
from importlib import resources
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any

from mlplane.errors import ConfigError

if TYPE_CHECKING:
    from mlplane.config import Settings

POLICY_FILE = "aac_ml_sa_policy.json"
POLICIES_DIR = "policies"  # mlplane/policies/AAC_MachineLearning*.json: further customer policies (SaExtraPolicies)
POLICY_NAME_LIMIT = 128  # IAM: characters of a policy name
MAX_USER_POLICIES = 10  # IAM: managed policies attached to one user (the default quota; 20 on request)
POLICY_VERSIONS = ("2012-10-17", "2008-10-17")
POLICY_NAME_PREFIX = "AAC_MachineLearning"
POLICY_SIZE_LIMIT = 6_144  # IAM: characters of a managed policy document, whitespace not counted

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
