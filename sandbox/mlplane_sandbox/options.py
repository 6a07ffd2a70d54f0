"""A sandbox's options, and the checks of them that need no sandbox: `mlplane local run` and the other local
commands refuse a bad command line here, before they import moto and load the sandbox (about a second)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from mlplane.config import Settings, settings_from
from mlplane.errors import ConfigError
from mlplane_sandbox import faults
from mlplane_sandbox.template import parameter_error, pascal
from mlplane_sandbox.world import REGION

DEFAULT_ROLE_PROPAGATION_SECONDS = 60.0  # PutKeyPolicy's "might not be immediately visible": a minute or two

CUSTOMER_ROLE = re.compile(r"(?=.{1,575}$)(?:[A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,64}", re.ASCII)
"""A role as [PATH/]NAME: IAM's name characters (ASCII), a path of at most 512 characters with its slashes."""


class UsageError(ValueError):
    """A bad command line or input file: exit status 2, one line on stderr."""


@dataclass
class Options:
    config: dict[str, Any] = field(default_factory=dict)
    absent: bool = False
    fails: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)
    redeliver: list[str] = field(default_factory=list)
    out_of_memory: list[str] = field(default_factory=list)  # --oom STATE[@N]: that invocation dies (Lambda.Unknown)
    vendor: str = "ok"
    quota: str = "approved"
    then_deprovision: bool = False
    # The network account's transit gateway (tgw mode): AutoAcceptSharedAttachments. `enable` is the world
    # seed 002 describes (vended accounts attach themselves); `disable`, AWS's default, leaves each
    # attachment pendingAcceptance until the network account's admin accepts it.
    tgw_auto_accept: str = "enable"
    consistency_delay: float = 0.0  # virtual seconds a new EC2/IAM id answers NotFound (fidelity.consistency)
    # Virtual seconds after credential-service-role is created during which KMS refuses a policy naming it.
    kms_propagation_seconds: float = DEFAULT_ROLE_PROPAGATION_SECONDS
    # The account prepared by hand per seed 000 before the first input (`--hand-built`, sandbox/handbuilt.py),
    # with these named differences from the seed.
    hand_built: bool = False
    hand_built_differences: list[str] = field(default_factory=list)
    # --customer-role [PATH/]NAME: roles the organization already has in each vended account (the analysts' SAML
    # role of M2, a custom Canvas domain's execution role), placed as the customer's before mlplane runs
    customer_roles: list[str] = field(default_factory=list)
    # RunResult.inventory_before: the account read before each input too (about 40 reads of its every resource
    # kind), for a test that compares the account after a rollback with the account before the run
    inventory_before: bool = False


def param_value(value: Any) -> str:
    """A --config value as a stack parameter's string (a list of strings comma-separated, else JSON)."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return ",".join(value)
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _config_keys(params: dict[str, Any]) -> list[str]:
    import re

    return [re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower() for name in params]


def _validate_hand_built(options: Options) -> None:
    from mlplane_sandbox.handbuilt import DIFFERENCES

    unknown = [d for d in options.hand_built_differences if d not in DIFFERENCES]
    if unknown:
        raise UsageError(f"--hand-built-difference {unknown[0]!r}: expected one of {', '.join(DIFFERENCES)}")
    if options.hand_built_differences and not options.hand_built:
        raise UsageError("--hand-built-difference needs --hand-built")


def _validate_customer_roles(options: Options) -> None:
    for role in options.customer_roles:
        if not CUSTOMER_ROLE.fullmatch(role):
            raise UsageError(f"--customer-role {role!r}: expected an IAM role as [PATH/]NAME (e.g. saml/DataAnalyst)")


def validate(options: Options, template: dict[str, Any]) -> tuple[Settings, faults.FaultPlan]:
    """The options a Sandbox would refuse, refused before one is made (UsageError, naming the option): the CLI
    checks a command line here before it imports moto and loads the sandbox (about a second). Returns the
    functions' settings and the fault plan."""
    params = template.get("Parameters", {})
    for key in options.config:
        if pascal(key) not in params:
            raise UsageError(f"--config: unknown key {key!r} (known: {', '.join(sorted(_config_keys(params)))})")
    # Stack parameters that are no function setting (e.g. RetirementOuId, used by a rule) are valid too.
    function_settings = {k: v for k, v in options.config.items() if k in Settings.model_fields}
    try:
        settings = settings_from(function_settings)
    except ConfigError as err:
        raise UsageError(f"--config: {err}") from err
    for key, value in options.config.items():  # what CloudFormation refuses of a stack parameter
        refused = parameter_error(params[pascal(key)], param_value(value))
        if refused is not None:
            raise UsageError(f"--config {key}: {refused}")
    if settings.member_region != REGION:
        raise UsageError(f"--config member_region: the sandbox builds member accounts in {REGION} only")
    _validate_hand_built(options)
    _validate_customer_roles(options)
    if options.tgw_auto_accept not in ("enable", "disable"):
        raise UsageError(f"--tgw-auto-accept {options.tgw_auto_accept!r}: expected enable or disable")
    try:
        fault_plan = faults.FaultPlan(
            fails=[faults.parse_fault(s) for s in options.fails],
            crashes=[faults.parse_fault(s, crash=True) for s in options.crashes],
        )
    except faults.FaultSpecError as err:
        raise UsageError(str(err)) from err
    for flag, value in (
        ("--consistency-delay", options.consistency_delay),
        ("--kms-propagation", options.kms_propagation_seconds),
    ):
        if not 0 <= value < float("inf"):
            raise UsageError(f"{flag} {value!r}: expected a number of seconds >= 0")
    return settings, fault_plan
