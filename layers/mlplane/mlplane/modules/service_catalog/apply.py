"""M2's AWS calls: the per-account catalog of seed 003, created once through the ledger and undone by the walker.

What one account gets, each resource through `Member.ensure` (ledger intent, found again by its tags or its
idempotency token, ledger id), in this order (rollback and deprovision walk it newest first):

1. the launch role `mlplane-sc-launch` (trusted by servicecatalog.amazonaws.com for this account only) and its
   inline policy (`product.launch_role_policy`);
2. the template bucket `mlplane-sc-<account>-<region>` and the account's rendered template in it. CreateProduct
   takes the template only from an S3 URL (`LoadTemplateFromURL`) or an existing stack (`ImportFromPhysicalId`;
   botocore's ProvisioningArtifactProperties.Info); a bucket in the member account keeps the read in the
   account (no cross-account bucket policy on a hub bucket), and goes with the product;
3. the portfolio, the CloudFormation product (its version `v1` = the template file's), the product's
   association with the portfolio, the analysts' role as the portfolio's principal, the LAUNCH constraint.

Undo refuses to remove the portfolio while an analyst's provisioned product is live, naming them (`Blocked`),
unless `terminate` is configured: then it terminates them first (as Service Catalog would, through the
launch role).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from mlplane import aws
from mlplane.errors import Blocked, InputRejected, error_code, translate
from mlplane.ledger import ResourceRecord, ResourceState
from mlplane.member import KEY_TAG, MANAGED_TAG, Member
from mlplane.modules.service_catalog import product
from mlplane.rollback.handler import Handler, Undone

PORTFOLIO_NAME = "mlplane notebooks"
PRODUCT_NAME = "SageMaker notebook"
PROVIDER = "mlplane"
ROLE_TYPE = "servicecatalog:launch-role"
ROLE_POLICY_TYPE = "servicecatalog:launch-role-policy"
BUCKET_TYPE = "servicecatalog:template-bucket"
OBJECT_TYPE = "servicecatalog:template-object"
PORTFOLIO_TYPE = "servicecatalog:portfolio"
PRODUCT_TYPE = "servicecatalog:product"
ASSOCIATION_TYPE = "servicecatalog:product-association"
PRINCIPAL_TYPE = "servicecatalog:principal-association"
CONSTRAINT_TYPE = "servicecatalog:launch-constraint"
ROLE_POLICY_NAME = "launch"
RESOURCES = 9
"""How many resources one account's catalog is (`run` creates at most these)."""
PURPOSE = "service_catalog"
"""Every call of the module on its own resources runs in the member session of this purpose."""
ROLE_KEY = "servicecatalog/launch-role"
ROLE_POLICY_KEY = "servicecatalog/launch-role-policy"
BUCKET_KEY = "servicecatalog/template-bucket"
TEMPLATE_KEY = "servicecatalog/template"
PORTFOLIO_KEY = "servicecatalog/portfolio"
PRODUCT_KEY = "servicecatalog/product"
ASSOCIATION_KEY = "servicecatalog/product-association"
PRINCIPAL_KEY = "servicecatalog/principal"
CONSTRAINT_KEY = "servicecatalog/launch-constraint"


@dataclass(frozen=True)
class Target:
    """What the product is built on in this account, and the module's settings."""

    vpc_id: str
    subnet_ids: list[str]
    kms_key_arn: str
    principal_arn: str | None  # the analysts' (SAML) role; None: not found (`principal_unknown` says why)
    instance_types: tuple[str, ...] = product.INSTANCE_TYPES  # the sizes an analyst may choose
    principal_unknown: str = ""


def own(member: Member) -> Member:
    """The member in the module's own session (`session_policies/service_catalog.json`)."""
    return member.for_purpose(PURPOSE)


def bucket_name(member: Member) -> str:
    return f"mlplane-sc-{member.account_id}-{member.region}"


def template_key() -> str:
    return f"products/{product.TEMPLATE_FILE}"


def _fail(err: ClientError, what: str, member: Member) -> Exception:
    return translate(err, f"{what} in {member.account_id}")


def run(member: Member, target: Target) -> int:
    """Create what is missing; returns how many resources this run created."""
    made = [
        _ensure_role(member),
        _ensure_role_policy(member, target),
        _ensure_bucket(member),
        _ensure_template(member, target),
    ]
    portfolio, made_portfolio = _ensure_portfolio(member)
    product_id, made_product = _ensure_product(member)
    made += [made_portfolio, made_product, _ensure_association(member, portfolio, product_id)]
    made.append(_ensure_constraint(member, portfolio, product_id))
    if target.principal_arn is None:  # all else converged; without the analysts' role there is no one to share with
        raise InputRejected(target.principal_unknown)
    made.append(_ensure_principal(member, portfolio, target.principal_arn))
    return sum(int(m) for m in made)


@dataclass(frozen=True)
class Surveyed:
    """One resource of the catalog as `run` would meet it now (`mlplane plan`, the audit's measure)."""

    type: str
    key: str
    action: str  # create / keep / change
    id: str | None
    detail: str


def survey(member: Member, target: Target | None, unknown: str = "") -> list[Surveyed]:
    """Read-only: each resource of the catalog against what `run` would make, by the finders `run` uses.

    Without a target (the core steps have not made the VPC or the key yet, or the analysts' role is gone;
    `unknown` says which) what is built from it is `create` if absent and `change` if present (it cannot be
    compared)."""

    def judged(kind: str, key: str, *, found: Any, wanted: Any, resource_id: str, what: str) -> Surveyed:
        if found is None:
            return Surveyed(kind, key, "create", None, what if target is not None or not unknown else unknown)
        if target is None:
            return Surveyed(kind, key, "change", resource_id, unknown or what)
        if found != wanted:
            return Surveyed(kind, key, "change", resource_id, f"{what}: differs from the plan")
        return Surveyed(kind, key, "keep", resource_id, what)

    def present(kind: str, key: str, resource_id: str | None, what: str) -> Surveyed:
        return Surveyed(kind, key, "keep" if resource_id else "create", resource_id, what)

    role = _owned_role(member)
    portfolio, product_id = find_portfolio(member), find_product(member)
    policy = _role_policy_found(member) if role else None
    surveyed = [
        present(ROLE_TYPE, ROLE_KEY, product.LAUNCH_ROLE_NAME if role else None, "the launch role"),
        judged(
            ROLE_POLICY_TYPE,
            ROLE_POLICY_KEY,
            found=policy,
            wanted=_role_policy_wanted(member, target) if target else None,
            resource_id=ROLE_POLICY_NAME,
            what="the launch role's policy",
        ),
        _bucket_surveyed(member),
        judged(
            OBJECT_TYPE,
            TEMPLATE_KEY,
            found=_template_found(member),
            wanted=_template_wanted(target) if target else None,
            resource_id=template_key(),
            what=f"the product's template ({product.TEMPLATE_FILE})",
        ),
        present(PORTFOLIO_TYPE, PORTFOLIO_KEY, portfolio, PORTFOLIO_NAME),
        present(PRODUCT_TYPE, PRODUCT_KEY, product_id, PRODUCT_NAME),
        present(
            ASSOCIATION_TYPE,
            ASSOCIATION_KEY,
            _associated(member, portfolio, product_id) if portfolio and product_id else None,
            "the product in the portfolio",
        ),
    ]
    surveyed.append(_principal_surveyed(member, portfolio, target, unknown))
    constraint = _launch_constraint(member, portfolio, product_id) if portfolio and product_id else None
    launch_as = f"launch as {product.LAUNCH_ROLE_NAME}"
    if constraint is None:
        surveyed.append(Surveyed(CONSTRAINT_TYPE, CONSTRAINT_KEY, "create", None, launch_as))
    elif constraint[1] != _launch_parameters(member):
        now = f"launches with {json.dumps(constraint[1])}"
        surveyed.append(Surveyed(CONSTRAINT_TYPE, CONSTRAINT_KEY, "change", constraint[0], now))
    else:
        surveyed.append(Surveyed(CONSTRAINT_TYPE, CONSTRAINT_KEY, "keep", constraint[0], launch_as))
    return surveyed


def _bucket_surveyed(member: Member) -> Surveyed:
    tags = _bucket_tags(member)
    if tags is None:
        return Surveyed(BUCKET_TYPE, BUCKET_KEY, "create", None, "the template bucket")
    if tags.get(MANAGED_TAG) != "true":
        return Surveyed(BUCKET_TYPE, BUCKET_KEY, "change", bucket_name(member), "exists without mlplane's tags")
    return Surveyed(BUCKET_TYPE, BUCKET_KEY, "keep", bucket_name(member), "the template bucket")


def _principal_surveyed(member: Member, portfolio: str | None, target: Target | None, unknown: str) -> Surveyed:
    """The portfolio is to be shared with the analysts' role and no one else: another principal is drift."""
    wanted = target.principal_arn if target is not None else None
    why = (target.principal_unknown if target is not None else "") or unknown
    shared = [str(p["PrincipalARN"]) for p in _principals(member, portfolio)] if portfolio else []
    others = [arn for arn in shared if arn != wanted]
    what = "the analysts' role in the portfolio"
    if others:
        detail = f"also shared with {', '.join(others)}" + (f" ({why})" if wanted is None and why else "")
        return Surveyed(PRINCIPAL_TYPE, PRINCIPAL_KEY, "change", portfolio, detail)
    if wanted is None:
        return Surveyed(PRINCIPAL_TYPE, PRINCIPAL_KEY, "create", None, why or what)
    found = f"{portfolio}|{wanted}" if wanted in shared else None
    return Surveyed(PRINCIPAL_TYPE, PRINCIPAL_KEY, "keep" if found else "create", found, what)


# -- the launch role --------------------------------------------------------------------------------------------
def _role_arn(member: Member) -> str:
    return f"arn:{aws.partition_for(member.region)}:iam::{member.account_id}:role/{product.LAUNCH_ROLE_NAME}"


def _owned_role(member: Member) -> bool:
    iam = member.client("iam")
    try:
        tags = iam.list_role_tags(RoleName=product.LAUNCH_ROLE_NAME)["Tags"]
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return False
        raise _fail(err, "iam:ListRoleTags", member) from err
    return {t["Key"]: t["Value"] for t in tags}.get(MANAGED_TAG) == "true"


def _ensure_role(member: Member) -> int:
    key = ROLE_KEY

    def find() -> str | None:
        return product.LAUNCH_ROLE_NAME if _owned_role(member) else None

    def create() -> str:
        try:
            member.client("iam").create_role(
                RoleName=product.LAUNCH_ROLE_NAME,
                AssumeRolePolicyDocument=json.dumps(product.launch_role_trust(member.account_id)),
                Description="Service Catalog launch role of the mlplane notebook product (seed 003)",
                Tags=member.tag_list(key),
            )
        except ClientError as err:
            raise _fail(err, f"iam:CreateRole {product.LAUNCH_ROLE_NAME}", member) from err
        return product.LAUNCH_ROLE_NAME

    _, made = member.ensure(key=key, type=ROLE_TYPE, find=find, create=create)
    return int(made)


def _role_policy_wanted(member: Member, target: Target) -> dict[str, Any]:
    return product.launch_role_policy(
        account_id=member.account_id,
        region=member.region,
        vpc_id=target.vpc_id,
        subnet_ids=target.subnet_ids,
        kms_key_arn=target.kms_key_arn,
        instance_types=target.instance_types,
    )


def _role_policy_found(member: Member) -> dict[str, Any] | None:
    """The launch role's inline policy as it is now (None: absent)."""
    try:
        found = member.client("iam").get_role_policy(RoleName=product.LAUNCH_ROLE_NAME, PolicyName=ROLE_POLICY_NAME)
    except ClientError as err:
        if error_code(err) == "NoSuchEntity":
            return None
        raise _fail(err, "iam:GetRolePolicy", member) from err
    raw = found["PolicyDocument"]
    document: dict[str, Any] = json.loads(raw) if isinstance(raw, str) else raw
    return document


def _ensure_role_policy(member: Member, target: Target) -> int:
    key = ROLE_POLICY_KEY
    document = _role_policy_wanted(member, target)
    iam = member.client("iam")

    def find() -> str | None:
        return ROLE_POLICY_NAME if _role_policy_found(member) == document else None

    def create() -> str:
        try:
            iam.put_role_policy(
                RoleName=product.LAUNCH_ROLE_NAME, PolicyName=ROLE_POLICY_NAME, PolicyDocument=json.dumps(document)
            )
        except ClientError as err:
            raise _fail(err, "iam:PutRolePolicy", member) from err
        return ROLE_POLICY_NAME

    _, made = member.ensure(key=key, type=ROLE_POLICY_TYPE, find=find, create=create)
    return int(made)


# -- the template -----------------------------------------------------------------------------------------------
def _bucket_tags(member: Member) -> dict[str, str] | None:
    """The template bucket's tags; {} for a bucket without any, None when there is no bucket."""
    try:
        tags = member.client("s3").get_bucket_tagging(Bucket=bucket_name(member))["TagSet"]
    except ClientError as err:
        if error_code(err) == "NoSuchBucket":
            return None
        if error_code(err) in ("NoSuchTagSet", "NoSuchTagSetError"):
            return {}
        raise _fail(err, "s3:GetBucketTagging", member) from err
    return {t["Key"]: t["Value"] for t in tags}


def _owned_bucket(member: Member) -> str | None:
    tags = _bucket_tags(member)
    return bucket_name(member) if tags is not None and tags.get(MANAGED_TAG) == "true" else None


def _ensure_bucket(member: Member) -> int:
    key = BUCKET_KEY
    name = bucket_name(member)
    s3 = member.client("s3")
    previous = member.ledger.resource(member.account_id, key)
    ours = previous is not None and previous.state == ResourceState.CREATED and previous.resource_id == name

    def find() -> str | None:
        return _owned_bucket(member)

    def create() -> str:
        try:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": member.region})
        except ClientError as err:
            # the ledger's own bucket that lost mlplane's tags is tagged again; anyone else's is refused
            if not (ours and error_code(err) == "BucketAlreadyOwnedByYou"):
                raise _fail(err, f"s3:CreateBucket {name}", member) from err
        try:
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": member.tag_list(key)})
            s3.put_public_access_block(
                Bucket=name,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )
        except ClientError as err:
            raise _fail(err, f"s3:PutBucketTagging {name}", member) from err
        return name

    _, made = member.ensure(key=key, type=BUCKET_TYPE, find=find, create=create)
    return int(made)


def _template_wanted(target: Target) -> str:
    return product.render(
        subnet_id=target.subnet_ids[0],
        vpc_id=target.vpc_id,
        kms_key_arn=target.kms_key_arn,
        instance_types=target.instance_types,
    )


def _template_found(member: Member) -> str | None:
    """The account's template object as it is now (None: absent)."""
    try:
        return str(
            member.client("s3").get_object(Bucket=bucket_name(member), Key=template_key())["Body"].read().decode()
        )
    except ClientError as err:
        if error_code(err) in ("NoSuchKey", "NoSuchBucket"):
            return None
        raise _fail(err, "s3:GetObject", member) from err


def _ensure_template(member: Member, target: Target) -> int:
    key = TEMPLATE_KEY
    body = _template_wanted(target)
    s3 = member.client("s3")

    def find() -> str | None:
        return template_key() if _template_found(member) == body else None

    def create() -> str:
        try:
            s3.put_object(Bucket=bucket_name(member), Key=template_key(), Body=body.encode())
        except ClientError as err:
            raise _fail(err, "s3:PutObject", member) from err
        return template_key()

    _, made = member.ensure(key=key, type=OBJECT_TYPE, find=find, create=create)
    return int(made)


# -- the catalog ------------------------------------------------------------------------------------------------
def _token(member: Member, key: str) -> str:
    """The idempotency token of a create: the same per account and key, so a retried create finds the first."""
    return f"mlplane-{member.account_id}-{key.replace('/', '-')}"[:128]


def _owned_portfolio(member: Member, key: str) -> str | None:
    sc = member.client("servicecatalog")
    for detail in _read(member, "servicecatalog:ListPortfolios", sc.list_portfolios).get("PortfolioDetails", []):
        described = _read(member, "servicecatalog:DescribePortfolio", sc.describe_portfolio, Id=detail["Id"])
        tags = {t["Key"]: t["Value"] for t in described.get("Tags", [])}
        if tags.get(MANAGED_TAG) == "true" and tags.get(KEY_TAG) == key:
            return str(detail["Id"])
    return None


def _ensure_portfolio(member: Member) -> tuple[str, bool]:
    key = PORTFOLIO_KEY

    def create() -> str:
        try:
            answer = member.client("servicecatalog").create_portfolio(
                DisplayName=PORTFOLIO_NAME,
                ProviderName=PROVIDER,
                Description="Self-service SageMaker notebooks for data analysts (seed 003), managed by mlplane",
                Tags=member.tag_list(key),
                IdempotencyToken=_token(member, key),
            )
        except ClientError as err:
            raise _fail(err, "servicecatalog:CreatePortfolio", member) from err
        return str(answer["PortfolioDetail"]["Id"])

    return member.ensure(key=key, type=PORTFOLIO_TYPE, find=lambda: _owned_portfolio(member, key), create=create)


def _owned_product(member: Member, key: str) -> str | None:
    sc = member.client("servicecatalog")
    views = _read(member, "servicecatalog:SearchProductsAsAdmin", sc.search_products_as_admin)
    for view in views.get("ProductViewDetails", []):
        product_id = str(view["ProductViewSummary"]["ProductId"])
        described = _read(member, "servicecatalog:DescribeProductAsAdmin", sc.describe_product_as_admin, Id=product_id)
        tags = {t["Key"]: t["Value"] for t in described.get("Tags", [])}
        if tags.get(MANAGED_TAG) == "true" and tags.get(KEY_TAG) == key:
            return product_id
    return None


def _ensure_product(member: Member) -> tuple[str, bool]:
    key = PRODUCT_KEY
    url = f"https://{bucket_name(member)}.s3.{member.region}.amazonaws.com/{template_key()}"

    def create() -> str:
        try:
            answer = member.client("servicecatalog").create_product(
                Name=PRODUCT_NAME,
                Owner=PROVIDER,
                Distributor=PROVIDER,
                Description="One SageMaker notebook instance: private subnet, vault key, no direct internet access",
                ProductType="CLOUD_FORMATION_TEMPLATE",
                ProvisioningArtifactParameters={
                    "Name": product.TEMPLATE_VERSION,
                    "Description": f"mlplane {product.TEMPLATE_FILE}",
                    "Info": {"LoadTemplateFromURL": url},
                    "Type": "CLOUD_FORMATION_TEMPLATE",
                },
                Tags=member.tag_list(key),
                IdempotencyToken=_token(member, key),
            )
        except ClientError as err:
            raise _fail(err, "servicecatalog:CreateProduct", member) from err
        return str(answer["ProductViewDetail"]["ProductViewSummary"]["ProductId"])

    return member.ensure(
        key=key, type=PRODUCT_TYPE, find=lambda: _owned_product(member, key), create=create, data={"url": url}
    )


def _read(member: Member, what: str, call: Any, **params: Any) -> Any:
    """A read of the catalog: a refusal is the mlplane error naming the call (never a bare ClientError: the
    audit and reconcile of a fleet go on past one account)."""
    try:
        return call(**params)
    except ClientError as err:
        raise _fail(err, what, member) from err


def _associated(member: Member, portfolio: str, product_id: str) -> str | None:
    """The product's association with the portfolio (its id) if it is there."""
    sc = member.client("servicecatalog")
    views = _read(
        member, "servicecatalog:SearchProductsAsAdmin", sc.search_products_as_admin, PortfolioId=portfolio
    ).get("ProductViewDetails", [])
    found = any(v["ProductViewSummary"]["ProductId"] == product_id for v in views)
    return f"{portfolio}|{product_id}" if found else None


def _ensure_association(member: Member, portfolio: str, product_id: str) -> int:
    key = ASSOCIATION_KEY
    sc = member.client("servicecatalog")
    resource_id = f"{portfolio}|{product_id}"

    def find() -> str | None:
        return _associated(member, portfolio, product_id)

    def create() -> str:
        try:
            sc.associate_product_with_portfolio(ProductId=product_id, PortfolioId=portfolio)
        except ClientError as err:
            raise _fail(err, "servicecatalog:AssociateProductWithPortfolio", member) from err
        return resource_id

    _, made = member.ensure(key=key, type=ASSOCIATION_TYPE, find=find, create=create)
    return int(made)


def _principals(member: Member, portfolio: str) -> list[dict[str, Any]]:
    """Every principal the portfolio is shared with (PrincipalARN, PrincipalType)."""
    sc = member.client("servicecatalog")
    answer = _read(
        member,
        "servicecatalog:ListPrincipalsForPortfolio",
        sc.list_principals_for_portfolio,
        PortfolioId=portfolio,
    )
    return list(answer.get("Principals", []))


def _principal(member: Member, portfolio: str, principal_arn: str) -> str | None:
    """The analysts' role's association with the portfolio (its id) if it is there."""
    listed = _principals(member, portfolio)
    return f"{portfolio}|{principal_arn}" if any(p["PrincipalARN"] == principal_arn for p in listed) else None


def _disassociate_others(member: Member, portfolio: str, keep: str | None) -> None:
    """mlplane's portfolio is shared with the configured analysts' role only: any other principal (the role
    configured before, one added by hand) could launch as the launch role, so it is removed."""
    sc = member.client("servicecatalog")
    for other in _principals(member, portfolio):
        if other["PrincipalARN"] == keep:
            continue
        try:
            sc.disassociate_principal_from_portfolio(
                PortfolioId=portfolio,
                PrincipalARN=other["PrincipalARN"],
                PrincipalType=other.get("PrincipalType", "IAM"),
            )
        except ClientError as err:
            if error_code(err) != "ResourceNotFoundException":
                raise _fail(
                    err, f"servicecatalog:DisassociatePrincipalFromPortfolio {other['PrincipalARN']}", member
                ) from err


def _ensure_principal(member: Member, portfolio: str, principal_arn: str) -> int:
    key = PRINCIPAL_KEY
    sc = member.client("servicecatalog")
    resource_id = f"{portfolio}|{principal_arn}"

    def find() -> str | None:
        return _principal(member, portfolio, principal_arn)

    def create() -> str:
        try:
            sc.associate_principal_with_portfolio(
                PortfolioId=portfolio, PrincipalARN=principal_arn, PrincipalType="IAM"
            )
        except ClientError as err:
            raise _fail(err, "servicecatalog:AssociatePrincipalWithPortfolio", member) from err
        return resource_id

    _, made = member.ensure(key=key, type=PRINCIPAL_TYPE, find=find, create=create)
    _disassociate_others(member, portfolio, keep=principal_arn)
    return int(made)


def _launch_constraint(member: Member, portfolio: str, product_id: str) -> tuple[str, dict[str, Any]] | None:
    """The product's LAUNCH constraint in the portfolio (its id, its parameters) if it is there. Only
    DescribeConstraint gives the parameters: the role a launch runs as."""
    sc = member.client("servicecatalog")
    listed = _read(
        member,
        "servicecatalog:ListConstraintsForPortfolio",
        sc.list_constraints_for_portfolio,
        PortfolioId=portfolio,
        ProductId=product_id,
    )
    found = [c for c in listed.get("ConstraintDetails", []) if c["Type"] == "LAUNCH"]
    if not found:
        return None
    constraint_id = str(found[0]["ConstraintId"])
    try:
        described = sc.describe_constraint(Id=constraint_id)
    except ClientError as err:
        if error_code(err) == "ResourceNotFoundException":
            return None
        raise _fail(err, f"servicecatalog:DescribeConstraint {constraint_id}", member) from err
    parameters: dict[str, Any] = json.loads(described.get("ConstraintParameters") or "{}")
    return constraint_id, parameters


def _launch_parameters(member: Member) -> dict[str, Any]:
    return {"RoleArn": _role_arn(member)}


def _ensure_constraint(member: Member, portfolio: str, product_id: str) -> int:
    key = CONSTRAINT_KEY
    sc = member.client("servicecatalog")

    def find() -> str | None:
        found = _launch_constraint(member, portfolio, product_id)
        return found[0] if found is not None and found[1] == _launch_parameters(member) else None

    def create() -> str:
        found = _launch_constraint(member, portfolio, product_id)
        if found is not None:  # one LAUNCH constraint per product and portfolio: launches as another role now
            try:
                sc.update_constraint(Id=found[0], Parameters=json.dumps(_launch_parameters(member)))
            except ClientError as err:
                raise _fail(err, f"servicecatalog:UpdateConstraint {found[0]}", member) from err
            return found[0]
        try:
            answer = sc.create_constraint(
                PortfolioId=portfolio,
                ProductId=product_id,
                Type="LAUNCH",
                Parameters=json.dumps(_launch_parameters(member)),
                Description="Launch as mlplane-sc-launch (least privilege, mlplane)",
                IdempotencyToken=_token(member, key),
            )
        except ClientError as err:
            raise _fail(err, "servicecatalog:CreateConstraint", member) from err
        return str(answer["ConstraintDetail"]["ConstraintId"])

    _, made = member.ensure(key=key, type=CONSTRAINT_TYPE, find=find, create=create)
    return int(made)


# -- undo -------------------------------------------------------------------------------------------------------
def _gone_ok(member: Member, what: str, call: Any, *codes: str) -> Undone:
    try:
        call()
    except ClientError as err:
        if error_code(err) in ("ResourceNotFoundException", "NoSuchEntity", "NoSuchBucket", "NoSuchKey", *codes):
            return Undone("gone")
        raise _fail(err, what, member) from err
    return Undone("removed")


def _live_launches(member: Member, product_id: str) -> list[dict[str, Any]]:
    sc = member.client("servicecatalog")
    found = sc.search_provisioned_products(AccessLevelFilter={"Key": "Account", "Value": "self"})
    return [p for p in found.get("ProvisionedProducts", []) if p.get("ProductId") == product_id]


def find_portfolio(member: Member) -> str | None:
    return _owned_portfolio(member, PORTFOLIO_KEY)


def find_product(member: Member) -> str | None:
    return _owned_product(member, PRODUCT_KEY)


def live_launches(member: Member) -> list[dict[str, Any]]:
    """Every analyst's live launch of mlplane's product in the account (none: no product)."""
    product_id = find_product(member)
    return _live_launches(member, product_id) if product_id else []


def named(launches: list[dict[str, Any]]) -> str:
    return ", ".join(f"{p['Name']} ({p['Id']})" for p in launches)


def _undo_association(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    portfolio, product_id = resource_id.split("|", 1)
    return _gone_ok(
        member,
        "servicecatalog:DisassociateProductFromPortfolio",
        lambda: member.client("servicecatalog").disassociate_product_from_portfolio(
            ProductId=product_id, PortfolioId=portfolio
        ),
    )


def _undo_principal(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    portfolio, principal = resource_id.split("|", 1)
    return _gone_ok(
        member,
        "servicecatalog:DisassociatePrincipalFromPortfolio",
        lambda: member.client("servicecatalog").disassociate_principal_from_portfolio(
            PortfolioId=portfolio, PrincipalARN=principal
        ),
    )


def _undo_constraint(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    return _gone_ok(
        member,
        "servicecatalog:DeleteConstraint",
        lambda: member.client("servicecatalog").delete_constraint(Id=resource_id),
    )


def terminate_launches(member: Member, product_id: str) -> list[str]:
    """Terminate every analyst's live launch of the product (through its launch role); their names."""
    sc = member.client("servicecatalog")
    names: list[str] = []
    for launched in _live_launches(member, product_id):
        try:
            sc.terminate_provisioned_product(
                ProvisionedProductId=launched["Id"], TerminateToken=f"mlplane-terminate-{launched['Id']}"
            )
        except ClientError as err:
            raise _fail(err, f"servicecatalog:TerminateProvisionedProduct {launched['Id']}", member) from err
        names.append(str(launched["Name"]))
    return names


def refuse_while_launched(member: Member) -> None:
    """Blocked, naming them, while an analyst's launch of mlplane's product is live: nothing of the catalog (nor
    the launch role its termination needs) is removed then. A deprovision configured to terminate them calls
    `terminate_launches` before the walk."""
    live = live_launches(member)
    if live:
        raise Blocked(f"servicecatalog product in {member.account_id} has analysts' instances: {named(live)}")


def _guarded(undo: Any) -> Any:
    def guarded(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
        mine = own(member)
        refuse_while_launched(mine)
        result: Undone = undo(mine, record, resource_id)
        return result

    return guarded


def _in_own_session(find: Any) -> Any:
    def found(member: Member, record: ResourceRecord) -> str | None:
        result: str | None = find(own(member), record)
        return result

    return found


def _undo_product(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    return _gone_ok(
        member, "servicecatalog:DeleteProduct", lambda: member.client("servicecatalog").delete_product(Id=resource_id)
    )


def _undo_portfolio(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    if find_portfolio(member) == resource_id:  # mlplane's portfolio goes with whoever it is still shared with
        _disassociate_others(member, resource_id, keep=None)
    return _gone_ok(
        member,
        "servicecatalog:DeletePortfolio",
        lambda: member.client("servicecatalog").delete_portfolio(Id=resource_id),
    )


def _undo_template(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    return _gone_ok(
        member,
        "s3:DeleteObject",
        lambda: member.client("s3").delete_object(Bucket=bucket_name(member), Key=resource_id),
    )


def _undo_bucket(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    tags = _bucket_tags(member)
    if tags is None:
        return Undone("gone")
    if tags.get(MANAGED_TAG) != "true":
        raise Blocked(f"s3 bucket {resource_id} in {member.account_id} no longer carries mlplane's tags")
    return _gone_ok(member, "s3:DeleteBucket", lambda: member.client("s3").delete_bucket(Bucket=resource_id))


def _undo_role_policy(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    return _gone_ok(
        member,
        "iam:DeleteRolePolicy",
        lambda: member.client("iam").delete_role_policy(RoleName=product.LAUNCH_ROLE_NAME, PolicyName=resource_id),
    )


def _undo_role(member: Member, record: ResourceRecord, resource_id: str) -> Undone:
    if not _owned_role(member):
        return Undone("gone")
    return _gone_ok(member, "iam:DeleteRole", lambda: member.client("iam").delete_role(RoleName=resource_id))


def _find_none(member: Member, record: ResourceRecord) -> str | None:
    """An intent without an id: found again by the create's own finder on the next run; nothing to undo here."""
    return None


def _find_portfolio(member: Member, record: ResourceRecord) -> str | None:
    return _owned_portfolio(member, record.key)


def _find_product(member: Member, record: ResourceRecord) -> str | None:
    return _owned_product(member, record.key)


def _find_role(member: Member, record: ResourceRecord) -> str | None:
    return product.LAUNCH_ROLE_NAME if _owned_role(member) else None


def _find_bucket(member: Member, record: ResourceRecord) -> str | None:
    tags = _bucket_tags(member)
    return bucket_name(member) if tags is not None and tags.get(KEY_TAG) == record.key else None


HANDLERS = {
    kind: Handler(find=_in_own_session(handler.find), undo=_guarded(handler.undo))
    for kind, handler in {
        ROLE_TYPE: Handler(find=_find_role, undo=_undo_role),
        ROLE_POLICY_TYPE: Handler(find=_find_none, undo=_undo_role_policy),
        BUCKET_TYPE: Handler(find=_find_bucket, undo=_undo_bucket),
        OBJECT_TYPE: Handler(find=_find_none, undo=_undo_template),
        PORTFOLIO_TYPE: Handler(find=_find_portfolio, undo=_undo_portfolio),
        PRODUCT_TYPE: Handler(find=_find_product, undo=_undo_product),
        ASSOCIATION_TYPE: Handler(find=_find_none, undo=_undo_association),
        PRINCIPAL_TYPE: Handler(find=_find_none, undo=_undo_principal),
        CONSTRAINT_TYPE: Handler(find=_find_none, undo=_undo_constraint),
    }.items()
}
"""The undo handlers of the module's resources (`mlplane.rollback.registry`)."""
