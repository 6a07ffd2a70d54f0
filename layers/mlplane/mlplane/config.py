"""Settings: the one place that reads the environment.

Every setting has an environment variable (set by template.yaml from a stack parameter) and a lower-case
key of the same name, which is what `mlplane local run --config` accepts. Library code takes values as
arguments; handlers call `get_settings()` inside the handler, never at import.
"""

import ipaddress
import json
import math
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from mlplane.errors import ConfigError
from mlplane.types import Cidr

# IAM user, role and policy names: ASCII letters, digits and +=,.@_- (AWS refuses anything else, e.g. "*" or "/").
_IAM_NAME = re.compile(r"[A-Za-z0-9+=,.@_-]+")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::\d{12}:role/(?:[\w+=,.@-]+/)*[\w+=,.@-]{1,64}")
_ALIAS = re.compile(r"alias/[A-Za-z0-9/_-]{1,250}")
_TGW_ID = re.compile(r"tgw-[0-9a-f]{8,17}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-[0-9]")
RETRY_DELAY_CAP_SECONDS = 900


def _iam_name(what: str, value: str, limit: int) -> str:
    if not _IAM_NAME.fullmatch(value) or len(value) > limit:
        raise ValueError(f"{what} {value!r} must be 1-{limit} of the characters A-Z a-z 0-9 + = , . @ _ -")
    return value


MAX_QUOTA_TARGETS = 50


class QuotaTarget(BaseModel):
    """A Service Quotas value the account must reach before it is READY (REQUIREMENTS Q1)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    service: str = "ec2"
    quota_code: str = "L-1216C47A"
    desired: float = Field(default=2500, gt=0)


DEFAULT_BLUEPRINT = "default"
"""The network blueprint of the global settings (egress_mode, vpc_cidr, ...): every OU no blueprint names."""
BLUEPRINT_TAG = "mlplane:network-blueprint"
"""The account tag (in Organizations) naming the account's blueprint; it wins over its OU's."""
_BLUEPRINT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_NETWORK_FIELDS = ("egress_mode", "vpc_cidr", "secondary_cidr", "transit_gateway_id", "cidr_pool")


class NetworkBlueprint(BaseModel):
    """A network shape chosen per OU (seed 002: OUs with and without corporate connectivity, REQUIREMENTS N6).

    Each field left out is the global setting of the same name; `ous` are the OUs whose accounts get it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    ous: tuple[str, ...] = ()
    egress_mode: Literal["nat", "tgw"] | None = None
    vpc_cidr: Cidr | None = None
    secondary_cidr: Cidr | None = None
    transit_gateway_id: str | None = None
    cidr_pool: Cidr | None = None

    @field_validator("transit_gateway_id")
    @classmethod
    def _tgw_id(cls, value: str | None) -> str | None:
        if value is not None and value.strip() and not _TGW_ID.fullmatch(value.strip()):
            raise ValueError(f"transit gateway id {value!r} is not of the form tgw-<hex>")
        return value

    def fields(self) -> dict[str, Any]:
        """The network settings this blueprint sets (the others are the global ones)."""
        return {f: getattr(self, f) for f in _NETWORK_FIELDS if getattr(self, f) is not None}


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """json.loads' object hook: a key given twice is an error, not the last one silently winning."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"{key!r} is given twice")
        out[key] = value
    return out


MODULE_TAG_PREFIX = "mlplane:module:"
"""An Organizations tag `mlplane:module:<name>` = true/false on the account overrides the module's enablement."""


class ModuleEnablement(BaseModel):
    """Where an optional module is enabled (`mlplane.modules`): everywhere, in some OUs, or by the account's tag.

    Order of precedence: the account's Organizations tag `mlplane:module:<name>` (true/false), then `ous` (the
    account's OU is listed), then `enabled`.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = False
    ous: tuple[str, ...] = ()


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_TAG_PART = re.compile(r"[\w .:/=+@-]{1,128}")


class CanvasSettings(ModuleEnablement):
    """M1, SageMaker Canvas large data processing (seed 001): the EMR Serverless execution role and, for a
    custom domain, mlplane's inline policy on the domain's SageMaker execution role."""

    # The role's name is AmazonSageMakerCanvasEMRSExecutionAccess-<role_suffix> (Canvas requires the prefix).
    role_suffix: str = "mlplane"
    # Buckets without the SageMaker tag the EMR Serverless role may read and write (seed 001 step 3, scoped).
    s3_buckets: tuple[str, ...] = ()
    # A custom domain: the name of its SageMaker execution role (must exist); empty: quick setup, no change.
    execution_role_name: str = ""
    # Custom domain in a VPC without internet access (seed 001 scenario 3): ec2:CreateNetworkInterface too.
    vpc_without_internet: bool = False
    # Optionally only in subnets and security groups carrying this tag (seed 001 scenario 3 step 3).
    eni_tag_key: str = ""
    eni_tag_value: str = ""

    @field_validator("role_suffix")
    @classmethod
    def _suffix(cls, value: str) -> str:
        # IAM role names: at most 64 characters; the prefix takes 41.
        return _iam_name("role name suffix", value, 64 - 41)

    @field_validator("execution_role_name")
    @classmethod
    def _execution_role(cls, value: str) -> str:
        return _iam_name("role name", value, 64) if value else value

    @field_validator("s3_buckets")
    @classmethod
    def _buckets(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for bucket in value:
            if not _BUCKET.fullmatch(bucket) or ".." in bucket:
                raise ValueError(f"bucket {bucket!r} is not an S3 bucket name")
        return value

    @field_validator("eni_tag_key", "eni_tag_value")
    @classmethod
    def _tag(cls, value: str) -> str:
        if value and not _TAG_PART.fullmatch(value):
            raise ValueError(f"tag {value!r} must be 1-128 letters, digits, spaces or _.:/=+-@")
        return value


NOTEBOOK_SIZES = ("ml.t3.medium", "ml.t3.large", "ml.t3.xlarge", "ml.m5.xlarge", "ml.m5.2xlarge", "ml.m5.4xlarge")
"""The sizes an analyst may choose by default (the first is the product's default)."""

_ROLE_PATH_NAME = re.compile(r"(?:[\x21-\x7e]{1,511}/)?[\w+=,.@-]{1,64}")
_ROLE_ARN = re.compile(r"arn:aws[a-z-]*:iam::(\d{12}):role/(?P<name>.+)")


@lru_cache(maxsize=1)
def notebook_instance_types() -> frozenset[str]:
    """What CreateNotebookInstance accepts as InstanceType: botocore's SageMaker model (the enum of the API)."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("sagemaker")
    shape: Any = model.operation_model("CreateNotebookInstance").input_shape
    return frozenset(shape.members["InstanceType"].enum)


class ServiceCatalogSettings(ModuleEnablement):
    """M2, self-service SageMaker instances through Service Catalog (seed 003)."""

    # The analysts' role the portfolio is shared with (the principal association): its name (with its path,
    # e.g. "saml/DataAnalyst") in each member account, or one account's role ARN. Required where enabled.
    analyst_role: str = ""
    # The sizes an analyst may launch (the template's AllowedValues and the launch role's condition).
    instance_types: tuple[str, ...] = NOTEBOOK_SIZES
    # Deprovision while an analyst's product is provisioned: refuse, naming them (the account stays as it
    # is), or terminate them first (through the launch role), then remove the catalog.
    on_deprovision: Literal["refuse", "terminate"] = "refuse"

    @field_validator("analyst_role")
    @classmethod
    def _analyst_role(cls, value: str) -> str:
        if value and not (_ROLE_ARN.fullmatch(value) or _ROLE_PATH_NAME.fullmatch(value.removeprefix("/"))):
            raise ValueError(f"analyst_role {value!r} is neither a role name (optionally with its path) nor a role ARN")
        return value

    @field_validator("instance_types")
    @classmethod
    def _sizes(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value:
            raise ValueError("instance_types must name at least one size")
        if len(set(value)) != len(value):
            raise ValueError("instance_types lists a size twice")
        if value != NOTEBOOK_SIZES:
            unknown = [size for size in value if size not in notebook_instance_types()]
            if unknown:
                raise ValueError(f"instance type {unknown[0]!r} is not a SageMaker notebook instance type")
        return value

    def role_path_name(self) -> str:
        """The analysts' role as path/name (what follows `role/` in its ARN)."""
        arn = _ROLE_ARN.fullmatch(self.analyst_role)
        return arn.group("name") if arn else self.analyst_role.removeprefix("/")

    def role_account(self) -> str | None:
        """The account of a configured ARN (None: a name, the same in every account)."""
        arn = _ROLE_ARN.fullmatch(self.analyst_role)
        return arn.group(1) if arn else None


class ModulesSettings(BaseModel):
    """One entry per optional module (`mlplane.modules.MODULES` has the same names)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    canvas: CanvasSettings = CanvasSettings()
    service_catalog: ServiceCatalogSettings = ServiceCatalogSettings()

    def enablement(self, name: str) -> ModuleEnablement:
        value: ModuleEnablement = getattr(self, name)
        return value


class Settings(BaseModel):
    """Validated configuration of every mlplane function."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    # The hub's own region (the Lambda runtime's AWS_REGION): ledger, topic, state machines, Organizations.
    aws_region: str = "eu-west-1"
    # Where member networks are built (stack parameter MemberRegion): named, never the Lambda's region by accident.
    member_region: str = "eu-west-1"
    ledger_table: str = "mlplane-ledger"
    topic_arn: str = ""
    provision_state_machine_arn: str = ""
    deprovision_state_machine_arn: str = ""
    member_role_name: str = "AWSControlTowerExecution"
    allowed_ous: tuple[str, ...] = ("Workloads",)
    egress_mode: Literal["nat", "tgw"] = "nat"
    vpc_cidr: Cidr = "10.10.0.0/21"
    secondary_cidr: Cidr = "10.64.0.0/18"
    transit_gateway_id: str = ""
    cidr_pool: Cidr = "10.128.0.0/10"
    # Per-OU network blueprints (N6): name -> blueprint; the global network settings above are DEFAULT_BLUEPRINT.
    network_blueprints: dict[str, NetworkBlueprint] = Field(default_factory=dict)
    sa_user_name: str = "aac_automation_sa"
    sa_policy_name: str = "AAC_MachineLearning_SA_Policy"
    vault_key_alias: str = "alias/aac-secure-vault"
    # The role allowed to read the service account's access key from Secrets Manager (I4); empty: mlplane
    # creates no access key and makes no Secrets Manager call. A role name in the member account, or its ARN.
    sa_access_key_secret_reader_role: str = ""
    # Further customer-managed policies (stack parameter SaExtraPolicies, comma-separated): each the stem of a file
    # mlplane/policies/AAC_MachineLearning*.json shipped in the layer, created, tagged and attached like I2.
    # Checked by ValidateAccount (mlplane.iam.policy.extra_policies); empty (default): none.
    sa_extra_policies: tuple[str, ...] = ()
    credential_role_name: str = "credential-service-role"
    eks_cluster_prefix: str = "aac-"
    # Bounded so that no step's output can approach Step Functions' 256 KB payload quota (each target adds
    # about 300 bytes to RequestQuotas' and WaitForQuotas' outputs; tests/workflow/test_provision.py measures).
    quota_targets: Annotated[tuple[QuotaTarget, ...], Field(max_length=MAX_QUOTA_TARGETS)] = (QuotaTarget(),)
    poll_interval_seconds: Annotated[int, Field(ge=1, le=86_400)] = 60
    # The AAC admin triggers the vendor by hand, then it builds for 35-40 minutes (REQUIREMENTS Q3): 7 days.
    vendor_timeout_seconds: Annotated[int, Field(ge=1, le=31_536_000)] = 604_800
    # A 2,500-vCPU request on a new account is a support case that takes days (REQUIREMENTS Q3): 5 days.
    quota_timeout_seconds: Annotated[int, Field(ge=1, le=31_536_000)] = 432_000
    # How long PatchKmsPolicy keeps retrying while KMS does not yet accept the vendor's new role as a
    # principal (IAM eventual consistency: usually a minute or two; terraform-provider-aws waits 2 minutes).
    kms_propagation_timeout_seconds: Annotated[int, Field(ge=1, le=86_400)] = 900
    # How long a rollback keeps walking again while an AWS outage (throttling, 5xx) leaves something (C8).
    rollback_retry_seconds: Annotated[int, Field(ge=0, le=604_800)] = 21_600
    # How many READY accounts the fleet reconcile converges at once (ReconcileFleet's Map, D2).
    reconcile_concurrency: Annotated[int, Field(ge=1, le=40)] = 5
    # The optional modules and where each is enabled (env MODULES: JSON, like QUOTA_TARGETS).
    modules: ModulesSettings = ModulesSettings()

    @field_validator("sa_policy_name")
    @classmethod
    def _policy_prefix(cls, value: str) -> str:
        # Seed 000 step 1c: the vendor only accepts policies whose name starts with AAC_MachineLearning.
        if not value.startswith("AAC_MachineLearning"):
            raise ValueError(f"policy name {value!r} must start with 'AAC_MachineLearning'")
        return _iam_name("policy name", value, 128)

    @field_validator("member_role_name", "credential_role_name")
    @classmethod
    def _role_name(cls, value: str) -> str:
        return _iam_name("role name", value, 64)

    @field_validator("sa_user_name")
    @classmethod
    def _user_name(cls, value: str) -> str:
        return _iam_name("user name", value, 64)

    @field_validator("sa_access_key_secret_reader_role")
    @classmethod
    def _reader_role(cls, value: str) -> str:
        if not value or _ROLE_ARN.fullmatch(value):
            return value
        return _iam_name("role name", value, 64)

    @field_validator("vault_key_alias")
    @classmethod
    def _alias_prefix(cls, value: str) -> str:
        if not value.startswith("alias/"):
            raise ValueError(f"key alias {value!r} must start with 'alias/'")
        # KMS: alias/ then [A-Za-z0-9/_-], at most 256 characters; alias/aws/ is reserved for AWS.
        if not _ALIAS.fullmatch(value) or value.startswith("alias/aws/"):
            raise ValueError(f"key alias {value!r} is not a valid KMS alias name")
        return value

    @field_validator("transit_gateway_id")
    @classmethod
    def _tgw_id(cls, value: str) -> str:
        if value.strip() and not _TGW_ID.fullmatch(value.strip()):
            raise ValueError(f"transit gateway id {value!r} is not of the form tgw-<hex>")
        return value

    @field_validator("network_blueprints", mode="before")
    @classmethod
    def _parse_blueprints(cls, value: Any) -> Any:
        if isinstance(value, str):  # the stack parameter NetworkBlueprints: a JSON object
            return json.loads(value, object_pairs_hook=_unique_keys) if value.strip() else {}
        return value

    @field_validator("network_blueprints")
    @classmethod
    def _check_blueprints(cls, value: dict[str, NetworkBlueprint], info: ValidationInfo) -> dict[str, NetworkBlueprint]:
        """Blueprint names, the OUs they name (each once, each allowed) and their pools (N6), before any run."""
        allowed = info.data.get("allowed_ous", ())
        seen: dict[str, str] = {}
        for name, blueprint in value.items():
            if not _BLUEPRINT_NAME.fullmatch(name) or name == DEFAULT_BLUEPRINT:
                raise ValueError(
                    f"blueprint name {name!r} must be 1-64 of A-Z a-z 0-9 _ . - and not {DEFAULT_BLUEPRINT!r}"
                )
            for ou in blueprint.ous:
                if ou in seen:
                    raise ValueError(f"OU {ou!r} is mapped to blueprints {seen[ou]!r} and {name!r}")
                if ou not in allowed:
                    raise ValueError(f"blueprint {name!r} names OU {ou!r}, which is not in allowed_ous")
                seen[ou] = name
        base = {f: info.data[f] for f in _NETWORK_FIELDS if f in info.data}
        if len(base) == len(_NETWORK_FIELDS):  # else a global network setting failed: that error is reported
            networks = {DEFAULT_BLUEPRINT: base} | {name: base | b.fields() for name, b in value.items()}
            _check_pools(networks)
        return value

    def blueprint_names(self) -> tuple[str, ...]:
        return (DEFAULT_BLUEPRINT, *self.network_blueprints)

    def network_for(self, name: str) -> "Settings":
        """These settings with blueprint `name`'s network fields (DEFAULT_BLUEPRINT: these settings)."""
        if name == DEFAULT_BLUEPRINT:
            return self
        blueprint = self.network_blueprints.get(name)
        if blueprint is None:
            known = ", ".join(self.blueprint_names())
            raise ConfigError(f"network blueprint {name!r} is not configured (network_blueprints: {known})")
        return self.model_copy(update=blueprint.fields())

    def blueprint_of_ou(self, ou: str) -> str:
        for name, blueprint in self.network_blueprints.items():
            if ou in blueprint.ous:
                return name
        return DEFAULT_BLUEPRINT

    @field_validator("aws_region", "member_region")
    @classmethod
    def _region_name(cls, value: str) -> str:
        if not _REGION.fullmatch(value):
            raise ValueError(f"region {value!r} is not an AWS region name such as eu-west-1")
        return value

    @field_validator("allowed_ous", "sa_extra_policies", mode="before")
    @classmethod
    def _split_ous(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("quota_targets", mode="before")
    @classmethod
    def _parse_targets(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else ()
        return value

    @field_validator("modules", mode="before")
    @classmethod
    def _parse_modules(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("quota_targets")
    @classmethod
    def _distinct_targets(cls, value: tuple[QuotaTarget, ...]) -> tuple[QuotaTarget, ...]:
        seen: set[tuple[str, str]] = set()
        for target in value:
            key = (target.service, target.quota_code)
            if key in seen:  # two targets for one quota: which desired value wins would be an accident
                raise ValueError(f"quota {target.service}/{target.quota_code} is listed twice")
            seen.add(key)
        return value

    def max_polls(self, timeout_seconds: int) -> int:
        """How many poll intervals fit in a timeout: wait loops count polls, not wall-clock time."""
        return max(1, math.ceil(timeout_seconds / self.poll_interval_seconds))

    def timed_out(self, attempt: int, timeout_seconds: int) -> bool:
        """Poll number `attempt` (0-based) comes after `attempt` waits of one interval: the loop gives up
        once that waiting reaches the timeout, not one interval before it."""
        return attempt >= self.max_polls(timeout_seconds)

    def retry_delay(self, attempt: int) -> int:
        """Seconds before retry number `attempt` (0-based) of an outage: the poll interval, doubling up to
        15 minutes (or the poll interval, if longer), so hours of retries cost tens of polls."""
        cap = max(self.poll_interval_seconds, RETRY_DELAY_CAP_SECONDS)
        return int(min(self.poll_interval_seconds * 2 ** min(attempt, 32), cap))

    @staticmethod
    def env_name(key: str) -> str:
        return key.upper()

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings."""
        env: dict[str, str] = {}
        for key, value in self.model_dump(mode="json").items():
            if key in ("allowed_ous", "sa_extra_policies"):
                env[self.env_name(key)] = ",".join(value)
            elif isinstance(value, (list, dict)):
                env[self.env_name(key)] = json.dumps(value, separators=(",", ":"))
            else:
                env[self.env_name(key)] = str(value)
        return env


def _check_pools(networks: Mapping[str, Mapping[str, Any]]) -> None:
    """Accounts on one transit gateway route to each other: the pools of the tgw blueprints sharing a gateway
    must be disjoint (or one pool with one slot layout), so that no two connected accounts overlap."""
    tgw = [(name, n) for name, n in networks.items() if n["egress_mode"] == "tgw"]
    for i, (first, a) in enumerate(tgw):
        for second, b in tgw[i + 1 :]:
            if str(a["transit_gateway_id"]).strip() != str(b["transit_gateway_id"]).strip():
                continue
            if a["cidr_pool"] == b["cidr_pool"]:
                if _prefix_pair(a) != _prefix_pair(b):
                    raise ValueError(
                        f"blueprints {first!r} and {second!r} share pool {a['cidr_pool']} with different VPC CIDR sizes"
                    )
            elif ipaddress.IPv4Network(a["cidr_pool"]).overlaps(ipaddress.IPv4Network(b["cidr_pool"])):
                gateway = str(a["transit_gateway_id"]).strip() or "(unset)"
                raise ValueError(
                    f"blueprints {first!r} and {second!r} share transit gateway {gateway} "
                    f"with overlapping pools {a['cidr_pool']} and {b['cidr_pool']}"
                )


def _prefix_pair(network: Mapping[str, Any]) -> tuple[int, int]:
    return (
        ipaddress.IPv4Network(network["vpc_cidr"]).prefixlen,
        ipaddress.IPv4Network(network["secondary_cidr"]).prefixlen,
    )


def settings_from(values: dict[str, Any]) -> Settings:
    """Build settings from a mapping, with one-line errors naming the bad key."""
    unknown = sorted(set(values) - set(Settings.model_fields))
    if unknown:
        raise ConfigError(f"unknown setting {unknown[0]!r}")
    try:
        return Settings.model_validate(values)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "settings"
        raise ConfigError(f"invalid setting {where}: {first['msg']}") from err


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings from the environment template.yaml gives a function (cached; `reset_settings` clears)."""
    return settings_from_env(os.environ)


def settings_from_env(env: Mapping[str, str]) -> Settings:
    """Settings from a function's environment: this process's, or a deployed function's (`mlplane plan`)."""
    return settings_from(
        {key: env[Settings.env_name(key)] for key in Settings.model_fields if Settings.env_name(key) in env}
    )


def reset_settings() -> None:
    get_settings.cache_clear()
