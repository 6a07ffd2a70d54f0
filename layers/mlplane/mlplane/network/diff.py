"""What CreateNetwork would do to an account's network now: per planned resource create, keep or change.

Read-only: the same finders CreateNetwork's `ensure` uses (`lookup.find_*`, by mlplane's tags and the ids
they lead to), so the plan says what the step would find. A resource whose parent is still to be created is
`create` without a look (nothing can exist under a VPC that does not). `mlplane plan` prints the result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlplane.changes import PlannedChange
from mlplane.network import (
    ASSOCIATION,
    EIP,
    IGW,
    NAT,
    ROUTE,
    ROUTE_TABLE,
    SUBNET,
    TGW_ATTACHMENT,
    VPC,
    VPC_CIDR,
    VPCE,
    lookup,
)
from mlplane.network.models import NetworkPlan, RoutePlan

if TYPE_CHECKING:
    from mlplane.member import Member


def diff(member: Member, plan: NetworkPlan) -> list[PlannedChange]:
    return _Diff(member, plan).walk()


class _Diff:
    def __init__(self, member: Member, plan: NetworkPlan) -> None:
        self.member = member
        self.plan = plan
        self.ids: dict[str, str] = {}  # plan key -> id of what exists
        self.changes: list[PlannedChange] = []

    def note(self, type: str, key: str, found: str | None, detail: str = "", *, change: str = "") -> None:
        if found is not None:
            self.ids[key] = found
        action = "create" if found is None else ("change" if change else "keep")
        self.changes.append(
            PlannedChange(domain="network", type=type, key=key, id=found, action=action, detail=change or detail)
        )

    def find(self, find: Any, key: str, data: dict[str, Any] | None = None) -> str | None:
        return find(self.member, key, data or {})  # type: ignore[no-any-return]

    def walk(self) -> list[PlannedChange]:
        plan = self.plan
        vpc = plan.vpc
        vpc_id = self.find(lookup.find_vpc, vpc.key)
        self.note(VPC, vpc.key, vpc_id, f"{vpc.cidr}, DNS support and hostnames", change=self._dns(vpc_id))
        self.note(
            VPC_CIDR,
            vpc.secondary_key,
            None
            if vpc_id is None
            else self.find(lookup.find_vpc_cidr, vpc.secondary_key, {"vpc_id": vpc_id, "cidr": vpc.secondary_cidr}),
            vpc.secondary_cidr,
        )
        for table in plan.route_tables:
            self.note(ROUTE_TABLE, table.key, self.find(lookup.find_route_table, table.key), table.group)
        for subnet in plan.subnets:
            found = self.find(lookup.find_subnet, subnet.key)
            missing = self._missing_tags(found, subnet.tags)
            change = f"tag {missing}" if missing else ""
            self.note(SUBNET, subnet.key, found, f"{subnet.cidr} in {subnet.az}", change=change)
        if plan.internet_gateway is not None:
            igw = plan.internet_gateway
            igw_id = self.find(lookup.find_igw, igw.key)
            self.note(IGW, igw.key, igw_id, "attached to the VPC", change=self._detached(igw_id, vpc_id))
        self._endpoint(vpc_id)
        for nat in plan.nat_gateways:
            self.note(EIP, nat.eip_key, self.find(lookup.find_eip, nat.eip_key), "for the NAT gateway")
            subnet_id = self.ids.get(nat.subnet_key)
            found = self.find(lookup.find_nat, nat.key, {"subnet_id": subnet_id}) if subnet_id else None
            self.note(NAT, nat.key, found, f"in {nat.subnet_key}")
        if plan.tgw_attachment is not None:
            attachment = plan.tgw_attachment
            found = self.find(lookup.find_tgw_attachment, attachment.key) if vpc_id else None
            self.note(TGW_ATTACHMENT, attachment.key, found, f"to {attachment.transit_gateway_id}")
        for table in plan.route_tables:
            table_id, subnet_id = self.ids.get(table.key), self.ids.get(table.subnet_key)
            found = (
                self.find(
                    lookup.find_association, table.association_key, {"route_table_id": table_id, "subnet_id": subnet_id}
                )
                if table_id and subnet_id
                else None
            )
            self.note(ASSOCIATION, table.association_key, found, f"{table.key} with {table.subnet_key}")
        for table in plan.route_tables:
            for route in table.routes:
                if route.key is not None:
                    self._route(table.key, route)
        return self.changes

    def _missing_tags(self, subnet_id: str | None, wanted: dict[str, str]) -> str:
        """The planned tags (the seed's AACSubnet, Name, the load-balancer roles) a found subnet lacks."""
        if subnet_id is None:
            return ""
        described = lookup.call(self.member, "describe_subnets", SubnetIds=[subnet_id])["Subnets"]
        tags = lookup.tags_of(described[0]) if described else {}
        return ", ".join(f"{k}={v}" for k, v in sorted(wanted.items()) if tags.get(k) != v)

    def _dns(self, vpc_id: str | None) -> str:
        if vpc_id is None:
            return ""
        off = []
        for attribute, wanted in (
            ("enableDnsSupport", self.plan.vpc.dns_support),
            ("enableDnsHostnames", self.plan.vpc.dns_hostnames),
        ):
            current = lookup.call(self.member, "describe_vpc_attribute", VpcId=vpc_id, Attribute=attribute)
            field = attribute[0].upper() + attribute[1:]
            if bool(current.get(field, {}).get("Value")) != wanted:
                off.append(f"{attribute} {'on' if wanted else 'off'}")
        return "set " + ", ".join(off) if off else ""

    def _detached(self, igw_id: str | None, vpc_id: str | None) -> str:
        if igw_id is None or vpc_id is None:
            return ""
        described = lookup.call(self.member, "describe_internet_gateways", InternetGatewayIds=[igw_id])
        attached = {a.get("VpcId") for g in described["InternetGateways"] for a in g.get("Attachments", [])}
        return "" if vpc_id in attached else f"attach to {vpc_id}"

    def _endpoint(self, vpc_id: str | None) -> None:
        endpoint = self.plan.endpoint
        found = self.find(lookup.find_vpce, endpoint.key) if vpc_id else None
        change = ""
        if found is not None:
            described = lookup.call(self.member, "describe_vpc_endpoints", VpcEndpointIds=[found])["VpcEndpoints"]
            has = {t for e in described for t in e.get("RouteTableIds", [])}
            missing = [k for k in endpoint.route_table_keys if self.ids.get(k) not in has]
            change = f"add route tables {', '.join(missing)}" if missing else ""
        self.note(VPCE, endpoint.key, found, endpoint.service_name, change=change)

    def _route(self, table_key: str, route: RoutePlan) -> None:
        assert route.key is not None
        table_id = self.ids.get(table_key)
        if route.target == "tgw" and self.plan.tgw_attachment is not None:
            target_id: str | None = self.plan.tgw_attachment.transit_gateway_id
        else:
            target_id = self.ids.get(route.target_key)
        wanted = f"{route.destination} via {route.target_key}"
        current = lookup.current_route(self.member, table_id, route.destination) if table_id else None
        if current is None:
            self.note(ROUTE, route.key, None, wanted)
            return
        now = lookup.route_target(current)
        found = lookup.route_id(str(table_id), route.destination)
        change = "" if target_id is not None and now == target_id else f"points to {now}; plan: {wanted}"
        self.note(ROUTE, route.key, found, wanted, change=change)
