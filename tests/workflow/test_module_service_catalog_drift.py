"""M2 audited and reconciled from what is there (issue 17): the hard cases — the analysts' role changed in the
settings or deleted, the portfolio shared with someone else, parts deleted or untagged by hand, a read refused,
a crash in the middle of a fix. Through the real ASL, as tests/workflow/test_module_service_catalog.py."""

from __future__ import annotations

import json
import os

import pytest

from mlplane.config import reset_settings
from mlplane.modules.service_catalog import apply as catalog
from mlplane_sandbox import drift
from mlplane_sandbox.runner import Options, Sandbox, UsageError, notifications
from mlplane_sandbox.world import REGION, as_account, sandbox_client
from tests.workflow.test_module_service_catalog import (
    ANALYST,
    ANALYST_ARN,
    ENABLED,
    MEMBER,
    SUCCESS,
    catalog_findings,
    change_launch_constraint,
    with_analyst_role,
)

RECONCILE = {"account_id": MEMBER, "requested_by": "test", "action": "reconcile"}
NEW = "DataScientists"
NEW_ARN = f"arn:aws:iam::{MEMBER}:role/{NEW}"


def _principals(sandbox: Sandbox) -> list[str]:
    (portfolio,) = [r for r in sandbox.ledger().resources(MEMBER) if r.type == catalog.PORTFOLIO_TYPE]
    with as_account(MEMBER):
        listed = sandbox_client("servicecatalog").list_principals_for_portfolio(PortfolioId=portfolio.resource_id)
    return sorted(p["PrincipalARN"] for p in listed["Principals"])


def _make_role(name: str) -> None:
    trust = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MEMBER}:root"}, "Action": "sts:AssumeRole"}
    with as_account(MEMBER):
        sandbox_client("iam").create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]})
        )


def test_a_changed_analysts_role_is_drift_reconcile_shares_with_the_new_one_only_and_deprovision_finishes() -> None:
    """The settings now name another analysts' role: the old one, still associated, could launch as the launch
    role. The audit names it, reconcile leaves the portfolio shared with the new role only, and a deprovision
    removes everything (a principal left behind would make DeletePortfolio ResourceInUseException)."""
    with Sandbox(Options(config=ENABLED)) as sandbox:
        with_analyst_role(sandbox)
        assert sandbox.run(SUCCESS).outcome == "READY"
        _make_role(NEW)
        os.environ["MODULES"] = json.dumps({"service_catalog": {"enabled": True, "analyst_role": NEW}})
        reset_settings()
        before = sandbox.audit(MEMBER)
        reconciled = sandbox.run(RECONCILE)
        after = catalog_findings(sandbox.audit(MEMBER))
        principals = _principals(sandbox)
        gone = sandbox.deprovision(MEMBER)
    (finding,) = [f for f in before["findings"] if f["domain"] == "service_catalog"]
    assert (finding["type"], finding["severity"]) == (catalog.PRINCIPAL_TYPE, "drift")
    assert ANALYST_ARN in finding["actual"]
    assert reconciled.outcome == "READY", reconciled.error
    assert principals == [NEW_ARN] and after == set()
    assert gone.outcome == "DEPROVISIONED", gone.error
    assert gone.inventory["service_catalog"] == [] and gone.leftovers == []


def test_a_principal_added_by_hand_is_drift_and_reconcile_removes_it() -> None:
    with Sandbox(Options(config=ENABLED)) as sandbox:
        with_analyst_role(sandbox)
        assert sandbox.run(SUCCESS).outcome == "READY"
        (portfolio,) = [r for r in sandbox.ledger().resources(MEMBER) if r.type == catalog.PORTFOLIO_TYPE]
        everyone = f"arn:aws:iam::{MEMBER}:role/Everyone"
        with as_account(MEMBER):
            sandbox_client("servicecatalog").associate_principal_with_portfolio(
                PortfolioId=portfolio.resource_id, PrincipalARN=everyone, PrincipalType="IAM"
            )
        drifted = catalog_findings(sandbox.audit(MEMBER))
        reconciled = sandbox.run(RECONCILE)
        principals = _principals(sandbox)
    assert drifted == {(catalog.PRINCIPAL_TYPE, "drift")}
    assert reconciled.outcome == "READY" and principals == [ANALYST_ARN]


def test_with_the_analysts_role_deleted_only_the_principal_is_named_and_the_rest_is_still_fixed() -> None:
    """The launch role's policy and the template are built from the VPC and the key: they are still compared
    (as planned: not drift), and a LAUNCH constraint pointed elsewhere is put back although the module's step
    fails for the missing role (a failed step of the reconcile, not a rollback of a READY account)."""
    with Sandbox(Options(config=ENABLED)) as sandbox:
        with_analyst_role(sandbox)
        assert sandbox.run(SUCCESS).outcome == "READY"
        change_launch_constraint(sandbox, f"arn:aws:iam::{MEMBER}:role/Admin")
        with as_account(MEMBER):
            sandbox_client("iam").delete_role(RoleName=ANALYST)
        drifted = catalog_findings(sandbox.audit(MEMBER))
        reconciled = sandbox.run(RECONCILE)
        after = catalog_findings(sandbox.audit(MEMBER))
    assert drifted == {(catalog.PRINCIPAL_TYPE, "drift"), (catalog.CONSTRAINT_TYPE, "drift")}
    assert reconciled.outcome == "READY", reconciled.error
    assert after == {(catalog.PRINCIPAL_TYPE, "drift")}  # shared with a role that no longer exists: named


def test_a_portfolio_deleted_by_hand_is_missing_and_reconcile_rebuilds_it() -> None:
    with Sandbox(Options(config=ENABLED)) as sandbox:
        with_analyst_role(sandbox)
        assert sandbox.run(SUCCESS).outcome == "READY"
        records = {r.type: r for r in sandbox.ledger().resources(MEMBER)}
        portfolio = records[catalog.PORTFOLIO_TYPE].resource_id
        product_id = records[catalog.PRODUCT_TYPE].resource_id
        with as_account(MEMBER):
            sc = sandbox_client("servicecatalog")
            sc.delete_constraint(Id=records[catalog.CONSTRAINT_TYPE].resource_id)
            sc.disassociate_product_from_portfolio(ProductId=product_id, PortfolioId=portfolio)
            sc.disassociate_principal_from_portfolio(PortfolioId=portfolio, PrincipalARN=ANALYST_ARN)
            sc.delete_portfolio(Id=portfolio)
        drifted = catalog_findings(sandbox.audit(MEMBER))
        reconciled = sandbox.run(RECONCILE)
        after = catalog_findings(sandbox.audit(MEMBER))
        gone = sandbox.deprovision(MEMBER)
    assert drifted == {
        (catalog.PORTFOLIO_TYPE, "missing"),
        (catalog.ASSOCIATION_TYPE, "missing"),
        (catalog.PRINCIPAL_TYPE, "missing"),
        (catalog.CONSTRAINT_TYPE, "missing"),
    }
    assert reconciled.outcome == "READY" and after == set(), after
    assert gone.outcome == "DEPROVISIONED" and gone.leftovers == [], (gone.error, gone.leftovers)


def test_the_template_bucket_without_its_tags_is_drift_and_reconcile_tags_it_again() -> None:
    """The ledger's own bucket (recorded created) that lost mlplane's tags: CreateBucket answers
    BucketAlreadyOwnedByYou, so reconcile tags it again instead of failing on every run."""
    with Sandbox(Options(config=ENABLED)) as sandbox:
        with_analyst_role(sandbox)
        assert sandbox.run(SUCCESS).outcome == "READY"
        with as_account(MEMBER):
            sandbox_client("s3").delete_bucket_tagging(Bucket=f"mlplane-sc-{MEMBER}-{REGION}")
        drifted = catalog_findings(sandbox.audit(MEMBER))
        reconciled = sandbox.run(RECONCILE)
        after = catalog_findings(sandbox.audit(MEMBER))
    assert drifted == {(catalog.BUCKET_TYPE, "drift")}
    assert reconciled.outcome == "READY" and after == set(), (after, reconciled.error)


def test_a_refused_read_of_the_catalog_is_a_finding_not_the_end_of_the_audit_or_the_reconcile() -> None:
    """A member role of an older release without servicecatalog:DescribeConstraint: the fleet audit names the
    unread state; reconcile still fixes the IAM drift and notifies RECONCILED."""
    fails = ["servicecatalog:DescribeConstraint=AccessDeniedException@1-500"]
    with Sandbox(Options(config=ENABLED, fails=fails)) as sandbox:
        with_analyst_role(sandbox)
        assert sandbox.run(SUCCESS).outcome == "READY"
        answer = sandbox.scheduled_audit()
        drift.apply("detach-policy", MEMBER, sandbox.settings_from_env())
        result = sandbox.run(RECONCILE)
        sandbox.check_faults_fired()
    assert answer["drifted"] == [MEMBER] and answer["not_audited"] == []
    (unread,) = next(f for f in notifications() if f["event"] == "DRIFT")["findings"]
    assert unread["type"] == "service_catalog:state" and "DescribeConstraint" in unread["actual"]
    assert result.outcome == "READY", result.error
    (note,) = [n for n in notifications() if n["event"] == "RECONCILED"]
    assert "iam:attachment" in [f["type"] for f in note["fixed"]]


def test_a_crash_after_update_constraint_is_recovered_and_deprovision_leaves_nothing() -> None:
    with Sandbox(Options(config=ENABLED, crashes=["servicecatalog:UpdateConstraint@1"])) as sandbox:
        with_analyst_role(sandbox)
        assert sandbox.run(SUCCESS).outcome == "READY"
        change_launch_constraint(sandbox, ANALYST_ARN)
        reconciled = sandbox.run(RECONCILE)
        after = catalog_findings(sandbox.audit(MEMBER))
        sandbox.check_faults_fired()
        gone = sandbox.deprovision(MEMBER)
    assert reconciled.outcome == "READY", reconciled.error
    assert after == set()
    assert gone.outcome == "DEPROVISIONED" and gone.leftovers == []


@pytest.mark.parametrize("role", ["Анализ", "saml/Datä", "a" * 600 + "/DataAnalyst", "a" * 65, "saml//X", "x/"])
def test_a_customer_role_iam_would_refuse_is_a_usage_error(role: str) -> None:
    with pytest.raises(UsageError, match="--customer-role"):
        Sandbox(Options(customer_roles=[role]))
