"""A member account as one step sees it: its session, its ledger records, and mlplane's tags."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

from mlplane import aws
from mlplane.config import Settings
from mlplane.deadline import Deadline
from mlplane.ledger import Ledger, ResourceRecord, ResourceState
from mlplane.ledger.store import UNREAD, Unread

MANAGED_TAG = "mlplane:managed"
ACCOUNT_TAG = "mlplane:account"
EXECUTION_TAG = "mlplane:execution"
KEY_TAG = "mlplane:key"
CANVAS_ROLE_PREFIX = "AmazonSageMakerCanvasEMRSExecutionAccess-"
"""Canvas only offers existing roles whose name begins with this (seed 001; `mlplane.modules.canvas`)."""

ADOPTED = "adopted"
"""`mlplane:managed` of a resource made by hand and adopted (D3): every ownership check (`== "true"`) says it
is not mlplane's, so nothing ever deletes it."""


def adopted_here(tags: dict[str, str], account_id: str) -> bool:
    """A hand-made resource mlplane adopted for this account (D3): audit judges it as mlplane's (its tags, its
    document, its routes), no ownership check lets anything delete it."""
    return tags.get(MANAGED_TAG) == ADOPTED and tags.get(ACCOUNT_TAG) == account_id


class Adoption(NamedTuple):  # not a frozen dataclass: ~0.5 ms less of every cold start (CPython 3.11)
    """How a step takes over a resource made by hand (`mlplane adopt`, REQUIREMENTS D3).

    `match`: the hand-made resource for the plan key (by the seed's names, tags and CIDRs), not mlplane's own, or
    None; `tag`: put mlplane's adopted tags on it (None for what has no tags: routes, associations, CIDRs).
    """

    match: Callable[[], str | None]
    tag: Callable[[str], None] | None = None


@dataclass(frozen=True)
class Member:
    """Everything a step needs to change one member account and record what it did."""

    account_id: str
    region: str
    execution: str
    step: str
    session: aws.Session
    ledger: Ledger
    deadline: Deadline = field(default_factory=Deadline)  # the running Lambda's (none outside Lambda)
    adopting: bool = False  # an adopt run: what exists by hand is recorded ADOPTED instead of being created
    purpose: str = "core"  # whose session policy `session` carries (PURPOSES)
    # The same account assumed for another purpose (member_for sets it; a Member made by hand has none).
    assume: Callable[[str], aws.Session] | None = field(default=None, repr=False, compare=False)

    def for_purpose(self, purpose: str) -> Member:
        """This member with a session of `purpose` (its own session policy), same execution, step and ledger."""
        if purpose == self.purpose:
            return self
        if self.assume is None:
            raise ValueError(f"member {self.account_id} cannot assume a session for purpose {purpose!r}")
        return replace(self, session=self.assume(purpose), purpose=purpose)

    def adopted_tags(self, key: str) -> dict[str, str]:
        """mlplane's tags on a resource it adopted: `mlplane:managed=adopted`, never `true` (never deleted)."""
        return {**self.tags(key), MANAGED_TAG: ADOPTED}

    def client(self, service: str, purpose: str | None = None) -> Any:
        """A client of `service` in this member's session, or (`purpose`) in that purpose's session."""
        if purpose is None:
            return aws.client(self.session, service)
        if self.assume is None:
            raise ValueError(f"no {purpose} session for account {self.account_id}: built without member_for")
        return aws.client(self.assume(purpose), service)

    def tags(self, key: str) -> dict[str, str]:
        """mlplane's tags for the resource with plan key `key` (how a lost ledger write is recovered)."""
        return {MANAGED_TAG: "true", ACCOUNT_TAG: self.account_id, EXECUTION_TAG: self.execution, KEY_TAG: key}

    def tag_list(self, key: str, extra: dict[str, str] | None = None) -> list[dict[str, str]]:
        return [{"Key": k, "Value": v} for k, v in {**(extra or {}), **self.tags(key)}.items()]

    def ensure(
        self,
        *,
        key: str,
        type: str,
        find: Callable[[], str | None],
        create: Callable[[], str],
        data: dict[str, Any] | None = None,
        adopt: Adoption | None = None,
        known: ResourceRecord | Unread | None = UNREAD,
    ) -> tuple[str, bool]:
        """Create the resource `key` once: ledger intent, find by tags/token, else create; ledger id.

        Returns (id, created_now). A re-run, or a run after a crash between create and ledger write,
        finds the resource instead of creating a second one.

        `adopt`: in an adopt run (`adopting`), a hand-made match is recorded ADOPTED (before it is tagged, so a
        crash never leaves mlplane's tags on something the ledger does not hold) instead of anything being
        created; in any run, an adopted record whose resource still matches is kept as it is.

        `known`: the record of `key` the caller just read (None: there is none), saving the read here.
        """
        record = self.ledger.resource(self.account_id, key) if known is UNREAD else known
        if record is not None and record.state == ResourceState.CREATED and record.resource_id:
            found = find()
            if found == record.resource_id:
                return found, False
        if record is not None and record.state == ResourceState.ADOPTED and adopt is not None:
            # tagged types are matched (mlplane:managed=adopted); a route or an association by its finder, so that
            # a reconcile puts back a hand-made route that no longer points where the plan says
            current = adopt.match() if adopt.tag is not None else find()
            if current == record.resource_id and record.resource_id:
                return record.resource_id, False
        fresh = record is None or record.state not in (ResourceState.INTENT, ResourceState.CREATED)
        if self.adopting and adopt is not None and fresh:
            matched = adopt.match()
            if matched is not None:
                self.ledger.record_adopted(
                    self.account_id,
                    key=key,
                    type=type,
                    step=self.step,
                    execution=self.execution,
                    resource_id=matched,
                    data=data,
                )
                if adopt.tag is not None:
                    adopt.tag(matched)
                return matched, False
        intent = self.ledger.record_intent(
            self.account_id,
            key=key,
            type=type,
            step=self.step,
            execution=self.execution,
            data=data,
            known=record,
        )
        found = find()
        if found is not None:
            self.ledger.record_created(self.account_id, key=key, resource_id=found, data=data, known=intent)
            return found, False
        made = create()
        self.ledger.record_created(self.account_id, key=key, resource_id=made, data=data, known=intent)
        return made, True


def hub_ledger(settings: Settings) -> Ledger:
    return Ledger(aws.client(aws.hub_session(settings.aws_region), "dynamodb"), settings.ledger_table)


# The purposes mlplane assumes member roles for, each with its own session policy
# (`session_policies/<purpose>.json`): STS allows 2,048 characters per session policy, so each purpose's work
# runs in a session allowed only what that purpose needs. member-role.yaml carries the union of them all.
PURPOSES: tuple[str, ...] = (
    "core",  # network, service account and policies, vault key, quotas, the vendor's footprint (reads)
    "access_key",  # the service account's optional access key, kept in Secrets Manager (I4)
    "canvas",  # the Canvas module (M1): its EMR Serverless role, mlplane's inline policy on the domain's role
    "adopt",  # hand-made resources adopted (D3): mlplane:* tags on and off, routes of adopted route tables
    "service_catalog",  # the Service Catalog module (M2): its launch role, template bucket, portfolio, product
)
ADOPT = "adopt"


def session_policy(settings: Settings, purpose: str = "core") -> str:
    """The member session policy of `purpose` for this stack's service account and vault key alias (mlplane.aws).
    A policy that would not fit STS's 2,048 characters with these settings is a ConfigError naming the purpose."""
    if purpose not in PURPOSES:
        raise ValueError(f"unknown member session purpose {purpose!r}; known: {', '.join(PURPOSES)}")
    canvas = settings.modules.canvas
    return aws.member_session_policy(
        purpose,
        SaUserName=settings.sa_user_name,
        VaultKeyAlias=settings.vault_key_alias,
        # The custom domain's execution role; without one, the module's own role (the statement adds nothing).
        CanvasExecutionRoleName=canvas.execution_role_name or f"{CANVAS_ROLE_PREFIX}{canvas.role_suffix}",
    )


def session_policies(settings: Settings) -> dict[str, str]:
    """Every purpose's session policy (ValidateAccount checks they all fit before anything is created)."""
    return {purpose: session_policy(settings, purpose) for purpose in PURPOSES}


def member_for(
    account_id: str,
    execution: str,
    step: str,
    settings: Settings,
    deadline: Deadline | None = None,
    *,
    purpose: str = "core",
    adopting: bool = False,
) -> Member:
    """Assume the member role (cached per purpose) with the session policy of `purpose`, and bundle it with the
    hub's ledger (and the Lambda's deadline). `Member.for_purpose` gives the same account for another purpose;
    `Member.client(service, purpose)` a client in that purpose's session, assumed when first asked for."""

    def assume(wanted: str) -> aws.Session:
        return aws.session_for(
            account_id,
            settings.member_role_name,
            region=settings.member_region,
            session_name=execution,
            session_policy=session_policy(settings, wanted),
        )

    return Member(
        account_id=account_id,
        region=settings.member_region,
        execution=execution,
        step=step,
        session=assume(purpose),
        ledger=hub_ledger(settings),
        deadline=deadline or Deadline(),
        purpose=purpose,
        adopting=adopting,
        assume=assume,
    )
