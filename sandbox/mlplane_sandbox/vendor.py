"""The vendor simulator: plays AAC creating the Private Data Processing plane in a member account.

mlplane publishes READY_FOR_VENDOR on its SNS topic when the account is prepared (REQUIREMENTS V1); the
AAC workspace admin then triggers provisioning and AAC creates, over 35-40 minutes, an EKS cluster in the
`eks_control` subnets, node groups in the `eks_node` subnets and the `credential-service-role`. Here an
`@after("sns", "Publish")` rule starts that for the account the message names, and the work moves on the
sandbox's VirtualClock:

- at once: the cluster and node IAM roles, and the cluster (CREATING) with what EKS puts in the VPC for it:
  its cluster security group `eks-cluster-sg-<cluster>-<id>` and one network interface per `eks_control`
  subnet (up to four), described `Amazon EKS <cluster>`, requester-managed, in that group;
- at 60 % of the duration: the cluster ACTIVE (or FAILED: EKS found no free addresses and released the
  cluster's interfaces; the cluster and its security group stay until deleted), its two node groups created
  (CREATING), each with its nodes' interfaces in the `eks_node` subnets (the VPC CNI's `aws-K8S-<instance>`);
- at 100 %: the node groups ACTIVE (or one CREATE_FAILED) and `credential-service-role` created.

`teardown` (the AAC admin removing the data plane) deletes all of it, interfaces and security group included,
so that mlplane's subnets and VPC can then be deleted (REQUIREMENTS C7; EKS user guide "View Amazon EKS
networking requirements for VPC and subnets" and "View Amazon EKS security group requirements for clusters").
A client of `mlplane local serve` removes the data plane the way an admin can from outside: DeleteNodegroup
for each node group, then DeleteCluster (EKS refuses it while node groups exist: ResourceInUseException); EKS
then deletes the cluster's interfaces and its cluster security group, and the rest of the data plane (the
vendor's roles) goes with it.

Scenarios: ok, slow (3x the duration), late (the admin triggers a day after the notification), cluster-failed,
nodegroup-failed, never (nothing appears), no-credential-role (EKS fine, the role never appears).

Everything is made directly in moto's backends (no boto3 call), so none of it is recorded as mlplane's,
and tagged `aac:managed=true`, never with mlplane's tags. mlplane must never change any of it (V2).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from moto.ec2.models import ec2_backends
from moto.eks.models import eks_backends
from moto.iam.models import iam_backends

from mlplane_sandbox import clock as clock_module
from mlplane_sandbox.clock import VirtualClock
from mlplane_sandbox.fidelity.iam_kms import note_role_created
from mlplane_sandbox.rules import Call, after

SCENARIOS = ("ok", "slow", "late", "cluster-failed", "nodegroup-failed", "never", "no-credential-role")
LATE_TRIGGER_SECONDS = 86_400.0  # `late`: the AAC admin triggers provisioning a day after the notification
DEFAULT_DURATION_SECONDS = 2250.0  # 37.5 min, the middle of AAC's 35-40
CLUSTER_ACTIVE_AT = 0.6
VENDOR_TAGS = {"aac:managed": "true", "aac:component": "private-data-processing"}
CLUSTER_ROLE = "aac-eks-cluster-role"
NODE_ROLE = "aac-eks-node-role"
NODEGROUPS = ("aac-ng-system", "aac-ng-jobs")
NODES_PER_GROUP = 2  # the node groups' desiredSize
MAX_CLUSTER_INTERFACES = 4  # "Amazon EKS ... creates up to four network interfaces across these subnets"
CLUSTER_SG_DESCRIPTION = (
    "EKS created security group applied to ENI that is attached to EKS Control Plane master nodes, as well as any"
    " managed workloads."
)
_FAILED_NODEGROUP = NODEGROUPS[1]
_PARTITION = "aws"
# RequesterId of the interfaces EKS makes for a cluster: "the alias or account ID of the principal or service
# that created the network interface" (EC2 user guide, requester-managed interfaces); a stand-in alias here.
EKS_REQUESTER = "amazon-eks"

_TRUST = {
    CLUSTER_ROLE: "eks.amazonaws.com",
    NODE_ROLE: "ec2.amazonaws.com",
}


@dataclass
class _Phase:
    at: float
    name: str
    run: Callable[[], None]


@dataclass
class _Account:
    account_id: str
    region: str
    started: float
    phases: list[_Phase] = field(default_factory=list)
    resource_ids: set[str] = field(default_factory=set)
    roles: list[str] = field(default_factory=list)
    cluster: str | None = None
    nodegroups: list[str] = field(default_factory=list)
    ready_at: float | None = None
    interfaces: list[str] = field(default_factory=list)  # ENIs EKS and the nodes put in mlplane's subnets
    security_groups: list[str] = field(default_factory=list)


class VendorSimulator:
    """AAC in the sandbox. `activate()` makes it answer mlplane's READY_FOR_VENDOR notifications."""

    def __init__(
        self,
        scenario: str = "ok",
        clock: VirtualClock | None = None,
        duration_seconds: float = DEFAULT_DURATION_SECONDS,
        *,
        region: str | None = None,
        cluster_prefix: str = "aac-",
        credential_role_name: str = "credential-service-role",
    ) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown vendor scenario {scenario!r} (one of {', '.join(SCENARIOS)})")
        self.scenario = scenario
        self.clock = clock or clock_module.clock()
        self.duration = duration_seconds * (3 if scenario == "slow" else 1)
        self.region = region
        self.cluster_prefix = cluster_prefix
        self.credential_role_name = credential_role_name
        self._lock = threading.RLock()
        self._accounts: dict[str, _Account] = {}
        self._listening = False
        self.clock.on_advance(self._on_advance)
        self._listening = True

    # -- public -------------------------------------------------------------------------------------------
    def activate(self) -> VendorSimulator:
        """Answer READY_FOR_VENDOR notifications from now on (replaces any other active simulator)."""
        global _active  # noqa: PLW0603 - the sandbox has one vendor at a time
        with _active_lock:
            _active = self
        return self

    def deactivate(self) -> None:
        global _active  # noqa: PLW0603
        with _active_lock:
            if _active is self:
                _active = None
        self._listening = False

    def trigger(self, account_id: str, region: str = "eu-west-1") -> None:
        """The AAC admin triggers provisioning in `account_id`; a second trigger for it is ignored."""
        with self._lock:
            if account_id in self._accounts:
                return
            now = self.clock.now() + (LATE_TRIGGER_SECONDS if self.scenario == "late" else 0.0)
            state = _Account(account_id=account_id, region=self.region or region, started=now)
            self._accounts[account_id] = state
            if self.scenario == "never":
                return
            state.phases = [
                _Phase(now, "create cluster", lambda: self._create_cluster(state)),
                _Phase(now + CLUSTER_ACTIVE_AT * self.duration, "cluster up", lambda: self._cluster_up(state)),
                _Phase(now + self.duration, "node groups up", lambda: self._nodegroups_up(state)),
            ]
            self._run_due(self.clock.now())

    def triggered(self, account_id: str) -> bool:
        with self._lock:
            return account_id in self._accounts

    def trigger_time(self, account_id: str) -> float | None:
        """Virtual time at which the AAC admin triggered provisioning in the account, or None."""
        with self._lock:
            state = self._accounts.get(account_id)
            return state.started if state else None

    def readiness_time(self, account_id: str) -> float | None:
        """Virtual time at which the cluster and every node group were ACTIVE, or None."""
        with self._lock:
            state = self._accounts.get(account_id)
            return state.ready_at if state else None

    def vendor_resource_ids(self, account_id: str) -> set[str]:
        """Names and ARNs of everything the vendor created in the account (still there or not)."""
        with self._lock:
            state = self._accounts.get(account_id)
            return set(state.resource_ids) if state else set()

    def teardown(self, account_id: str) -> None:
        """Delete what the vendor created, as the AAC admin does before the account is deprovisioned."""
        with self._lock:
            state = self._accounts.pop(account_id, None)
            if state is None:
                return
            state.phases.clear()
            _remove_network_footprint(state)
            eks = eks_backends[account_id][state.region]
            if state.cluster and state.cluster in eks.clusters:
                cluster = eks.clusters[state.cluster]
                for name in list(cluster.nodegroups):
                    eks.delete_nodegroup(cluster_name=state.cluster, nodegroup_name=name)
                eks.delete_cluster(name=state.cluster)
            iam = iam_backends[account_id][_PARTITION]
            for name in state.roles:
                if any(role.name == name for role in iam.get_roles()):
                    iam.delete_role(name)

    # -- the clock ----------------------------------------------------------------------------------------
    def _on_advance(self, now: float) -> None:
        if self._listening:
            self._run_due(now)

    def _run_due(self, now: float) -> None:
        with self._lock:
            due = sorted(
                ((phase, state) for state in self._accounts.values() for phase in state.phases if phase.at <= now),
                key=lambda item: item[0].at,
            )
            for phase, state in due:
                if phase in state.phases:
                    state.phases.remove(phase)
                    phase.run()

    # -- what AAC does ------------------------------------------------------------------------------------
    def _create_cluster(self, state: _Account) -> None:

        for name, service in _TRUST.items():
            self._create_role(state, name, _service_trust(service), at=state.started)
        eks = eks_backends[state.account_id][state.region]
        name = f"{self.cluster_prefix}{state.account_id}"
        cluster = eks.create_cluster(
            name=name,
            role_arn=_role_arn(state.account_id, CLUSTER_ROLE),
            resources_vpc_config={
                "subnetIds": _subnets(state, "eks_control"),
                "endpointPublicAccess": False,
                "endpointPrivateAccess": True,
            },
            version="1.31",
            tags=dict(VENDOR_TAGS),
        )
        cluster.status = "CREATING"
        state.cluster = name
        state.resource_ids.update({name, cluster.arn})
        self._cluster_network(state, cluster)

    def _cluster_network(self, state: _Account, cluster: Any) -> None:
        """EKS's cluster security group in the VPC and its cross-account interfaces in the control subnets."""
        ec2 = ec2_backends[state.account_id][state.region]
        subnet_ids = list(cluster.resources_vpc_config.get("subnetIds", []))
        if not subnet_ids:
            return
        vpc_id = ec2.get_subnet(subnet_ids[0]).vpc_id
        group = ec2.create_security_group(
            name=f"eks-cluster-sg-{cluster.name}-{uuid.uuid4().int % 10**10:010d}",
            description=CLUSTER_SG_DESCRIPTION,
            vpc_id=vpc_id,
            tags={f"kubernetes.io/cluster/{cluster.name}": "owned", "aws:eks:cluster-name": cluster.name},
        )
        state.security_groups.append(group.id)
        state.resource_ids.add(group.id)
        cluster.resources_vpc_config["clusterSecurityGroupId"] = group.id
        for subnet_id in subnet_ids[:MAX_CLUSTER_INTERFACES]:
            eni = ec2.create_network_interface(
                ec2.get_subnet(subnet_id), [], group_ids=[group.id], description=f"Amazon EKS {cluster.name}"
            )
            # Made by EKS in the account for its control plane (the cluster's "cross-account" interfaces).
            eni.requester_managed = True
            eni.requester_id = EKS_REQUESTER
            state.interfaces.append(eni.id)
            state.resource_ids.add(eni.id)

    def _node_interfaces(self, state: _Account, cluster: Any, group_name: str, subnet_ids: list[str]) -> None:
        """Each node of a node group puts an interface in an `eks_node` subnet (the VPC CNI's, tagged as it tags)."""
        ec2 = ec2_backends[state.account_id][state.region]
        groups = [g for g in [cluster.resources_vpc_config.get("clusterSecurityGroupId")] if g]
        for index in range(NODES_PER_GROUP):
            instance_id = f"i-{uuid.uuid4().hex[:17]}"
            eni = ec2.create_network_interface(
                ec2.get_subnet(subnet_ids[index % len(subnet_ids)]),
                [],
                group_ids=groups,
                description=f"aws-K8S-{instance_id}",
                tags={
                    "node.k8s.amazonaws.com/instance_id": instance_id,
                    "cluster.k8s.amazonaws.com/name": cluster.name,
                    "eks:nodegroup-name": group_name,
                },
            )
            state.interfaces.append(eni.id)
            state.resource_ids.add(eni.id)

    def _cluster_up(self, state: _Account) -> None:

        eks = eks_backends[state.account_id][state.region]
        cluster = eks.clusters.get(state.cluster or "")
        if cluster is None:
            return
        if self.scenario == "cluster-failed":
            cluster.status = "FAILED"
            cluster.health = {  # type: ignore[attr-defined]  # moto has no cluster health; the serializer reads it
                "issues": [
                    {
                        "code": "InsufficientFreeAddresses",
                        "message": "One or more of the subnets has insufficient free IP addresses.",
                        "resourceIds": list(cluster.resources_vpc_config.get("subnetIds", [])),
                    }
                ]
            }
            _remove_interfaces(state)  # EKS gives back what it could not use; the security group stays
            state.phases.clear()
            return
        cluster.status = "ACTIVE"
        node_subnets = _subnets(state, "eks_node")
        for group_name in NODEGROUPS:
            group = eks.create_nodegroup(
                cluster_name=cluster.name,
                node_role=_role_arn(state.account_id, NODE_ROLE),
                nodegroup_name=group_name,
                subnets=node_subnets,
                instance_types=["m5.2xlarge"],
                scaling_config={"minSize": 1, "maxSize": 10, "desiredSize": 2},
                tags=dict(VENDOR_TAGS),
            )
            group.status = "CREATING"
            group.health = {"issues": []}  # moto shares one default dict between node groups
            state.nodegroups.append(group_name)
            if node_subnets and not (self.scenario == "nodegroup-failed" and group_name == _FAILED_NODEGROUP):
                self._node_interfaces(state, cluster, group_name, node_subnets)
            state.resource_ids.update({group_name, group.arn})

    def _nodegroups_up(self, state: _Account) -> None:

        eks = eks_backends[state.account_id][state.region]
        cluster = eks.clusters.get(state.cluster or "")
        if cluster is None:
            return
        for name in state.nodegroups:
            group = cluster.nodegroups.get(name)
            if group is None:
                continue
            if self.scenario == "nodegroup-failed" and name == _FAILED_NODEGROUP:
                group.status = "CREATE_FAILED"
                group.health = {
                    "issues": [
                        {
                            "code": "AsgInstanceLaunchFailures",
                            "message": "Could not launch On-Demand Instances. VcpuLimitExceeded - You have requested"
                            " more vCPU capacity than your current vCPU limit allows.",
                            "resourceIds": [f"eks-{group.uuid}"],
                        }
                    ]
                }
            else:
                group.status = "ACTIVE"
        if self.scenario == "nodegroup-failed":
            return
        # AAC finished at its scheduled time; the clock only shows it at its next advance (the next poll's Wait).
        state.ready_at = state.started + self.duration
        if self.scenario != "no-credential-role":
            self._create_role(
                state,
                self.credential_role_name,
                _oidc_trust(state.account_id, cluster),
                at=state.started + self.duration,
            )

    def _create_role(self, state: _Account, name: str, trust: dict[str, Any], *, at: float) -> None:
        """The role as AAC makes it at virtual time `at` (its phase's due time, which the clock may pass in one
        advance): KMS's delay before the role is a valid principal counts from then."""

        iam = iam_backends[state.account_id][_PARTITION]
        if any(role.name == name for role in iam.get_roles()):
            return
        role = iam.create_role(
            role_name=name,
            assume_role_policy_document=json.dumps(trust),
            path="/",
            permissions_boundary=None,
            description="Created by Alteryx Analytics Cloud for Private Data Processing",
            tags=[{"Key": key, "Value": value} for key, value in VENDOR_TAGS.items()],
            max_session_duration=None,
        )
        note_role_created(state.account_id, name, at=at)
        state.roles.append(name)
        state.resource_ids.update({name, role.arn})


def _remove_interfaces(state: _Account) -> None:
    ec2 = ec2_backends[state.account_id][state.region]
    for eni_id in state.interfaces:
        ec2.enis.pop(eni_id, None)
    state.interfaces.clear()


def _remove_network_footprint(state: _Account) -> None:
    """What deleting the node groups and the cluster removes from the VPC: their interfaces, then the group."""
    _remove_interfaces(state)
    ec2 = ec2_backends[state.account_id][state.region]
    for group_id in state.security_groups:
        if ec2.get_security_group_from_id(group_id) is not None:
            ec2.delete_security_group(group_id=group_id)
    state.security_groups.clear()


def _role_arn(account_id: str, name: str) -> str:
    return f"arn:{_PARTITION}:iam::{account_id}:role/{name}"


def _service_trust(service: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def _oidc_trust(account_id: str, cluster: Any) -> dict[str, Any]:
    issuer = str(cluster.identity["oidc"]["issuer"]).removeprefix("https://")
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": f"arn:{_PARTITION}:iam::{account_id}:oidc-provider/{issuer}"},
                "Action": "sts:AssumeRoleWithWebIdentity",
            }
        ],
    }


def _subnets(state: _Account, group: str) -> list[str]:
    """mlplane's subnets tagged AACSubnet=<group> if there are any, else any subnets of the account."""

    ec2 = ec2_backends[state.account_id][state.region]
    tagged = ec2.describe_subnets(filters={"tag:AACSubnet": [group]})
    chosen = tagged or ec2.describe_subnets()
    return sorted(subnet.id for subnet in chosen)


# -- the trigger ------------------------------------------------------------------------------------------
_active_lock = threading.Lock()
_active: VendorSimulator | None = None


def active() -> VendorSimulator | None:
    with _active_lock:
        return _active


def start(scenario: str = "ok", clock: VirtualClock | None = None, **options: Any) -> VendorSimulator:
    """Make and activate a simulator (what the sandbox runner calls before a run)."""
    return VendorSimulator(scenario, clock, **options).activate()


def stop() -> None:
    simulator = active()
    if simulator is not None:
        simulator.deactivate()


def reset(scenario: str = "ok", clock: VirtualClock | None = None, **options: Any) -> VendorSimulator:
    """A fresh simulator for a sandbox run: forget the previous one and answer with `scenario`."""
    stop()
    return start(scenario, clock, **options)


def teardown(account_id: str) -> None:
    """The AAC admin removes the data plane from `account_id` (before it is deprovisioned)."""
    simulator = active()
    if simulator is not None:
        simulator.teardown(account_id)


@after("eks", "DeleteCluster")
def _on_cluster_deleted(call: Call, response: dict[str, Any]) -> None:
    """The vendor's cluster was deleted through the EKS API (not by mlplane, which never deletes it): what EKS
    put in the VPC goes with it, and the data plane is gone."""
    simulator = active()
    if simulator is not None and not call.by_mlplane:
        simulator.teardown(call.account_id)


@after("sns", "Publish")
def _on_publish(call: Call, response: dict[str, Any]) -> None:
    """mlplane told the world the account is ready: the AAC admin triggers provisioning."""
    simulator = active()
    if simulator is None:
        return
    try:
        document = json.loads(str(call.params.get("Message", "")))
    except ValueError:
        return
    if not isinstance(document, dict) or document.get("event") != "READY_FOR_VENDOR":
        return
    account_id = str(document.get("account_id") or "")
    if account_id:
        simulator.trigger(account_id, call.region)
