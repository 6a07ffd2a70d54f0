"""Service Catalog as the sandbox answers it: portfolios, products, their associations, launch constraints and
provisioned products, per account and region.

moto 5.2.5 has portfolios and products only, and kinder than AWS: DescribePortfolio of an unknown id answers an
empty portfolio, DeletePortfolio deletes whatever is associated with it, a product has no provisioning
artifact. So the sandbox answers the whole service itself, with the request/response shapes and error codes of
botocore's model (botocore/data/servicecatalog/2015-12-10/service-2.json; errors as awsJson 1.1 sends them:
HTTP 400 and `{"__type": code, "Message": text}`):

- DeletePortfolio refuses with `ResourceInUseException` while products, principals or constraints are
  associated with the portfolio ("You must disassociate ... before you can delete the portfolio", API reference);
  DeleteProduct while the product is in a portfolio; DisassociateProductFromPortfolio while a constraint on
  the product in that portfolio exists;
- CreateProduct reads the template from `LoadTemplateFromURL` (an S3 URL: the API accepts only that or
  `ImportFromPhysicalId`) and keeps its own copy, as Service Catalog does;
- ProvisionProduct needs a launch path (the caller's principal associated with a portfolio holding the
  product: else `ResourceNotFoundException`) and, here, a LAUNCH constraint: Service Catalog assumes its role
  (`servicecatalog.amazonaws.com` must be trusted) and, as that role, reads its copy of the template
  (`s3:GetObject` on its own bucket, an object tagged `servicecatalog:provisioning=true`) and creates the
  stack `SC-<account>-<provisioned product id>` through the sandbox's CloudFormation
  (`mlplane_sandbox.emulators.cloudformation`), which creates the resources with that role's credentials; a
  parameter outside the template's AllowedValues is `InvalidParametersException`;
- TerminateProvisionedProduct deletes the stack as the launch role; a provisioned product is TERMINATED and
  gone from SearchProvisionedProducts. Launches and terminations complete within the call (their records
  answer SUCCEEDED or FAILED at once).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlparse

from mlplane_sandbox import recording
from mlplane_sandbox.authorization import Authorization, Resource
from mlplane_sandbox.rules import AwsError, Call, emulate

SERVICE = "service-catalog"
LAUNCH_ACTOR = "ServiceCatalog"
"""The actor of the calls a launch or termination makes as the launch role (their record's `actor`)."""
TEMPLATE_COPY_TAG = "servicecatalog:provisioning"


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:13]}"


@dataclass
class _Portfolio:
    id: str
    arn: str
    display_name: str
    provider_name: str
    description: str
    tags: dict[str, str]
    created: str = field(default_factory=_now)
    products: list[str] = field(default_factory=list)
    principals: dict[str, str] = field(default_factory=dict)  # ARN -> IAM | IAM_PATTERN

    def detail(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "ARN": self.arn,
            "DisplayName": self.display_name,
            "Description": self.description,
            "CreatedTime": self.created,
            "ProviderName": self.provider_name,
        }


@dataclass
class _Artifact:
    id: str
    name: str
    description: str
    template: str
    created: str = field(default_factory=_now)

    def detail(self) -> dict[str, Any]:
        return {
            "Id": self.id,
            "Name": self.name,
            "Description": self.description,
            "Type": "CLOUD_FORMATION_TEMPLATE",
            "CreatedTime": self.created,
            "Active": True,
            "Guidance": "DEFAULT",
        }


@dataclass
class _Product:
    id: str
    arn: str
    name: str
    owner: str
    distributor: str
    description: str
    support_email: str
    support_url: str
    tags: dict[str, str]
    artifacts: list[_Artifact]
    created: str = field(default_factory=_now)

    def view(self) -> dict[str, Any]:
        summary = {
            "Id": _id("prodview"),
            "ProductId": self.id,
            "Name": self.name,
            "Owner": self.owner,
            "ShortDescription": self.description,
            "Type": "CLOUD_FORMATION_TEMPLATE",
            "Distributor": self.distributor,
            "HasDefaultPath": False,
            "SupportEmail": self.support_email,
            "SupportUrl": self.support_url,
        }
        return {
            "ProductViewSummary": summary,
            "Status": "CREATED",
            "ProductARN": self.arn,
            "CreatedTime": self.created,
        }


@dataclass
class _Constraint:
    id: str
    portfolio_id: str
    product_id: str
    type: str
    description: str
    parameters: str
    owner: str

    def detail(self) -> dict[str, Any]:
        return {
            "ConstraintId": self.id,
            "Type": self.type,
            "Description": self.description,
            "Owner": self.owner,
            "ProductId": self.product_id,
            "PortfolioId": self.portfolio_id,
        }


@dataclass
class _Provisioned:
    id: str
    arn: str
    name: str
    product_id: str
    artifact_id: str
    launch_role: str
    user_arn: str
    stack_name: str
    token: str
    stack_id: str = ""
    status: str = "UNDER_CHANGE"
    message: str = ""
    created: str = field(default_factory=_now)
    records: list[str] = field(default_factory=list)

    def detail(self) -> dict[str, Any]:
        shape = {
            "Name": self.name,
            "Arn": self.arn,
            "Type": "CFN_STACK",
            "Id": self.id,
            "Status": self.status,
            "CreatedTime": self.created,
            "IdempotencyToken": self.token,
            "LastRecordId": self.records[-1],
            "LastProvisioningRecordId": self.records[0],
            "ProductId": self.product_id,
            "ProvisioningArtifactId": self.artifact_id,
            "LaunchRoleArn": self.launch_role,
        }
        if self.message:
            shape["StatusMessage"] = self.message
        return shape

    def attributes(self) -> dict[str, Any]:
        detail = self.detail()
        return {
            **{k: detail[k] for k in ("Name", "Arn", "Type", "Id", "Status", "CreatedTime", "IdempotencyToken")},
            "LastRecordId": detail["LastRecordId"],
            "ProductId": self.product_id,
            "ProvisioningArtifactId": self.artifact_id,
            "UserArn": self.user_arn,
            "PhysicalId": self.stack_name,
        }


@dataclass
class _Record:
    id: str
    provisioned_id: str
    name: str
    type: str  # PROVISION_PRODUCT | TERMINATE_PROVISIONED_PRODUCT
    product_id: str
    artifact_id: str
    launch_role: str
    status: str
    errors: list[dict[str, str]]
    outputs: dict[str, str] = field(default_factory=dict)
    created: str = field(default_factory=_now)

    def detail(self) -> dict[str, Any]:
        return {
            "RecordId": self.id,
            "ProvisionedProductName": self.name,
            "Status": self.status,
            "CreatedTime": self.created,
            "UpdatedTime": self.created,
            "ProvisionedProductType": "CFN_STACK",
            "RecordType": self.type,
            "ProvisionedProductId": self.provisioned_id,
            "ProductId": self.product_id,
            "ProvisioningArtifactId": self.artifact_id,
            "RecordErrors": self.errors,
            "RecordTags": [],
            "LaunchRoleArn": self.launch_role,
        }


@dataclass
class _Region:
    portfolios: dict[str, _Portfolio] = field(default_factory=dict)
    products: dict[str, _Product] = field(default_factory=dict)
    constraints: dict[str, _Constraint] = field(default_factory=dict)
    provisioned: dict[str, _Provisioned] = field(default_factory=dict)
    records: dict[str, _Record] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)  # idempotency token -> id


_lock = threading.RLock()
_regions: dict[tuple[str, str], _Region] = {}


def reset() -> None:
    with _lock:
        _regions.clear()


def _region(call: Call) -> _Region:
    return _regions.setdefault((call.account_id, call.region), _Region())


def state(account_id: str, region: str) -> dict[str, Any]:
    """What the account's catalog holds (the sandbox's inventory reads it): portfolios with their products,
    principals and constraints; provisioned products."""
    with _lock:
        here = _regions.get((account_id, region), _Region())
        return {
            "portfolios": [
                {
                    "id": p.id,
                    "name": p.display_name,
                    "tags": dict(p.tags),
                    "products": [here.products[i].name for i in p.products if i in here.products],
                    "principals": sorted(p.principals),
                    "constraints": [
                        {"type": c.type, "parameters": json.loads(c.parameters)}
                        for c in here.constraints.values()
                        if c.portfolio_id == p.id
                    ],
                }
                for p in here.portfolios.values()
            ],
            "products": [{"id": p.id, "name": p.name, "tags": dict(p.tags)} for p in here.products.values()],
            "provisioned_products": [
                {"id": p.id, "name": p.name, "status": p.status, "stack": p.stack_name}
                for p in here.provisioned.values()
            ],
        }


def _required(call: Call, name: str) -> Any:
    value = call.params.get(name)
    if value in (None, ""):
        raise AwsError("InvalidParametersException", f"{name} is required", 400)
    return value


_T = TypeVar("_T")


def _tags(call: Call) -> dict[str, str]:
    return {str(t["Key"]): str(t["Value"]) for t in call.params.get("Tags", [])}


def _found(call: Call, key: str, table: dict[str, _T], what: str) -> _T:
    """The resource the call names by `key`; ResourceNotFoundException as Service Catalog says it."""
    resource_id = str(_required(call, key))
    found = table.get(resource_id)
    if found is None:
        raise AwsError("ResourceNotFoundException", f"{what} {resource_id} not found.", 400)
    return found


def _portfolio(call: Call, key: str = "PortfolioId") -> _Portfolio:
    return _found(call, key, _region(call).portfolios, "Portfolio")


def _product(call: Call, key: str = "ProductId") -> _Product:
    return _found(call, key, _region(call).products, "Product")


# -- portfolios -------------------------------------------------------------------------------------------------
@emulate(SERVICE, "CreatePortfolio")
def create_portfolio(call: Call) -> dict[str, Any]:
    with _lock:
        here = _region(call)
        token = str(_required(call, "IdempotencyToken"))
        if token in here.tokens and here.tokens[token] in here.portfolios:
            made = here.portfolios[here.tokens[token]]
            return {"PortfolioDetail": made.detail(), "Tags": [{"Key": k, "Value": v} for k, v in made.tags.items()]}
        portfolio_id = _id("port")
        made = _Portfolio(
            id=portfolio_id,
            arn=f"arn:aws:catalog:{call.region}:{call.account_id}:portfolio/{portfolio_id}",
            display_name=str(_required(call, "DisplayName")),
            provider_name=str(_required(call, "ProviderName")),
            description=str(call.params.get("Description", "")),
            tags=_tags(call),
        )
        here.portfolios[portfolio_id] = made
        here.tokens[token] = portfolio_id
        return {"PortfolioDetail": made.detail(), "Tags": [{"Key": k, "Value": v} for k, v in made.tags.items()]}


@emulate(SERVICE, "DescribePortfolio")
def describe_portfolio(call: Call) -> dict[str, Any]:
    with _lock:
        found = _portfolio(call, "Id")
        tags = [{"Key": k, "Value": v} for k, v in found.tags.items()]
        return {"PortfolioDetail": found.detail(), "Tags": tags, "TagOptions": [], "Budgets": []}


@emulate(SERVICE, "ListPortfolios")
def list_portfolios(call: Call) -> dict[str, Any]:
    with _lock:
        return {"PortfolioDetails": [p.detail() for p in _region(call).portfolios.values()]}


@emulate(SERVICE, "DeletePortfolio")
def delete_portfolio(call: Call) -> dict[str, Any]:
    with _lock:
        found = _portfolio(call, "Id")
        here = _region(call)
        constraints = [c for c in here.constraints.values() if c.portfolio_id == found.id]
        if found.products or found.principals or constraints:
            raise AwsError(
                "ResourceInUseException",
                f"Portfolio {found.id} has associated products, principals or constraints; disassociate them first",
                400,
            )
        del here.portfolios[found.id]
        return {}


# -- products ---------------------------------------------------------------------------------------------------
def _template_from(url: str) -> str:
    """The object an S3 URL names (https://s3.amazonaws.com/BUCKET/KEY or https://BUCKET.s3[.REGION].amazonaws.com/KEY)."""
    from moto.s3.models import s3_backends

    parsed = urlparse(url)
    host = parsed.netloc
    path = parsed.path.lstrip("/")
    if parsed.scheme != "https" or not host.endswith("amazonaws.com"):
        raise AwsError("InvalidParametersException", f"Invalid templateUrl: {url}", 400)
    if host.startswith("s3.") or host.startswith("s3-"):
        bucket, _, key = path.partition("/")
    else:
        bucket, key = host.split(".s3", 1)[0], path
    for accounts in s3_backends.values():
        backend = accounts["aws"]
        if bucket in backend.buckets:
            item = backend.buckets[bucket].keys.get(key)
            if item is not None:
                return bytes(item.value).decode("utf-8")
    raise AwsError("InvalidParametersException", f"Unable to retrieve template from {url}", 400)


@emulate(SERVICE, "CreateProduct")
def create_product(call: Call) -> dict[str, Any]:
    with _lock:
        here = _region(call)
        token = str(_required(call, "IdempotencyToken"))
        if call.params.get("ProductType") != "CLOUD_FORMATION_TEMPLATE":
            raise AwsError("InvalidParametersException", "only CLOUD_FORMATION_TEMPLATE products are emulated", 400)
        if token in here.tokens and here.tokens[token] in here.products:
            return _product_answer(here.products[here.tokens[token]])
        artifact = call.params.get("ProvisioningArtifactParameters") or {}
        info = artifact.get("Info") or {}
        if set(info) != {"LoadTemplateFromURL"}:
            raise AwsError("InvalidParametersException", "Info must have exactly one key: LoadTemplateFromURL", 400)
        template = _template_from(str(info["LoadTemplateFromURL"]))
        product_id = _id("prod")
        made = _Product(
            id=product_id,
            arn=f"arn:aws:catalog:{call.region}:{call.account_id}:product/{product_id}",
            name=str(_required(call, "Name")),
            owner=str(_required(call, "Owner")),
            distributor=str(call.params.get("Distributor", "")),
            description=str(call.params.get("Description", "")),
            support_email=str(call.params.get("SupportEmail", "")),
            support_url=str(call.params.get("SupportUrl", "")),
            tags=_tags(call),
            artifacts=[
                _Artifact(_id("pa"), str(artifact.get("Name", "")), str(artifact.get("Description", "")), template)
            ],
        )
        here.products[product_id] = made
        here.tokens[token] = product_id
        return _product_answer(made)


def _product_answer(product: _Product) -> dict[str, Any]:
    return {
        "ProductViewDetail": product.view(),
        "ProvisioningArtifactDetail": product.artifacts[0].detail(),
        "Tags": [{"Key": k, "Value": v} for k, v in product.tags.items()],
    }


@emulate(SERVICE, "DescribeProductAsAdmin")
def describe_product_as_admin(call: Call) -> dict[str, Any]:
    with _lock:
        found = _product(call, "Id")
        return {
            "ProductViewDetail": found.view(),
            "ProvisioningArtifactSummaries": [
                {"Id": a.id, "Name": a.name, "Description": a.description, "CreatedTime": a.created}
                for a in found.artifacts
            ],
            "Tags": [{"Key": k, "Value": v} for k, v in found.tags.items()],
            "TagOptions": [],
            "Budgets": [],
        }


@emulate(SERVICE, "SearchProductsAsAdmin")
def search_products_as_admin(call: Call) -> dict[str, Any]:
    with _lock:
        here = _region(call)
        wanted = call.params.get("PortfolioId")
        products = list(here.products.values())
        if wanted:
            portfolio = _portfolio(call)
            products = [p for p in products if p.id in portfolio.products]
        return {"ProductViewDetails": [p.view() for p in products]}


@emulate(SERVICE, "DeleteProduct")
def delete_product(call: Call) -> dict[str, Any]:
    with _lock:
        found = _product(call, "Id")
        here = _region(call)
        if any(found.id in p.products for p in here.portfolios.values()):
            raise AwsError("ResourceInUseException", f"Product {found.id} is associated with a portfolio", 400)
        del here.products[found.id]
        return {}


@emulate(SERVICE, "AssociateProductWithPortfolio")
def associate_product_with_portfolio(call: Call) -> dict[str, Any]:
    with _lock:
        portfolio, product = _portfolio(call), _product(call)
        if product.id not in portfolio.products:
            portfolio.products.append(product.id)
        return {}


@emulate(SERVICE, "DisassociateProductFromPortfolio")
def disassociate_product_from_portfolio(call: Call) -> dict[str, Any]:
    with _lock:
        portfolio, product = _portfolio(call), _product(call)
        here = _region(call)
        if any((c.portfolio_id, c.product_id) == (portfolio.id, product.id) for c in here.constraints.values()):
            raise AwsError("ResourceInUseException", f"Product {product.id} has constraints in {portfolio.id}", 400)
        if product.id not in portfolio.products:
            raise AwsError("ResourceNotFoundException", f"Product {product.id} is not in {portfolio.id}", 400)
        portfolio.products.remove(product.id)
        return {}


# -- principals -------------------------------------------------------------------------------------------------
@emulate(SERVICE, "AssociatePrincipalWithPortfolio")
def associate_principal_with_portfolio(call: Call) -> dict[str, Any]:
    with _lock:
        portfolio = _portfolio(call)
        kind = str(_required(call, "PrincipalType"))
        arn = str(_required(call, "PrincipalARN"))
        if kind not in ("IAM", "IAM_PATTERN"):
            raise AwsError("InvalidParametersException", f"PrincipalType {kind} is not valid", 400)
        portfolio.principals[arn] = kind
        return {}


@emulate(SERVICE, "DisassociatePrincipalFromPortfolio")
def disassociate_principal_from_portfolio(call: Call) -> dict[str, Any]:
    with _lock:
        portfolio = _portfolio(call)
        arn = str(_required(call, "PrincipalARN"))
        if arn not in portfolio.principals:
            raise AwsError("ResourceNotFoundException", f"Principal {arn} is not associated with {portfolio.id}", 400)
        del portfolio.principals[arn]
        return {}


@emulate(SERVICE, "ListPrincipalsForPortfolio")
def list_principals_for_portfolio(call: Call) -> dict[str, Any]:
    with _lock:
        portfolio = _portfolio(call)
        return {"Principals": [{"PrincipalARN": a, "PrincipalType": t} for a, t in portfolio.principals.items()]}


# -- constraints ------------------------------------------------------------------------------------------------
@emulate(SERVICE, "CreateConstraint")
def create_constraint(call: Call) -> dict[str, Any]:
    with _lock:
        here = _region(call)
        portfolio, product = _portfolio(call), _product(call)
        token = str(_required(call, "IdempotencyToken"))
        if token in here.tokens and here.tokens[token] in here.constraints:
            return _constraint_answer(here.constraints[here.tokens[token]])
        kind = str(_required(call, "Type"))
        if kind != "LAUNCH":
            raise AwsError("InvalidParametersException", "only LAUNCH constraints are emulated", 400)
        if product.id not in portfolio.products:
            raise AwsError("ResourceNotFoundException", f"Product {product.id} is not in {portfolio.id}", 400)
        parameters = _launch_parameters(str(_required(call, "Parameters")))
        for c in here.constraints.values():
            if (c.portfolio_id, c.product_id, c.type) == (portfolio.id, product.id, "LAUNCH"):
                raise AwsError("DuplicateResourceException", f"Launch constraint already exists: {c.id}", 400)
        made = _Constraint(
            _id("cons"),
            portfolio.id,
            product.id,
            kind,
            str(call.params.get("Description", "")),
            json.dumps(parameters),
            call.account_id,
        )
        here.constraints[made.id] = made
        here.tokens[token] = made.id
        return _constraint_answer(made)


def _launch_parameters(text: str) -> dict[str, Any]:
    """A LAUNCH constraint's Parameters (botocore's CreateConstraint/UpdateConstraint docs: RoleArn or
    LocalRoleName, not both)."""
    try:
        parameters = json.loads(text)
    except json.JSONDecodeError:
        raise AwsError("InvalidParametersException", "Parameters is not valid JSON", 400) from None
    if not isinstance(parameters, dict) or len(set(parameters) & {"RoleArn", "LocalRoleName"}) != 1:
        raise AwsError("InvalidParametersException", "a LAUNCH constraint needs RoleArn or LocalRoleName", 400)
    return parameters


def _constraint(call: Call) -> _Constraint:
    return _found(call, "Id", _region(call).constraints, "Constraint")


@emulate(SERVICE, "DescribeConstraint")
def describe_constraint(call: Call) -> dict[str, Any]:
    with _lock:
        return _constraint_answer(_constraint(call))


@emulate(SERVICE, "UpdateConstraint")
def update_constraint(call: Call) -> dict[str, Any]:
    with _lock:
        constraint = _constraint(call)
        if "Parameters" in call.params:
            constraint.parameters = json.dumps(_launch_parameters(str(call.params["Parameters"])))
        if "Description" in call.params:
            constraint.description = str(call.params["Description"])
        return _constraint_answer(constraint)


def _constraint_answer(constraint: _Constraint) -> dict[str, Any]:
    return {
        "ConstraintDetail": constraint.detail(),
        "ConstraintParameters": constraint.parameters,
        "Status": "AVAILABLE",
    }


@emulate(SERVICE, "DeleteConstraint")
def delete_constraint(call: Call) -> dict[str, Any]:
    with _lock:
        here = _region(call)
        del here.constraints[_constraint(call).id]
        return {}


@emulate(SERVICE, "ListConstraintsForPortfolio")
def list_constraints_for_portfolio(call: Call) -> dict[str, Any]:
    with _lock:
        portfolio = _portfolio(call)
        product = call.params.get("ProductId")
        found = [
            c.detail()
            for c in _region(call).constraints.values()
            if c.portfolio_id == portfolio.id and product in (None, c.product_id)
        ]
        return {"ConstraintDetails": found}


# -- provisioned products ---------------------------------------------------------------------------------------
def _caller_role_arn(principal: str) -> str:
    """arn:aws:sts::A:assumed-role/NAME/SESSION -> arn:aws:iam::A:role/NAME (a principal association names roles)."""
    if ":assumed-role/" in principal:
        account = principal.split(":")[4]
        return f"arn:aws:iam::{account}:role/{principal.split('/')[1]}"
    return principal


def _launch_session(call: Call, role_arn: str) -> Any:
    """Service Catalog assumes the launch role (refused by STS unless the role trusts servicecatalog)."""
    import boto3
    from moto.iam.models import iam_backends

    role_name = role_arn.rsplit("/", 1)[-1]
    roles = iam_backends[call.account_id]["global"].roles.values()
    role = next((r for r in roles if r.name == role_name), None)
    trusted = role is not None and "servicecatalog.amazonaws.com" in json.dumps(role.assume_role_policy_document)
    if not trusted:
        raise AwsError(
            "InvalidParametersException",
            f"Access denied while assuming the role {role_arn}: it must exist and trust servicecatalog.amazonaws.com",
            400,
        )
    # Service Catalog's own AssumeRole (as servicecatalog.amazonaws.com, trusted as checked above): straight from
    # moto's STS, not a call of anyone's credentials (the sandbox's trust check would see no service principal).
    from moto.sts.models import sts_backends

    assumed = sts_backends[call.account_id]["global"].assume_role(
        region_name=call.region,
        role_session_name="AWSServiceCatalogProvisioning",
        role_arn=role_arn,
        policy="",
        duration=3600,
        external_id="",
    )
    return boto3.Session(
        aws_access_key_id=assumed.access_key_id,
        aws_secret_access_key=assumed.secret_access_key,
        aws_session_token=assumed.session_token,
        region_name=call.region,
    )


def _read_template_copy(call: Call, session: Any, product: _Product) -> None:
    """Service Catalog reads its copy of the template as the launch role: recorded as that role's s3:GetObject
    on an object tagged servicecatalog:provisioning=true (the copy lives in Service Catalog's own bucket)."""
    identity = session.client("sts")
    with recording.suppressed():
        arn = str(identity.get_caller_identity()["Arn"])
    key = f"arn:aws:s3:::cf-templates-servicecatalog-{call.region}/{product.id}/{product.artifacts[-1].id}.template"
    recording.record(
        recording.ApiCall(
            principal=arn,
            call="s3:GetObject",
            ok=True,
            actor=LAUNCH_ACTOR,
            account_id=call.account_id,
            authorizations=(
                Authorization(
                    "s3:GetObject", (Resource(key, {f"s3:ExistingObjectTag/{TEMPLATE_COPY_TAG}": ("true",)}),)
                ),
            ),
        )
    )


def _launch_path(call: Call, product: _Product) -> _Portfolio:
    caller = _caller_role_arn(call.principal)
    for portfolio in _region(call).portfolios.values():
        if product.id in portfolio.products and caller in portfolio.principals:
            return portfolio
    raise AwsError("ResourceNotFoundException", f"No launch paths found for resource: {product.id}", 400)


def _launch_role(call: Call, portfolio: _Portfolio, product: _Product) -> str:
    for c in _region(call).constraints.values():
        if (c.portfolio_id, c.product_id, c.type) == (portfolio.id, product.id, "LAUNCH"):
            parameters = json.loads(c.parameters)
            if "RoleArn" in parameters:
                return str(parameters["RoleArn"])
            return f"arn:aws:iam::{call.account_id}:role/{parameters['LocalRoleName']}"
    raise AwsError(
        "InvalidParametersException", f"the sandbox launches only with a LAUNCH constraint ({product.id})", 400
    )


def _stack_tags(portfolio: _Portfolio, product: _Product, made: _Provisioned) -> dict[str, str]:
    """The tags Service Catalog puts on a launch's stack, which CloudFormation propagates to its resources."""
    return {
        "aws:servicecatalog:portfolioArn": portfolio.arn,
        "aws:servicecatalog:productArn": product.arn,
        "aws:servicecatalog:provisionedProductArn": made.arn,
        "aws:servicecatalog:provisioningPrincipalArn": made.user_arn,
    }


def _stack_status(session: Any, name: str) -> tuple[str, str, dict[str, str]]:
    stack = session.client("cloudformation").describe_stacks(StackName=name)["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return str(stack["StackStatus"]), str(stack.get("StackStatusReason", "")), outputs


@emulate(SERVICE, "ProvisionProduct")
def provision_product(call: Call) -> dict[str, Any]:
    from mlplane_sandbox.emulators.cloudformation import _parameters
    from mlplane_sandbox.template import parse_template

    with _lock:
        here = _region(call)
        token = str(_required(call, "ProvisionToken"))
        name = str(_required(call, "ProvisionedProductName"))
        if token in here.tokens and here.tokens[token] in here.records:
            return {"RecordDetail": here.records[here.tokens[token]].detail()}
        if any(p.name == name and p.status != "TERMINATED" for p in here.provisioned.values()):
            raise AwsError("DuplicateResourceException", f"A provisioned product named {name} already exists", 400)
        product = _product(call)
        artifact = next((a for a in product.artifacts if a.id == call.params.get("ProvisioningArtifactId")), None)
        if artifact is None:
            raise AwsError("ResourceNotFoundException", "Provisioning artifact not found", 400)
        portfolio = _launch_path(call, product)
        role_arn = _launch_role(call, portfolio, product)
        given = {str(p["Key"]): str(p["Value"]) for p in call.params.get("ProvisioningParameters", [])}
        try:
            _parameters(parse_template(artifact.template), given)
        except AwsError as err:
            raise AwsError("InvalidParametersException", err.message, 400) from None
        provisioned_id = _id("pp")
        made = _Provisioned(
            id=provisioned_id,
            arn=f"arn:aws:servicecatalog:{call.region}:{call.account_id}:stack/{name}/{provisioned_id}",
            name=name,
            product_id=product.id,
            artifact_id=artifact.id,
            launch_role=role_arn,
            user_arn=_caller_role_arn(call.principal),
            stack_name=f"SC-{call.account_id}-{provisioned_id}",
            token=token,
        )
        session = _launch_session(call, role_arn)
    with recording.actor(LAUNCH_ACTOR):
        _read_template_copy(call, session, product)
        made.stack_id = session.client("cloudformation").create_stack(
            StackName=made.stack_name,
            TemplateBody=artifact.template,
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in given.items()],
            Tags=[{"Key": k, "Value": v} for k, v in _stack_tags(portfolio, product, made).items()],
        )["StackId"]
        status, reason, outputs = _stack_status(session, made.stack_id)
    ok = status == "CREATE_COMPLETE"
    record = _Record(
        _id("rec"),
        provisioned_id,
        name,
        "PROVISION_PRODUCT",
        product.id,
        artifact.id,
        role_arn,
        "SUCCEEDED" if ok else "FAILED",
        [] if ok else [{"Code": "CFN_STACK", "Description": reason}],
        outputs,
    )
    with _lock:
        made.status = "AVAILABLE" if ok else "ERROR"
        made.message = "" if ok else reason
        made.records.append(record.id)
        here.provisioned[provisioned_id] = made
        here.records[record.id] = record
        here.tokens[token] = record.id
    answer = record.detail()
    answer["Status"] = "CREATED"  # the call answers before the launch runs; DescribeRecord has its outcome
    return {"RecordDetail": answer}


def _provisioned(call: Call) -> _Provisioned:
    here = _region(call)
    wanted_id = call.params.get("ProvisionedProductId") or call.params.get("Id")
    wanted_name = call.params.get("ProvisionedProductName") or call.params.get("Name")
    for p in here.provisioned.values():
        if p.status != "TERMINATED" and ((wanted_id and p.id == wanted_id) or (wanted_name and p.name == wanted_name)):
            return p
    raise AwsError("ResourceNotFoundException", f"Provisioned product {wanted_id or wanted_name} not found.", 400)


@emulate(SERVICE, "TerminateProvisionedProduct")
def terminate_provisioned_product(call: Call) -> dict[str, Any]:
    with _lock:
        here = _region(call)
        token = str(_required(call, "TerminateToken"))
        if token in here.tokens and here.tokens[token] in here.records:
            return {"RecordDetail": here.records[here.tokens[token]].detail()}
        found = _provisioned(call)
        session = _launch_session(call, found.launch_role)
    with recording.actor(LAUNCH_ACTOR):
        cloudformation = session.client("cloudformation")
        cloudformation.delete_stack(StackName=found.stack_id)
        status, reason, _ = _stack_status(session, found.stack_id)
    ok = status == "DELETE_COMPLETE"
    record = _Record(
        _id("rec"),
        found.id,
        found.name,
        "TERMINATE_PROVISIONED_PRODUCT",
        found.product_id,
        found.artifact_id,
        found.launch_role,
        "SUCCEEDED" if ok else "FAILED",
        [] if ok else [{"Code": "CFN_STACK", "Description": reason}],
    )
    with _lock:
        found.records.append(record.id)
        found.status = "TERMINATED" if ok else "ERROR"
        found.message = "" if ok else reason
        here.records[record.id] = record
        here.tokens[token] = record.id
    answer = record.detail()
    answer["Status"] = "CREATED"
    return {"RecordDetail": answer}


@emulate(SERVICE, "DescribeProvisionedProduct")
def describe_provisioned_product(call: Call) -> dict[str, Any]:
    with _lock:
        return {"ProvisionedProductDetail": _provisioned(call).detail(), "CloudWatchDashboards": []}


@emulate(SERVICE, "SearchProvisionedProducts")
def search_provisioned_products(call: Call) -> dict[str, Any]:
    """AccessLevelFilter Account: the account's; default (User): the caller's own launches only."""
    with _lock:
        level = (call.params.get("AccessLevelFilter") or {}).get("Key", "User")
        caller = _caller_role_arn(call.principal)
        found = [
            p.attributes()
            for p in _region(call).provisioned.values()
            if p.status != "TERMINATED" and (level == "Account" or p.user_arn == caller)
        ]
        return {"ProvisionedProducts": found, "TotalResultsCount": len(found)}


@emulate(SERVICE, "DescribeRecord")
def describe_record(call: Call) -> dict[str, Any]:
    with _lock:
        record_id = str(_required(call, "Id"))
        found = _region(call).records.get(record_id)
        if found is None:
            raise AwsError("ResourceNotFoundException", f"Record {record_id} not found.", 400)
        outputs = [{"OutputKey": k, "OutputValue": v} for k, v in found.outputs.items()]
        return {"RecordDetail": found.detail(), "RecordOutputs": outputs}
