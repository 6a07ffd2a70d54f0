"""Drift, as someone with console access makes it: named changes to a provisioned account (`mlplane audit
--local --drift NAME`), made as the member account's own admin, outside mlplane (its calls are not recorded)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from mlplane.config import Settings
from mlplane.kms import policy as key_policy
from mlplane_sandbox.world import as_account, sandbox_client


def _tagged(ec2: Any, operation: str, result: str, key: str) -> dict[str, Any]:
    found = getattr(ec2, operation)(Filters=[{"Name": "tag:mlplane:key", "Values": [key]}])[result]
    if not found:
        raise LookupError(f"no resource with mlplane:key={key}")
    return dict(found[0])


def _delete_route(settings: Settings) -> str:
    ec2 = sandbox_client("ec2")
    table = _tagged(ec2, "describe_route_tables", "RouteTables", "rtb/eks_node/a")
    ec2.delete_route(RouteTableId=table["RouteTableId"], DestinationCidrBlock="0.0.0.0/0")
    return f"deleted 0.0.0.0/0 from {table['RouteTableId']}"


def _untag_subnet(settings: Settings) -> str:
    ec2 = sandbox_client("ec2")
    subnet = _tagged(ec2, "describe_subnets", "Subnets", "subnet/eks_node/a")
    ec2.delete_tags(Resources=[subnet["SubnetId"]], Tags=[{"Key": "AACSubnet"}])
    return f"removed AACSubnet from {subnet['SubnetId']}"


def _dns_off(settings: Settings) -> str:
    ec2 = sandbox_client("ec2")
    vpc = _tagged(ec2, "describe_vpcs", "Vpcs", "vpc")
    ec2.modify_vpc_attribute(VpcId=vpc["VpcId"], EnableDnsHostnames={"Value": False})
    return f"turned DNS hostnames off in {vpc['VpcId']}"


def _drop_kms_statement(settings: Settings) -> str:
    kms = sandbox_client("kms")
    key_id = kms.describe_key(KeyId=settings.vault_key_alias)["KeyMetadata"]["KeyId"]
    current = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    kms.put_key_policy(
        KeyId=key_id,
        PolicyName="default",
        Policy=json.dumps(key_policy.remove_statement(current, key_policy.MLPLANE_SID)),
    )
    return f"removed mlplane's statement from key {key_id}'s policy"


def _detach_policy(settings: Settings) -> str:
    iam = sandbox_client("iam")
    user = settings.sa_user_name
    (arn,) = [
        p["PolicyArn"]
        for p in iam.list_attached_user_policies(UserName=user)["AttachedPolicies"]
        if p["PolicyName"] == settings.sa_policy_name
    ]
    iam.detach_user_policy(UserName=user, PolicyArn=arn)
    return f"detached {settings.sa_policy_name} from {user}"


DRIFTS: dict[str, Callable[[Settings], str]] = {
    "delete-route": _delete_route,
    "untag-subnet": _untag_subnet,
    "dns-off": _dns_off,
    "drop-kms-statement": _drop_kms_statement,
    "detach-policy": _detach_policy,
}
"""Every named drift; `--drift` takes these names."""


def apply(name: str, account_id: str, settings: Settings) -> str:
    """Make the named change in the account; what was done, in words."""
    if name not in DRIFTS:
        raise KeyError(f"unknown drift {name!r}: expected one of {', '.join(DRIFTS)}")
    with as_account(account_id):
        return DRIFTS[name](settings)
