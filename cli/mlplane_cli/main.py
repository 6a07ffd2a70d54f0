"""`mlplane`: the operator CLI.

Output discipline: with --json, stdout carries exactly one JSON document; the handlers' logs and every
message go to stderr. Errors the user can fix are one line on stderr with exit status 2, never a traceback.
"""

from __future__ import annotations

import json
import re
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TextIO

import typer

from mlplane_cli.errors import OneLineErrors, fail

if TYPE_CHECKING:
    from mlplane.config import Settings
    from mlplane_sandbox.options import Options

_CONTEXT = {"help_option_names": ["-h", "--help"]}
# rich_markup_mode=None: help is plain text, so `[@N]` and `[=ErrorCode]` show as written (Rich markup ate them).
app = typer.Typer(
    cls=OneLineErrors,
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings=_CONTEXT,
    help=__doc__.splitlines()[0] if __doc__ else "",
)
local = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings=_CONTEXT,
    help="Run mlplane in the sandbox (moto in-process, no AWS account).",
)
app.add_typer(local, name="local")

VENDOR_SCENARIOS = ("ok", "slow", "late", "cluster-failed", "nodegroup-failed", "never", "no-credential-role")
QUOTA_SCENARIOS = ("approved", "denied", "pending", "already-applied", "slow", "partial", "case-closed")
TGW_AUTO_ACCEPT = ("enable", "disable")  # the network account's AutoAcceptSharedAttachments
HAND_BUILT_DIFFERENCES = ("missing-route", "untagged-subnet", "dns-off")  # mlplane_sandbox.handbuilt.DIFFERENCES
DEFAULT_REGION = "eu-west-1"


def _version(value: bool) -> None:
    if value:
        from mlplane import __version__

        sys.stdout.write(f"mlplane {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print mlplane's version and exit."),
    ] = False,
) -> None:
    """mlplane: prepares vended AWS accounts for the AAC Machine Learning private data plane."""
    _quiet_library_logs()


class _CurrentStderr:
    """Whatever sys.stderr is when a record is written (a test runner swaps it per command)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


def _quiet_library_logs() -> None:
    """The library logs with Powertools to stdout at INFO, as a Lambda function should; in the CLI stdout is
    the command's output: its logs go to stderr, warnings and errors only."""
    import logging

    from mlplane.observability import logger

    handler = logger.registered_handler
    if isinstance(handler, logging.StreamHandler):
        handler.stream = _CurrentStderr()  # not setStream: it flushes the old stream, which may be closed
    logger.setLevel("WARNING")


@contextmanager
def stdout_to_stderr() -> Any:
    """Anything printed while the sandbox runs (handler logs) goes to stderr; yields the real stdout."""
    real: TextIO = sys.stdout
    sys.stdout = sys.stderr
    try:
        yield real
    finally:
        sys.stdout = real


def load_json_file(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise fail(f"{path}: cannot read: {err.strerror or err}") from None
    except UnicodeDecodeError:
        raise fail(f"{path}: not valid JSON: not UTF-8 text") from None
    return parse_json(text, str(path))


def parse_json(text: str, where: str) -> Any:
    """JSON text, or exit 2 with one line naming `where` and what is wrong (never a traceback)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise fail(f"{where}: not valid JSON: {err.msg} (line {err.lineno} column {err.colno})") from None
    except RecursionError:
        raise fail(f"{where}: not valid input: JSON nested too deeply") from None
    except ValueError:  # CPython refuses integers of over 4,300 digits (int_max_str_digits)
        raise fail(f"{where}: not valid input: a number of over 4,300 digits") from None


def load_config(value: str | None) -> dict[str, Any]:
    """--config: a JSON file or an inline JSON object."""
    if not value:
        return {}
    candidate = Path(value)
    try:
        is_file = candidate.exists()
    except OSError:  # e.g. inline JSON longer than a file name may be
        is_file = False
    data = load_json_file(candidate) if is_file else _inline_json(value)
    if not isinstance(data, dict):
        raise fail("--config: expected a JSON object")
    return data


def local_options(**values: Any) -> Options:
    """A local command's sandbox options, checked before the sandbox loads: a bad command line is refused at
    once (exit 2, one line) instead of after importing moto and the sandbox (about a second)."""
    from mlplane_sandbox.options import Options, UsageError, validate
    from mlplane_sandbox.template import load_template, project_root

    options = Options(**values)
    try:
        validate(options, load_template(project_root() / "template.yaml"))
    except UsageError as err:
        raise fail(str(err)) from None
    return options


def seconds_option(flag: str, value: str) -> float:
    """A duration flag: a finite number of seconds >= 0, else exit 2 naming the flag."""
    try:
        seconds = float(value)
    except ValueError:
        raise fail(f"{flag} {value!r}: expected a number of seconds") from None
    if not 0 <= seconds < float("inf"):
        raise fail(f"{flag} {value!r}: expected a number of seconds >= 0")
    return seconds


def check_input(path: Path, raw: Any) -> str:
    """The account an input names, or exit 2 if the sandbox would refuse it. Every file is checked before the
    sandbox starts: a bad second file no longer discards the first one's run, and a bad file fails at once."""
    from mlplane.accounts.events import asks_deprovision, parse_start
    from mlplane.errors import InputRejected

    try:
        if asks_deprovision(raw) or (isinstance(raw, dict) and raw.get("source") == "aws.organizations"):
            from mlplane.accounts.retire import parse_retire_shape

            # A failed call's event is valid input: EventBridge's rules, not the CLI, decide it starts nothing.
            return parse_retire_shape(raw).account_id
        return parse_start(raw).account_id
    except InputRejected as err:
        raise fail(f"{path}: {err}") from None


def _inline_json(value: str) -> Any:
    if not value.lstrip().startswith(("{", "[")):
        raise fail(f"--config: {value[:80]!r} is neither a file nor a JSON object") from None
    return parse_json(value, "--config")


ConfigOpt = Annotated[
    str | None, typer.Option("--config", metavar="JSON|FILE", help="Settings: a JSON file or inline JSON.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="One JSON object on stdout.")]
# `local run --hand-built` and `adopt --local`: the sandbox's account built by hand, with these departures
HandBuiltDifferenceOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--hand-built-difference",
        metavar="NAME",
        help="The account built by hand departs from the seed in this way (repeat): "
        + ", ".join(HAND_BUILT_DIFFERENCES)
        + ".",
    ),
]


@local.command("run")
def local_run(
    event_files: Annotated[
        list[Path],
        typer.Argument(
            metavar="EVENT_FILE",
            help='Control Tower or Organizations events, manual starts or manual deprovisions ("action": '
            '"deprovision"), in order.',
        ),
    ],
    config: ConfigOpt = None,
    absent: Annotated[bool, typer.Option("--absent", help="Do not create the account the event names.")] = False,
    fail_: Annotated[
        list[str] | None,
        typer.Option(
            "--fail",
            metavar="SERVICE:Operation[=ErrorCode][@N|@N-M]",
            help="Fail that AWS call with ErrorCode (default InternalError): every call, the Nth, or calls N to M.",
        ),
    ] = None,
    crash: Annotated[
        list[str] | None,
        typer.Option(
            "--crash",
            metavar="SERVICE:Operation[@N]",
            help="The Nth call (default 1) succeeds, then the Lambda that made it dies (Sandbox.Timedout).",
        ),
    ] = None,
    redeliver: Annotated[
        list[str] | None,
        typer.Option(
            "--redeliver",
            metavar="STATE[@N]",
            help="The Nth success of that Task state loses its response (Lambda.ServiceException): it runs again.",
        ),
    ] = None,
    oom: Annotated[
        list[str] | None,
        typer.Option("--oom", metavar="STATE[@N]", help="The Nth invocation of the state's Lambda runs out of memory."),
    ] = None,
    vendor: Annotated[
        str, typer.Option("--vendor", metavar="SCENARIO", help="The AAC vendor: " + ", ".join(VENDOR_SCENARIOS) + ".")
    ] = "ok",
    quota: Annotated[
        str,
        typer.Option("--quota", metavar="SCENARIO", help="Service Quotas: " + ", ".join(QUOTA_SCENARIOS) + "."),
    ] = "approved",
    then_deprovision: Annotated[
        bool,
        typer.Option(
            "--then-deprovision",
            help="After READY or ROLLBACK_HELD, the AAC admin removes the data plane, then deprovision.",
        ),
    ] = False,
    tgw_auto_accept: Annotated[
        str,
        typer.Option(
            "--tgw-auto-accept",
            metavar="enable|disable",
            help="enable|disable: the network account's transit gateway (tgw mode) accepts shared attachments "
            "itself, or leaves them pendingAcceptance (AWS's default for a new transit gateway).",
        ),
    ] = "enable",
    consistency_delay: Annotated[
        str,
        typer.Option(
            "--consistency-delay",
            metavar="SECONDS",
            help="Virtual seconds a just-created EC2/IAM id still answers NotFound (EC2/IAM eventual consistency).",
        ),
    ] = "0",
    kms_propagation: Annotated[
        str,
        typer.Option(
            "--kms-propagation",
            metavar="SECONDS",
            help="Virtual seconds after credential-service-role is created during which KMS refuses a key"
            " policy naming it (IAM eventual consistency).",
        ),
    ] = "60",
    hand_built: Annotated[
        bool,
        typer.Option(
            "--hand-built",
            help="The account is prepared by hand per seed 000 before the first input (for an adopt start).",
        ),
    ] = False,
    hand_built_difference: HandBuiltDifferenceOpt = None,
    customer_role: Annotated[
        list[str] | None,
        typer.Option(
            "--customer-role",
            metavar="[PATH/]NAME",
            help="A role the organization already has in each vended account (repeat): e.g. the analysts' SAML"
            " role that modules.service_catalog.analyst_role names, or a Canvas domain's execution role.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Run inputs through the whole control plane in the sandbox and report the outcome."""
    if tgw_auto_accept not in TGW_AUTO_ACCEPT:
        raise fail(f"--tgw-auto-accept {tgw_auto_accept!r}: expected one of {', '.join(TGW_AUTO_ACCEPT)}")
    delay = seconds_option("--consistency-delay", consistency_delay)
    if vendor not in VENDOR_SCENARIOS:
        raise fail(f"--vendor {vendor!r}: expected one of {', '.join(VENDOR_SCENARIOS)}")
    if quota not in QUOTA_SCENARIOS:
        raise fail(f"--quota {quota!r}: expected one of {', '.join(QUOTA_SCENARIOS)}")
    propagation = seconds_option("--kms-propagation", kms_propagation)
    inputs = [load_json_file(path) for path in event_files]
    for path, raw in zip(event_files, inputs, strict=True):
        check_input(path, raw)
    settings = load_config(config)
    options = local_options(
        config=settings,
        absent=absent,
        fails=fail_ or [],
        crashes=crash or [],
        redeliver=redeliver or [],
        out_of_memory=oom or [],
        vendor=vendor,
        quota=quota,
        then_deprovision=then_deprovision,
        tgw_auto_accept=tgw_auto_accept,
        consistency_delay=delay,
        kms_propagation_seconds=propagation,
        hand_built=hand_built,
        hand_built_differences=hand_built_difference or [],
        customer_roles=customer_role or [],
    )
    with stdout_to_stderr() as stdout:
        from mlplane.errors import MlplaneError
        from mlplane_sandbox.options import UsageError
        from mlplane_sandbox.runner import Sandbox

        try:
            with Sandbox(options) as sandbox:
                results = []
                for path, raw in zip(event_files, inputs, strict=True):
                    try:
                        results.append(sandbox.run(raw))
                    except UsageError as err:
                        raise fail(f"{path}: {err}") from None
                sandbox.check_faults_fired()
        except (UsageError, MlplaneError) as err:
            raise fail(str(err)) from None
    last = results[-1]
    if as_json:
        document = last.as_json()
        if len(results) > 1:
            document["runs"] = [r.as_json() for r in results]
        stdout.write(json.dumps(document, default=str) + "\n")
    else:
        from mlplane_cli.report import print_summary

        for path, raw, result in zip(event_files, inputs, results, strict=True):
            print_summary(path.name, result, _why_ignored(raw, settings) if result.outcome == "IGNORED" else "")
    from mlplane_cli.report import EXIT_OK

    raise typer.Exit(0 if last.outcome in EXIT_OK else 1)


def _why_ignored(raw: Any, config: dict[str, Any]) -> str:
    """Why no workflow started for an input: what the EventBridge rules do not match, else a duplicate."""
    from mlplane.accounts.events import parse_start
    from mlplane.accounts.preview import ignored_reason
    from mlplane.config import get_settings, settings_from
    from mlplane.errors import MlplaneError

    try:
        reason = ignored_reason(parse_start(raw), settings_from({**get_settings().model_dump(), **config}))
    except MlplaneError:  # not a start (e.g. an Organizations event the retirement rules did not match)
        reason = ""
    return reason or "no rule matched it, or it repeats an input whose execution already ran"


@local.command("burst")
def local_burst(
    count: Annotated[int, typer.Argument(min=1, metavar="COUNT", help="How many accounts to vend at once.")],
    config: ConfigOpt = None,
    ous: Annotated[
        str | None,
        typer.Option(
            "--ous", metavar="A,B", help="Spread the accounts over these OUs in turn (default: the first allowed)."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Vend COUNT accounts at once through EventBridge in one sandbox; report outcomes, CIDR overlaps, time, memory."""
    options = local_options(config=load_config(config))
    spread = [part.strip() for part in (ous or "").split(",") if part.strip()]
    with stdout_to_stderr() as stdout:
        from mlplane.errors import MlplaneError
        from mlplane_sandbox.burst import run_burst
        from mlplane_sandbox.options import UsageError

        try:
            burst = run_burst(count, options, ous=spread)
        except (UsageError, MlplaneError) as err:
            raise fail(str(err)) from None
    document = burst.as_json()
    if as_json:
        stdout.write(json.dumps(document) + "\n")
    else:
        outcomes = ", ".join(f"{name} {n}" for name, n in document["outcomes"].items())
        blueprints = ", ".join(f"blueprint {name} {n}" for name, n in document["blueprints"].items())
        stdout.write(
            f"{document['accounts']} accounts ({document['egress_mode']}; {blueprints}): {outcomes}; "
            f"CIDR overlaps {document['cidr_overlaps']} among {document['connected_accounts']} connected; "
            f"cross-talk {document['cross_talk']}; "
            f"{document['wall_seconds']} s; peak RSS {document['peak_rss_mb']} MB\n"
        )
    raise typer.Exit(0 if burst.ok else 1)


@local.command("serve")
def local_serve(
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="The local port to listen on (0: any free port).")
    ] = 5000,
    config: ConfigOpt = None,
    speed: Annotated[
        str,
        typer.Option(
            "--speed", metavar="N", help="Virtual seconds the sandbox clock moves per real second (0: only waits)."
        ),
    ] = "60",
    account: Annotated[
        list[str] | None,
        typer.Option(
            "--account", metavar="ACCOUNT_ID", help="A vended member account to place (default 111111111111)."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the endpoint and outputs as one JSON line.")] = False,
) -> None:
    """Serve the sandbox as a local AWS endpoint (the stack deployed, the clock moving) for real AWS clients."""
    import signal
    import threading

    rate = seconds_option("--speed", speed)
    accounts = [_account(a) for a in account or ["111111111111"]]
    options = local_options(config=load_config(config))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with stdout_to_stderr() as stdout:
        from mlplane.errors import MlplaneError
        from mlplane_sandbox.options import UsageError
        from mlplane_sandbox.serve import Endpoint, serve
        from mlplane_sandbox.world import HUB_ACCOUNT, REGION

        def ready(endpoint: Endpoint, sandbox: Any) -> None:
            document: dict[str, Any] = {"endpoint": endpoint.url, "region": REGION, "hub_account": HUB_ACCOUNT}
            document |= {"accounts": accounts, "stack": "mlplane", "outputs": sandbox.outputs}
            if as_json:
                stdout.write(json.dumps(document) + "\n")
            else:
                lines = [f"mlplane sandbox: {endpoint.url} (region {REGION}, hub {HUB_ACCOUNT}, accounts "]
                lines[0] += ", ".join(accounts) + ")"
                lines += [f"  {key}: {value}" for key, value in sandbox.outputs.items()]
                lines.append(
                    f"export AWS_ENDPOINT_URL={endpoint.url} AWS_ACCESS_KEY_ID=testing "
                    f"AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION={REGION}   # Ctrl-C stops it"
                )
                stdout.write("\n".join(lines) + "\n")
            stdout.flush()

        try:
            serve(options, port=port, speed=rate, accounts=accounts, ready=ready, stop=stop)
        except KeyboardInterrupt:
            pass
        except (UsageError, MlplaneError) as err:
            raise fail(str(err)) from None


@app.command()
def plan(
    target: Annotated[str, typer.Argument(help="An event or manual-start file, or a 12-digit account id.")],
    local_: Annotated[bool, typer.Option("--local", help="Plan in the sandbox instead of AWS.")] = False,
    config: ConfigOpt = None,
    as_json: JsonOpt = False,
    stack: Annotated[
        str, typer.Option("--stack", help="The deployed mlplane stack whose settings (and ledger) the plan uses.")
    ] = "mlplane",
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    reconcile: Annotated[
        bool, typer.Option("--reconcile", help="What `mlplane reconcile` would change in this READY account.")
    ] = False,
) -> None:
    """Print what a run would do to the account now: the verdict, then create / keep / change / refuse per
    resource. Read-only: no mutating API is called."""
    if target.isdigit() and not Path(target).exists():
        _account(target)  # an account id, as provision/status say it: not a file that cannot be read
    raw: Any = target if re.fullmatch(r"\d{12}", target) else load_json_file(Path(target))
    if reconcile:
        if not isinstance(raw, str):
            raise fail("--reconcile takes an account id, not a file")
        raw = {"account_id": raw, "requested_by": "mlplane plan", "action": "reconcile"}
    settings = load_config(config)
    if not local_:
        document = _plan_in_aws(raw, settings, stack, _hub(profile, region, endpoint_url))
        _print_plan(document, as_json, sys.stdout)
        return
    options = local_options(config=settings)
    with stdout_to_stderr() as stdout:
        from mlplane.errors import MlplaneError
        from mlplane_sandbox.options import UsageError
        from mlplane_sandbox.runner import Sandbox

        try:
            with Sandbox(options) as sandbox:
                document = sandbox.plan(raw)
        except (UsageError, MlplaneError) as err:
            raise fail(str(err)) from None
    _print_plan(document, as_json, stdout)


def _plan_in_aws(raw: Any, config: dict[str, Any], stack: str, region: str) -> dict[str, Any]:
    """Plan against AWS with the caller's credentials (the hub), with the stack's settings and ledger, assuming
    the member role: reads only. Errors reach the user through the CLI's one handler (mlplane_cli.errors)."""
    from mlplane.accounts.preview import PLAN_EXECUTION, preview
    from mlplane.member import hub_ledger, member_for

    settings = _deployed_settings(stack, region, config)
    return preview(
        raw, settings, hub_ledger(settings), lambda account_id: member_for(account_id, PLAN_EXECUTION, "Plan", settings)
    )


def _deployed_settings(stack: str, region: str, config: dict[str, Any] | None = None) -> Settings:
    """The settings the stack's functions run with (its ValidateAccount's environment), `config` on top."""
    from mlplane.config import settings_from
    from mlplane_cli.operate import stack_settings

    return settings_from({**stack_settings(stack, region), **(config or {})})


def _print_plan(document: dict[str, Any], as_json: bool, stdout: TextIO) -> None:
    if as_json:
        stdout.write(json.dumps(document, default=str) + "\n")
    else:
        from mlplane_cli.report import print_plan

        print_plan(document)


AccountArg = Annotated[str, typer.Argument(metavar="ACCOUNT_ID", help="The member account's 12-digit id.")]
StackOpt = Annotated[str, typer.Option("--stack", help="The deployed mlplane stack (its outputs name the rest).")]
RequestedByOpt = Annotated[str, typer.Option("--requested-by", help="Who asks (recorded in the execution's input).")]
ReasonOpt = Annotated[str, typer.Option("--reason", help="Why (recorded in the execution's input).")]
ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile", help="The AWS profile of the hub's credentials (default: AWS_PROFILE, else the default chain)."
    ),
]
RegionOpt = Annotated[
    str | None,
    typer.Option(
        "--region",
        envvar=["AWS_REGION", "AWS_DEFAULT_REGION"],
        show_envvar=False,
        help="The hub's region (default: AWS_REGION, AWS_DEFAULT_REGION, the profile's region, else "
        f"{DEFAULT_REGION}).",
    ),
]
WaitOpt = Annotated[
    bool, typer.Option("--wait", help="Then follow the execution (as `mlplane watch`) and exit by its outcome.")
]
EndpointOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        metavar="URL",
        help="Send every AWS call to this endpoint (e.g. a local one) instead of AWS's (default: AWS_ENDPOINT_URL).",
    ),
]


def _account(account_id: str) -> str:
    if not re.fullmatch(r"\d{12}", account_id):
        raise fail(f"account id {account_id!r} is not 12 digits")
    return account_id


def _hub(profile: str | None, region: str | None, endpoint_url: str | None) -> str:
    """Point mlplane's AWS clients at the hub as the AWS CLI would: the region the standard chain gives."""
    from mlplane import aws

    if endpoint_url is not None and not re.fullmatch(r"https?://[^\s/?#]+(/\S*)?", endpoint_url):
        raise fail(f"--endpoint-url {endpoint_url!r}: expected an http:// or https:// URL")
    aws.configure_hub(profile=profile, endpoint_url=endpoint_url)
    # --region, AWS_REGION and AWS_DEFAULT_REGION arrive as `region`; else the profile's (botocore reads it).
    chosen = region or aws.new_session(profile_name=profile).region_name or DEFAULT_REGION
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-[0-9]", chosen):
        raise fail(f"region {chosen!r} is not an AWS region name such as {DEFAULT_REGION}")
    return chosen


def _print_json(document: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(document, default=str) + "\n")


@app.command()
def provision(
    account_id: AccountArg,
    requested_by: RequestedByOpt = "operator",
    reason: ReasonOpt = "",
    stack: StackOpt = "mlplane",
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    wait: WaitOpt = False,
) -> None:
    """Start the provision workflow for an account by hand (back-fills, re-runs after a fix)."""
    from mlplane_cli import operate

    account = _account(account_id)
    hub_region = _hub(profile, region, endpoint_url)
    started = operate.provision(account, requested_by, reason, stack=stack, region=hub_region)
    _started(started, hub_region, wait=wait)


@app.command()
def resume(
    account_id: AccountArg,
    requested_by: RequestedByOpt = "operator",
    reason: ReasonOpt = "",
    stack: StackOpt = "mlplane",
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    wait: WaitOpt = False,
) -> None:
    """Resume a ROLLBACK_HELD account after the data plane was retried in AAC: back to the waits, nothing re-created."""
    from mlplane_cli import operate

    account = _account(account_id)
    hub_region = _hub(profile, region, endpoint_url)
    started = operate.resume(account, requested_by, reason, stack=stack, region=hub_region)
    _started(started, hub_region, wait=wait)


@app.command()
def reconcile(
    account_id: Annotated[
        str | None, typer.Argument(metavar="ACCOUNT_ID", help="The READY account to converge (or --all).")
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every READY account, at most ReconcileConcurrency at once.")
    ] = False,
    requested_by: RequestedByOpt = "operator",
    reason: ReasonOpt = "",
    stack: StackOpt = "mlplane",
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    wait: WaitOpt = False,
) -> None:
    """Converge a READY account to the plan (what `mlplane audit` finds): never a rollback; notified."""
    from mlplane_cli import operate

    if (account_id is None) == (not all_):
        raise fail("give an ACCOUNT_ID or --all")
    hub_region = _hub(profile, region, endpoint_url)
    if all_:
        started = operate.reconcile_fleet(requested_by, stack=stack, region=hub_region)
    else:
        started = operate.reconcile(_account(str(account_id)), requested_by, reason, stack=stack, region=hub_region)
    _started(started, hub_region, wait=wait)


@app.command()
def adopt(
    account_id: Annotated[
        str | None,
        typer.Argument(metavar="ACCOUNT_ID", help="The account prepared by hand per seed 000 (--local: optional)."),
    ] = None,
    local_: Annotated[
        bool, typer.Option("--local", help="In the sandbox: build the account by hand, adopt it, audit it.")
    ] = False,
    difference: HandBuiltDifferenceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="With --local: the run and its audit as JSON.")] = False,
    requested_by: RequestedByOpt = "operator",
    reason: ReasonOpt = "",
    stack: StackOpt = "mlplane",
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    wait: WaitOpt = False,
) -> None:
    """Take an account prepared by hand (seed 000) into the ledger: what exists is matched by name, tags and
    CIDRs and recorded as adopted (never deleted), only what is missing is created; differences are audit
    findings (`mlplane reconcile` fixes them)."""
    if difference and not local_:
        raise fail("--hand-built-difference is for --local (the sandbox)")
    if local_:
        if wait:
            raise fail("--wait is for a deployed stack, not --local")
        _adopt_local(_account(account_id) if account_id else "111111111111", difference or [], as_json=as_json)
    if account_id is None:
        raise fail("give an ACCOUNT_ID")
    if as_json:
        raise fail("--json is for --local (a deployed stack's adopt prints its execution as JSON)")
    from mlplane_cli import operate

    hub_region = _hub(profile, region, endpoint_url)
    started = operate.adopt(_account(account_id), requested_by, reason, stack=stack, region=hub_region)
    _started(started, hub_region, wait=wait)


def _adopt_local(account_id: str, differences: list[str], *, as_json: bool) -> None:
    """The sandbox's adopt: the account built by hand, adopted, then audited (the differences it left)."""
    options = local_options(hand_built=True, hand_built_differences=differences)
    with stdout_to_stderr() as stdout:
        from mlplane.errors import MlplaneError
        from mlplane_sandbox.options import UsageError
        from mlplane_sandbox.runner import Sandbox

        try:
            with Sandbox(options) as sandbox:
                raw = {"account_id": account_id, "requested_by": "mlplane adopt --local", "action": "adopt"}
                result = sandbox.run(raw)
                report = sandbox.audit(account_id) if result.outcome == "READY" else None
        except (UsageError, MlplaneError) as err:
            raise fail(str(err)) from None
    if as_json:
        stdout.write(json.dumps({"run": result.as_json(), "audit": report}, default=str) + "\n")
    else:
        from mlplane_cli.report import print_audit, print_summary

        print_summary("adopt", result, "")
        if report is not None:
            print_audit(report)
    raise typer.Exit(0 if result.outcome == "READY" else 1)


@app.command()
def deprovision(
    account_id: AccountArg,
    requested_by: RequestedByOpt = "operator",
    reason: ReasonOpt = "",
    stack: StackOpt = "mlplane",
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
    wait: WaitOpt = False,
) -> None:
    """Start the deprovision workflow (refused while the vendor's EKS cluster exists)."""
    from mlplane_cli import operate

    account = _account(account_id)
    hub_region = _hub(profile, region, endpoint_url)
    started = operate.deprovision(account, requested_by, reason, stack=stack, region=hub_region)
    _started(started, hub_region, wait=wait)


TableOpt = Annotated[str | None, typer.Option("--table", help="The ledger table (default: the stack's).")]


@app.command()
def watch(
    execution: Annotated[
        str, typer.Argument(help="An execution's name (as provision prints it) or its ARN.", metavar="EXECUTION")
    ],
    stack: StackOpt = "mlplane",
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Follow an execution with a live view of its states until it ends; exit 0 if it succeeded, else 1."""
    from mlplane_cli import operate

    hub_region = _hub(profile, region, endpoint_url)
    _watch(operate.execution_arn(execution, stack=stack, region=hub_region), hub_region)


def _started(started: dict[str, Any], region: str, *, wait: bool) -> None:
    """What provision, resume, reconcile and deprovision print: the execution started; with --wait, its run."""
    _print_json(started)
    if wait:
        _watch(str(started["execution_arn"]), region)


def _watch(arn: str, region: str) -> None:
    """The live view on stdout while the execution runs, then one line with how it ended; exits by outcome."""
    import time

    from rich.console import Console
    from rich.live import Live

    from mlplane_cli import operate
    from mlplane_cli.view import progress, states_in_order, states_table

    console = Console()
    began = time.monotonic()
    name = arn.rsplit(":", 1)[-1]
    with Live(console=console, refresh_per_second=4, transient=False) as live:

        def update(described: dict[str, Any], definition: dict[str, Any], history: list[dict[str, Any]]) -> None:
            title = f"{name}: {described['status']} ({time.monotonic() - began:.0f} s)"
            live.update(states_table(states_in_order(definition), progress(history), title))

        final = operate.follow(arn, region=region, on_progress=update)
    ended = f"execution {name}: {final['status']}"
    if final.get("error") or final.get("cause"):
        ended += f" ({final.get('error', '')}: {final.get('cause', '')})"
    console.print(ended, markup=False)
    raise typer.Exit(0 if final["status"] == "SUCCEEDED" else 1)


@app.command()
def status(
    account_id: AccountArg,
    stack: StackOpt = "mlplane",
    table: TableOpt = None,
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """The account's status and the resources mlplane recorded for it, from the ledger."""
    from mlplane_cli import operate

    account = _account(account_id)
    hub_region = _hub(profile, region, endpoint_url)
    _print_json(operate.status(account, stack=stack, region=hub_region, table=table))


@app.command()
def accounts(
    status_: Annotated[
        str | None, typer.Option("--status", metavar="STATUS", help="Only accounts in this status (e.g. READY).")
    ] = None,
    ou: Annotated[str | None, typer.Option("--ou", help="Only accounts mlplane found in this OU (by name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON array on stdout.")] = False,
    stack: StackOpt = "mlplane",
    table: TableOpt = None,
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Every account in the ledger: status, owning execution, since when, last error, what is deferred or held."""
    from mlplane.ledger import Status
    from mlplane_cli import operate

    wanted = status_.upper() if status_ else None
    if wanted is not None and wanted not in Status.__members__:
        raise fail(f"--status {status_!r}: expected one of {', '.join(Status.__members__)}")
    hub_region = _hub(profile, region, endpoint_url)
    listed = operate.accounts(stack=stack, region=hub_region, table=table, status=wanted, ou=ou)
    if as_json:
        sys.stdout.write(json.dumps(listed) + "\n")
    else:
        from mlplane_cli.report import print_accounts

        print_accounts(listed)


@app.command()
def audit(
    account_id: Annotated[
        str | None, typer.Argument(metavar="ACCOUNT_ID", help="The account to audit (or --all).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every READY or ROLLBACK_HELD account in the ledger.")] = False,
    local_: Annotated[
        bool, typer.Option("--local", help="In the sandbox: provision the sample account, make --drift, audit.")
    ] = False,
    drift: Annotated[
        list[str] | None,
        typer.Option("--drift", metavar="NAME", help="With --local: a change made by hand before the audit (repeat)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per account, in a list, on stdout.")] = False,
    stack: StackOpt = "mlplane",
    profile: ProfileOpt = None,
    region: RegionOpt = None,
    endpoint_url: EndpointOpt = None,
) -> None:
    """Read-only: what in provisioned accounts is not as mlplane's plan says (missing, drifted, untracked), and
    the vendor's resources (reported, never judged). Exit 0 when clean, 1 with findings."""
    if local_ and all_:
        raise fail("--all is for a deployed stack, not --local")
    if not local_ and (account_id is None) == (not all_):
        raise fail("give an ACCOUNT_ID or --all")
    if drift and not local_:
        raise fail("--drift is for --local (the sandbox)")
    if local_:
        reports = [_audit_local(_account(account_id) if account_id else "111111111111", drift or [])]
    else:
        from mlplane.accounts.audit import AUDITED
        from mlplane.accounts.audit import audit as audit_account
        from mlplane.member import hub_ledger, member_for

        settings = _deployed_settings(stack, _hub(profile, region, endpoint_url))
        if all_:
            targets = [e.status.account_id for e in hub_ledger(settings).accounts() if e.status.status in AUDITED]
        else:
            targets = [_account(str(account_id))]
        reports = [audit_account(member_for(a, "mlplane-audit", "Audit", settings), settings) for a in targets]
    if as_json:
        _print_json({"accounts": reports, "clean": all(r["clean"] for r in reports)})
    else:
        from mlplane_cli.report import print_audit

        for report in reports:
            print_audit(report)
    raise typer.Exit(0 if all(r["clean"] for r in reports) else 1)


def _audit_local(account_id: str, drifts: list[str]) -> dict[str, Any]:
    with stdout_to_stderr():
        from mlplane_sandbox import drift as drift_module
        from mlplane_sandbox.options import Options
        from mlplane_sandbox.runner import Sandbox

        unknown = [d for d in drifts if d not in drift_module.DRIFTS]
        if unknown:
            raise fail(f"--drift {unknown[0]!r}: expected one of {', '.join(drift_module.DRIFTS)}")
        with Sandbox(Options()) as sandbox:
            raw = {"account_id": account_id, "requested_by": "mlplane audit --local", "reason": "audit"}
            ran = sandbox.run(raw)
            if ran.outcome != "READY":
                raise fail(f"the sandbox run ended {ran.outcome}, not READY: nothing to audit", code=1)
            for name in drifts:
                drift_module.apply(name, account_id, sandbox.settings_from_env())
            return sandbox.audit(account_id)


@app.command()
def demo(
    event_file: Annotated[Path | None, typer.Argument(help="Defaults to the sample Control Tower event.")] = None,
) -> None:
    """Watch a Control Tower account-vending event become a READY account, live, in the sandbox."""
    from mlplane_cli.demo import run_demo

    if event_file is not None:
        check_input(event_file, load_json_file(event_file))  # a bad file: one line, exit 2, before the live view
    raise typer.Exit(run_demo(event_file))


if __name__ == "__main__":  # pragma: no cover
    app()
