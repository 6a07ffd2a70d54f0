"""M2: self-service SageMaker notebook instances through Service Catalog (seed 003).

`MODULE` is its entry in `mlplane.modules.MODULES`. The names `apply` (the AWS calls) and `product` (the
template and the launch role, pure) stay the submodules.

Sessions: what the module reads of the core steps' resources (the aac_vpc, its private subnets, the vault key,
the analysts' role) it reads in the member's core session (`iam:Get*`, `ec2:Describe*`, `kms:Describe*`);
everything it creates, reads of its own or removes runs in the session of its purpose `service_catalog`
(`session_policies/service_catalog.json`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from mlplane.changes import PlannedChange
from mlplane.errors import Conflict, InputRejected, TransientError, error_code, translate
from mlplane.kms.apply import find_key
from mlplane.member import KEY_TAG
from mlplane.modules.base import Module
from mlplane.modules.service_catalog import apply as _apply
from mlplane.network import lookup
from mlplane.steps import StepOutput

if TYPE_CHECKING:
    from mlplane.config import ServiceCatalogSettings, Settings
    from mlplane.member import Member

PURPOSE = _apply.PURPOSE

PRIVATE_SUBNET_KEY = "subnet/private/"


_own = _apply.own


def principal_arn(member: Member, config: ServiceCatalogSettings) -> str:
    """The analysts' role in this account; InputRejected if it is not configured, not here, or not found."""
    if not config.analyst_role:
        raise InputRejected("service_catalog: modules.service_catalog.analyst_role is not set (the analysts' role)")
    account = config.role_account()
    if account is not None and account != member.account_id:
        raise InputRejected(
            f"service_catalog: analyst_role {config.analyst_role} is a role of {account}, not of {member.account_id}"
        )
    name = config.role_path_name().rsplit("/", 1)[-1]
    try:
        role = member.client("iam").get_role(RoleName=name)["Role"]
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            raise InputRejected(
                f"service_catalog: the analysts' role {config.role_path_name()} does not exist in {member.account_id}"
            ) from err
        raise translate(err, f"iam:GetRole {name} in {member.account_id}") from err
    arn = str(role["Arn"])
    if not arn.endswith(f":role/{config.role_path_name()}"):
        raise InputRejected(f"service_catalog: role {name} in {member.account_id} is {arn}, not {config.analyst_role}")
    return arn


def target(member: Member, settings: Settings) -> _apply.Target:
    """What the product is built on (the core steps made it): read-only, before anything of the module is
    created; InputRejected naming what is missing. The analysts' role not found is not raised here but carried
    (`principal_unknown`): `run` converges everything else first, `survey` compares everything else."""
    config = settings.modules.service_catalog
    vpc_id = lookup.find_vpc(member, "vpc", {})
    if vpc_id is None:
        raise InputRejected(f"service_catalog: mlplane's VPC is not in {member.account_id} (the network step first)")
    subnets = lookup.call(
        member,
        "describe_subnets",
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, *lookup.tag_filters(member, "")[1:]],
    )["Subnets"]
    private = sorted(
        str(s["SubnetId"])
        for s in subnets
        if lookup.owned(member, s) and lookup.tags_of(s).get(KEY_TAG, "").startswith(PRIVATE_SUBNET_KEY)
    )
    if not private:
        raise InputRejected(f"service_catalog: {vpc_id} in {member.account_id} has no private subnet of mlplane's")
    key = find_key(member, settings.vault_key_alias)
    if key is None or not key.owned or key.state != "Enabled":
        raise InputRejected(
            f"service_catalog: the vault key {settings.vault_key_alias} in {member.account_id} is not mlplane's"
            " enabled key"
        )
    try:  # the network and key are enough to converge the rest: only the principal needs the role
        principal: str | None = principal_arn(member, config)
        unknown = ""
    except InputRejected as err:
        principal, unknown = None, str(err)
    return _apply.Target(
        vpc_id=vpc_id,
        subnet_ids=private,
        kms_key_arn=key.arn,
        principal_arn=principal,
        instance_types=config.instance_types,
        principal_unknown=unknown,
    )


def check_module(member: Member, settings: Settings) -> None:
    """ValidateAccount, before anything is changed: the analysts' role is configured and exists (the sizes are
    checked with the settings: SageMaker notebook instance types). The VPC and the vault key are checked by
    `apply_module` before its first create, since the core steps make them after ValidateAccount."""
    principal_arn(member, settings.modules.service_catalog)


def plan_module(member: Member, settings: Settings) -> list[PlannedChange]:
    """What `apply_module` would do now, per resource (read-only): what is there, read by `apply`'s own finders,
    against what it would make (a changed launch-role policy or template, a removed association is drift)."""
    try:
        where: _apply.Target | None = target(member, settings)
        unknown = ""
    except InputRejected as err:
        where, unknown = None, str(err)
    return [
        PlannedChange.model_validate(
            {
                "domain": "service_catalog",
                "type": s.type,
                "key": s.key,
                "action": s.action,
                "id": s.id,
                "detail": s.detail,
            }
        )
        for s in _apply.survey(_own(member), where, unknown)
    ]


def apply_module(member: Member, settings: Settings) -> StepOutput:
    """ApplyModules: the catalog of seed 003 on the account's network and key; a re-run creates nothing."""
    where = target(member, settings)
    created = _apply.run(_own(member), where)
    detail = {"portfolio": _apply.PORTFOLIO_NAME, "principal": where.principal_arn, "subnets": where.subnet_ids}
    return StepOutput(created=created, existing=_apply.RESOURCES - created, detail=detail)


def deprovision_check(member: Member, settings: Settings) -> None:
    """ValidateDeprovision (on_deprovision = refuse): Conflict naming the analysts' provisioned products, so the
    account is left as it is; nothing is checked when they are to be terminated."""
    if settings.modules.service_catalog.on_deprovision == "refuse":
        live = _apply.live_launches(_own(member))
        if live:
            raise Conflict(
                f"service_catalog: analysts' provisioned products in {member.account_id}: {_apply.named(live)};"
                " terminate them (or set modules.service_catalog.on_deprovision to terminate) and deprovision again"
            )


def prepare_removal(member: Member, settings: Settings) -> None:
    """RemoveModules, before the walk (on_deprovision = terminate): terminate the analysts' launches; until
    Service Catalog has terminated them (asynchronous in AWS) TransientError makes the step retry."""
    if settings.modules.service_catalog.on_deprovision == "terminate":
        own = _own(member)
        product_id = _apply.find_product(own)
        if product_id is not None and _apply.terminate_launches(own, product_id):
            still = _apply.live_launches(own)
            if still:
                raise TransientError(f"service_catalog: terminating {_apply.named(still)} in {member.account_id}")


MODULE = Module(
    name="service_catalog",
    check=check_module,
    plan=plan_module,
    apply=apply_module,
    handlers=_apply.HANDLERS,
    deprovision_check=deprovision_check,
    prepare_removal=prepare_removal,
)
