"""The member account read back after a run with describe/list calls, and what mlplane left behind."""

from __future__ import annotations

import contextlib
import json
from typing import Any
from urllib.parse import unquote

from botocore.exceptions import ClientError

from mlplane.member import ACCOUNT_TAG, MANAGED_TAG
from mlplane_sandbox.world import REGION, as_account, sandbox_client

GONE_STATES = frozenset({"deleted", "rejected"})
"""Terminal states of NAT gateways, VPC endpoints and transit gateway attachments: described for a while
after, but not there (listed neither in the inventory nor as leftovers)."""
NOT_LIVE_STATES = frozenset({*GONE_STATES, "deleting", "failed", "failing", "rejecting", "expired"})
"""Listed in the inventory with their state, but no leftover: on the way out, or failed (a failed NAT
gateway or attachment holds no address nor interface, and AWS removes it by itself)."""


def _tags(items: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in items or []}


def _target(route: dict[str, Any]) -> str:
    for key in ("GatewayId", "NatGatewayId", "TransitGatewayId", "VpcPeeringConnectionId", "NetworkInterfaceId"):
        if route.get(key):
            return str(route[key])
    return "unknown"


# The inventory's sections, in the order `mlplane local run` prints them (mlplane_cli.report): the one list.
SECTIONS = (
    "vpcs",
    "subnets",
    "route_tables",
    "internet_gateways",
    "nat_gateways",
    "elastic_ips",
    "vpc_endpoints",
    "transit_gateway_attachments",
    "network_interfaces",
    "security_groups",
    "iam_users",
    "access_keys",  # every user's, ids only: the secret half is never read
    "iam_policies",
    "iam_roles",
    "kms_keys",
    "secrets",  # Secrets Manager, scheduled deletions too (state PendingDeletion)
    "quota_requests",
    "eks_clusters",
    "canvas",  # the optional module M1: its role and inline policies (mlplane.modules.canvas)
    "service_catalog",  # the optional module M2: portfolio, product, launch role, template bucket
)
# Sections whose items carry tags (`tags`): what mlplane's tags name as another account's is a burst finding.
TAGGED_SECTIONS = (
    "vpcs",
    "subnets",
    "route_tables",
    "internet_gateways",
    "nat_gateways",
    "vpc_endpoints",
    "transit_gateway_attachments",
    "elastic_ips",
    "iam_users",
    "iam_policies",
    "kms_keys",
    "secrets",
)


def read(account_id: str) -> dict[str, Any]:  # noqa: C901, PLR0912, PLR0915 - one section per resource kind
    with as_account(account_id):
        ec2 = sandbox_client("ec2")
        vpcs = [v for v in ec2.describe_vpcs()["Vpcs"] if not v.get("IsDefault")]
        vpc_ids = {v["VpcId"] for v in vpcs}
        inventory: dict[str, Any] = {section: [] for section in SECTIONS}

        def attribute(vpc_id: str, name: str) -> bool:
            answer = ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=name)
            key = name[0].upper() + name[1:]
            return bool(answer[key]["Value"])

        for vpc in vpcs:
            inventory["vpcs"].append(
                {
                    "id": vpc["VpcId"],
                    "cidrs": [
                        a["CidrBlock"]
                        for a in vpc.get("CidrBlockAssociationSet", [])
                        if a.get("CidrBlockState", {}).get("State") in ("associated", "associating")
                    ],
                    "dns_support": attribute(vpc["VpcId"], "enableDnsSupport"),
                    "dns_hostnames": attribute(vpc["VpcId"], "enableDnsHostnames"),
                    "tags": _tags(vpc.get("Tags")),
                }
            )
        for subnet in ec2.describe_subnets()["Subnets"]:
            if subnet["VpcId"] in vpc_ids:
                inventory["subnets"].append(
                    {
                        "id": subnet["SubnetId"],
                        "vpc_id": subnet["VpcId"],
                        "cidr": subnet["CidrBlock"],
                        "az": subnet["AvailabilityZone"],
                        "tags": _tags(subnet.get("Tags")),
                    }
                )
        for table in ec2.describe_route_tables()["RouteTables"]:
            if table["VpcId"] not in vpc_ids:
                continue
            inventory["route_tables"].append(
                {
                    "id": table["RouteTableId"],
                    "vpc_id": table["VpcId"],
                    "subnet_ids": sorted(a["SubnetId"] for a in table.get("Associations", []) if a.get("SubnetId")),
                    "routes": [
                        {
                            "destination": r.get("DestinationCidrBlock") or r.get("DestinationPrefixListId"),
                            "target": _target(r),
                        }
                        for r in table.get("Routes", [])
                    ],
                    "tags": _tags(table.get("Tags")),
                }
            )
        for igw in ec2.describe_internet_gateways()["InternetGateways"]:
            attached = [a["VpcId"] for a in igw.get("Attachments", [])]
            tags = _tags(igw.get("Tags"))
            if set(attached) & vpc_ids or tags.get(MANAGED_TAG) == "true":
                inventory["internet_gateways"].append(
                    {"id": igw["InternetGatewayId"], "vpc_ids": attached, "tags": tags}
                )
        for nat in ec2.describe_nat_gateways()["NatGateways"]:
            if nat.get("State") not in GONE_STATES:
                inventory["nat_gateways"].append(
                    {
                        "id": nat["NatGatewayId"],
                        "subnet_id": nat["SubnetId"],
                        "state": nat["State"],
                        "tags": _tags(nat.get("Tags")),
                    }
                )
        for endpoint in ec2.describe_vpc_endpoints()["VpcEndpoints"]:
            # A deleted endpoint is still described for a while; it is no longer there.
            if endpoint["VpcId"] in vpc_ids and str(endpoint.get("State", "")).lower() not in GONE_STATES:
                inventory["vpc_endpoints"].append(
                    {
                        "id": endpoint["VpcEndpointId"],
                        "service": endpoint["ServiceName"],
                        "route_table_ids": sorted(endpoint.get("RouteTableIds", [])),
                        "state": str(endpoint.get("State", "")).lower(),
                        "tags": _tags(endpoint.get("Tags")),
                    }
                )
        with contextlib.suppress(ClientError):
            for att in ec2.describe_transit_gateway_vpc_attachments()["TransitGatewayVpcAttachments"]:
                if att.get("State") not in GONE_STATES:
                    inventory["transit_gateway_attachments"].append(
                        {
                            "id": att["TransitGatewayAttachmentId"],
                            "transit_gateway_id": att["TransitGatewayId"],
                            "vpc_id": att["VpcId"],
                            "subnet_ids": sorted(att.get("SubnetIds", [])),
                            "state": att.get("State"),
                            "tags": _tags(att.get("Tags")),
                        }
                    )
        _network_footprint(ec2, vpc_ids, account_id, inventory)
        inventory["elastic_ips"] = [
            {"id": a["AllocationId"], "tags": _tags(a.get("Tags"))} for a in ec2.describe_addresses()["Addresses"]
        ]
        iam = sandbox_client("iam")
        for user in iam.list_users()["Users"]:
            name = user["UserName"]
            inventory["iam_users"].append(
                {
                    "name": name,
                    "attached_policy_arns": sorted(
                        p["PolicyArn"] for p in iam.list_attached_user_policies(UserName=name)["AttachedPolicies"]
                    ),
                    "tags": _tags(iam.list_user_tags(UserName=name).get("Tags")),
                }
            )
            inventory["access_keys"] += [
                {"user": name, "id": k["AccessKeyId"], "status": k.get("Status", "")}
                for k in iam.list_access_keys(UserName=name)["AccessKeyMetadata"]
            ]
        for policy in iam.list_policies(Scope="Local")["Policies"]:
            version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
            document = version["PolicyVersion"]["Document"]
            if isinstance(document, str):
                document = json.loads(unquote(document))
            inventory["iam_policies"].append(
                {
                    "name": policy["PolicyName"],
                    "arn": policy["Arn"],
                    "document": document,
                    "tags": _tags(iam.list_policy_tags(PolicyArn=policy["Arn"]).get("Tags")),
                }
            )
        inventory["iam_roles"] = [{"name": r["RoleName"], "arn": r["Arn"]} for r in iam.list_roles()["Roles"]]
        inventory["canvas"] = _canvas(iam)
        inventory["service_catalog"] = _service_catalog(account_id, iam)
        kms = sandbox_client("kms")
        aliases = kms.list_aliases()["Aliases"]
        for key in kms.list_keys()["Keys"]:
            meta = kms.describe_key(KeyId=key["KeyId"])["KeyMetadata"]
            if meta.get("KeyManager") == "AWS":
                continue
            inventory["kms_keys"].append(
                {
                    "id": key["KeyId"],
                    "aliases": sorted(a["AliasName"] for a in aliases if a.get("TargetKeyId") == key["KeyId"]),
                    "policy": json.loads(kms.get_key_policy(KeyId=key["KeyId"], PolicyName="default")["Policy"]),
                    "rotation": bool(kms.get_key_rotation_status(KeyId=key["KeyId"]).get("KeyRotationEnabled")),
                    "state": meta["KeyState"],
                    "tags": {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key["KeyId"])["Tags"]},
                }
            )
        inventory["secrets"] = [
            {
                "name": secret["Name"],
                "arn": secret["ARN"],
                "kms_key_id": secret.get("KmsKeyId", ""),
                "state": "PendingDeletion" if secret.get("DeletedDate") else "Active",
                "tags": _tags(secret.get("Tags")),
            }
            for secret in sandbox_client("secretsmanager").list_secrets(IncludePlannedDeletion=True)["SecretList"]
        ]
        inventory["quota_requests"] = _quota_requests(account_id)
        eks = sandbox_client("eks")
        for name in eks.list_clusters()["clusters"]:
            cluster = eks.describe_cluster(name=name)["cluster"]
            groups = [
                eks.describe_nodegroup(clusterName=name, nodegroupName=g)["nodegroup"]
                for g in eks.list_nodegroups(clusterName=name)["nodegroups"]
            ]
            inventory["eks_clusters"].append(
                {
                    "name": name,
                    "status": cluster["status"],
                    "nodegroups": [{"name": g["nodegroupName"], "status": g["status"]} for g in groups],
                }
            )
    return inventory


def _canvas(iam: Any) -> list[dict[str, Any]]:
    """The Canvas module (M1): its EMR Serverless roles (`kind` role: trust, attached and inline policies), and
    every inline policy mlplane puts on a role (`kind` inline-policy, `mlplane-canvas-*`: on a custom domain's
    execution role too)."""
    from mlplane.modules import canvas

    roles: list[dict[str, Any]] = []
    inline: list[dict[str, Any]] = []
    for role in iam.list_roles()["Roles"]:
        name = role["RoleName"]
        names = iam.list_role_policies(RoleName=name)["PolicyNames"]
        for policy in names:
            if policy.startswith("mlplane-canvas"):
                document = iam.get_role_policy(RoleName=name, PolicyName=policy)["PolicyDocument"]
                inline.append(
                    {"kind": "inline-policy", "role": name, "name": policy, "document": _policy_document(document)}
                )
        if not name.startswith(canvas.ROLE_PREFIX):
            continue
        roles.append(
            {
                "kind": "role",
                "name": name,
                "arn": role["Arn"],
                "trust_policy": _policy_document(role.get("AssumeRolePolicyDocument")),
                "attached_policy_arns": sorted(
                    p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
                ),
                "inline_policy_names": sorted(names),
                "tags": _tags(iam.list_role_tags(RoleName=name).get("Tags")),
            }
        )
    return roles + inline


def _service_catalog(account_id: str, iam: Any) -> list[dict[str, Any]]:
    """The Service Catalog module (M2): the account's portfolios (products, principals, constraints), products,
    live provisioned products (the analysts' launches), mlplane's launch role and template bucket."""
    from mlplane.modules.service_catalog import product
    from mlplane_sandbox.emulators import service_catalog

    state = service_catalog.state(account_id, REGION)
    items: list[dict[str, Any]] = [{"kind": "portfolio", **p} for p in state["portfolios"]]
    items += [{"kind": "product", **p} for p in state["products"]]
    items += [
        {"kind": "provisioned-product", **p} for p in state["provisioned_products"] if p["status"] != "TERMINATED"
    ]
    if product.LAUNCH_ROLE_NAME in {r["RoleName"] for r in iam.list_roles()["Roles"]}:
        names = iam.list_role_policies(RoleName=product.LAUNCH_ROLE_NAME)["PolicyNames"]
        items.append(
            {
                "kind": "launch-role",
                "name": product.LAUNCH_ROLE_NAME,
                "inline_policy_names": sorted(names),
                "tags": _tags(iam.list_role_tags(RoleName=product.LAUNCH_ROLE_NAME).get("Tags")),
            }
        )
    s3 = sandbox_client("s3")
    for bucket in s3.list_buckets().get("Buckets", []):
        if bucket["Name"].startswith("mlplane-sc-"):
            try:
                tags = s3.get_bucket_tagging(Bucket=bucket["Name"])["TagSet"]
            except ClientError:
                tags = []
            keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket["Name"]).get("Contents", [])]
            items.append({"kind": "template-bucket", "name": bucket["Name"], "objects": keys, "tags": _tags(tags)})
    return items


def _policy_document(document: Any) -> Any:
    if isinstance(document, str):
        return json.loads(unquote(document))
    return document


# What marks a network interface or security group as the vendor's (EKS and its nodes; the VPC CNI tags its ENIs).
_VENDOR_DESCRIPTIONS = ("Amazon EKS ", "aws-K8S-")
_VENDOR_TAG_KEYS = ("aac:managed", "aws:eks:cluster-name", "cluster.k8s.amazonaws.com/name", "eks:cluster-name")


def _network_footprint(ec2: Any, vpc_ids: set[str], account_id: str, inventory: dict[str, Any]) -> None:
    """`network_interfaces` and `security_groups` in mlplane's VPCs, each with who it belongs to (DESIGN.md):

    - mlplane: carries mlplane's tags, or is the interface of an mlplane NAT gateway or attachment;
    - vendor: what EKS and the vendor's nodes make (described `Amazon EKS <cluster>` / `aws-K8S-…`, tagged by EKS,
      the VPC CNI or AAC, the cluster security group `eks-cluster-sg-…`, or an interface in a vendor group);
    - aws: the VPC's default security group; any other interface AWS manages (RequesterManaged).
    """

    def owned(tags: dict[str, str]) -> bool:
        return tags.get(MANAGED_TAG) == "true" and tags.get(ACCOUNT_TAG, account_id) == account_id

    def vendor_tagged(tags: dict[str, str]) -> bool:
        return any(k in tags for k in _VENDOR_TAG_KEYS) or any(k.startswith("kubernetes.io/cluster/") for k in tags)

    groups = [g for g in ec2.describe_security_groups()["SecurityGroups"] if g.get("VpcId") in vpc_ids]
    group_owner: dict[str, str] = {}
    for group in groups:
        tags = _tags(group.get("Tags"))
        name = str(group.get("GroupName", ""))
        if owned(tags):
            owner = "mlplane"
        elif name == "default":
            owner = "aws"
        else:  # EKS's cluster security group, or anything else nobody in this world but the vendor makes
            owner = "vendor"
        group_owner[group["GroupId"]] = owner
        inventory["security_groups"].append(
            {"id": group["GroupId"], "vpc_id": group["VpcId"], "name": name, "owner": owner}
        )
    parents = ec2.describe_nat_gateways()["NatGateways"]
    with contextlib.suppress(ClientError):
        parents += ec2.describe_transit_gateway_vpc_attachments()["TransitGatewayVpcAttachments"]
    own_parents = {
        str(p.get("NatGatewayId") or p.get("TransitGatewayAttachmentId"))
        for p in parents
        if owned(_tags(p.get("Tags")))
    }
    for eni in ec2.describe_network_interfaces()["NetworkInterfaces"]:
        if eni.get("VpcId") not in vpc_ids:
            continue
        tags = _tags(eni.get("TagSet"))
        description = str(eni.get("Description") or "")
        in_groups = {group_owner.get(g["GroupId"]) for g in eni.get("Groups", [])}
        if owned(tags) or set(description.split()) & own_parents:
            owner = "mlplane"
        elif description.startswith(_VENDOR_DESCRIPTIONS) or vendor_tagged(tags) or "vendor" in in_groups:
            owner = "vendor"
        elif eni.get("RequesterManaged"):
            owner = "aws"
        else:
            owner = "vendor"
        inventory["network_interfaces"].append(
            {"id": eni["NetworkInterfaceId"], "subnet_id": eni["SubnetId"], "owner": owner, "description": description}
        )


def _quota_requests(account_id: str) -> list[dict[str, Any]]:
    try:
        from mlplane_sandbox.emulators import service_quotas
    except ImportError:
        return []
    requests: list[dict[str, Any]] = service_quotas.requests_of(account_id)
    return requests


def mlplane_resources(inventory: dict[str, Any], account_id: str) -> list[dict[str, str]]:  # noqa: C901
    """Every resource in the inventory that carries mlplane's tags for this account (live ones only)."""
    found: list[dict[str, str]] = []

    def mine(tags: dict[str, str]) -> bool:
        return tags.get(MANAGED_TAG) == "true" and tags.get(ACCOUNT_TAG, account_id) == account_id

    kinds = {
        "vpcs": "ec2:vpc",
        "subnets": "ec2:subnet",
        "route_tables": "ec2:route-table",
        "internet_gateways": "ec2:igw",
        "nat_gateways": "ec2:nat",
        "vpc_endpoints": "ec2:vpce",
        "transit_gateway_attachments": "ec2:tgw-attachment",
        "elastic_ips": "ec2:eip",
    }
    for section, kind in kinds.items():
        for item in inventory.get(section, []):
            if mine(item.get("tags", {})) and str(item.get("state", "")).lower() not in NOT_LIVE_STATES:
                found.append({"type": kind, "id": item["id"]})
    # By name or ARN; a key or secret scheduled for deletion is AWS's to finish, not a leftover.
    named = {
        "iam_users": ("iam:user", "name"),
        "iam_policies": ("iam:policy", "arn"),
        "kms_keys": ("kms:key", "id"),
        "secrets": ("secretsmanager:secret", "arn"),
    }
    for section, (kind, field) in named.items():
        for item in inventory.get(section, []):
            if mine(item.get("tags", {})) and item.get("state") not in ("PendingDeletion", "PendingReplicaDeletion"):
                found.append({"type": kind, "id": item[field]})
    # An access key carries no tags: one on a user of mlplane's is mlplane's (it never keys anyone else's user).
    users = {u["name"] for u in inventory.get("iam_users", []) if mine(u["tags"])}
    found += [{"type": "iam:access-key", "id": k["id"]} for k in inventory.get("access_keys", []) if k["user"] in users]
    for item in inventory.get("canvas", []):
        if item["kind"] == "role" and mine(item["tags"]):
            found.append({"type": "canvas:role", "id": item["name"]})
        elif item["kind"] == "inline-policy":  # mlplane-canvas-*: only mlplane puts these
            found.append({"type": "canvas:inline-policy", "id": f"{item['role']}|{item['name']}"})
    catalog_kinds = {
        "portfolio": "servicecatalog:portfolio",
        "product": "servicecatalog:product",
        "launch-role": "servicecatalog:launch-role",
        "template-bucket": "servicecatalog:template-bucket",
    }
    for item in inventory.get("service_catalog", []):
        if item["kind"] in catalog_kinds and mine(item["tags"]):
            found.append({"type": catalog_kinds[item["kind"]], "id": item.get("id", item.get("name", ""))})
    return found
