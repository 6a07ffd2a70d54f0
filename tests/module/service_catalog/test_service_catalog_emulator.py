"""The sandbox's Service Catalog answers as botocore's model and the API reference say AWS does (seed 003, M2).

Source: botocore/data/servicecatalog/2015-12-10/service-2.json (shapes, the errors each operation lists) and
the Service Catalog API reference: DeletePortfolio "You cannot delete a portfolio if it was shared with you
or if it has associated products, users, constraints, or shared accounts" (ResourceInUseException).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlplane.modules.service_catalog import product
from mlplane_sandbox import recording
from mlplane_sandbox.emulators import service_catalog

from .conftest import ANALYST_ROLE, MEMBER, REGION, Account, session_as


def _code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def _admin() -> Any:
    return session_as("AWSControlTowerExecution").client("servicecatalog")


def _token() -> str:
    return str(uuid.uuid4())


def _catalog(account: Account, *, principal: bool = True, constraint: bool = True) -> tuple[str, str, str]:
    """portfolio id, product id, artifact id: the seed's portfolio, product, association, principal, constraint."""
    sc = _admin()
    portfolio = sc.create_portfolio(
        DisplayName="Datalake Portfolio", ProviderName="Datalake", IdempotencyToken=_token()
    )["PortfolioDetail"]["Id"]
    made = sc.create_product(
        Name="Sagemaker",
        Owner="mlplane",
        ProductType="CLOUD_FORMATION_TEMPLATE",
        ProvisioningArtifactParameters={
            "Name": product.TEMPLATE_VERSION,
            "Info": {"LoadTemplateFromURL": account.template_url},
            "Type": "CLOUD_FORMATION_TEMPLATE",
        },
        IdempotencyToken=_token(),
    )
    product_id = made["ProductViewDetail"]["ProductViewSummary"]["ProductId"]
    sc.associate_product_with_portfolio(ProductId=product_id, PortfolioId=portfolio)
    if principal:
        sc.associate_principal_with_portfolio(
            PortfolioId=portfolio, PrincipalARN=f"arn:aws:iam::{MEMBER}:role/{ANALYST_ROLE}", PrincipalType="IAM"
        )
    if constraint:
        sc.create_constraint(
            PortfolioId=portfolio,
            ProductId=product_id,
            Type="LAUNCH",
            Parameters=json.dumps({"RoleArn": account.launch_role_arn}),
            IdempotencyToken=_token(),
        )
    return portfolio, product_id, made["ProvisioningArtifactDetail"]["Id"]


def _provision(product_id: str, artifact: str, size: str = "ml.t3.medium", name: str = "analyst-1") -> dict[str, Any]:
    analyst = session_as(ANALYST_ROLE).client("servicecatalog")
    record: dict[str, Any] = analyst.provision_product(
        ProductId=product_id,
        ProvisioningArtifactId=artifact,
        ProvisionedProductName=name,
        ProvisioningParameters=[{"Key": "InstanceType", "Value": size}],
        ProvisionToken=_token(),
    )["RecordDetail"]
    return record


def test_describe_and_delete_of_an_unknown_portfolio_are_resource_not_found(account: Account) -> None:
    sc = _admin()
    with pytest.raises(ClientError) as err:
        sc.describe_portfolio(Id="port-nothere")
    assert _code(err) == "ResourceNotFoundException"
    with pytest.raises(ClientError) as err:
        sc.delete_portfolio(Id="port-nothere")
    assert _code(err) == "ResourceNotFoundException"


def test_delete_portfolio_is_refused_while_anything_is_associated(account: Account) -> None:
    sc = _admin()
    portfolio, product_id, _ = _catalog(account)
    constraint = sc.list_constraints_for_portfolio(PortfolioId=portfolio)["ConstraintDetails"][0]["ConstraintId"]
    principal = sc.list_principals_for_portfolio(PortfolioId=portfolio)["Principals"][0]["PrincipalARN"]
    undo = [
        lambda: sc.delete_constraint(Id=constraint),
        lambda: sc.disassociate_principal_from_portfolio(PortfolioId=portfolio, PrincipalARN=principal),
        lambda: sc.disassociate_product_from_portfolio(ProductId=product_id, PortfolioId=portfolio),
    ]
    for step in undo:  # refused until the last association is gone
        with pytest.raises(ClientError) as err:
            sc.delete_portfolio(Id=portfolio)
        assert _code(err) == "ResourceInUseException"
        step()
    sc.delete_portfolio(Id=portfolio)
    assert sc.list_portfolios()["PortfolioDetails"] == []


def test_a_product_in_a_portfolio_is_not_deleted_and_a_constrained_one_not_disassociated(account: Account) -> None:
    sc = _admin()
    portfolio, product_id, _ = _catalog(account, principal=False)
    with pytest.raises(ClientError) as err:
        sc.delete_product(Id=product_id)
    assert _code(err) == "ResourceInUseException"
    with pytest.raises(ClientError) as err:
        sc.disassociate_product_from_portfolio(ProductId=product_id, PortfolioId=portfolio)
    assert _code(err) == "ResourceInUseException"


def test_a_second_launch_constraint_is_a_duplicate(account: Account) -> None:
    portfolio, product_id, _ = _catalog(account)
    with pytest.raises(ClientError) as err:
        _admin().create_constraint(
            PortfolioId=portfolio,
            ProductId=product_id,
            Type="LAUNCH",
            Parameters=json.dumps({"RoleArn": account.launch_role_arn}),
            IdempotencyToken=_token(),
        )
    assert _code(err) == "DuplicateResourceException"


def test_a_launch_constraint_is_described_and_updated_with_its_parameters(account: Account) -> None:
    """DescribeConstraint gives the parameters ListConstraintsForPortfolio does not; UpdateConstraint takes a
    LAUNCH constraint's RoleArn or LocalRoleName, not both (botocore's docs), and an unknown id is not found."""
    portfolio, product_id, _ = _catalog(account)
    sc = _admin()
    (listed,) = sc.list_constraints_for_portfolio(PortfolioId=portfolio, ProductId=product_id)["ConstraintDetails"]
    assert "ConstraintParameters" not in listed
    described = sc.describe_constraint(Id=listed["ConstraintId"])
    assert json.loads(described["ConstraintParameters"]) == {"RoleArn": account.launch_role_arn}
    other = f"arn:aws:iam::{MEMBER}:role/{ANALYST_ROLE}"
    sc.update_constraint(Id=listed["ConstraintId"], Parameters=json.dumps({"RoleArn": other}))
    assert json.loads(sc.describe_constraint(Id=listed["ConstraintId"])["ConstraintParameters"]) == {"RoleArn": other}
    with pytest.raises(ClientError) as both:
        sc.update_constraint(Id=listed["ConstraintId"], Parameters=json.dumps({"RoleArn": other, "LocalRoleName": "x"}))
    with pytest.raises(ClientError) as unknown:
        sc.describe_constraint(Id="cons-doesnotexist")
    assert (_code(both), _code(unknown)) == ("InvalidParametersException", "ResourceNotFoundException")


def test_create_product_needs_a_template_it_can_read(account: Account) -> None:
    with pytest.raises(ClientError) as err:
        _admin().create_product(
            Name="Sagemaker",
            Owner="mlplane",
            ProductType="CLOUD_FORMATION_TEMPLATE",
            ProvisioningArtifactParameters={"Info": {"LoadTemplateFromURL": account.template_url + ".missing"}},
            IdempotencyToken=_token(),
        )
    assert _code(err) == "InvalidParametersException"


def test_an_analyst_launches_a_private_encrypted_notebook_and_terminates_it(account: Account) -> None:
    _, product_id, artifact = _catalog(account)
    analyst = session_as(ANALYST_ROLE)
    record = _provision(product_id, artifact, size="ml.m5.xlarge")
    sc = analyst.client("servicecatalog")
    done = sc.describe_record(Id=record["RecordId"])
    assert done["RecordDetail"]["Status"] == "SUCCEEDED"
    name = {o["OutputKey"]: o["OutputValue"] for o in done["RecordOutputs"]}["NotebookInstanceName"]
    admin = session_as("AWSControlTowerExecution")
    notebook = admin.client("sagemaker").describe_notebook_instance(NotebookInstanceName=name)
    assert notebook["InstanceType"] == "ml.m5.xlarge"
    assert notebook["SubnetId"] == account.subnet_id
    assert notebook["KmsKeyId"] == account.key_arn
    assert notebook["DirectInternetAccess"] == "Disabled"
    assert notebook["RoleArn"].split(":role")[1].startswith(product.NOTEBOOK_ROLE_PATH)
    listed = admin.client("servicecatalog").search_provisioned_products(
        AccessLevelFilter={"Key": "Account", "Value": "self"}
    )["ProvisionedProducts"]
    assert [p["Name"] for p in listed] == ["analyst-1"]
    assert listed[0]["Status"] == "AVAILABLE"

    sc.terminate_provisioned_product(ProvisionedProductId=record["ProvisionedProductId"], TerminateToken=_token())
    assert admin.client("sagemaker").list_notebook_instances()["NotebookInstances"] == []
    roles = admin.client("iam").list_roles(PathPrefix=product.NOTEBOOK_ROLE_PATH)["Roles"]
    assert roles == []
    groups = admin.client("ec2").describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [account.vpc_id]}])
    assert [g["GroupName"] for g in groups["SecurityGroups"]] == ["default"]
    assert (
        admin.client("servicecatalog").search_provisioned_products(
            AccessLevelFilter={"Key": "Account", "Value": "self"}
        )["ProvisionedProducts"]
        == []
    )


def test_a_size_outside_the_allowed_list_is_refused(account: Account) -> None:
    _, product_id, artifact = _catalog(account)
    with pytest.raises(ClientError) as err:
        _provision(product_id, artifact, size="ml.p4d.24xlarge")
    assert _code(err) == "InvalidParametersException"


def test_no_launch_without_a_principal_association(account: Account) -> None:
    _, product_id, artifact = _catalog(account, principal=False)
    with pytest.raises(ClientError) as err:
        _provision(product_id, artifact)
    assert _code(err) == "ResourceNotFoundException"


def test_the_launch_runs_as_the_launch_role(account: Account) -> None:
    _, product_id, artifact = _catalog(account)
    start = recording.mark()
    _provision(product_id, artifact)
    launched = [c for c in recording.since(start) if c.actor == service_catalog.LAUNCH_ACTOR]
    assert {c.principal.split("/")[1] for c in launched} == {product.LAUNCH_ROLE_NAME}
    assert "cloudformation:CreateStack" in {c.call for c in launched}
    assert state_of_member()["portfolios"][0]["products"] == ["Sagemaker"]


def state_of_member() -> dict[str, Any]:
    return service_catalog.state(MEMBER, REGION)
