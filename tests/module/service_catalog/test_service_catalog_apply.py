"""M2's module in one account (seed 003): what it creates, a re-run creating nothing, the one walker undoing
it to nothing, and the portfolio kept while an analyst's instance runs, naming it."""

from __future__ import annotations

import uuid

import boto3
import pytest
from moto.iam.models import iam_backends

from mlplane.ledger import Ledger
from mlplane.member import Member
from mlplane.modules.service_catalog import apply, product
from mlplane.rollback.run import undo_all
from mlplane_sandbox.emulators import service_catalog
from tests.module.moto_account import create_ledger_table

from .conftest import ANALYST_ROLE, MEMBER, REGION, Account, session_as

TABLE = "mlplane-ledger"


def _member(execution: str = "exec-1") -> Member:
    if execution == "exec-1":  # the module makes its own launch role (the fixture's is for the emulator's tests)
        create_ledger_table(TABLE, REGION)
        iam_backends[MEMBER]["aws"].delete_role(product.LAUNCH_ROLE_NAME)
    return Member(
        account_id=MEMBER,
        region=REGION,
        execution=execution,
        step="ApplyModules",
        session=session_as("AWSControlTowerExecution"),
        assume=lambda purpose: session_as("AWSControlTowerExecution"),  # moto enforces no session policy
        ledger=Ledger(boto3.client("dynamodb", region_name=REGION), TABLE),
    )


def _target(account: Account) -> apply.Target:
    return apply.Target(
        vpc_id=account.vpc_id,
        subnet_ids=[account.subnet_id],
        kms_key_arn=account.key_arn,
        principal_arn=f"arn:aws:iam::{MEMBER}:role/{ANALYST_ROLE}",
    )


def test_creates_the_seeds_catalog_once(account: Account) -> None:
    member = _member()
    assert apply.run(member, _target(account)) == 9
    state = service_catalog.state(MEMBER, REGION)
    (portfolio,) = state["portfolios"]
    assert portfolio["products"] == [apply.PRODUCT_NAME]
    assert portfolio["principals"] == [f"arn:aws:iam::{MEMBER}:role/{ANALYST_ROLE}"]
    assert portfolio["constraints"] == [
        {"type": "LAUNCH", "parameters": {"RoleArn": f"arn:aws:iam::{MEMBER}:role/{product.LAUNCH_ROLE_NAME}"}}
    ]
    assert portfolio["tags"]["mlplane:managed"] == "true"
    assert apply.run(_member("exec-2"), _target(account)) == 0


def test_the_walker_undoes_it_to_nothing(account: Account) -> None:
    member = _member()
    apply.run(member, _target(account))
    report = undo_all(member, member.ledger.resources(MEMBER), apply.HANDLERS)
    assert (report.removed, report.left) == (9, [])
    state = service_catalog.state(MEMBER, REGION)
    assert state["portfolios"] == [] and state["products"] == []
    iam = member.client("iam")
    assert product.LAUNCH_ROLE_NAME not in [r["RoleName"] for r in iam.list_roles()["Roles"]]
    assert apply.bucket_name(member) not in [b["Name"] for b in member.client("s3").list_buckets()["Buckets"]]


def test_an_analysts_instance_keeps_the_product_and_is_named_unless_terminated(account: Account) -> None:
    member = _member()
    apply.run(member, _target(account))
    product_id = service_catalog.state(MEMBER, REGION)["products"][0]["id"]
    sc = session_as(ANALYST_ROLE).client("servicecatalog")
    artifact = sc.describe_product_as_admin(Id=product_id)["ProvisioningArtifactSummaries"][0]["Id"]
    sc.provision_product(
        ProductId=product_id,
        ProvisioningArtifactId=artifact,
        ProvisionedProductName="analyst-notebook",
        ProvisionToken=str(uuid.uuid4()),
    )
    report = undo_all(member, member.ledger.resources(MEMBER), apply.HANDLERS)
    assert report.removed == 0  # nothing: not the catalog, not the launch role its termination needs
    assert len(report.blocked) == 9
    assert all("analyst-notebook" in item.reason for item in report.blocked)
    assert service_catalog.state(MEMBER, REGION)["provisioned_products"][0]["status"] == "AVAILABLE"
    assert apply.terminate_launches(member, product_id) == ["analyst-notebook"]
    report = undo_all(member, member.ledger.resources(MEMBER), apply.HANDLERS)
    assert report.left == []
    assert member.client("sagemaker").list_notebook_instances()["NotebookInstances"] == []


@pytest.mark.parametrize(
    "operation",
    [
        "CreatePortfolio",
        "CreateProduct",
        "AssociateProductWithPortfolio",
        "AssociatePrincipalWithPortfolio",
        "CreateConstraint",
    ],
)
def test_each_catalog_create_failing_rolls_back_to_nothing(account: Account, operation: str) -> None:
    from mlplane_sandbox.rules import AwsError, _emulated

    member = _member()
    original = _emulated[("service-catalog", operation)]

    def refuse(call: object) -> object:
        raise AwsError("LimitExceededException", "The current account limit was exceeded", 400)

    _emulated[("service-catalog", operation)] = refuse
    try:
        with pytest.raises(Exception, match="LimitExceededException"):
            apply.run(member, _target(account))
    finally:
        _emulated[("service-catalog", operation)] = original
    report = undo_all(member, member.ledger.resources(MEMBER), apply.HANDLERS)
    assert report.left == []
    state = service_catalog.state(MEMBER, REGION)
    assert state["portfolios"] == [] and state["products"] == []
