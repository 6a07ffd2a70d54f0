"""The IAM domain's models: what is observed in a member account and the plan to converge it (I1, I2)."""

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class PolicyVersion(_Model):
    """One version of a customer-managed policy (IAM keeps at most five)."""

    version_id: str = Field(description="IAM's id, 'v1', 'v2', ...")
    is_default: bool


class ObservedUser(_Model):
    name: str
    owned: bool = Field(default=False, description="carries mlplane's tags for this account")
    adopted: bool = Field(default=False, description="made by hand, adopted by mlplane for this account (D3)")
    tags: dict[str, str] = Field(default_factory=dict)
    attached_policy_arns: tuple[str, ...] = ()


class ObservedPolicy(_Model):
    arn: str
    owned: bool = Field(default=False, description="carries mlplane's tags for this account")
    adopted: bool = Field(default=False, description="made by hand, adopted by mlplane for this account (D3)")
    tags: dict[str, str] = Field(default_factory=dict)
    default_document: dict[str, Any]
    default_version_id: str
    versions: tuple[PolicyVersion, ...] = ()


class IamObserved(_Model):
    """The service account and its policies as they are in the member account (None: absent)."""

    account_id: str
    user: ObservedUser | None = None
    policy: ObservedPolicy | None = None
    extra_policies: dict[str, ObservedPolicy] = Field(
        default_factory=dict, description="the customer policies (by name) configured and present"
    )


class UserAction(StrEnum):
    CREATE = "create"  # absent: mlplane creates it, tagged
    ADOPT = "adopt"  # present and tagged by mlplane (an earlier run, or a crash before the ledger write)
    REUSE = "reuse"  # present and not mlplane's: used as is, never recorded as created


class PolicyAction(StrEnum):
    CREATE = "create"
    UPDATE = "update"  # a new default version with the shipped document
    KEEP = "keep"  # the default version already has the shipped document


class PolicyPlan(_Model):
    """What CreateIam does to one customer-managed policy: the seed's (I2) or a further one shipped as a file."""

    name: str
    arn: str
    action: PolicyAction
    is_mlplanes: bool
    size: int = Field(description="characters of the document without whitespace (IAM limit 6,144)")
    prune_versions: tuple[str, ...] = ()
    tag_policy: bool = False
    attach: bool
    suffix: str = Field(default="", description="'' for the seed policy, '/<name>' for a further one: its ledger keys")


class IamPlan(_Model):
    """What CreateIam does, decided from the observed state; `mlplane plan` prints it."""

    user_name: str
    user_action: UserAction
    user_is_mlplanes: bool = Field(description="the user carries mlplane's tags (CREATE or ADOPT)")
    policy_name: str
    policy_arn: str
    policy_action: PolicyAction
    policy_is_mlplanes: bool
    policy_size: int = Field(description="characters of the document without whitespace (IAM limit 6,144)")
    prune_versions: tuple[str, ...] = Field(
        default=(), description="oldest non-default versions deleted first to stay within IAM's five"
    )
    tag_policy: bool = Field(default=False, description="the AACResource tag is missing on an existing policy")
    tag_user: bool = Field(default=False, description="the AACResource tag is missing on an existing user (I4)")
    attach: bool = Field(description="the policy is not yet attached to the user")
    extra_policies: tuple[PolicyPlan, ...] = Field(
        default=(), description="the further customer policies (SaExtraPolicies), created, tagged and attached like I2"
    )

    def seed_policy(self) -> PolicyPlan:
        """The seed policy's part of the plan, in the shape of a further policy's."""
        return PolicyPlan(
            name=self.policy_name,
            arn=self.policy_arn,
            action=self.policy_action,
            is_mlplanes=self.policy_is_mlplanes,
            size=self.policy_size,
            prune_versions=self.prune_versions,
            tag_policy=self.tag_policy,
            attach=self.attach,
        )

    def policies(self) -> tuple[PolicyPlan, ...]:
        """Every customer-managed policy, the seed's first: the order CreateIam converges them in."""
        return (self.seed_policy(), *self.extra_policies)
