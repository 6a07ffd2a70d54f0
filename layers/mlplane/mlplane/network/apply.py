"""CreateNetwork: observe the account, plan (`plan.py`), and make what the plan says (REQUIREMENTS N1-N5).

Every create goes through `Member.ensure`: ledger intent, find by `mlplane:key` tag (or client token), create
with mlplane's tags, ledger id. A second run creates nothing; a run that died between a create and its ledger
write finds the resource by its tags. NAT gateways and the S3 endpoint also carry a client token derived from
the account, the plan key and their subnet/VPC (for the endpoint also its route tables; for a NAT gateway also
the key's failed gateways there, whose token would only answer with the failed one), so a create retried after
a lost response is not doubled.
A transit gateway attachment left `pendingAcceptance` (the network account's gateway does not auto-accept)
fails the step at once: only the gateway's owner can accept it.

Creation order (which rollback reverses, newest first): pool allocation (tgw), VPC, secondary CIDR, route
tables, subnets, internet gateway, S3 endpoint, Elastic IPs, NAT gateways (waited for until `available`),
transit gateway attachment (tgw), route-table associations, default routes.

Rollback and RemoveNetwork undo every live network record newest first with the handlers of `undo.py`
(`mlplane.rollback.run.undo_all`, the one walker).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import Any

from botocore.exceptions import WaiterError

from mlplane.config import Settings
from mlplane.deadline import bounded_wait
from mlplane.errors import AwsCallFailed, Conflict, TimedOut, TransientError
from mlplane.ledger import ResourceRecord, ResourceState, Status
from mlplane.member import ADOPT, Adoption, Member
from mlplane.network import (
    ASSOCIATION,
    CIDR_ALLOCATION,
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
    allocation,
    lookup,
)
from mlplane.network.lookup import call
from mlplane.network.models import NetworkPlan, RoutePlan
from mlplane.network.plan import plan_network
from mlplane.observability import logger
from mlplane.steps import StepOutput

# Up to 20 minutes in all; the Lambda's deadline bounds one invocation (mlplane.deadline), the retried step
# waits on.
NAT_AVAILABLE_WAIT = {"Delay": 15, "MaxAttempts": 80}
NAT_FAILURES_WORTH_A_RETRY = frozenset({"Gateway.NotAttached", "InternalError"})
"""NatGateway.FailureCode values a new gateway may not meet (EC2 API reference, NatGateway)."""
_STOP = frozenset(
    {
        Status.ROLLING_BACK,
        Status.ROLLED_BACK,
        Status.ROLLBACK_INCOMPLETE,
        Status.ROLLBACK_HELD,
        Status.DEPROVISIONING,
        Status.DEPROVISIONED,
    }
)


def observe_azs(member: Member) -> list[str]:
    """The region's available availability zones (not Local or Wavelength zones)."""
    answer = call(
        member,
        "describe_availability_zones",
        Filters=[{"Name": "state", "Values": ["available"]}],
    )
    return sorted(
        z["ZoneName"]
        for z in answer["AvailabilityZones"]
        if z.get("ZoneType", "availability-zone") == "availability-zone" and z.get("State", "available") == "available"
    )


def _prefixes(settings: Settings) -> tuple[int, int]:
    return int(settings.vpc_cidr.split("/")[1]), int(settings.secondary_cidr.split("/")[1])


def plan_for(member: Member, settings: Settings) -> NetworkPlan:
    """The plan `run` would execute now (observes AZs and the pool; changes nothing)."""
    azs = observe_azs(member)
    cidrs: tuple[str, str] | None = None
    if settings.egress_mode == "tgw":
        primary, secondary = _prefixes(settings)
        preview = allocation.preview(
            member.ledger, member.account_id, settings.cidr_pool, primary_prefix=primary, secondary_prefix=secondary
        )
        cidrs = preview.cidrs
    return plan_network(settings, azs, cidrs=cidrs)


def client_token(member: Member, key: str, salt: str) -> str:
    """Idempotency token of a create: the same account, plan key and parent always give the same token."""
    digest = hashlib.sha256(f"{member.account_id}|{key}|{salt}".encode()).hexdigest()
    return f"mlplane-{digest[:48]}"


class _Run:
    """One execution of the plan in one account; counts what it created and what it found."""

    def __init__(self, member: Member, plan: NetworkPlan) -> None:
        self.member = member
        self.plan = plan
        self.ids: dict[str, str] = {}
        self.created = 0
        self.existing = 0
        self.adopted: set[str] = set()  # an adopt run's hand-made resources (D3): left as found, audit reports them

    def ensure(
        self,
        key: str,
        type: str,
        find: Callable[[Member, str, dict[str, Any]], str | None],
        create: Callable[[], str],
        data: dict[str, Any] | None = None,
        *,
        match: Callable[[], str | None] | None = None,
        tagged: bool = True,
    ) -> str:
        """`match`: the hand-made resource an adopt run takes over (D3); `tagged`: it carries tags of its own
        (a route, an association or a CIDR block does not: by default `find` is its match)."""
        values = data or {}
        record = self._still_provisioning(key)
        adopt = None
        if match is not None or not tagged:
            adopt = Adoption(
                match=match or (lambda: find(self.member, key, values)),
                tag=self._tag_adopted(key) if tagged else None,
            )
        made, now = self.member.ensure(
            key=key,
            type=type,
            find=lambda: find(self.member, key, values),
            create=create,
            data=values,
            adopt=adopt,
            known=record,
        )
        self.ids[key] = made
        if now:
            self.created += 1
        else:
            self.existing += 1
            if self.member.adopting and adopt is not None and self._is_adopted(key):
                self.adopted.add(key)
        return made

    def _is_adopted(self, key: str) -> bool:
        record = self.member.ledger.resource(self.member.account_id, key)
        return record is not None and record.state == ResourceState.ADOPTED

    def _tag_adopted(self, key: str) -> Callable[[str], None]:
        def tag(resource_id: str) -> None:
            tags = [{"Key": k, "Value": v} for k, v in self.member.adopted_tags(key).items()]
            call(self.member, "create_tags", purpose=ADOPT, Resources=[resource_id], Tags=tags)

        return tag

    def _still_provisioning(self, key: str) -> ResourceRecord | None:
        """Stop creating once rollback or deprovision of the account has begun; else the record of `key` (read
        with the status, one call per resource).

        A Parallel branch keeps running after its sibling failed and the workflow moved on to Rollback;
        creating on would race the rollback's walk of the ledger (what still slips through one create is
        removed by the VPC's sweep, see `undo.sweep_vpc`).
        """
        status, record = self.member.ledger.status_and_resource(self.member.account_id, key)
        if status is not None and status.status in _STOP:
            raise Conflict(f"account {self.member.account_id} is {status.status}: CreateNetwork stopped")
        return record

    def creator(self, operation: str, path: tuple[str, ...], **kwargs: Any) -> Callable[[], str]:
        """The create call of `ensure`: `operation(**kwargs)`, returning the id found at `path` in the answer."""

        def create() -> str:
            answer: Any = call(self.member, operation, **kwargs)
            for part in path:
                answer = answer[part]
            return str(answer)

        return create

    def tag_spec(self, resource_type: str, key: str, extra: dict[str, str]) -> list[dict[str, Any]]:
        return [{"ResourceType": resource_type, "Tags": self.member.tag_list(key, extra)}]

    # -- VPC ------------------------------------------------------------------------------------------------
    def vpc(self) -> str:
        vpc = self.plan.vpc
        vpc_id = self.ensure(
            vpc.key,
            VPC,
            lookup.find_vpc,
            self.creator(
                "create_vpc",
                (
                    "Vpc",
                    "VpcId",
                ),
                CidrBlock=vpc.cidr,
                TagSpecifications=self.tag_spec("vpc", vpc.key, vpc.tags),
            ),
            match=lambda: lookup.match_vpc(self.member, vpc.key, vpc.name, vpc.cidr),
        )
        for attribute, wanted in (("enableDnsSupport", vpc.dns_support), ("enableDnsHostnames", vpc.dns_hostnames)):
            current = call(self.member, "describe_vpc_attribute", VpcId=vpc_id, Attribute=attribute)
            field = attribute[0].upper() + attribute[1:]
            if bool(current.get(field, {}).get("Value")) != wanted and vpc.key not in self.adopted:
                value: dict[str, Any] = {field: {"Value": wanted}}
                call(self.member, "modify_vpc_attribute", VpcId=vpc_id, **value)
        self.ensure(
            vpc.secondary_key,
            VPC_CIDR,
            lookup.find_vpc_cidr,
            self.creator(
                "associate_vpc_cidr_block",
                ("CidrBlockAssociation", "AssociationId"),
                VpcId=vpc_id,
                CidrBlock=vpc.secondary_cidr,
            ),
            {"vpc_id": vpc_id, "cidr": vpc.secondary_cidr},
            tagged=False,
        )
        return vpc_id

    def route_tables_and_subnets(self, vpc_id: str) -> None:
        if self.member.adopting:  # a hand-made route table is found by the subnet it is associated with
            self._subnets(vpc_id)
            self._route_tables(vpc_id)
        else:
            self._route_tables(vpc_id)
            self._subnets(vpc_id)

    def _route_tables(self, vpc_id: str) -> None:
        for table in self.plan.route_tables:
            subnet_id = self.ids.get(table.subnet_key)
            self.ensure(
                table.key,
                ROUTE_TABLE,
                lookup.find_route_table,
                self.creator(
                    "create_route_table",
                    ("RouteTable", "RouteTableId"),
                    VpcId=vpc_id,
                    TagSpecifications=self.tag_spec("route-table", table.key, table.tags),
                ),
                {"vpc_id": vpc_id},
                match=functools.partial(lookup.match_route_table, self.member, table.key, subnet_id)
                if subnet_id
                else None,
            )

    def _subnets(self, vpc_id: str) -> None:
        for subnet in self.plan.subnets:
            self.ensure(
                subnet.key,
                SUBNET,
                lookup.find_subnet,
                self.creator(
                    "create_subnet",
                    (
                        "Subnet",
                        "SubnetId",
                    ),
                    VpcId=vpc_id,
                    CidrBlock=subnet.cidr,
                    AvailabilityZone=subnet.az,
                    TagSpecifications=self.tag_spec("subnet", subnet.key, subnet.tags),
                ),
                {"vpc_id": vpc_id, "cidr": subnet.cidr},
                match=functools.partial(lookup.match_subnet, self.member, subnet.key, vpc_id, subnet.cidr, subnet.az),
            )

    # -- gateways and endpoint --------------------------------------------------------------------------------
    def internet_gateway(self, vpc_id: str) -> None:
        igw = self.plan.internet_gateway
        if igw is None:
            return
        igw_id = self.ensure(
            igw.key,
            IGW,
            lookup.find_igw,
            self.creator(
                "create_internet_gateway",
                (
                    "InternetGateway",
                    "InternetGatewayId",
                ),
                TagSpecifications=self.tag_spec("internet-gateway", igw.key, igw.tags),
            ),
            {"vpc_id": vpc_id},
            match=lambda: lookup.match_igw(self.member, igw.key, vpc_id),
        )
        described = call(self.member, "describe_internet_gateways", InternetGatewayIds=[igw_id])["InternetGateways"]
        attached = {a.get("VpcId") for g in described for a in g.get("Attachments", [])}
        if vpc_id not in attached:
            call(self.member, "attach_internet_gateway", InternetGatewayId=igw_id, VpcId=vpc_id)

    def endpoint(self, vpc_id: str) -> None:
        endpoint = self.plan.endpoint
        tables = [self.ids[key] for key in endpoint.route_table_keys]
        # The route tables are part of the token: a re-run into a VPC kept by an incomplete rollback makes new
        # tables, and the token of the endpoint that rollback deleted would answer IdempotentParameterMismatch.
        token = client_token(self.member, endpoint.key, "|".join([vpc_id, *sorted(tables)]))
        vpce_id = self.ensure(
            endpoint.key,
            VPCE,
            lookup.find_vpce,
            self.creator(
                "create_vpc_endpoint",
                (
                    "VpcEndpoint",
                    "VpcEndpointId",
                ),
                VpcEndpointType="Gateway",
                VpcId=vpc_id,
                ServiceName=endpoint.service_name,
                RouteTableIds=tables,
                ClientToken=token,
                TagSpecifications=self.tag_spec("vpc-endpoint", endpoint.key, endpoint.tags),
            ),
            {"vpc_id": vpc_id, "client_token": token},
            match=lambda: lookup.match_vpce(self.member, endpoint.key, vpc_id, endpoint.service_name),
        )
        if endpoint.key in self.adopted:
            return  # the route tables a hand-made endpoint serves are its owner's choice: audit reports them
        found = call(self.member, "describe_vpc_endpoints", VpcEndpointIds=[vpce_id])["VpcEndpoints"]
        missing = sorted(set(tables) - {t for e in found for t in e.get("RouteTableIds", [])})
        if missing:
            call(self.member, "modify_vpc_endpoint", VpcEndpointId=vpce_id, AddRouteTableIds=missing)

    def nat_gateways(self) -> None:
        for nat in self.plan.nat_gateways:
            allocation_id = self.ensure(
                nat.eip_key,
                EIP,
                lookup.find_eip,
                self.creator(
                    "allocate_address",
                    ("AllocationId",),
                    Domain="vpc",
                    TagSpecifications=self.tag_spec("elastic-ip", nat.eip_key, nat.eip_tags),
                ),
                match=functools.partial(lookup.match_eip, self.member, nat.eip_key, self.ids[nat.subnet_key]),
            )
            subnet_id = self.ids[nat.subnet_key]
            token = self._nat_token(nat.key, subnet_id)
            self.ensure(
                nat.key,
                NAT,
                lookup.find_nat,
                self.creator(
                    "create_nat_gateway",
                    (
                        "NatGateway",
                        "NatGatewayId",
                    ),
                    SubnetId=subnet_id,
                    AllocationId=allocation_id,
                    ClientToken=token,
                    TagSpecifications=self.tag_spec("natgateway", nat.key, nat.tags),
                ),
                {"subnet_id": subnet_id, "allocation_id": allocation_id, "client_token": token},
                match=functools.partial(lookup.match_nat, self.member, nat.key, subnet_id),
            )
        nat_ids = [self.ids[n.key] for n in self.plan.nat_gateways]
        if nat_ids:
            self._wait_available(nat_ids)

    def _nat_token(self, key: str, subnet_id: str) -> str:
        """The NAT gateway's client token: the same until a gateway made for this key in this subnet fails.

        A failed gateway keeps its token (CreateNatGateway with it answers with the failed gateway again), so
        the ids of this key's failed gateways in the subnet are part of the token: a re-run, or the retry of a
        failure that has since been fixed, asks for a new gateway, and a create retried after a lost answer
        (nothing failed in between) still gets the first one.
        """
        filters = [
            *lookup.tag_filters(self.member, key),
            {"Name": "subnet-id", "Values": [subnet_id]},
            {"Name": "state", "Values": ["failed"]},
        ]
        nats = call(self.member, "describe_nat_gateways", Filters=filters)["NatGateways"]
        failed = sorted(
            str(n["NatGatewayId"]) for n in nats if n.get("State") == "failed" and lookup.owned(self.member, n)
        )
        return client_token(self.member, key, "|".join([subnet_id, *failed]))

    def _wait_available(self, nat_ids: list[str]) -> None:
        # Routes to a NAT gateway that is not yet available would blackhole the AZ's egress.
        try:
            bounded_wait(
                lookup.ec2(self.member).get_waiter("nat_gateway_available"),
                self.member.deadline,
                f"NAT gateways in {self.member.account_id} becoming available",
                delay=NAT_AVAILABLE_WAIT["Delay"],
                max_attempts=NAT_AVAILABLE_WAIT["MaxAttempts"],
                NatGatewayIds=nat_ids,
            )
        except WaiterError as err:
            last: dict[str, Any] = getattr(err, "last_response", None) or {}
            nats = last.get("NatGateways", [])
            detail = ", ".join(sorted(_nat_state(n) for n in nats)) or str(err)
            if "Max attempts exceeded" in str(err):
                raise TimedOut(f"NAT gateways in {self.member.account_id} not available: {detail}") from err
            failed = [n for n in nats if n.get("State") == "failed"]
            message = f"NAT gateways in {self.member.account_id} failed: {detail}"
            if failed and all(n.get("FailureCode") in NAT_FAILURES_WORTH_A_RETRY for n in failed):
                # e.g. created before the internet gateway's attachment showed: a retry of the step re-checks the
                # attachment and asks for new gateways (see _nat_token)
                raise TransientError(message) from err
            raise AwsCallFailed(message) from err

    def tgw_attachment(self, vpc_id: str) -> None:
        attachment = self.plan.tgw_attachment
        if attachment is None:
            return
        self.ensure(
            attachment.key,
            TGW_ATTACHMENT,
            lookup.find_tgw_attachment,
            self.creator(
                "create_transit_gateway_vpc_attachment",
                (
                    "TransitGatewayVpcAttachment",
                    "TransitGatewayAttachmentId",
                ),
                TransitGatewayId=attachment.transit_gateway_id,
                VpcId=vpc_id,
                SubnetIds=[self.ids[key] for key in attachment.subnet_keys],
                TagSpecifications=self.tag_spec("transit-gateway-attachment", attachment.key, attachment.tags),
            ),
            {"vpc_id": vpc_id, "transit_gateway_id": attachment.transit_gateway_id},
        )
        # Routes to the transit gateway need the attachment `available`.
        attachment_id = self.ids[attachment.key]
        where = f"transit gateway attachment {attachment_id} of {vpc_id} in {self.member.account_id}"
        try:
            bounded_wait(
                lookup.tgw_attachment_waiter(self.member, "TransitGatewayAttachmentAvailable"),
                self.member.deadline,
                f"{where} becoming available",
                delay=lookup.TGW_WAIT["Delay"],
                max_attempts=lookup.TGW_WAIT["MaxAttempts"],
                TransitGatewayAttachmentIds=[attachment_id],
            )
        except WaiterError as err:
            last: dict[str, Any] = getattr(err, "last_response", None) or {}
            states = {a.get("State") for a in last.get("TransitGatewayVpcAttachments", [])}
            if "pendingAcceptance" in states:
                # Only the transit gateway's owner can accept it, by hand, in another account: no wait inside
                # this Lambda would see it accepted, so fail now and say what must change.
                raise Conflict(
                    f"{where} is pendingAcceptance: transit gateway {attachment.transit_gateway_id} does not accept "
                    "shared attachments automatically; the network account's admin must enable "
                    "AutoAcceptSharedAttachments on it (or accept each attachment), then re-run mlplane"
                ) from err
            if "Max attempts exceeded" in str(err):
                raise TimedOut(f"{where} not available: {', '.join(sorted(map(str, states)))}") from err
            raise AwsCallFailed(f"{where} failed: {', '.join(sorted(map(str, states))) or err}") from err

    # -- associations and routes ------------------------------------------------------------------------------
    def associations(self) -> None:
        for table in self.plan.route_tables:
            table_id, subnet_id = self.ids[table.key], self.ids[table.subnet_key]
            self.ensure(
                table.association_key,
                ASSOCIATION,
                lookup.find_association,
                self.creator("associate_route_table", ("AssociationId",), RouteTableId=table_id, SubnetId=subnet_id),
                {"route_table_id": table_id, "subnet_id": subnet_id},
                tagged=False,
            )

    def routes(self) -> None:
        for table in self.plan.route_tables:
            # a hand-made table mlplane adopted (D3) is changed in the adopt session (mlplane:managed=adopted)
            purpose = ADOPT if self._is_adopted(table.key) else None
            for route in table.routes:
                if route.key is not None:
                    self._route(self.ids[table.key], route.key, route, purpose)

    def _route(self, table_id: str, key: str, route: RoutePlan, purpose: str | None = None) -> None:
        target_id = (
            self.plan.tgw_attachment.transit_gateway_id
            if route.target == "tgw" and self.plan.tgw_attachment is not None
            else self.ids[route.target_key]
        )
        target_arg = {"nat": "NatGatewayId", "igw": "GatewayId", "tgw": "TransitGatewayId"}[route.target]
        data = {"route_table_id": table_id, "destination": route.destination, "target_id": target_id}

        def create() -> str:
            existing = lookup.current_route(self.member, table_id, route.destination)
            operation = "replace_route" if existing is not None else "create_route"
            call(
                self.member,
                operation,
                purpose=purpose,
                RouteTableId=table_id,
                DestinationCidrBlock=route.destination,
                **{target_arg: target_id},
            )
            return lookup.route_id(table_id, route.destination)

        # adopt: a hand-made route is taken as it is, wherever it points (audit reports a different target)
        self.ensure(
            key,
            ROUTE,
            lookup.find_route,
            create,
            data,
            match=lambda: lookup.find_any_route(self.member, key, data),
            tagged=False,
        )

    def output(self, vpc_id: str) -> StepOutput:
        subnets: dict[str, list[str]] = {}
        for subnet in self.plan.subnets:
            subnets.setdefault(subnet.group, []).append(self.ids[subnet.key])
        return StepOutput(
            created=self.created,
            existing=self.existing,
            detail={
                "vpc_id": vpc_id,
                "egress_mode": self.plan.egress_mode,
                "cidrs": [self.plan.vpc.cidr, self.plan.vpc.secondary_cidr],
                "azs": list(self.plan.azs),
                "subnets": subnets,
            },
        )


def run(member: Member, settings: Settings) -> StepOutput:
    """Make the account's network as planned; idempotent (REQUIREMENTS N1-N5, C6)."""
    azs = observe_azs(member)
    cidrs: tuple[str, str] | None = None
    allocated = 0
    if settings.egress_mode == "tgw":
        cidrs, allocated = _allocate(member, settings, azs)
    plan = plan_network(settings, azs, cidrs=cidrs)
    logger.info("network plan", account_id=member.account_id, egress_mode=plan.egress_mode, azs=list(plan.azs))
    step = _Run(member, plan)
    step.created += allocated
    with member.ledger.writing_behind():  # each resource's CREATED goes with the next one's INTENT
        vpc_id = step.vpc()
        step.route_tables_and_subnets(vpc_id)
        step.internet_gateway(vpc_id)
        step.endpoint(vpc_id)
        step.nat_gateways()
        step.tgw_attachment(vpc_id)
        step.associations()
        step.routes()
    output = step.output(vpc_id)
    logger.info(
        "network ready", account_id=member.account_id, created_count=output.created, existing_count=output.existing
    )
    return output


def _nat_state(nat: dict[str, Any]) -> str:
    """`nat-… failed (Gateway.NotAttached: Network vpc-… has no Internet gateway attached)` or `nat-… pending`."""
    text = f"{nat.get('NatGatewayId')} {nat.get('State')}"
    if nat.get("FailureCode"):
        text += f" ({nat['FailureCode']}: {nat.get('FailureMessage', '')})"
    return text


def _allocate(member: Member, settings: Settings, azs: list[str]) -> tuple[tuple[str, str], int]:
    """Claim the account's CIDRs from the pool (validating the plan with them first); record it for rollback."""
    primary, secondary = _prefixes(settings)
    pool = settings.cidr_pool
    preview = allocation.preview(
        member.ledger, member.account_id, pool, primary_prefix=primary, secondary_prefix=secondary
    )
    plan_network(settings, azs, cidrs=preview.cidrs)  # N5 checks before anything is claimed

    def find(_: Member, key: str, data: dict[str, Any]) -> str | None:
        found = allocation.lookup(member.ledger, member.account_id, pool)
        return None if found is None else f"{found.pool}#{found.slot}"

    def create() -> str:
        made = allocation.allocate(
            member.ledger, member.account_id, pool, primary_prefix=primary, secondary_prefix=secondary
        )
        return f"{made.pool}#{made.slot}"

    _, now = member.ensure(
        key="cidr-allocation",
        type=CIDR_ALLOCATION,
        find=lambda: find(member, "cidr-allocation", {}),
        create=create,
        data={"pool": pool},
    )
    claimed = allocation.lookup(member.ledger, member.account_id, pool)
    if claimed is None:  # released concurrently: an operator deprovisioned the account mid-run
        raise AwsCallFailed(f"CIDR allocation of {member.account_id} in pool {pool} vanished")
    return claimed.cidrs, int(now)


def restore_subnet_tags(member: Member, settings: Settings) -> int:
    """Put back the planned tags (the seed's AACSubnet, Name, the load-balancer roles) a subnet of mlplane's
    lost: what `mlplane reconcile` does beyond re-running the step, whose finders go by mlplane's own tags."""
    restored = 0
    for subnet in plan_for(member, settings).subnets:
        subnet_id = lookup.find_subnet(member, subnet.key, {})
        if subnet_id is None:
            continue
        described = call(member, "describe_subnets", SubnetIds=[subnet_id])["Subnets"]
        tags = lookup.tags_of(described[0]) if described else {}
        missing = [{"Key": k, "Value": v} for k, v in sorted(subnet.tags.items()) if tags.get(k) != v]
        if missing:
            call(member, "create_tags", Resources=[subnet_id], Tags=missing)
            restored += 1
    return restored
