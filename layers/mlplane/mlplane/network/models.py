"""The network plan as data (REQUIREMENTS N1-N5): what one member account's VPC must consist of.

Every planned resource has a stable plan *key* ("vpc", "subnet/eks_node/a", "rtb/public/b", "nat/a", ...):
it is the `mlplane:key` tag on the resource and the ledger key of its record, so a re-run finds it again.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Group = Literal["eks_node", "eks_control", "public", "private"]
EgressMode = Literal["nat", "tgw"]
RouteTarget = Literal["local", "nat", "igw", "tgw", "vpce"]

GROUPS: tuple[Group, ...] = ("eks_node", "eks_control", "public", "private")
"""Subnet groups in the order the seed lists them (seed 000 step 2a)."""

LETTERS: tuple[str, ...] = ("a", "b", "c")
"""Position of an AZ in the plan: the first three AZs of the region, sorted, are a, b and c."""

DEFAULT_ROUTE = "0.0.0.0/0"
S3_PREFIX_LIST = "s3-prefix-list"
"""Destination of the S3 route: the gateway endpoint adds the region's S3 prefix list to its route tables."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class VpcPlan(_Frozen):
    key: str = "vpc"
    name: str = "aac_vpc"
    cidr: str
    secondary_cidr: str
    secondary_key: str = "vpc-cidr/secondary"
    dns_support: bool = True
    dns_hostnames: bool = True
    tags: dict[str, str]


class SubnetPlan(_Frozen):
    key: str
    group: Group
    letter: str = Field(description="a, b or c: the AZ's position in the plan")
    az: str
    cidr: str
    tags: dict[str, str]


class RoutePlan(_Frozen):
    """One route. `local` and the S3 prefix-list route are made by AWS (VPC, endpoint), the others by mlplane."""

    destination: str
    target: RouteTarget
    target_key: str = Field(description="plan key of the target ('vpc' for local routes)")
    key: str | None = Field(default=None, description="ledger key when mlplane creates the route itself")


class RouteTablePlan(_Frozen):
    key: str
    group: Group
    letter: str
    subnet_key: str
    association_key: str
    routes: tuple[RoutePlan, ...]
    tags: dict[str, str]


class InternetGatewayPlan(_Frozen):
    key: str = "igw"
    tags: dict[str, str]


class NatGatewayPlan(_Frozen):
    key: str
    letter: str
    subnet_key: str
    eip_key: str
    tags: dict[str, str]
    eip_tags: dict[str, str]


class EndpointPlan(_Frozen):
    key: str = "vpce/s3"
    service_name: str
    route_table_keys: tuple[str, ...]
    tags: dict[str, str]


class TgwAttachmentPlan(_Frozen):
    key: str = "tgw-attachment"
    transit_gateway_id: str
    subnet_keys: tuple[str, ...]
    tags: dict[str, str]


class NetworkPlan(_Frozen):
    """Everything the CreateNetwork step makes in one account, in a deterministic order."""

    region: str
    egress_mode: EgressMode
    azs: tuple[str, str, str]
    vpc: VpcPlan
    subnets: tuple[SubnetPlan, ...]
    route_tables: tuple[RouteTablePlan, ...]
    internet_gateway: InternetGatewayPlan | None
    nat_gateways: tuple[NatGatewayPlan, ...]
    endpoint: EndpointPlan
    tgw_attachment: TgwAttachmentPlan | None

    def subnet(self, key: str) -> SubnetPlan:
        for subnet in self.subnets:
            if subnet.key == key:
                return subnet
        raise KeyError(key)

    def ledger_keys(self) -> list[str]:
        """Every ledger key the plan may create, in creation order."""
        out = [self.vpc.key, self.vpc.secondary_key]
        out += [rt.key for rt in self.route_tables]
        out += [s.key for s in self.subnets]
        if self.internet_gateway:
            out.append(self.internet_gateway.key)
        out.append(self.endpoint.key)
        out += [n.eip_key for n in self.nat_gateways]
        out += [n.key for n in self.nat_gateways]
        if self.tgw_attachment:
            out.append(self.tgw_attachment.key)
        out += [rt.association_key for rt in self.route_tables]
        out += [r.key for rt in self.route_tables for r in rt.routes if r.key]
        return out
