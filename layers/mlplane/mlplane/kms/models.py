"""The KMS domain's models: the secure-vault key and the change to its key policy (REQUIREMENTS K1, K2)."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class VaultKey(_Model):
    """The symmetric key found by its alias (seed 000 prerequisite, Step 5)."""

    key_id: str
    arn: str
    alias: str
    state: str
    owned: bool = Field(description="carries mlplane's tags for this account (mlplane created it)")
    adopted: bool = Field(default=False, description="made by hand, adopted by mlplane for this account (D3)")


class PolicyPatch(_Model):
    """The key policy after merging mlplane's statement, and whether it differs from the current one."""

    sid: str
    role_arn: str
    changed: bool
    policy: dict[str, Any]
    size: int = Field(description="bytes of the serialised policy (KMS limit 32,768)")
    administrators: tuple[str, ...] = Field(description="principals still allowed kms:PutKeyPolicy")
