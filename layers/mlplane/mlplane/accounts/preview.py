"""`mlplane plan`: what provisioning would create in an account, computed without any mutating call."""

from __future__ import annotations

from typing import Any

from mlplane.config import Settings
from mlplane.iam.plan import check_policy, shipped_policy
from mlplane.member import Member
from mlplane.network.apply import plan_for


def preview(member: Member, settings: Settings) -> dict[str, Any]:
    """The network plan (observed AZs, allocated CIDRs in tgw mode) and the other steps' intended changes."""
    network = plan_for(member, settings)
    return {
        "account_id": member.account_id,
        "region": settings.member_region,
        "network": network.model_dump(mode="json"),
        "iam": {
            "user": settings.sa_user_name,
            "policy": settings.sa_policy_name,
            "policy_characters": check_policy(settings.sa_policy_name, shipped_policy()),
            "policy_tag": {"AACResource": "aac_sa_custom_policy"},
        },
        "kms": {"alias": settings.vault_key_alias, "credential_role": settings.credential_role_name},
        "quotas": [target.model_dump(mode="json") for target in settings.quota_targets],
    }
