"""The one module that creates boto3 sessions and clients.

Sessions into member accounts are assumed from the hub session once per (account, role, region, session policy) and
refreshed before they expire; clients are made once per session and service. Parallel branches of the
workflow run handlers in threads, so the caches are guarded by a lock. No work at import.
"""

from __future__ import annotations

import json
import string
import threading
import time
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, NamedTuple

import boto3
import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from mlplane import __version__, consistency
from mlplane.errors import AccessDenied, ConfigError, translate

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient

Session = boto3.Session
"""The session type other modules annotate with (they never construct one)."""

_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 4},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra=f"mlplane/{__version__}",
)
# Assumed-role credentials last an hour; refresh well before so a long step never holds stale ones.
_REFRESH_MARGIN_SECONDS = 600
_SESSION_SECONDS = 3600


class _CachedSession(NamedTuple):  # not a dataclass: less of every cold start (CPython 3.11)
    session: boto3.Session
    expires_at: float


_lock = threading.RLock()
_loader_lock = threading.Lock()
_loader: botocore.loaders.Loader | None = None
_hub: dict[str, boto3.Session] = {}
_members: dict[tuple[str, str, str, str], _CachedSession] = {}
_clients: dict[tuple[int, str], Any] = {}
# Set only by the operator CLI (--profile, --endpoint-url); a Lambda uses its own role and AWS's endpoints.
_cli_options: dict[str, str | None] = {}


def partition_for(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def role_arn(account_id: str, role_name: str, *, region: str) -> str:
    return f"arn:{partition_for(region)}:iam::{account_id}:role/{role_name}"


def new_session(**kwargs: Any) -> boto3.Session:
    """A boto3 session sharing one model loader: each fresh botocore session would otherwise re-read and
    re-parse the service's JSON model (about 100 ms for EC2) for its first client."""
    global _loader  # noqa: PLW0603 - process-wide cache, like botocore's own
    # Its own lock, held for nothing else: `_lock` is held across AWS calls (session_for's AssumeRole), and a
    # session may be made while another lock is held (the sandbox's moto makes one for its region lists while
    # it holds its backend lock, which an AWS call waits for): taking `_lock` here deadlocked a burst.
    with _loader_lock:
        if _loader is None:
            _loader = botocore.loaders.create_loader()
    core = botocore.session.Session()
    core.register_component("data_loader", _loader)
    return boto3.Session(botocore_session=core, **kwargs)


def hub_session(region: str) -> boto3.Session:
    """The session of the account the stack runs in (the Lambda's own role, or the CLI's profile)."""
    with _lock:
        if region not in _hub:
            _hub[region] = new_session(region_name=region, profile_name=_cli_options.get("profile"))
        return _hub[region]


def configure_hub(*, profile: str | None = None, endpoint_url: str | None = None) -> None:
    """The operator CLI's --profile (the hub's credentials) and --endpoint-url (every client, hub and member:
    a local endpoint such as `mlplane local serve`). Forgets cached sessions and clients made before."""
    with _lock:
        reset()
        _cli_options.update(profile=profile, endpoint_url=endpoint_url)


SESSION_POLICIES_DIR = "session_policies"  # <purpose>.json, one per purpose (mlplane.member.PURPOSES)
STS_SESSION_POLICY_LIMIT = 2048  # characters of an inline session policy (STS AssumeRole, Policy)


def member_session_policy_template(purpose: str) -> dict[str, Any]:
    """The session policy of one purpose as shipped (`session_policies/<purpose>.json`): `${SaUserName}`,
    `${VaultKeyAlias}` are the stack's settings (CloudFormation's Sub syntax: member-role.yaml carries the union
    of the purposes' statements, each such string in !Sub)."""
    path = resources.files("mlplane").joinpath(SESSION_POLICIES_DIR, f"{purpose}.json")
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


@cache
def member_session_policy(purpose: str, **values: str) -> str:
    """The session policy mlplane assumes member roles with for `purpose`, filled with the settings it scopes by.

    The execution role (AWSControlTowerExecution) is an administrator; each session policy limits one session
    to the member-side actions of one purpose (core: network, IAM, key, quotas; access_key: the service
    account's access key and its secret), on the service account, the AAC_MachineLearning* policies, the vault
    key and alias, and resources tagged mlplane:managed=true. The effective permissions are the intersection of
    the two. moto does not enforce session policies: tests/contract/test_least_privilege.py evaluates every
    member-account call recorded in the sandbox, with its resources and conditions, against the policy of the
    session that made it. Minified and without Sids (documentation only): STS allows 2,048 characters; setting
    values that would not fit are refused here (ConfigError) rather than by AssumeRole on the first account.
    """
    document = _substitute(member_session_policy_template(purpose), values)
    document["Statement"] = [{k: v for k, v in s.items() if k != "Sid"} for s in document["Statement"]]
    text = json.dumps(document, separators=(",", ":"))
    if len(text) > STS_SESSION_POLICY_LIMIT:
        named = ", ".join(f"{key} {value!r}" for key, value in sorted(values.items()))
        raise ConfigError(
            f"the {purpose} member session policy for {named} is {len(text)} characters;"
            f" STS allows {STS_SESSION_POLICY_LIMIT}: choose shorter names"
        )
    return text


def _substitute(value: Any, values: dict[str, str]) -> Any:
    if isinstance(value, str):
        return string.Template(value).substitute(values)
    if isinstance(value, list):
        return [_substitute(item, values) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, values) for key, item in value.items()}
    return value


def session_for(
    account_id: str, role_name: str, *, region: str, session_name: str, session_policy: str
) -> boto3.Session:
    """A session in a member account, assumed from the hub through STS.

    The session name carries the execution name so CloudTrail ties the member account's calls to a run.
    `session_policy` (JSON) limits the session below the role's permissions: mlplane's own, one per purpose,
    is `member_session_policy(purpose, ...)` (`mlplane.member.session_policy(settings, purpose)`); each policy is
    its own cached session. Raises AccessDenied naming the
    role and account when the role cannot be assumed.
    """
    key = (account_id, role_name, region, session_policy)
    with _lock:
        cached = _members.get(key)
        if cached and cached.expires_at - time.time() > _REFRESH_MARGIN_SECONDS:
            return cached.session
        sts: STSClient = client(hub_session(region), "sts")
        arn = role_arn(account_id, role_name, region=region)
        try:
            answer = sts.assume_role(
                RoleArn=arn,
                RoleSessionName=_session_name(session_name),
                DurationSeconds=_SESSION_SECONDS,
                Policy=session_policy,
            )
        except ClientError as err:
            raise AccessDenied(
                f"cannot assume role {role_name} in account {account_id}: {translate(err, 'sts:AssumeRole')}"
            ) from err
        creds = answer["Credentials"]
        session = new_session(
            aws_access_key_id=creds["AccessKeyId"],
            aws_secret_access_key=creds["SecretAccessKey"],
            aws_session_token=creds["SessionToken"],
            region_name=region,
        )
        _members[key] = _CachedSession(session, creds["Expiration"].timestamp())
        return session


def client(session: boto3.Session, service: str) -> Any:
    """A client of `service` for `session`, made once, with mlplane's retry and timeout settings (and, for EC2
    and IAM, the NotFound retry of `mlplane.consistency.settling`)."""
    key = (id(session), service)
    with _lock:
        made = _clients.get(key)
        if made is None:
            endpoint = _cli_options.get("endpoint_url")
            made = session.client(service, config=_CONFIG, endpoint_url=endpoint)  # type: ignore[call-overload]
            if service in consistency.SERVICES:
                consistency.install(made)  # NotFound after mlplane's own create is retried (mlplane.consistency)
            _clients[key] = made
        return made


def reset() -> None:
    """Forget every cached session and client (tests and the sandbox between runs) and the CLI's hub options."""
    with _lock:
        _cli_options.clear()
        _hub.clear()
        _members.clear()
        _clients.clear()


def _session_name(execution: str) -> str:
    # RoleSessionName: 2-64 characters of [\w+=,.@-].
    cleaned = "".join(ch if ch.isalnum() or ch in "+=,.@-_" else "-" for ch in f"mlplane-{execution}")
    return cleaned[:64]
