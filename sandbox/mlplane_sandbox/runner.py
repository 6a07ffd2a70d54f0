"""The sandbox: deploy template.yaml into moto and run inputs through it to the end.

`Sandbox` is a context manager: entering starts moto (with its ASL interpreter), the interceptor and a fresh
clock, builds the world and deploys the stack as template.yaml describes it; `run(raw)` makes the world
the input describes, sends it (EventBridge for an event, StartExecution for a manual start) and waits for
the executions to end.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

from moto import mock_aws

from mlplane import aws
from mlplane.accounts.audit import audit as audit_account
from mlplane.accounts.events import ControlTowerEvent, ManualStart, asks_deprovision, parse_start
from mlplane.accounts.preview import PLAN_EXECUTION, preview
from mlplane.accounts.retire import OrganizationsEvent, parse_retire_shape, start_deprovisioning
from mlplane.accounts.start import start_provisioning
from mlplane.config import Settings, get_settings, reset_settings
from mlplane.errors import ConfigError, InputRejected
from mlplane.ledger import Ledger, Status
from mlplane.member import member_for
from mlplane.steps import cause_message
from mlplane_sandbox import asl_cache, hotpaths, interceptor, inventory, lambdas, recording, rules
from mlplane_sandbox import clock as clock_module
from mlplane_sandbox import vendor as vendor_module
from mlplane_sandbox.emulators import cloudformation, lambda_functions, service_catalog, service_quotas
from mlplane_sandbox.fidelity import consistency as fidelity_consistency
from mlplane_sandbox.fidelity import iam_kms as fidelity_iam_kms
from mlplane_sandbox.fidelity import network as fidelity_network
from mlplane_sandbox.fidelity import organizations as fidelity_organizations
from mlplane_sandbox.options import Options, UsageError, param_value, validate
from mlplane_sandbox.template import (
    Resolver,
    load_template,
    parameter_values,
    pascal,
    project_root,
)
from mlplane_sandbox.world import (
    HUB_ACCOUNT,
    REGION,
    MemberRole,
    World,
    as_account,
    sandbox_client,
)

STACK = "mlplane"
_CLI = "cli"
_OPERATOR = f"arn:aws:sts::{HUB_ACCOUNT}:assumed-role/PlatformOperator/mlplane-cli"


HistoryReader = Callable[[], list[dict[str, Any]]]


@dataclass
class RunResult:
    outcome: str
    account_id: str | None
    executions: list[dict[str, str]]
    leftovers: list[dict[str, str]]
    api_calls: list[dict[str, Any]]
    inventory: dict[str, Any]
    error: dict[str, str] | None
    deferred: list[dict[str, str]] = field(default_factory=list)
    read_history: HistoryReader = field(default=list, repr=False, compare=False)
    inventory_before: dict[str, Any] = field(default_factory=dict)

    @functools.cached_property
    def history(self) -> list[dict[str, Any]]:
        """The executions' history events, as GetExecutionHistory gives them, read when first asked for."""
        return self.read_history()

    def as_json(self) -> dict[str, Any]:
        return {
            "outcome": self.outcome,
            "account_id": self.account_id,
            "executions": self.executions,
            "leftovers": self.leftovers,
            "api_calls": self.api_calls,
            "inventory": self.inventory,
            "error": self.error,
            "deferred": self.deferred,
        }


@dataclass
class Rule:
    """An EventBridge rule on one event bus, with a Lambda target or another event bus as its target."""

    name: str
    pattern: Any
    function: str = ""  # the Lambda target's logical id (template.yaml's EventBridgeRule events)
    state_machine: str = ""  # a state machine target's ARN (its EventBridgeRule events): StartExecution
    bus: str = ""  # the event bus the rule is on
    target_bus: str = ""  # an event bus target (forwarder.yaml)
    may_put_on: tuple[str, ...] = ()  # event buses the target's role may events:PutEvents on


# Organizations' CloudTrail events reach EventBridge here only; forwarder.yaml is deployed here.
ORGANIZATIONS_EVENTS_REGION = "us-east-1"
FORWARDER = "forwarder.yaml"
MEMBER_ROLE_TEMPLATE = "member-role.yaml"


def event_bus_arn(region: str, account_id: str) -> str:
    return f"arn:aws:events:{region}:{account_id}:event-bus/default"


class Sandbox:
    def __init__(self, options: Options | None = None, *, root: Path | None = None) -> None:
        self.options = options or Options()
        self.root = root or project_root()
        self.hand_built: dict[str, dict[str, Any]] = {}  # account -> the ids made by hand (handbuilt.build)
        self.template = load_template(self.root / "template.yaml")
        self.settings, self.fault_plan = validate(self.options, self.template)
        self.world = World()
        self.functions: dict[str, lambdas.Function] = {}
        self.rules: list[Rule] = []
        self.state_machines: dict[str, str] = {}
        self.outputs: dict[str, str] = {}  # template.yaml's Outputs, as the deployed stack has them
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True}})
        self._env = mock.patch.dict(os.environ, {})
        self.dispatcher: lambdas.Dispatcher | None = None
        self.on_progress: Any = None  # callback(execution ARNs) while executions run (the demo's live view)
        self.last_executions: list[dict[str, Any]] = []
        self.metrics = lambdas.MetricsOutput()  # the handlers' EMF documents (Powertools), off the CLI's output

    # -- set-up -----------------------------------------------------------------------------------------
    def __enter__(self) -> Sandbox:
        self._env.start()
        os.environ.update(
            {
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_SESSION_TOKEN": "testing",
                "AWS_DEFAULT_REGION": REGION,
                "AWS_REGION": REGION,
                "POWERTOOLS_TRACE_DISABLED": "true",
                "POWERTOOLS_METRICS_DISABLED": "true",
                "POWERTOOLS_LOG_LEVEL": "WARNING",
                "POWERTOOLS_DEV": "false",
                # moto loads ~1,000 AMIs into every EC2 backend it makes (a second per run); mlplane uses none.
                "MOTO_EC2_LOAD_DEFAULT_AMIS": "false",
            }
        )
        os.environ.pop("MOTO_ACCOUNT_ID", None)
        logging.getLogger("moto").setLevel(logging.CRITICAL)  # the interpreter logs every failed state
        warnings.filterwarnings("ignore", message="No application metrics to publish")
        from mlplane.observability import logger

        logger.setLevel(os.environ.get("MLPLANE_SANDBOX_LOG_LEVEL", "WARNING"))
        self._mock.start()
        self.metrics.start()
        clock_module.reset()
        recording.reset()
        _notifications.clear()
        aws.reset()
        reset_settings()
        interceptor.install()
        asl_cache.install()
        hotpaths.install()
        _reset_scenarios(self.options.vendor, self.options.quota)
        fidelity_iam_kms.reset()
        fidelity_iam_kms.configure(  # accounts are placed with their execution role
            assume_role_check=True, role_propagation_seconds=self.options.kms_propagation_seconds
        )
        fidelity_network.reset()  # accounts are placed with their execution role
        fidelity_organizations.reset()
        fidelity_consistency.reset()
        fidelity_consistency.configure(delay_seconds=self.options.consistency_delay)
        self.deploy()
        return self

    def __exit__(self, *exc: object) -> None:
        interceptor.configure()  # no fault plan leaks into whatever runs next in this process
        fidelity_iam_kms.reset()
        fidelity_consistency.reset()
        self.metrics.stop()
        self._mock.stop()
        self._env.stop()
        aws.reset()
        reset_settings()

    def _transit_gateways(self) -> dict[str, str]:
        """The stack parameters naming the network account's gateways where tgw mode leaves them to the sandbox:
        the global settings' (TransitGatewayId) and each tgw blueprint's without one, its own segment's (N6)."""
        auto_accept = self.options.tgw_auto_accept == "enable"
        params: dict[str, str] = {}
        if self.settings.egress_mode == "tgw" and not self.settings.transit_gateway_id:
            params["TransitGatewayId"] = self.world.shared_transit_gateway(auto_accept=auto_accept)
        blueprints = {
            n: b.model_dump(mode="json", exclude_none=True) for n, b in self.settings.network_blueprints.items()
        }
        for name, blueprint in blueprints.items():
            network = self.settings.network_for(name)
            if network.egress_mode == "tgw" and not network.transit_gateway_id:
                blueprint["transit_gateway_id"] = self.world.shared_transit_gateway(
                    auto_accept=auto_accept, segment=name
                )
        if blueprints:
            params["NetworkBlueprints"] = param_value(blueprints)
        return params

    def deploy(self) -> None:
        self.world.build()
        overrides = {pascal(k): param_value(v) for k, v in self.options.config.items()}
        overrides |= self._transit_gateways()
        # The hub stack runs in the sandbox's region, the Control Tower home region; so do its members.
        overrides.setdefault("MemberRegion", REGION)
        params = parameter_values(self.template, overrides)
        resources: dict[str, Any] = self.template["Resources"]
        refs: dict[str, Any] = {}
        attrs: dict[str, Any] = {}
        for logical_id, resource in resources.items():
            kind = resource["Type"]
            if kind == "AWS::Serverless::Function":
                name = f"{STACK}-{logical_id}"
                refs[logical_id] = name
                attrs[f"{logical_id}.Arn"] = f"arn:aws:lambda:{REGION}:{HUB_ACCOUNT}:function:{name}"
        self.stack_uuid = str(uuid.uuid4())
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": HUB_ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": STACK,
            "AWS::StackId": cloudformation.stack_arn(STACK, HUB_ACCOUNT, REGION, self.stack_uuid),
        }
        resolver = Resolver(
            parameters=params, refs=refs, attrs=attrs, pseudo=pseudo, conditions=self.template.get("Conditions")
        )
        with as_account(HUB_ACCOUNT):
            for logical_id, resource in resources.items():
                props = resource.get("Properties", {})
                if resource["Type"] == "AWS::DynamoDB::Table":
                    name = f"{STACK}-{logical_id}"
                    table = sandbox_client("dynamodb").create_table(
                        TableName=name,
                        AttributeDefinitions=props["AttributeDefinitions"],
                        KeySchema=props["KeySchema"],
                        BillingMode=props["BillingMode"],
                    )
                    refs[logical_id] = name
                    attrs[f"{logical_id}.Arn"] = table["TableDescription"]["TableArn"]
                elif resource["Type"] == "AWS::SNS::Topic":
                    # No TopicName: CloudFormation names it <stack>-<logical id>-<suffix>
                    topic = str(resolver.resolve(props.get("TopicName", f"{STACK}-{logical_id}")))
                    arn = sandbox_client("sns").create_topic(Name=topic)["TopicArn"]
                    refs[logical_id] = arn
                    attrs[f"{logical_id}.TopicName"] = topic
                elif resource["Type"] == "AWS::Serverless::LayerVersion":
                    layer = resolver.resolve(props["LayerName"])
                    refs[logical_id] = f"arn:aws:lambda:{REGION}:{HUB_ACCOUNT}:layer:{layer}:1"
            for logical_id, resource in resources.items():
                if resource["Type"] == "AWS::Serverless::StateMachine":
                    refs[logical_id] = self._create_state_machine(logical_id, resource["Properties"], resolver)
            refs |= _create_managed_policies(resources, resolver)
        self._create_functions(resources, resolver)
        # The stack's outputs, answered by DescribeStacks (an operator's client finds the rest from them).
        self.outputs = {k: str(resolver.resolve(v["Value"])) for k, v in self.template.get("Outputs", {}).items()}
        cloudformation.reset()
        service_catalog.reset()
        deployed = {k: (str(refs[k]), r["Type"]) for k, r in resources.items() if k in refs}
        cloudformation.publish(STACK, HUB_ACCOUNT, REGION, self.outputs, deployed, stack_uuid=self.stack_uuid)
        lambda_functions.publish(self.functions.values())
        self._deploy_forwarder()
        self.world.stackset_role = self._member_role()
        reader = self.settings.sa_access_key_secret_reader_role
        # the reader role the operator named exists in each account (a name, or an ARN's last part)
        readers = (reader.rsplit("/", maxsplit=1)[-1],) if reader else ()
        self.world.customer_roles = readers + tuple(self.options.customer_roles)
        self.dispatcher = lambdas.Dispatcher(
            self.functions,
            self._state_targets("--redeliver", self.options.redeliver),
            self._state_targets("--oom", self.options.out_of_memory),
        )
        lambdas.install(self.dispatcher)
        interceptor.configure(
            plan=self.fault_plan,
            hub_account=HUB_ACCOUNT,
            principals={f.logical_id: f.role_arn for f in self.functions.values()} | {_CLI: _OPERATOR},
        )

    def _create_state_machine(self, logical_id: str, props: dict[str, Any], resolver: Resolver) -> str:
        text = (self.root / props["DefinitionUri"]).read_text(encoding="utf-8")
        subs = {k: resolver.resolve(v) for k, v in props.get("DefinitionSubstitutions", {}).items()}
        for key, value in subs.items():
            text = text.replace("${" + key + "}", str(value))
        name = str(resolver.resolve(props["Name"])) if "Name" in props else f"{STACK}-{logical_id}"
        arn: str = sandbox_client("stepfunctions").create_state_machine(
            name=name,
            definition=text,
            roleArn=f"arn:aws:iam::{HUB_ACCOUNT}:role/{name}Role",
            type=props.get("Type", "STANDARD"),
        )["stateMachineArn"]
        short = logical_id.removesuffix("StateMachine").lower()
        self.state_machines[short] = arn
        for event_name, event in props.get("Events", {}).items():
            if event["Type"] == "EventBridgeRule":
                pattern = resolver.resolve(event["Properties"]["Pattern"])
                bus = event_bus_arn(REGION, HUB_ACCOUNT)
                self.rules.append(Rule(f"{logical_id}{event_name}", pattern, state_machine=arn, bus=bus))
        self.definitions = getattr(self, "definitions", {}) | {short: json.loads(text)}
        return arn

    def _create_functions(self, resources: dict[str, Any], resolver: Resolver) -> None:
        globals_fn = self.template.get("Globals", {}).get("Function", {})
        global_env = resolver.resolve(globals_fn.get("Environment", {}).get("Variables", {}))
        merged: dict[str, str] = {}
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::Serverless::Function":
                continue
            props = resource["Properties"]
            env = {**global_env, **resolver.resolve(props.get("Environment", {}).get("Variables", {}))}
            env = {k: str(v) for k, v in env.items()}
            name = resolver.refs[logical_id]
            self.functions[logical_id] = lambdas.Function(
                logical_id=logical_id,
                name=name,
                arn=resolver.attrs[f"{logical_id}.Arn"],
                code_dir=self.root / props["CodeUri"],
                handler=props.get("Handler", globals_fn.get("Handler")),
                environment=env,
                role_arn=f"arn:aws:sts::{HUB_ACCOUNT}:assumed-role/{name}-role/{name}",
                timeout=int(props.get("Timeout", globals_fn.get("Timeout", 900))),
            )
            for event_name, event in props.get("Events", {}).items():
                if event["Type"] == "EventBridgeRule":
                    self.rules.append(
                        Rule(
                            f"{logical_id}{event_name}",
                            resolver.resolve(event["Properties"]["Pattern"]),
                            function=logical_id,
                            bus=event_bus_arn(REGION, HUB_ACCOUNT),
                        )
                    )
            for key, value in env.items():
                # Lambda gives each function its own environment; in one process they must agree.
                if key in merged and merged[key] != value:
                    raise ConfigError(f"template: functions disagree on {key}; the sandbox needs one value")
                merged[key] = value
        merged.pop("LOG_LEVEL", None)
        os.environ.update(merged)
        os.environ["LOG_LEVEL"] = "WARNING"
        reset_settings()

    def _deploy_forwarder(self) -> None:
        """forwarder.yaml as deployed in the management account's us-east-1 for a hub in the sandbox's region:
        its rules, their event bus targets and what the target role may put events on."""
        path = self.root / FORWARDER
        if not path.is_file():
            return
        template = load_template(path)
        pseudo = {
            "AWS::Region": ORGANIZATIONS_EVENTS_REGION,
            "AWS::AccountId": HUB_ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": f"{STACK}-forwarder",
        }
        params = parameter_values(template, {"HubRegion": REGION})
        resources: dict[str, Any] = template["Resources"]
        roles = {
            k: f"arn:aws:iam::{HUB_ACCOUNT}:role/{k}" for k, v in resources.items() if v["Type"] == "AWS::IAM::Role"
        }
        resolver = Resolver(
            parameters=params,
            refs={},
            attrs={f"{k}.Arn": arn for k, arn in roles.items()},
            pseudo=pseudo,
            conditions=template.get("Conditions", {}),
        )
        for logical_id, resource in resources.items():
            if resource["Type"] != "AWS::Events::Rule":
                continue
            if "Condition" in resource and not resolver.condition(resource["Condition"]):
                continue
            props = resource["Properties"]
            for target in props["Targets"]:
                role_id = next(k for k, arn in roles.items() if arn == resolver.resolve(target["RoleArn"]))
                self.rules.append(
                    Rule(
                        f"forwarder.{logical_id}",
                        resolver.resolve(props["EventPattern"]),
                        bus=event_bus_arn(ORGANIZATIONS_EVENTS_REGION, HUB_ACCOUNT),
                        target_bus=str(resolver.resolve(target["Arn"])),
                        may_put_on=tuple(_put_events_resources(resolver.resolve(resources[role_id]["Properties"]))),
                    )
                )

    def _member_role(self) -> MemberRole | None:
        """member-role.yaml as a service-managed StackSet deploys it for this hub (a delegated hub's role)."""
        path = self.root / MEMBER_ROLE_TEMPLATE
        if not path.is_file():
            return None
        template = load_template(path)
        params = parameter_values(template, {"HubAccountId": HUB_ACCOUNT, "HubStackName": STACK})
        resolver = Resolver(
            parameters=params, refs={}, attrs={}, pseudo={"AWS::Partition": "aws", "AWS::Region": REGION}
        )
        props = resolver.resolve(template["Resources"]["MemberRole"]["Properties"])
        return MemberRole(
            name=str(props["RoleName"]),
            trust_policy=json.dumps(props["AssumeRolePolicyDocument"]),
            policies={p["PolicyName"]: json.dumps(p["PolicyDocument"]) for p in props.get("Policies", [])},
        )

    def _state_targets(self, flag: str, specs: list[str]) -> dict[str, set[int]]:
        """`STATE[@N]` specs (--redeliver, --oom) as {function logical id: which counts}."""
        states = self.task_states()
        targets: dict[str, set[int]] = {}
        for spec in specs:
            state, _, nth = spec.partition("@")
            if state not in states:
                raise UsageError(f"{flag} {spec!r}: {state!r} is not a Task state of the workflows")
            if nth and not (nth.isdigit() and int(nth) >= 1):
                raise UsageError(f"{flag} {spec!r}: expected STATE[@N]")
            targets.setdefault(f"{state}Function", set()).add(int(nth or 1))
        return targets

    def check_faults_fired(self) -> None:
        """A fault, crash or redelivery that never happened proves nothing: a usage error, named."""
        unfired = self.fault_plan.unfired() + (self.dispatcher.unfired() if self.dispatcher else [])
        if unfired:
            raise UsageError(f"never fired during the run: {', '.join(unfired)}")

    def task_states(self) -> set[str]:
        names: set[str] = set()

        def walk(states: dict[str, Any]) -> None:
            for name, state in states.items():
                if state["Type"] == "Task":
                    names.add(name)
                for branch in state.get("Branches", []):
                    walk(branch["States"])

        for definition in getattr(self, "definitions", {}).values():
            walk(definition["States"])
        return names

    # -- running ------------------------------------------------------------------------------------------
    def run(self, raw: Any) -> RunResult:
        """Make the world the input describes, send it, wait for the executions; then deprovision if asked."""
        if _is_retirement(raw):
            return self._retire(raw)
        if asks_deprovision(raw):
            return self._deprovision_by_hand(raw)
        start = _parse_input(raw)
        account_id = start.account_id
        if not self.options.absent:
            ou = (
                start.status.organizationalUnit.organizationalUnitName
                if isinstance(start, ControlTowerEvent)
                else self.world.accounts.get(account_id, "Workloads")  # a manual start moves no account
            )
            self.world.place_account(account_id, ou, role_name=self.settings.member_role_name)
            if self.options.hand_built and account_id not in self.hand_built:
                from mlplane_sandbox import handbuilt

                self.hand_built[account_id] = handbuilt.build(
                    account_id, self.settings_from_env(), self.options.hand_built_differences
                )
        before = (
            inventory.read(account_id) if self.options.inventory_before and account_id in self.world.accounts else {}
        )
        mark = recording.mark()
        known = self._execution_arns()
        if isinstance(start, ControlTowerEvent):
            self._put_event(raw)
        else:
            with recording.actor(_CLI):
                start_provisioning(raw, self.settings, self.state_machines["provision"])
        executions = self._wait_new(known)
        result = self._result(account_id, executions, mark)
        # A held account too: the simulated AAC admin removes the data plane first (deprovision does), then it goes.
        if self.options.then_deprovision and result.outcome in ("READY", "ROLLBACK_HELD"):
            result = self.deprovision(account_id, mark=mark, before=executions)
        result.inventory_before = before
        return result

    def plan(self, raw: Any) -> dict[str, Any]:
        """`mlplane plan --local`: the account the input names, planned with read-only calls."""
        account_id = raw if isinstance(raw, str) else _parse_input(raw).account_id
        if not self.options.absent and account_id not in self.world.accounts:  # a run may have placed it
            self.world.place_account(account_id, "Workloads", role_name=self.settings.member_role_name)
        mark = recording.mark()
        settings = self.settings_from_env()
        with recording.actor(_CLI):
            document = preview(
                raw, settings, self.ledger(), lambda account: member_for(account, PLAN_EXECUTION, "Plan", settings)
            )
        document["api_calls"] = [c.as_json() for c in recording.since(mark)]
        return document

    def audit(self, account_id: str) -> dict[str, Any]:
        """`mlplane audit --local`: the account's findings, from read-only calls."""
        settings = self.settings_from_env()
        mark = recording.mark()
        with recording.actor(_CLI):
            document = audit_account(member_for(account_id, "mlplane-audit", "Audit", settings), settings)
        document["api_calls"] = [c.as_json() for c in recording.since(mark)]
        return document

    def reconcile_fleet(self) -> dict[str, Any]:
        """`mlplane reconcile --all`: the fleet reconcile workflow, to its end; its DescribeExecution."""
        known = self._execution_arns()
        with recording.actor(_CLI), as_account(HUB_ACCOUNT):
            sandbox_client("stepfunctions").start_execution(
                stateMachineArn=self.state_machines["reconcilefleet"], name="fleet-sandbox", input="{}"
            )
        (ended,) = self._wait_new(known)
        return ended

    def stack_updated(self, status: str = "UPDATE_COMPLETE") -> list[dict[str, Any]]:
        """CloudFormation's "CloudFormation Stack Status Change" event for this stack (the CloudFormation user
        guide's events detail reference) on the hub's default bus; the executions it started, to their end."""
        known = self._execution_arns()
        stack_id = cloudformation.stack_arn(STACK, HUB_ACCOUNT, REGION, self.stack_uuid)
        self._put_event(
            {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": "CloudFormation Stack Status Change",
                "source": "aws.cloudformation",
                "account": HUB_ACCOUNT,
                "time": "2026-12-02T07:00:00Z",
                "region": REGION,
                "resources": [stack_id],
                "detail": {
                    "stack-id": stack_id,
                    "status-details": {"status": status, "status-reason": ""},
                },
            }
        )
        return self._wait_new(known)

    def scheduled_audit(self) -> dict[str, Any]:
        """What EventBridge Scheduler does on `AuditSchedule`: invoke AuditFleetFunction (its answer, as Lambda's)."""
        assert self.dispatcher is not None
        event = {"source": "aws.scheduler", "detail-type": "Scheduled Event", "detail": {}}
        ok, result = self.dispatcher.invoke(self.functions["AuditFleetFunction"], event)
        if not ok:
            raise InputRejected(f"AuditFleetFunction failed: {result.get('errorMessage')}")
        answer: dict[str, Any] = result
        return answer

    def settings_from_env(self) -> Settings:
        """The settings the deployed functions see (template environment plus --config)."""
        return get_settings()

    def deprovision(
        self,
        account_id: str,
        *,
        vendor_first: bool = True,
        mark: int | None = None,
        before: list[dict[str, Any]] | None = None,
    ) -> RunResult:
        """Retire the account by hand, as an operator would after the AAC admin removed the data plane."""
        if vendor_first:
            vendor_module.teardown(account_id)
        mark = recording.mark() if mark is None else mark
        known = self._execution_arns()
        with recording.actor(_CLI):
            start_deprovisioning(
                {"action": "deprovision", "account_id": account_id, "requested_by": "mlplane local run"},
                self.settings,
                self.state_machines["deprovision"],
            )
        return self._result(account_id, (before or []) + self._wait_new(known), mark)

    def _deprovision_by_hand(self, raw: dict[str, Any]) -> RunResult:
        """A manual deprovision input (`"action": "deprovision"`), by StartExecution of the deprovision workflow,
        as an operator sends it: the vendor's data plane is not removed first (the workflow refuses while it is
        there, as in AWS; `--then-deprovision` plays the AAC admin)."""
        try:
            account_id = parse_retire_shape(raw).account_id
        except InputRejected as err:
            raise UsageError(str(err)) from err
        mark = recording.mark()
        known = self._execution_arns()
        with recording.actor(_CLI):
            start_deprovisioning(raw, self.settings, self.state_machines["deprovision"])
        return self._result(account_id, self._wait_new(known), mark)

    def _retire(self, raw: dict[str, Any]) -> RunResult:
        """An Organizations CloseAccount/MoveAccount event, through EventBridge."""
        try:
            start = parse_retire_shape(raw)  # a failed call's event is put too: the rules must not match it
        except InputRejected as err:
            raise UsageError(str(err)) from err
        account_id = start.account_id
        closing = (
            isinstance(start, OrganizationsEvent)
            and start.detail.eventName == "CloseAccount"
            and start.detail.errorCode is None
        )
        if closing and not self.options.absent and account_id in self.world.accounts:
            fidelity_organizations.close(HUB_ACCOUNT, account_id)  # the world the event describes
        mark = recording.mark()
        known = self._execution_arns()
        self._put_event(raw)
        return self._result(account_id, self._wait_new(known), mark)

    def put_events(self, raws: list[dict[str, Any]]) -> None:
        """Put several events on the sandbox's EventBridge at once (a burst); does not wait for executions."""
        for raw in raws:
            self._put_event(raw)

    def _put_event(self, event: dict[str, Any], *, bus: str = "", hops: int = 0) -> None:
        """EventBridge: the event arrives on the default bus of the account and region it names (where AWS
        emits it), or on `bus` when a rule forwarded it; the rules on that bus match it and their targets get
        it. moto does not deliver, so the sandbox routes: a Lambda target is invoked, an event bus target
        gets the event unchanged (its `region` and `account` stay those of its origin)."""
        from moto.events.models import EventPattern

        assert self.dispatcher is not None
        here = bus or event_bus_arn(str(event.get("region") or REGION), str(event.get("account") or HUB_ACCOUNT))
        for rule in self.rules:
            if rule.bus != here or not EventPattern.load(json.dumps(rule.pattern)).matches_event(event):  # type: ignore[arg-type]
                continue
            if rule.target_bus:
                # A rule whose role may not put on the target fails its invocation: the event is lost.
                if rule.target_bus not in rule.may_put_on:
                    raise ConfigError(f"{rule.name}: its role may not events:PutEvents on {rule.target_bus}")
                if hops >= _MAX_HOPS:
                    raise ConfigError(f"{rule.name}: the event went round {hops} buses (a forwarding loop)")
                self._put_event(event, bus=rule.target_bus, hops=hops + 1)
                continue
            if rule.state_machine:  # EventBridge starts the execution with the event as its input
                # named as Step Functions names an execution started without one (a UUID); moto leaves
                # $$.Execution.Name empty then
                with as_account(HUB_ACCOUNT):
                    sandbox_client("stepfunctions").start_execution(
                        stateMachineArn=rule.state_machine, name=str(uuid.uuid4()), input=json.dumps(event)
                    )
                continue
            function = self.functions[rule.function]
            ok, result = self.dispatcher.invoke(function, event)
            if not ok:
                raise InputRejected(f"{rule.function} failed: {result.get('errorMessage')}")

    def _execution_arns(self) -> dict[str, str]:
        with as_account(HUB_ACCOUNT):
            sfn = sandbox_client("stepfunctions")
            return {
                e["executionArn"]: e["status"]
                for arn in self.state_machines.values()
                for e in sfn.list_executions(stateMachineArn=arn)["executions"]
            }

    def _wait_new(self, known: dict[str, str]) -> list[dict[str, Any]]:
        """Executions started by this input, once they have ended.

        moto runs each execution (and each state) in a thread it lists in TMP_THREADS: join those instead
        of polling the API, which would compete with the handlers for the GIL.
        """
        from moto.stepfunctions.parser.utils import TMP_THREADS

        while True:
            alive = [t for t in list(TMP_THREADS) if t.is_alive()]
            TMP_THREADS[:] = alive
            if not alive:
                break
            alive[0].join(0.1)
            if self.on_progress is not None:
                self.on_progress(list(self._fresh(known)))
        with as_account(HUB_ACCOUNT):
            sfn = sandbox_client("stepfunctions")
            self.last_executions = [sfn.describe_execution(executionArn=arn) for arn in self._fresh(known)]
        return self.last_executions

    def _fresh(self, known: dict[str, str]) -> list[str]:
        return [arn for arn in self._execution_arns() if arn not in known]

    def history(self, execution_arn: str) -> list[dict[str, Any]]:
        return _history_reader([execution_arn])()

    def ledger(self) -> Ledger:
        return Ledger(_LedgerClient(), self.settings_env("LEDGER_TABLE"))  # type: ignore[arg-type]

    def settings_env(self, name: str) -> str:
        return os.environ[name]

    def _result(self, account_id: str, executions: list[dict[str, Any]], mark: int) -> RunResult:
        status = self.ledger().status(account_id)
        machine_of = {arn: short for short, arn in self.state_machines.items()}
        listed = [
            {"name": e["name"], "state_machine": machine_of.get(e["stateMachineArn"], "?"), "status": e["status"]}
            for e in executions
        ]
        last = executions[-1] if executions else None
        error: dict[str, str] | None = None
        if last is not None and last["status"] != "SUCCEEDED":
            error = {"type": last.get("error", "Unknown"), "message": _one_line(cause_message(last.get("cause", "")))}
        outcome = _outcome(status.status if status else None, last, machine_of, status.execution if status else None)
        inv = inventory.read(account_id) if account_id in self.world.accounts else {}
        owned = inventory.mlplane_resources(inv, account_id) if inv else []
        # READY and held accounts keep what the ledger records on purpose: a leftover is what it lost track of.
        live_ids = (
            {r.resource_id for r in self.ledger().resources(account_id)}
            if status and status.status in (Status.READY, Status.ROLLBACK_HELD)
            else set()
        )
        leftovers = [r for r in owned if r["id"] not in live_ids]
        calls = [c.as_json() for c in recording.since(mark)]
        notes = [n for n in notifications() if n.get("account_id") == account_id and n.get("outcome")]
        deferred = notes[-1]["deferred"] if notes and last is not None else []
        history = _history_reader([e["executionArn"] for e in executions])
        return RunResult(
            outcome, account_id, listed, leftovers, calls, inv, error, deferred=deferred, read_history=history
        )


def _outcome(
    status: Status | None, last: dict[str, Any] | None, machine_of: dict[str, str], status_owner: str | None = None
) -> str:
    """The run's outcome from the account's ledger status and the last execution of this input."""
    settled = {
        Status.READY,
        Status.DEPROVISIONED,
        Status.ROLLED_BACK,
        Status.ROLLBACK_INCOMPLETE,
        Status.ROLLBACK_HELD,
    }
    if last is None:  # no execution: not for mlplane, or a duplicate of one that already ended
        return status.value if status in settled else "IGNORED"
    if last["status"] == "SUCCEEDED":
        if machine_of.get(last["stateMachineArn"]) == "deprovision":
            return "DEPROVISIONED"
        return status.value if status in settled else "READY"
    if status in (Status.ROLLED_BACK, Status.ROLLBACK_INCOMPLETE, Status.ROLLBACK_HELD):
        return status.value
    if status in (Status.PROVISIONING, Status.ROLLING_BACK, Status.DEPROVISIONING) and status_owner == last["name"]:
        # This execution failed with the account still marked as its own: it changed the account and did not
        # settle it (mlplane resources may be left). Not REJECTED, which says that nothing was changed.
        return "ROLLBACK_INCOMPLETE"
    return "REJECTED"  # failed before changing anything (validation, refusal)


def _history_reader(execution_arns: list[str]) -> HistoryReader:
    """The executions' history, read when called, from moto's own execution objects (they outlive the sandbox,
    so a test can read a result's history after it): the events GetExecutionHistory returns (moto answers it
    from the same objects), without serialising a few hundred events to JSON and parsing them back for each
    run, which most never read. The timestamp is parsed as botocore parses the API's."""
    from botocore.utils import parse_timestamp
    from moto.stepfunctions.parser.models import stepfunctions_parser_backends

    backend = stepfunctions_parser_backends[HUB_ACCOUNT][REGION]
    executions = [backend.describe_execution(arn) for arn in execution_arns]

    def read() -> list[dict[str, Any]]:
        return [
            {**event, "timestamp": parse_timestamp(event["timestamp"])}
            for execution in executions
            for event in execution.to_history_output()["events"]  # type: ignore[attr-defined] # the parser's Execution
        ]

    return read


_notifications: list[dict[str, Any]] = []


@rules.after("sns", "Publish")
def _capture_notification(call: rules.Call, response: dict[str, Any]) -> None:
    """Keep what mlplane published on its topic: the run's `deferred` comes from its outcome message."""
    try:
        document = json.loads(str(call.params.get("Message", "")))
    except json.JSONDecodeError:
        return
    if isinstance(document, dict) and document.get("source") == "mlplane":
        _notifications.append(document)


def notifications() -> list[dict[str, Any]]:
    return list(_notifications)


_MAX_HOPS = 3


def _put_events_resources(role: dict[str, Any]) -> list[str]:
    """The resources a role's inline policies allow events:PutEvents on."""
    found: list[str] = []
    for policy in role.get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if statement["Effect"] == "Allow" and "events:PutEvents" in actions:
                resource = statement["Resource"]
                found.extend(resource if isinstance(resource, list) else [resource])
    return found


def _is_retirement(raw: Any) -> bool:
    return isinstance(raw, dict) and raw.get("source") == "aws.organizations"


class _LedgerClient:
    """The sandbox reads the ledger as the hub, outside mlplane's recorded calls."""

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            with as_account(HUB_ACCOUNT):
                return getattr(sandbox_client("dynamodb"), name)(*args, **kwargs)

        return call


def _create_managed_policies(resources: dict[str, Any], resolver: Resolver) -> dict[str, str]:
    """The template's managed policies in the hub's IAM (after the resources they name): logical id -> ARN."""
    created = {}
    for logical_id, resource in resources.items():
        if resource["Type"] == "AWS::IAM::ManagedPolicy":
            document = resolver.resolve(resource["Properties"]["PolicyDocument"])
            created[logical_id] = sandbox_client("iam").create_policy(
                PolicyName=f"{STACK}-{logical_id}", PolicyDocument=json.dumps(document)
            )["Policy"]["Arn"]
    return created


def _parse_input(raw: Any) -> ControlTowerEvent | ManualStart:
    try:
        return parse_start(raw)
    except InputRejected as err:
        raise UsageError(str(err)) from err


def _one_line(text: str) -> str:
    return " ".join(text.split())[:500]


def _reset_scenarios(vendor: str, quota: str) -> None:
    """Point the vendor simulator and the Service Quotas emulator at this run's scenarios."""
    vendor_module.reset(vendor, clock_module.clock())
    service_quotas.reset(quota, clock_module.clock())
