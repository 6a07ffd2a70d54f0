"""ValidateAccount: everything is checked before anything is changed (REQUIREMENTS C1, I3)."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from botocore.exceptions import ClientError

from mlplane import aws, modules
from mlplane.accounts.events import ControlTowerEvent, ManualStart, parse_start
from mlplane.accounts.lifecycle import deliver_pending_ready
from mlplane.accounts.organization import organization_state
from mlplane.accounts.ownership import owner_running
from mlplane.config import DEFAULT_BLUEPRINT, Settings
from mlplane.errors import Conflict, InputRejected, translate
from mlplane.iam.policy import check_policy, extra_policies, shipped_policy
from mlplane.ledger import AccountStatus, Ledger, Status
from mlplane.member import MANAGED_TAG, Member, session_policies
from mlplane.network import allocation, blueprint
from mlplane.network.plan import plan_network
from mlplane.observability import logger
from mlplane.steps import ValidateAccountOutput

# A new run may start from these; PROVISIONING/ROLLING_BACK/DEPROVISIONING mean another run owns the account.
_STARTABLE = frozenset({Status.PENDING, Status.ROLLED_BACK, Status.ROLLBACK_INCOMPLETE, Status.DEPROVISIONED})
_REQUIRED_AZS = 3


class Admission(NamedTuple):  # not a frozen dataclass: ~0.5 ms less of a cold start (CPython 3.11)
    """What ValidateAccount decides for a start, before it writes anything (`mlplane plan` shows it too)."""

    account_id: str
    ou: str
    action: Literal["provision", "noop", "resume", "reconcile", "adopt"]
    current: AccountStatus | None
    network_blueprint: str = DEFAULT_BLUEPRINT  # what the account is (to be) built with (N6)
    startable: frozenset[Status] = _STARTABLE
    reason: str = ""  # why noop / resume / a take-over
    modules: tuple[str, ...] = ()  # the optional modules enabled for the account (`mlplane.modules`)


def admit(raw: Any, execution: str, settings: Settings, ledger: Ledger) -> Admission:
    """Every check of ValidateAccount, read-only: raises InputRejected or Conflict naming the problem."""
    start = parse_start(raw)
    account_id = start.account_id
    if isinstance(start, ControlTowerEvent) and start.status.state != "SUCCEEDED":
        raise InputRejected(
            f"Control Tower {start.detail.eventName} for {account_id} is {start.status.state}: nothing to do"
        )
    ou = _organization_ou(account_id, settings)
    if ou not in settings.allowed_ous:
        raise InputRejected(
            f"account {account_id} is in OU {ou!r}, not in the allowed OUs {', '.join(settings.allowed_ous)}"
        )
    tags = _account_tags(account_id, settings)  # its network blueprint (N6) and modules, by tag
    enabled = modules.enabled_for(settings, ou=ou, tags=tags)
    current = ledger.status(account_id)
    # A manual reconcile, or Control Tower updating an account mlplane already made READY (its OU, its
    # baseline): converge it to the plan rather than ignore the event (D2).
    reconcile = (isinstance(start, ManualStart) and start.action == "reconcile") or (
        isinstance(start, ControlTowerEvent) and start.detail.eventName == "UpdateManagedAccount"
    )
    built = blueprint.built_with(ledger, account_id)
    adopt = isinstance(start, ManualStart) and start.action == "adopt"
    if current is not None and current.status == Status.READY:
        if adopt:
            raise InputRejected(f"account {account_id} is READY: nothing to adopt (mlplane reconcile converges it)")
        if reconcile:
            blueprint.settings_for(settings, ledger, account_id)  # still configured
            return Admission(
                account_id, ou, "reconcile", current, built, reason="READY: converge it to the plan", modules=enabled
            )
        return Admission(
            account_id, ou, "noop", current, built, reason=f"READY since {current.updated_at}", modules=enabled
        )
    if reconcile and isinstance(start, ManualStart):
        state = current.status.value if current else "unknown to mlplane"
        raise InputRejected(f"account {account_id} is {state}, not READY: nothing to reconcile (provision it)")
    if current is not None and _resumes(current, execution):
        return Admission(
            account_id, ou, "resume", current, built, reason=f"{current.status}: back to the waits", modules=enabled
        )
    startable = _STARTABLE
    reason = ""
    if current is not None and current.status not in _STARTABLE and current.execution != execution:
        if owner_running(current, settings):
            raise Conflict(
                f"account {account_id} is {current.status} by execution {current.execution}; not starting another"
            )
        # Its owner ended without a final status (C8): this run takes over; what exists is found, not re-made.
        startable = _STARTABLE | {current.status}
        reason = f"takes over from {current.execution} ({current.status}, no longer running)"
    name = _blueprint_for(account_id, ou, current, tags, execution=execution, settings=settings, ledger=ledger)
    _check_account(account_id, execution, settings.network_for(name), ledger, adopt=adopt, enabled=enabled)
    action: Literal["adopt", "provision"] = "adopt" if adopt else "provision"
    return Admission(account_id, ou, action, current, name, startable, reason, modules=enabled)


def _check_account(
    account_id: str, execution: str, settings: Settings, ledger: Ledger, *, adopt: bool, enabled: tuple[str, ...]
) -> None:
    """The checks that read the member account, before a provision or adopt changes anything (`settings`: the
    account's network blueprint's)."""
    check_policy(settings.sa_policy_name, shipped_policy())  # name prefix and IAM's size limit (I2)
    extra_policies(settings)  # SaExtraPolicies: shipped files, policy documents within IAM's limits
    policies = session_policies(settings)  # every purpose's session policy fits STS's limit (ConfigError)

    def session(purpose: str) -> aws.Session:
        return aws.session_for(
            account_id,
            settings.member_role_name,
            region=settings.member_region,
            session_name=execution,
            session_policy=policies[purpose],
        )

    if adopt and settings.egress_mode != "nat":
        raise InputRejected(f"account {account_id}: adopt takes over seed 000's network, nat mode only")
    # adopt: the hand-made aac_vpc overlaps the plan by design; the create steps match it instead (D3)
    azs = _check_member(account_id, settings, aws.client(session("core"), "ec2"), overlap_ok=adopt)
    _check_plan(account_id, settings, azs, ledger)  # N5: the plan is validated before anything is created
    if enabled:  # the modules' own pre-checks (read-only): a module that is not enabled makes no call
        member = Member(
            account_id, settings.member_region, execution, "ValidateAccount", session("core"), ledger, assume=session
        )
        modules.check(member, settings, enabled)


def _blueprint_for(
    account_id: str,
    ou: str,
    current: AccountStatus | None,
    tags: Mapping[str, str],
    *,
    execution: str,
    settings: Settings,
    ledger: Ledger,
) -> str:
    """The network blueprint this provision builds with (N6): chosen afresh (tag, OU, default) for a new build;
    the recorded one when this execution already chose it (a redelivery) or when the ledger still lists network
    resources built with it (a re-run on what a failed rollback left, a take-over)."""
    built = blueprint.recorded(ledger, account_id)
    if current is None or (not settings.network_blueprints and built in (None, DEFAULT_BLUEPRINT)):
        return blueprint.resolve(account_id, ou, settings, tags)  # a new account, or nothing to choose from
    if (current.execution == execution and built is not None) or blueprint.has_network(ledger, account_id):
        blueprint.settings_for(settings, ledger, account_id)  # still configured, else rejected
        return blueprint.built_with(ledger, account_id)
    return blueprint.resolve(account_id, ou, settings, tags)


def validate(raw: Any, execution: str, settings: Settings, ledger: Ledger) -> ValidateAccountOutput:
    admission = admit(raw, execution, settings, ledger)
    account_id, current = admission.account_id, admission.current
    if admission.action == "noop":
        deliver_pending_ready(account_id, settings, ledger)  # a READY the first run could not announce (C10)
    elif admission.action == "reconcile":
        logger.info("reconciling", account_id=account_id)  # the status stays READY throughout (D2)
        ledger.record_ou(account_id, admission.ou, admission.modules)  # what ReconcileAccount converges
    elif admission.action == "resume":
        assert current is not None
        return _resume(
            current,
            ou=admission.ou,
            network_blueprint=admission.network_blueprint,
            settings=settings,
            ledger=ledger,
            execution=execution,
        )
    else:
        if admission.reason:
            logger.info("taking over", account_id=account_id, reason=admission.reason)
        if current is None or current.execution != execution:
            ledger.set_status(account_id, Status.PROVISIONING, execution=execution, only_from=admission.startable)
            # `mlplane accounts --ou`, and the modules audit and reconcile look at; every step rewrites the status
            ledger.record_ou(account_id, admission.ou, admission.modules)
        blueprint.record(ledger, account_id, admission.network_blueprint, ou=admission.ou)  # what it is built with
    return ValidateAccountOutput(
        account_id=account_id,
        execution=execution,
        ou=admission.ou,
        action=admission.action if admission.action in ("noop", "reconcile", "adopt") else "provision",
        network_blueprint=admission.network_blueprint,
        poll_interval_seconds=settings.poll_interval_seconds,
        modules=list(admission.modules),
    )


RESUMED = "resumed from ROLLBACK_HELD"
"""How the status item of a resumed execution starts its `error`: a redelivered ValidateAccount resumes again."""


def _resumes(current: AccountStatus, execution: str) -> bool:
    """A held account (REQUIREMENTS C7), or one this execution already resumed (a redelivery)."""
    if current.status == Status.ROLLBACK_HELD:
        return True
    return (
        current.status == Status.PROVISIONING
        and current.execution == execution
        and (current.error or "").startswith(RESUMED)
    )


def _resume(
    current: AccountStatus, *, ou: str, network_blueprint: str, settings: Settings, ledger: Ledger, execution: str
) -> ValidateAccountOutput:
    """Back to the waits for a held account: everything mlplane made is still there; nothing is created again.

    The operator retried the data plane in AAC (the vendor's own retry needs no notification from mlplane).
    """
    account_id = current.account_id
    if current.status == Status.ROLLBACK_HELD:
        ledger.set_status(
            account_id,
            Status.PROVISIONING,
            execution=execution,
            error=f"{RESUMED} (held by {current.execution}): {current.error or ''}",
            only_from=frozenset({Status.ROLLBACK_HELD}),
        )
    return ValidateAccountOutput(
        account_id=account_id,
        execution=execution,
        ou=ou,
        action="resume",
        network_blueprint=network_blueprint,
        poll_interval_seconds=settings.poll_interval_seconds,
    )


def _account_tags(account_id: str, settings: Settings) -> dict[str, str]:
    """The account's tags in Organizations (read from the hub): `mlplane:network-blueprint`, `mlplane:module:*`."""
    org = aws.client(aws.hub_session(settings.aws_region), "organizations")
    tags: dict[str, str] = {}
    try:
        for page in org.get_paginator("list_tags_for_resource").paginate(ResourceId=account_id):
            tags.update({t["Key"]: t["Value"] for t in page.get("Tags", [])})
    except ClientError as err:
        raise translate(err, f"organizations:ListTagsForResource {account_id}") from err
    return tags


def _organization_ou(account_id: str, settings: Settings) -> str:
    """The name of the account's parent OU; the account must be ACTIVE in the organization."""
    org = aws.client(aws.hub_session(settings.aws_region), "organizations")
    state = organization_state(account_id, settings)
    if state != "ACTIVE":
        raise InputRejected(f"account {account_id} is {state}, not ACTIVE")
    try:
        parent = org.list_parents(ChildId=account_id)["Parents"][0]
        if parent["Type"] != "ORGANIZATIONAL_UNIT":
            raise InputRejected(f"account {account_id} is not in an OU (parent {parent['Id']})")
        name: str = org.describe_organizational_unit(OrganizationalUnitId=parent["Id"])["OrganizationalUnit"]["Name"]
    except ClientError as err:
        raise translate(err, f"organizations:ListParents {account_id}") from err
    return name


def _check_member(account_id: str, settings: Settings, ec2: Any, *, overlap_ok: bool = False) -> list[str]:
    """The region has the AZs the plan needs and no foreign VPC overlaps the planned CIDRs."""
    try:
        zones = ec2.describe_availability_zones(Filters=[{"Name": "state", "Values": ["available"]}])
        vpcs = ec2.describe_vpcs()["Vpcs"]
    except ClientError as err:
        raise translate(err, f"ec2:DescribeVpcs in {account_id}") from err
    names = sorted(
        z["ZoneName"]
        for z in zones["AvailabilityZones"]
        if z.get("ZoneType", "availability-zone") == "availability-zone"
    )
    if len(names) < _REQUIRED_AZS:
        raise InputRejected(f"region {settings.member_region} has {len(names)} AZs in {account_id}; the plan needs 3")
    if settings.egress_mode != "nat" or overlap_ok:
        return names  # tgw mode allocates the account's CIDRs from the pool in CreateNetwork
    planned = [ipaddress.IPv4Network(settings.vpc_cidr), ipaddress.IPv4Network(settings.secondary_cidr)]
    for vpc in vpcs:
        tags = {t["Key"]: t["Value"] for t in vpc.get("Tags", [])}
        if vpc.get("IsDefault") or tags.get(MANAGED_TAG) == "true":
            continue
        for assoc in vpc.get("CidrBlockAssociationSet", []):
            cidr = ipaddress.IPv4Network(assoc["CidrBlock"])
            if any(cidr.overlaps(p) for p in planned):
                raise InputRejected(
                    f"VPC {vpc['VpcId']} in {account_id} has {cidr}, which overlaps the planned "
                    f"{settings.vpc_cidr} / {settings.secondary_cidr}; if it is an aac_vpc built by hand per seed"
                    f" 000, take it over with `mlplane adopt {account_id}`"
                )
    return names


def _check_plan(account_id: str, settings: Settings, azs: list[str], ledger: Ledger) -> None:
    """The network CreateNetwork would build is valid (CIDR sizes, overlaps, AZs, pool), checked before any change.

    CreateNetwork, CreateIam and RequestQuotas run in parallel: a plan error found by CreateNetwork would come
    after IAM and quota changes (a quota request cannot be withdrawn). In tgw mode the blocks are the pool slot
    the account would be given (read-only preview; CreateNetwork claims it).
    """
    cidrs: tuple[str, str] | None = None
    if settings.egress_mode == "tgw":
        cidrs = allocation.preview(
            ledger,
            account_id,
            settings.cidr_pool,
            primary_prefix=ipaddress.IPv4Network(settings.vpc_cidr).prefixlen,
            secondary_prefix=ipaddress.IPv4Network(settings.secondary_cidr).prefixlen,
        ).cidrs
    plan_network(settings, azs, cidrs=cidrs)
