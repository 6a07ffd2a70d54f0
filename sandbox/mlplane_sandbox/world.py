"""The world Control Tower would have left: an Organization with seed 002's OUs, a hub, member accounts
with the execution role, and (for egress mode tgw) a network account sharing a transit gateway via RAM."""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from botocore.config import Config

from mlplane.aws import new_session
from mlplane_sandbox import recording

HUB_ACCOUNT = "123456789012"
NETWORK_ACCOUNT = "999999999999"
REGION = "eu-west-1"
OUS = ("Security", "Infrastructure", "Workloads", "Deployments", "Sandbox")
AWS_MANAGED_POLICIES = ("AmazonSageMakerCanvasEMRServerlessExecutionRolePolicy",)
"""AWS managed policies the sandbox's accounts have (moto loads none unless MOTO_IAM_LOAD_MANAGED_POLICIES, and
then all 1,400): the one the Canvas module attaches, with the document and ARN moto's copy of AWS's list has."""

_local = threading.local()
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


@contextmanager
def as_account(account_id: str) -> Iterator[None]:
    """Make the sandbox's own clients act in `account_id` (world-building, vendor, read-back; never mlplane).

    moto's MOTO_ACCOUNT_ID would do this process-wide and race with the handlers running in other threads,
    so each request carries moto's per-request `x-moto-account-id` header instead.
    """
    previous = getattr(_local, "account", None)
    _local.account = account_id
    try:
        with recording.suppressed():
            yield
    finally:
        _local.account = previous


def _add_account_header(request: Any, **_: Any) -> None:
    account = getattr(_local, "account", None)
    if account:
        request.headers["x-moto-account-id"] = account


def sandbox_client(service: str) -> Any:
    """A client for the sandbox's own calls; use inside `as_account(account_id)`. Made once per process and
    kept from one Sandbox to the next: it holds no state of a run (the account is per request, the credentials
    are the sandbox's fixed test ones), and making a client costs more than a dozen of its calls."""
    with _clients_lock:
        if service not in _clients:
            made = new_session(region_name=REGION).client(  # type: ignore[call-overload]
                service, config=Config(retries={"mode": "standard", "max_attempts": 2})
            )
            made.meta.events.register("before-sign.*.*", _add_account_header)
            _clients[service] = made
        return _clients[service]


@dataclass(frozen=True)
class MemberRole:
    """A role every vended account gets from a StackSet (member-role.yaml): its trust and inline policies."""

    name: str
    trust_policy: str
    policies: dict[str, str]


@dataclass
class World:
    # The role the StackSet deploys into each account placed with its name (a delegated hub's member role).
    stackset_role: MemberRole | None = None
    # Roles the customer made in each account before naming them to mlplane (SaAccessKeySecretReaderRole):
    # Secrets Manager refuses a resource policy naming a role that does not exist (fidelity.secretsmanager).
    customer_roles: tuple[str, ...] = ()
    root_id: str = ""
    ou_ids: dict[str, str] = field(default_factory=dict)
    accounts: dict[str, str] = field(default_factory=dict)  # account id -> OU name
    transit_gateway_id: str = ""
    # One transit gateway per network segment: "default" (the global settings) is `transit_gateway_id`, and each
    # tgw blueprint configured without a gateway id gets its own (seed 002: a gateway per environment).
    segment_gateways: dict[str, str] = field(default_factory=dict)
    organization_arn: str = ""

    def build(self) -> None:
        with as_account(HUB_ACCOUNT):
            org = sandbox_client("organizations")
            org.create_organization(FeatureSet="ALL")
            self.root_id = org.list_roots()["Roots"][0]["Id"]
            self.organization_arn = org.describe_organization()["Organization"]["Arn"]
            for name in OUS:
                self.ou_ids[name] = org.create_organizational_unit(ParentId=self.root_id, Name=name)[
                    "OrganizationalUnit"
                ]["Id"]

    def ou(self, name: str) -> str:
        if name not in self.ou_ids:
            with as_account(HUB_ACCOUNT):
                org = sandbox_client("organizations")
                self.ou_ids[name] = org.create_organizational_unit(ParentId=self.root_id, Name=name)[
                    "OrganizationalUnit"
                ]["Id"]
        return self.ou_ids[name]

    def place_account(self, account_id: str, ou_name: str, *, role_name: str, status: str = "ACTIVE") -> None:
        """The account exists in the organization, in `ou_name`, with the execution role (as vended)."""
        from moto.organizations import utils as org_utils
        from moto.organizations.models import organizations_backends

        target = self.ou(ou_name)
        with as_account(HUB_ACCOUNT):
            org = sandbox_client("organizations")
            if account_id not in self.accounts:
                with mock.patch.object(org_utils, "make_random_account_id", return_value=account_id):
                    org.create_account(
                        AccountName=f"ml-{account_id}", Email=f"ml+{account_id}@example.com", RoleName=role_name
                    )
            parent = org.list_parents(ChildId=account_id)["Parents"][0]["Id"]
            if parent != target:
                org.move_account(AccountId=account_id, SourceParentId=parent, DestinationParentId=target)
        if self.stackset_role is not None and role_name == self.stackset_role.name:
            self._deploy_stackset_role(account_id, self.stackset_role)
        if account_id not in self.accounts:
            add_aws_managed_policies(account_id)
        for customer_role in self.customer_roles:
            self._place_customer_role(account_id, customer_role)
        backend = organizations_backends[HUB_ACCOUNT]["aws"]
        for account in backend.accounts:
            if account.id == account_id:
                account.status = account.state = status
        self.accounts[account_id] = ou_name

    @staticmethod
    def tag_account(account_id: str, tags: dict[str, str]) -> None:
        """Tag a placed account in Organizations, as an operator would (e.g. mlplane:network-blueprint)."""
        with as_account(HUB_ACCOUNT):
            sandbox_client("organizations").tag_resource(
                ResourceId=account_id, Tags=[{"Key": k, "Value": v} for k, v in tags.items()]
            )

    @staticmethod
    def _place_customer_role(account_id: str, path_name: str) -> None:
        """A role of the customer's (trusting its own account), made before mlplane runs; kept if present.
        `path_name` is [PATH/]NAME (the path `/PATH/`, as IAM writes it)."""
        from moto.iam.models import iam_backends

        *segments, name = path_name.split("/")
        path = "/" + "".join(f"{segment}/" for segment in segments)
        iam = iam_backends[account_id]["aws"]
        if any(role.name == name for role in iam.roles.values()):
            return
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"}, "Action": "sts:AssumeRole"}
            ],
        }
        iam.create_role(
            role_name=name,
            assume_role_policy_document=json.dumps(trust),
            path=path,
            permissions_boundary=None,
            description="the customer's",
            tags=[],
            max_session_duration=None,
        )

    @staticmethod
    def _deploy_stackset_role(account_id: str, role: MemberRole) -> None:
        """The StackSet's stack instance in the account: the role with the template's trust and policies
        (replacing the trust moto gives the role Organizations creates, which names the management account)."""
        with as_account(account_id):
            iam = sandbox_client("iam")
            iam.update_assume_role_policy(RoleName=role.name, PolicyDocument=role.trust_policy)
            for name, document in role.policies.items():
                iam.put_role_policy(RoleName=role.name, PolicyName=name, PolicyDocument=document)

    def shared_transit_gateway(self, *, auto_accept: bool = True, segment: str = "default") -> str:
        """seed 002's hub and spoke: the network account owns a TGW shared with the organization via RAM.

        `auto_accept` (AutoAcceptSharedAttachments): by default the gateway accepts the member accounts'
        attachments itself, as seed 002's vending needs (every vended account attaches with no one at hand in
        the network account). Without it (AWS's default, "Disabled by default" in EC2's API reference) each
        attachment stays pendingAcceptance until the network account's admin accepts it.
        """
        if segment in self.segment_gateways:
            return self.segment_gateways[segment]
        if NETWORK_ACCOUNT not in self.accounts:
            self.place_account(NETWORK_ACCOUNT, "Infrastructure", role_name="AWSControlTowerExecution")
        with as_account(NETWORK_ACCOUNT):
            ec2 = sandbox_client("ec2")
            tgw = ec2.create_transit_gateway(
                Description="shared egress" if segment == "default" else f"shared egress ({segment})",
                Options={"AutoAcceptSharedAttachments": "enable" if auto_accept else "disable"},
            )["TransitGateway"]
            self.segment_gateways[segment] = tgw["TransitGatewayId"]
            if segment == "default":
                self.transit_gateway_id = tgw["TransitGatewayId"]
            ram = sandbox_client("ram")
            ram.create_resource_share(
                name="network-egress-tgw" if segment == "default" else f"network-egress-tgw-{segment}",
                resourceArns=[tgw["TransitGatewayArn"]],
                principals=[self.organization_arn],
                allowExternalPrincipals=False,
            )
        return self.segment_gateways[segment]


def add_aws_managed_policies(account_id: str, names: tuple[str, ...] = AWS_MANAGED_POLICIES) -> None:
    """The AWS managed policies `names` exist in the account, as in every AWS account of the partition."""
    from moto.iam.models import AWSManagedPolicy, iam_backends

    backend = iam_backends[account_id]["aws"]
    for name in names:
        policy = AWSManagedPolicy.from_data(name, account_id, backend.region_name, _managed_policy_data(name))
        backend.managed_policies.setdefault(policy.arn, policy)


@functools.cache
def _managed_policy_data(name: str) -> dict[str, Any]:
    """moto's document of an AWS managed policy, parsed once per process: moto keeps all of them (about a
    thousand) in one JSON text, and each account placed would otherwise parse the whole text again."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    document: dict[str, Any] = json.loads(aws_managed_policies_data)[name]
    return document


def remove_aws_managed_policy(account_id: str, name: str) -> None:
    """A partition without the policy (tests of mlplane's pre-check)."""
    from moto.iam.models import iam_backends

    backend = iam_backends[account_id]["aws"]
    for arn in [arn for arn in backend.managed_policies if arn.endswith(f":policy/{name}")]:
        del backend.managed_policies[arn]
