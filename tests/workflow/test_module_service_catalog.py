"""M2, self-service SageMaker instances through Service Catalog (seed 003), through the real ASL: ApplyModules,
Rollback, ValidateDeprovision's refusal and RemoveModules' termination, and no call at all when disabled."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote

import pytest

from mlplane.modules.service_catalog import apply as catalog
from mlplane.modules.service_catalog import product
from mlplane_sandbox.runner import Options, Sandbox
from mlplane_sandbox.world import HUB_ACCOUNT, REGION, as_account, sandbox_client
from tests.conftest import ROOT, SEEDS, load_event

MEMBER = "111111111111"
ANALYST = "DataAnalyst"
ANALYST_ARN = f"arn:aws:iam::{MEMBER}:role/{ANALYST}"
FAST: dict[str, Any] = {"vendor_timeout_seconds": 7200}
ENABLED: dict[str, Any] = {**FAST, "modules": {"service_catalog": {"enabled": True, "analyst_role": ANALYST}}}
TERMINATE: dict[str, Any] = {
    **FAST,
    "modules": {"service_catalog": {"enabled": True, "analyst_role": ANALYST, "on_deprovision": "terminate"}},
}
SEED_EXCERPT = ROOT / "tests" / "data" / "seed_003_catalog.txt"
SUCCESS = load_event("controltower", "create_managed_account_succeeded")


def seed_lines() -> list[str]:
    """The excerpt's lines after its one-line source header (the seed has "# " comment lines of its own)."""
    header, *lines = SEED_EXCERPT.read_text(encoding="utf-8").splitlines()
    assert header.startswith("# Source: seed 003")
    return lines


def test_the_seed_excerpt_is_the_seeds_text() -> None:
    seeds = sorted(SEEDS.glob("003_*.txt")) if SEEDS.is_dir() else []
    if not seeds:
        pytest.skip("the seeds are not beside this clone")
    text = seeds[0].read_text(encoding="utf-8")
    assert "\n".join(seed_lines()) in text


def with_analyst_role(sandbox: Sandbox) -> None:
    """The analysts' (SAML) role, someone else's: mlplane only names it in the principal association."""
    sandbox.world.place_account(MEMBER, "Workloads", role_name=sandbox.settings.member_role_name)
    trust = {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{MEMBER}:root"}, "Action": "sts:AssumeRole"}
    with as_account(MEMBER):
        sandbox_client("iam").create_role(
            RoleName=ANALYST, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [trust]})
        )


def launch_as_analyst(sandbox: Sandbox, name: str) -> str:
    """An analyst launches the product (one click: the default size), as the analysts' role. (The sandbox's
    Service Catalog has no end-user SearchProducts: the product and its version are looked up as admin.)"""
    from mlplane.aws import new_session

    (record,) = [r for r in sandbox.ledger().resources(MEMBER) if r.type == catalog.PRODUCT_TYPE]
    with as_account(MEMBER):
        admin = sandbox_client("servicecatalog")
        artifact = admin.describe_product_as_admin(Id=record.resource_id)["ProvisioningArtifactSummaries"][0]["Id"]
        creds = sandbox_client("sts").assume_role(RoleArn=ANALYST_ARN, RoleSessionName="analyst")["Credentials"]
    session = new_session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=REGION,
    )
    from mlplane_sandbox import recording

    with recording.suppressed():  # the analyst's own call (and the launch it makes), not one of mlplane's
        made = session.client("servicecatalog").provision_product(
            ProductId=record.resource_id, ProvisioningArtifactId=artifact, ProvisionedProductName=name
        )["RecordDetail"]
    return str(made["ProvisionedProductId"])


def change_launch_constraint(sandbox: Sandbox, role_arn: str) -> None:
    """Someone points the product's LAUNCH constraint at another role (the catalog's admin, by hand)."""
    (constraint,) = [r for r in sandbox.ledger().resources(MEMBER) if r.type == catalog.CONSTRAINT_TYPE]
    with as_account(MEMBER):
        sandbox_client("servicecatalog").update_constraint(
            Id=constraint.resource_id, Parameters=json.dumps({"RoleArn": role_arn})
        )


def items(result: Any, kind: str) -> list[dict[str, Any]]:
    return [item for item in result.inventory["service_catalog"] if item["kind"] == kind]


def module_calls(calls: list[dict[str, Any]]) -> list[str]:
    """The calls only the module makes (mlplane's core steps call neither Service Catalog nor S3)."""
    return [c["call"] for c in calls if c["call"].startswith(("servicecatalog:", "s3:"))]


def test_enabled_creates_the_catalog_as_the_seed_says_and_a_rerun_creates_nothing() -> None:
    with Sandbox(Options(config=ENABLED)) as sandbox:
        with_analyst_role(sandbox)
        first = sandbox.run(SUCCESS)
        assert first.outcome == "READY", first.error
        from mlplane import modules
        from mlplane.member import member_for
        from mlplane_sandbox import recording

        settings = sandbox.settings_from_env()
        mark = recording.mark()
        again = modules.apply(member_for(MEMBER, "again", "ApplyModules", settings), settings, ["service_catalog"])
        rerun = [c.call for c in recording.since(mark)]
        (record,) = [r for r in sandbox.ledger().resources(MEMBER) if r.type == catalog.PRODUCT_TYPE]
        with as_account(MEMBER):
            sc, iam = sandbox_client("servicecatalog"), sandbox_client("iam")
            artifacts = sc.describe_product_as_admin(Id=record.resource_id)["ProvisioningArtifactSummaries"]
            trust = iam.get_role(RoleName=product.LAUNCH_ROLE_NAME)["Role"]["AssumeRolePolicyDocument"]
            policy = iam.get_role_policy(RoleName=product.LAUNCH_ROLE_NAME, PolicyName=catalog.ROLE_POLICY_NAME)
    seed = "\n".join(seed_lines())
    (portfolio,) = items(first, "portfolio")
    (made,) = items(first, "product")
    # Seed: Portfolio, CloudFormationProduct, PortfolioProductAssociation, PortfolioPrincipalAssociation,
    # LaunchRoleConstraint, LaunchConstraintRole: each made, as the seed describes it
    for kind in ("Portfolio", "CloudFormationProduct", "PortfolioProductAssociation", "LaunchRoleConstraint"):
        assert f"AWS::ServiceCatalog::{kind}" in seed
    assert portfolio["products"] == [made["name"]] == [catalog.PRODUCT_NAME]
    assert 'PrincipalType: "IAM"' in seed and portfolio["principals"] == [ANALYST_ARN]
    launch_role = f"arn:aws:iam::{MEMBER}:role/{product.LAUNCH_ROLE_NAME}"
    assert portfolio["constraints"] == [{"type": "LAUNCH", "parameters": {"RoleArn": launch_role}}]
    assert 'Name: "v1"' in seed and [a["Name"] for a in artifacts] == ["v1"] == [product.TEMPLATE_VERSION]
    assert 'LoadTemplateFromURL: "https://s3.amazonaws.com/' in seed  # the template from S3, as the seed's
    assert (
        record.data["url"]
        == f"https://mlplane-sc-{MEMBER}-{REGION}.s3.{REGION}.amazonaws.com/products/{product.TEMPLATE_FILE}"
    )
    (role,) = items(first, "launch-role")
    assert "Service: “servicecatalog.amazonaws.com”" in seed  # the seed's launch role trusts Service Catalog
    trust = json.loads(unquote(trust)) if isinstance(trust, str) else trust
    assert trust == product.launch_role_trust(MEMBER)
    assert trust["Statement"][0]["Principal"] == {"Service": "servicecatalog.amazonaws.com"}
    assert role["inline_policy_names"] == [catalog.ROLE_POLICY_NAME]
    # unlike the seed's iam:*, s3:*, ec2:*, kms:* on *: no service-wide wildcard in the launch role
    assert "- iam:*" in seed and "- s3:*" in seed
    document = policy["PolicyDocument"]
    document = json.loads(unquote(document)) if isinstance(document, str) else document
    actions = [
        a for st in document["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str) else st["Action"])
    ]
    assert actions and not any(a.endswith(":*") for a in actions)
    (bucket,) = items(first, "template-bucket")
    assert bucket["objects"] == [catalog.template_key()]
    assert first.leftovers == []
    # re-run: nothing created, no create call
    assert (again.created, again.existing) == (0, catalog.RESOURCES)
    assert not [c for c in rerun if c.split(":")[1].startswith(("Create", "Put", "Associate"))]


# The module's creates, in order (each failed in turn: the run rolls back to nothing of the module).
CREATES = [
    "iam:CreateRole=AccessDenied@1",
    "iam:PutRolePolicy=AccessDenied@1",
    "s3:CreateBucket=AccessDenied@1",
    "s3:PutObject=AccessDenied@1",
    "servicecatalog:CreatePortfolio=AccessDeniedException@1",
    "servicecatalog:CreateProduct=AccessDeniedException@1",
    "servicecatalog:AssociateProductWithPortfolio=AccessDeniedException@1",
    "servicecatalog:AssociatePrincipalWithPortfolio=AccessDeniedException@1",
    "servicecatalog:CreateConstraint=AccessDeniedException@1",
]


@pytest.mark.parametrize("fault", CREATES)
def test_each_create_call_failed_in_turn_rolls_back_to_nothing(fault: str) -> None:
    with Sandbox(Options(config=ENABLED, fails=[fault])) as sandbox:
        with_analyst_role(sandbox)
        result = sandbox.run(SUCCESS)
        sandbox.check_faults_fired()
        with as_account(MEMBER):
            analyst = sandbox_client("iam").get_role(RoleName=ANALYST)["Role"]["RoleName"]
    assert result.outcome == "ROLLED_BACK", result.error
    assert result.inventory["service_catalog"] == [] and result.leftovers == []
    assert analyst == ANALYST  # the analysts' role is not mlplane's: untouched


def test_deprovision_refuses_by_default_naming_the_analysts_product_and_changes_nothing() -> None:
    with Sandbox(Options(config=ENABLED)) as sandbox:
        with_analyst_role(sandbox)
        assert sandbox.run(SUCCESS).outcome == "READY"
        launched = launch_as_analyst(sandbox, "alice-notebook")
        refused = sandbox.deprovision(MEMBER)
        status = sandbox.ledger().status(MEMBER)
    assert refused.outcome == "REJECTED"
    assert "alice-notebook" in refused.error["message"] and launched in refused.error["message"]
    assert status is not None and status.status.value == "READY"
    assert [p["name"] for p in items(refused, "provisioned-product")] == ["alice-notebook"]
    assert len(items(refused, "portfolio")) == 1 and items(refused, "launch-role")
    removes = [c for c in refused.api_calls if c["call"].split(":")[1].startswith(("Delete", "Terminate", "Disassoc"))]
    assert [c["call"] for c in removes if c["call"].startswith(("servicecatalog:", "s3:", "iam:"))] == []


def test_deprovision_configured_to_terminate_terminates_the_analysts_product_then_removes_the_catalog() -> None:
    with Sandbox(Options(config=TERMINATE)) as sandbox:
        with_analyst_role(sandbox)
        assert sandbox.run(SUCCESS).outcome == "READY"
        launch_as_analyst(sandbox, "bob-notebook")
        gone = sandbox.deprovision(MEMBER)
        with as_account(MEMBER):
            roles = [r["RoleName"] for r in sandbox_client("iam").list_roles()["Roles"]]
    assert gone.outcome == "DEPROVISIONED", gone.error
    calls = module_calls(gone.api_calls)
    assert calls.index("servicecatalog:TerminateProvisionedProduct") < calls.index("servicecatalog:DeletePortfolio")
    assert gone.inventory["service_catalog"] == [] and gone.leftovers == []
    assert ANALYST in roles and product.LAUNCH_ROLE_NAME not in roles


def test_disabled_makes_no_call_of_the_module() -> None:
    with Sandbox(Options(config=FAST, then_deprovision=True)) as sandbox:
        result = sandbox.run(SUCCESS)
        from mlplane.member import session_policy
        from mlplane_sandbox import recording

        text = session_policy(sandbox.settings_from_env(), "service_catalog")
        own = [c.call for c in recording.calls() if c.session_policy == text]
    assert result.outcome == "DEPROVISIONED"
    assert module_calls(result.api_calls) == [] and own == []
    assert result.inventory["service_catalog"] == []


@pytest.mark.parametrize(
    ("modules", "tag", "made"),
    [
        ({"ous": ["Sandbox"]}, None, False),  # enabled for another OU only
        ({"ous": ["Workloads"]}, None, True),  # the account's OU
        ({"ous": ["Sandbox"]}, "true", True),  # the account's tag wins over the OU list
        ({"enabled": True}, "false", False),  # and over enabled everywhere
    ],
)
def test_enabled_per_ou_and_by_the_account_tag(modules: dict[str, Any], tag: str | None, made: bool) -> None:
    config = {**FAST, "modules": {"service_catalog": {**modules, "analyst_role": ANALYST}}}
    with Sandbox(Options(config=config)) as sandbox:
        with_analyst_role(sandbox)
        if tag is not None:
            with as_account(HUB_ACCOUNT):
                sandbox_client("organizations").tag_resource(
                    ResourceId=MEMBER, Tags=[{"Key": "mlplane:module:service_catalog", "Value": tag}]
                )
        result = sandbox.run(SUCCESS)
    assert result.outcome == "READY", result.error
    assert [p["name"] for p in items(result, "product")] == ([catalog.PRODUCT_NAME] if made else [])
    assert bool(module_calls(result.api_calls)) == made


def test_rejected_before_any_change_when_the_analysts_role_does_not_exist() -> None:
    with Sandbox(Options(config=ENABLED)) as sandbox:
        result = sandbox.run(SUCCESS)
    assert result.outcome == "REJECTED"
    assert f"the analysts' role {ANALYST} does not exist in {MEMBER}" in result.error["message"]
    assert module_calls(result.api_calls) == [] and result.leftovers == []


def catalog_findings(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["type"], f["severity"]) for f in report["findings"] if f["domain"] == "service_catalog"}


def test_audit_reads_the_catalog_and_reconcile_puts_back_the_policy_the_template_and_the_principal() -> None:
    """Someone widens the launch role's policy, overwrites the product's template, removes the analysts' role
    from the portfolio and points the LAUNCH constraint at another role: the audit reads each (not the ledger)
    and names it, reconcile puts mlplane's back (UpdateConstraint: one LAUNCH constraint per product)."""
    with Sandbox(Options(config=ENABLED)) as sandbox:
        with_analyst_role(sandbox)
        assert sandbox.run(SUCCESS).outcome == "READY"
        assert catalog_findings(sandbox.audit(MEMBER)) == set()
        (portfolio,) = [r for r in sandbox.ledger().resources(MEMBER) if r.type == catalog.PORTFOLIO_TYPE]
        with as_account(MEMBER):
            every = {"Effect": "Allow", "Action": "*", "Resource": "*"}
            sandbox_client("iam").put_role_policy(
                RoleName=product.LAUNCH_ROLE_NAME,
                PolicyName=catalog.ROLE_POLICY_NAME,
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [every]}),
            )
            sandbox_client("s3").put_object(
                Bucket=f"mlplane-sc-{MEMBER}-{REGION}", Key=catalog.template_key(), Body=b"Resources: {}\n"
            )
            sandbox_client("servicecatalog").disassociate_principal_from_portfolio(
                PortfolioId=portfolio.resource_id, PrincipalARN=ANALYST_ARN
            )
        change_launch_constraint(sandbox, ANALYST_ARN)  # launches would run as the analysts' own role
        drifted = sandbox.audit(MEMBER)
        reconciled = sandbox.run({"account_id": MEMBER, "requested_by": "test", "action": "reconcile"})
        clean = sandbox.audit(MEMBER)
        with as_account(MEMBER):
            policy = sandbox_client("iam").get_role_policy(
                RoleName=product.LAUNCH_ROLE_NAME, PolicyName=catalog.ROLE_POLICY_NAME
            )["PolicyDocument"]
            body = sandbox_client("s3").get_object(Bucket=f"mlplane-sc-{MEMBER}-{REGION}", Key=catalog.template_key())
            principals = sandbox_client("servicecatalog").list_principals_for_portfolio(
                PortfolioId=portfolio.resource_id
            )["Principals"]
    assert catalog_findings(drifted) == {
        (catalog.ROLE_POLICY_TYPE, "drift"),
        (catalog.OBJECT_TYPE, "drift"),
        (catalog.PRINCIPAL_TYPE, "missing"),
        (catalog.CONSTRAINT_TYPE, "drift"),
    }
    assert reconciled.outcome == "READY", reconciled.error
    (portfolio_item,) = items(reconciled, "portfolio")
    launch_role = f"arn:aws:iam::{MEMBER}:role/{product.LAUNCH_ROLE_NAME}"
    assert portfolio_item["constraints"] == [{"type": "LAUNCH", "parameters": {"RoleArn": launch_role}}]
    assert catalog_findings(clean) == set()
    policy = json.loads(unquote(policy)) if isinstance(policy, str) else policy
    assert {"Effect": "Allow", "Action": "*", "Resource": "*"} not in policy["Statement"]
    assert "AWS::SageMaker::NotebookInstance" in body["Body"].read().decode()
    assert [p["PrincipalARN"] for p in principals] == [ANALYST_ARN]


def test_plan_of_a_fresh_account_creates_the_whole_catalog_after_the_core_steps() -> None:
    with Sandbox(Options(config=ENABLED)) as sandbox:
        with_analyst_role(sandbox)
        document = sandbox.plan(SUCCESS)
    rows = [(c["type"], c["action"]) for c in document["changes"] if c["domain"] == "service_catalog"]
    assert rows == [(kind, "create") for kind in catalog.HANDLERS]
    (policy,) = [c for c in document["changes"] if c["type"] == catalog.ROLE_POLICY_TYPE]
    assert "mlplane's VPC is not in" in policy["detail"]  # built on the network the core steps make first


def test_deprovision_outlasts_an_outage_of_service_catalog_and_removes_the_catalog() -> None:
    """C8 for the module: DeletePortfolio throttled for its first 80 calls (botocore's retries included);
    RemoveModules' TransientError retries back off to 15 minutes, so the outage ends inside them."""
    from mlplane_sandbox.clock import clock

    with Sandbox(Options(config=ENABLED, fails=["servicecatalog:DeletePortfolio=ThrottlingException@1-80"])) as sandbox:
        with_analyst_role(sandbox)
        assert sandbox.run(SUCCESS).outcome == "READY"
        start = clock().now()
        gone = sandbox.deprovision(MEMBER)
        took = clock().now() - start
        sandbox.check_faults_fired()
    assert gone.outcome == "DEPROVISIONED", gone.error
    assert gone.inventory["service_catalog"] == [] and gone.leftovers == []
    assert took > 3_600  # hours of (virtual) waiting, not seconds


def test_rollback_of_the_catalog_outlasts_an_outage_and_leaves_nothing() -> None:
    """Compound: the LAUNCH constraint is refused, and the rollback that follows meets DeleteProduct throttled for
    its first 40 calls: the walk is retried until the outage ends and the account is ROLLED_BACK with nothing."""
    fails = [
        "servicecatalog:CreateConstraint=AccessDeniedException@1",
        "servicecatalog:DeleteProduct=ThrottlingException@1-40",
    ]
    with Sandbox(Options(config=ENABLED, fails=fails)) as sandbox:
        with_analyst_role(sandbox)
        result = sandbox.run(SUCCESS)
        sandbox.check_faults_fired()
    assert result.outcome == "ROLLED_BACK", result.error
    assert result.inventory["service_catalog"] == [] and result.leftovers == []


def test_the_sandbox_places_the_organizations_analyst_role_with_its_path() -> None:
    """`mlplane local run --customer-role saml/DataAnalyst`: the analysts' SAML role exists in the vended account
    before mlplane runs (the organization's, as in AWS), so the module is tried locally without a hand-made role;
    the principal association names it with its path."""
    config = {**FAST, "modules": {"service_catalog": {"enabled": True, "analyst_role": "saml/DataAnalyst"}}}
    with Sandbox(Options(config=config, customer_roles=["saml/DataAnalyst"])) as sandbox:
        result = sandbox.run(SUCCESS)
        with as_account(MEMBER):
            role = sandbox_client("iam").get_role(RoleName="DataAnalyst")["Role"]
    assert result.outcome == "READY", result.error
    (portfolio,) = items(result, "portfolio")
    assert portfolio["principals"] == [role["Arn"]] == [f"arn:aws:iam::{MEMBER}:role/saml/DataAnalyst"]
