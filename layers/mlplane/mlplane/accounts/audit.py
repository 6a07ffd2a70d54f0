"""`mlplane audit` (REQUIREMENTS D1): read-only; what in a provisioned account is not as mlplane's plan says.

The measure is the plan's own (`planned.resource_changes`: the steps' finders and plans), so audit and plan
never disagree: in a READY account every resource should be `keep`; anything else is a finding. Besides:
resources carrying mlplane's tags for the account that the ledger does not own (`untracked`), and the
vendor's resources, reported and never judged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from mlplane import notify, observability
from mlplane.accounts.planned import resource_changes
from mlplane.eks.footprint import vendor_footprint
from mlplane.errors import MlplaneError
from mlplane.ledger import Status
from mlplane.network import blueprint, lookup

if TYPE_CHECKING:
    from collections.abc import Callable

    from mlplane.config import Settings
    from mlplane.ledger import Ledger
    from mlplane.member import Member

Severity = Literal["missing", "drift", "untracked", "vendor"]
AUDITED = frozenset({Status.READY, Status.ROLLBACK_HELD})
_TAGGED = (  # EC2 resources mlplane tags, by describe call and id field
    ("describe_vpcs", "Vpcs", "VpcId"),
    ("describe_subnets", "Subnets", "SubnetId"),
    ("describe_route_tables", "RouteTables", "RouteTableId"),
    ("describe_internet_gateways", "InternetGateways", "InternetGatewayId"),
    ("describe_nat_gateways", "NatGateways", "NatGatewayId"),
    ("describe_vpc_endpoints", "VpcEndpoints", "VpcEndpointId"),
)


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    severity: Severity
    domain: str
    type: str
    key: str
    id: str | None = None
    expected: str
    actual: str


def judged(report: dict[str, Any]) -> list[dict[str, Any]]:
    """A report's findings about mlplane's resources: all but the vendor's, which are reported, never judged."""
    return [f for f in report["findings"] if f["severity"] != "vendor"]


def audit(member: Member, settings: Settings) -> dict[str, Any]:
    """The account's findings (`--json` of `mlplane audit`); `clean` when there is nothing but vendor info."""
    status = member.ledger.status(member.account_id)
    if status is None or status.status not in AUDITED:
        state = status.status.value if status else "unknown to mlplane"
        return {"account_id": member.account_id, "status": state, "audited": False, "clean": True, "findings": []}
    settings = blueprint.settings_for(settings, member.ledger, member.account_id)  # as built, not its OU now (N6)
    findings = [
        Finding(
            severity="missing" if change.action == "create" else "drift",
            domain=change.domain,
            type=change.type,
            key=change.key,
            id=change.id,
            expected=change.detail if change.action == "create" else "as planned",
            actual="absent" if change.action == "create" else change.detail,
        )
        for change in resource_changes(member, settings, enabled=member.ledger.modules(member.account_id))
        if change.action in ("create", "change")
    ]
    findings += _untracked(member)
    findings += [
        Finding(
            severity="vendor",
            domain="vendor",
            type=r.type,
            key=r.id,
            id=r.id,
            expected="the vendor's: never judged",
            actual=r.detail,
        )
        for r in vendor_footprint(member, settings)
    ]
    return {
        "account_id": member.account_id,
        "status": status.status.value,
        "audited": True,
        "network_blueprint": blueprint.built_with(member.ledger, member.account_id),
        "clean": all(f.severity == "vendor" for f in findings),
        "findings": [f.model_dump(mode="json") for f in findings],
    }


def _untracked(member: Member) -> list[Finding]:
    """EC2 resources with mlplane's tags for this account whose ids the ledger does not hold (a crash before
    the ledger write, or someone copying tags): mlplane would not know to remove them."""
    known = {r.resource_id for r in member.ledger.resources(member.account_id) if r.resource_id}
    filters = lookup.tag_filters(member, "")[1:]  # managed + account, any key
    found: list[Finding] = []
    for operation, result, field in _TAGGED:
        for item in lookup.call(member, operation, Filters=filters)[result]:
            resource_id = str(item[field])
            # adopted ones too (D3): a hand-made resource carrying mlplane's adopted tags the ledger lost track of
            if lookup.tracked(member, item) and resource_id not in known:
                if operation == "describe_nat_gateways" and item.get("State") in ("deleted", "failed"):
                    continue
                key = lookup.tags_of(item).get("mlplane:key", "")
                found.append(
                    Finding(
                        severity="untracked",
                        domain="network",
                        type=operation.removeprefix("describe_"),
                        key=key,
                        id=resource_id,
                        expected="recorded in the ledger",
                        actual="tagged as mlplane's, not in the ledger",
                    )
                )
    return found


def audit_fleet(settings: Settings, ledger: Ledger, member_for: Callable[[str], Member], *, day: str) -> dict[str, Any]:
    """The scheduled audit (D1): every READY or ROLLBACK_HELD account; each with findings is notified once for
    the day (`DRIFT`, at least once per account and day: `notify.deliver` with execution `audit-<day>`). An
    account that cannot be audited (its role refused, an outage) is named and does not stop the others. Counts
    the ledger's accounts in each status on the way (`by_status`, the dashboard's Accounts metric)."""
    audited: list[dict[str, Any]] = []
    by_status = dict.fromkeys((s.value for s in Status), 0)
    for entry in ledger.accounts():
        by_status[entry.status.status] += 1
        if entry.status.status not in AUDITED:
            continue
        account_id = entry.status.account_id
        try:
            report = audit(member_for(account_id), settings)
        except MlplaneError as err:
            audited.append({"account_id": account_id, "audited": False, "clean": False, "error": str(err)})
            continue
        audited.append(report)
        drifted = judged(report)
        if drifted:
            document = notify.message("DRIFT", account_id=account_id, execution=f"audit-{day}")
            document["findings"] = drifted
            notify.deliver(settings, ledger, document)
    observability.count_accounts(by_status)
    return {
        "day": day,
        "by_status": by_status,
        "accounts": len(audited),
        "drifted": [r["account_id"] for r in audited if r.get("audited") and not r["clean"]],
        "not_audited": [{"account_id": r["account_id"], "error": r["error"]} for r in audited if "error" in r],
    }
