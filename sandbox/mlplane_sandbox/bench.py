"""`make bench`: what one account and a burst cost, in AWS calls, state transitions, time and memory.

    .venv/bin/python -m mlplane_sandbox.bench          # one account, then a burst of 10 (MLPLANE_BENCH_BURST=N)
                                                       # and a mixed fleet of 20 over two OUs (MLPLANE_BENCH_MIXED=N)

Each scenario runs in a fresh subprocess (`--measure N`), so its peak memory is its own. Figures, not
assertions; default settings (egress mode nat, poll interval 60 s) unless MLPLANE_BENCH_CONFIG holds a JSON
object of `--config` keys. Definitions:

- **writes**: successful calls mlplane made in the member account whose operation changes something
  (Create*, Delete*, Put*, Attach*, Associate*, Modify*, Allocate*, Request*, Enable*, ...); refused
  attempts are counted apart (**failed**), and the writes above the minimum are named per call.
  **minimum**: one call per thing the plan makes or changes in a fresh account: the VPC, its secondary
  block, its DNS-hostnames attribute (DNS support is on by default), each subnet, route table, route-table
  association and mlplane-made route (`plan_network`), the internet gateway and its attachment, the S3
  endpoint, each NAT gateway and its Elastic IP (nat mode) or the transit gateway attachment (tgw mode);
  the IAM user, policy and attachment; the KMS key, alias, rotation and the key-policy patch; one request
  per quota target. Hub writes (the ledger, SNS) are counted apart: they are bookkeeping, not the plan.
- **state transitions**: Step Functions Standard bills each state entered, retries included: the
  execution history's `*StateEntered` events plus Task retries (`TaskScheduled` beyond one per entry).
  Price: $0.025 per 1,000 transitions (us-east-1 list price; the free tier ignored). In a burst the
  sandbox's single clock is moved by every account's Wait states, so the vendor's 37.5 minutes pass in
  fewer polls per account: price the one-account figure.
- **cold import**: a fresh interpreter imports `functions/<step>/app.py` (the CPU time of the import,
  time.process_time, so other work on the machine does not count; start-up excluded; bytecode caches
  warm; the fastest of IMPORT_RUNS), against a bare `import boto3`. Measured
  with this machine's CPython, not Lambda's python3.13 on arm64: compare the columns, not the absolutes.
- **floor**: what the run cannot cost less than in this sandbox: its calls answered by the sandbox (moto or
  an emulator) times a warm boto3 call's median end-to-end time, plus its ASL states entered (every
  execution) times the interpreter's cost per state (a chain of Pass states), both measured in the same
  process right after the scenario. **moto ms**: moto's own median answer time, inside the call. **vs
  floor**: the run's wall time over that floor (aim: at most 1.5). **rules s**: time spent in the sandbox's
  fidelity rules and emulators, what the stricter-than-moto sandbox costs.
- **accounts per minute**: accounts over the wall time from the first event put to the last execution's
  end (sandbox set-up excluded). **peak RSS**: the scenario process's maximum resident set size.
"""

from __future__ import annotations

import compileall
import itertools
import json
import os
import py_compile
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mlplane_sandbox.recording import is_mutating

PRICE_PER_TRANSITION = 0.025 / 1000
IMPORT_RUNS = 7
IMPORT_TARGET = 2.0  # issue 14: each handler's cold import at most twice a bare `import boto3`
_HUB_WRITES = (
    "dynamodb:PutItem",
    "dynamodb:BatchWriteItem",
    "dynamodb:DeleteItem",
    "dynamodb:UpdateItem",
    "sns:Publish",
)


def minimum_mutations(config: dict[str, Any]) -> dict[str, int]:
    """The fewest member-account writes the plan needs in a fresh account, per call (see the module doc)."""
    from mlplane.config import settings_from
    from mlplane.network.plan import plan_network

    values = dict(config)
    if values.get("egress_mode") == "tgw" and not values.get("transit_gateway_id"):
        values["transit_gateway_id"] = "tgw-0123456789abcdef0"  # any well-formed id: only the shape matters
    settings = settings_from(values)
    region = settings.member_region
    plan = plan_network(settings, [f"{region}a", f"{region}b", f"{region}c"])
    wanted = {
        "ec2:CreateVpc": 1,
        "ec2:AssociateVpcCidrBlock": 1,  # the secondary block
        "ec2:ModifyVpcAttribute": int(plan.vpc.dns_hostnames),  # DNS support is on by default, hostnames not
        "ec2:CreateSubnet": len(plan.subnets),
        "ec2:CreateRouteTable": len(plan.route_tables),
        "ec2:AssociateRouteTable": len(plan.route_tables),
        "ec2:CreateRoute": sum(1 for table in plan.route_tables for route in table.routes if route.key),
        "ec2:CreateInternetGateway": int(plan.internet_gateway is not None),
        "ec2:AttachInternetGateway": int(plan.internet_gateway is not None),
        "ec2:CreateVpcEndpoint": 1,
        "ec2:AllocateAddress": len(plan.nat_gateways),
        "ec2:CreateNatGateway": len(plan.nat_gateways),
        "ec2:CreateTransitGatewayVpcAttachment": int(plan.tgw_attachment is not None),
        "iam:CreateUser": 1,
        "iam:CreatePolicy": 1,
        "iam:AttachUserPolicy": 1,
        "kms:CreateKey": 1,
        "kms:CreateAlias": 1,
        "kms:EnableKeyRotation": 1,
        "kms:PutKeyPolicy": 1,  # the credential role's statement
        "servicequotas:RequestServiceQuotaIncrease": len(settings.quota_targets),
    }
    return {call: n for call, n in wanted.items() if n}


def transitions(history: list[dict[str, Any]]) -> int:
    entered = sum(1 for e in history if str(e["type"]).endswith("StateEntered"))
    retries = max(
        0,
        sum(1 for e in history if e["type"] == "TaskScheduled")
        - sum(1 for e in history if e["type"] == "TaskStateEntered"),
    )
    return entered + retries


STATE_PROBE_STATES = 100
CALL_PROBE_CALLS = 100


def unit_costs(sandbox: Any) -> dict[str, float]:
    """The floor's two unit costs, measured in the scenario's own sandbox once it has run (everything warm):
    a boto3 call end to end (client serialisation, signing, the interceptor, moto, parsing), as the median of
    read calls of both protocols mlplane uses most (EC2 query, DynamoDB JSON); and the interpreter's cost per
    state, from a chain of Pass states."""
    from mlplane_sandbox.world import HUB_ACCOUNT, as_account, sandbox_client

    samples: list[float] = []
    with as_account(HUB_ACCOUNT):
        ec2, dynamodb = sandbox_client("ec2"), sandbox_client("dynamodb")
        tables = dynamodb.list_tables()["TableNames"]
        for i in range(CALL_PROBE_CALLS):
            started = time.perf_counter()
            if i % 2:
                dynamodb.describe_table(TableName=tables[0])
            else:
                ec2.describe_availability_zones()
            samples.append(time.perf_counter() - started)
    return {"call": statistics.median(samples), "state": _state_seconds(sandbox)}


def _state_seconds(sandbox: Any) -> float:
    from mlplane_sandbox.world import HUB_ACCOUNT, as_account, sandbox_client

    names = [f"P{i}" for i in range(STATE_PROBE_STATES)]
    states: dict[str, Any] = {name: {"Type": "Pass", "Next": nxt} for name, nxt in itertools.pairwise(names)}
    states[names[-1]] = {"Type": "Pass", "End": True}
    with as_account(HUB_ACCOUNT):
        sfn = sandbox_client("stepfunctions")
        arn = sfn.create_state_machine(
            name="mlplane-bench-probe",
            definition=json.dumps({"StartAt": names[0], "States": states}),
            roleArn=f"arn:aws:iam::{HUB_ACCOUNT}:role/probe",
        )["stateMachineArn"]
        known = sandbox._execution_arns()
        started = time.perf_counter()
        sfn.start_execution(stateMachineArn=arn, input="{}")
    sandbox._wait_new(known)
    return (time.perf_counter() - started) / STATE_PROBE_STATES


MIXED_FLEET: dict[str, Any] = {
    "allowed_ous": "Workloads,Sandbox",
    "network_blueprints": {
        "corp": {"ous": ["Workloads"], "egress_mode": "tgw", "cidr_pool": "10.128.0.0/12"},
        "dev": {"ous": ["Sandbox"], "egress_mode": "nat"},
    },
}
"""The mixed fleet (N6, seed 002): Workloads on the corporate transit gateway, Sandbox with NAT gateways."""


def measure(
    count: int, config: dict[str, Any], fails: list[str] | None = None, ous: list[str] | None = None
) -> dict[str, Any]:
    """Run one burst of `count` accounts in this process and return its figures (the `--measure` mode)."""
    from mlplane_sandbox.burst import peak_rss_mb, run_burst
    from mlplane_sandbox.options import Options

    burst = run_burst(count, Options(config=config, fails=list(fails or [])), probe=unit_costs, ous=ous or ())
    minimum = minimum_mutations(config)
    per_account = []
    excess: Counter[str] = Counter()
    for account in burst.accounts:
        calls = burst.member_calls(account)
        writes = Counter(c.call for c in calls if c.ok and is_mutating(c.call))
        excess.update({call: n - minimum.get(call, 0) for call, n in writes.items() if n > minimum.get(call, 0)})
        per_account.append(
            {
                "mutating": sum(writes.values()),
                "failed": sum(1 for c in calls if not c.ok and is_mutating(c.call)),
                "member_calls": len(calls),
                "transitions": transitions(burst.results[account].history),
            }
        )
    hub_writes = sum(1 for c in burst.calls if c.call in _HUB_WRITES)
    stats = burst.run_stats
    per_call, per_state = burst.probe["call"], burst.probe["state"]
    states = sum(1 for r in burst.results.values() for e in r.history if str(e["type"]).endswith("StateEntered"))
    floor = stats.calls * per_call + states * per_state
    return {
        "accounts": count,
        "outcomes": burst.outcomes(),
        "cidr_overlaps": burst.cidr_overlaps(),
        "cross_talk": len(burst.cross_talk()),
        "blueprints": burst.blueprint_counts(),
        "connected_accounts": burst.connected_accounts(),
        "mutating_per_account": statistics.mean(a["mutating"] for a in per_account),
        "failed_writes_per_account": statistics.mean(a["failed"] for a in per_account),
        "over_minimum": {call: n / count for call, n in sorted(excess.items())},
        "member_calls_per_account": statistics.mean(a["member_calls"] for a in per_account),
        "hub_writes_per_account": hub_writes / count,
        "transitions_per_account": statistics.mean(a["transitions"] for a in per_account),
        "run_seconds": burst.run_seconds,
        "wall_seconds": burst.wall_seconds,
        "accounts_per_minute": count / (burst.run_seconds / 60) if burst.run_seconds else 0.0,
        "peak_rss_mb": peak_rss_mb(),
        "sandbox_calls": stats.calls,
        "ms_per_call": per_call * 1000,
        "moto_ms_per_call": statistics.median(stats.moto_seconds) * 1000 if stats.moto_seconds else 0.0,
        "states": states,
        "ms_per_state": per_state * 1000,
        "floor_seconds": floor,
        "rule_seconds": stats.rule_seconds,
    }


def _child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", "")
    env.update(extra or {})
    return env


def _run_scenario(
    count: int, config: dict[str, Any], fails: list[str] | None = None, ous: list[str] | None = None
) -> dict[str, Any]:
    command = [
        sys.executable,
        "-m",
        "mlplane_sandbox.bench",
        "--measure",
        str(count),
        json.dumps(config),
        json.dumps(fails or []),
        json.dumps(ous or []),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True, env=_child_env())
    last = [line for line in done.stdout.splitlines() if line.startswith('{"accounts"')][-1]
    figures: dict[str, Any] = json.loads(last)
    return figures


_IMPORT_PROBE = (
    "import importlib, sys, time\n"
    "start = time.process_time()\n"
    "importlib.import_module(sys.argv[1])\n"
    "print(time.process_time() - start)\n"
)


@contextmanager
def shipped_copy(root: Path) -> Iterator[Path]:
    """The functions and the layer's package as `make build` ships them: a copy with its bytecode compiled
    (checked-hash, as the artifact's). Lambda cannot write `__pycache__`, so an import without it measures a
    compile that no deployed cold start does; the third-party packages are pip's, compiled at install."""
    with tempfile.TemporaryDirectory(prefix="mlplane-imports-") as tmp:
        copy = Path(tmp)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(root / "functions", copy / "functions", ignore=ignore)
        shutil.copytree(root / "layers" / "mlplane", copy / "layers" / "mlplane", ignore=ignore)
        for tree in ("functions", "layers"):
            compiled = compileall.compile_dir(
                copy / tree, quiet=1, invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH
            )
            if not compiled:
                raise RuntimeError(f"bench: {tree} did not compile")
        yield copy


def function_environment() -> dict[str, str]:
    """The environment template.yaml's Globals give every function, where it is a literal (a cold start
    imports under it: the Powertools service, pydantic's plugins switch); the stack's references left out."""
    from mlplane_sandbox.template import load_template

    variables = load_template()["Globals"]["Function"]["Environment"]["Variables"]
    return {name: value for name, value in variables.items() if isinstance(value, str)}


def import_seconds(module: str, root: Path) -> float:
    """The least seconds a fresh interpreter took to import `module` in IMPORT_RUNS tries (start-up excluded):
    other work on the machine only ever adds to an import, so the fastest try is the import's own cost.
    `root` holds `functions/` and `layers/mlplane/` (`shipped_copy`, for what a cold start imports)."""
    env = _child_env(
        function_environment()
        | {
            "PYTHONPATH": os.pathsep.join(str(root / p) for p in (".", "layers/mlplane")),
            "POWERTOOLS_METRICS_NAMESPACE": "mlplane",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
    )
    samples = []
    for _ in range(IMPORT_RUNS):
        done = subprocess.run(
            [sys.executable, "-c", _IMPORT_PROBE, module], capture_output=True, text=True, check=True, env=env, cwd=root
        )
        samples.append(float(done.stdout.strip().splitlines()[-1]))
    return min(samples)


WAITS = (("1 hour", 3_600), ("1 day", 86_400), ("5 days", 432_000))
_WAIT_LOOP = ("WaitForQuotas", "QuotasMet", "QuotasPollDelay")


def wait_costs() -> tuple[list[str], list[list[str]]]:
    """Run a quota request that never decides (`--quota pending`) with each timeout and count what its wait
    loop cost: Lambda invocations of WaitForQuotas, its state transitions, their price, reminders sent."""
    from mlplane_sandbox.options import Options
    from mlplane_sandbox.runner import Sandbox, notifications
    from mlplane_sandbox.template import project_root

    sample = project_root() / "events" / "controltower" / "create_managed_account_succeeded.json"
    event = json.loads(sample.read_text(encoding="utf-8"))
    rows = []
    for name, timeout in WAITS:
        with Sandbox(Options(config={"quota_timeout_seconds": timeout}, quota="pending")) as sandbox:
            result = sandbox.run(event)
            reminders = sum(1 for n in notifications() if n.get("event") == "WAITING")
        entered = [
            e["stateEnteredEventDetails"]["name"] for e in result.history if str(e["type"]).endswith("StateEntered")
        ]
        loop = sum(1 for state in entered if state in _WAIT_LOOP)
        invocations = sum(1 for state in entered if state == "WaitForQuotas")
        rows.append(
            [
                name,
                result.outcome,
                str(invocations),
                str(loop),
                f"${loop * PRICE_PER_TRANSITION:.4f}",
                str(reminders),
            ]
        )
    return ["wait", "outcome", "invocations", "transitions", "SFN $", "reminders"], rows


def _handlers(root: Path) -> list[str]:
    return sorted(p.parent.name for p in (root / "functions").glob("*/app.py"))


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(
        cell.ljust(width) if i == 0 else cell.rjust(width)
        for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
    )


def _table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [title, _row(header, widths), _row(["-" * w for w in widths], widths)]
    lines += [_row(r, widths) for r in rows]
    return "\n".join(lines)


def main() -> int:
    from mlplane_sandbox.template import project_root

    started = time.perf_counter()
    root = project_root()
    burst_size = int(os.environ.get("MLPLANE_BENCH_BURST", "10"))
    config: dict[str, Any] = json.loads(os.environ.get("MLPLANE_BENCH_CONFIG", "{}") or "{}")
    minimum = minimum_mutations(config)
    floor = sum(minimum.values())
    print(f"mlplane bench: config {json.dumps(config)}; burst of {burst_size}", flush=True)

    scenarios = [
        ("one account", _run_scenario(1, config)),
        ("rollback (NAT outage)", _run_scenario(1, config, ["ec2:CreateNatGateway"])),
        (f"burst of {burst_size}", _run_scenario(burst_size, config)),
    ]
    rows = []
    for name, f in scenarios:
        outcomes = ", ".join(f"{k} {v}" for k, v in f["outcomes"].items())
        rows.append(
            [
                name,
                outcomes,
                f"{f['mutating_per_account']:.1f}",
                str(floor),
                f"{f['mutating_per_account'] / floor:.2f}x",
                f"{f['failed_writes_per_account']:.1f}",
                f"{f['member_calls_per_account']:.0f}",
                f"{f['hub_writes_per_account']:.0f}",
                f"{f['transitions_per_account']:.0f}",
                f"${f['transitions_per_account'] * PRICE_PER_TRANSITION:.4f}",
                f"{f['accounts_per_minute']:.1f}",
                f"{f['run_seconds']:.1f}",
                f"{f['peak_rss_mb']:.0f}",
            ]
        )
    header = [
        "scenario",
        "outcomes",
        "writes/acct",
        "minimum",
        "ratio",
        "failed",
        "calls/acct",
        "hub writes",
        "transitions",
        "SFN $/acct",
        "acct/min",
        "run s",
        "peak MB",
    ]
    print()
    print(
        _table("Per account (member-account writes vs the plan's minimum; Step Functions Standard cost)", header, rows)
    )
    domains: Counter[str] = Counter()
    for call, n in minimum.items():
        domains[call.split(":")[0]] += n
    print(f"minimum = {' + '.join(f'{k} {v}' for k, v in domains.items())} = {floor} successful writes")
    for name, f in scenarios:
        over = ", ".join(f"{call} +{n:g}" for call, n in f["over_minimum"].items()) or "none"
        print(f"{name}: successful writes over the minimum, per account: {over}")
    print("failed: refused writes per account, e.g. kms:PutKeyPolicy naming a role IAM has not propagated yet")
    print("(the sandbox refuses it as AWS does; the state machine retries the TransientError)")

    floor_rows = [
        [
            name,
            f"{f['sandbox_calls']}",
            f"{f['ms_per_call']:.2f}",
            f"{f['moto_ms_per_call']:.2f}",
            f"{f['states']}",
            f"{f['ms_per_state']:.2f}",
            f"{f['floor_seconds']:.1f}",
            f"{f['run_seconds']:.1f}",
            f"{f['run_seconds'] / f['floor_seconds']:.2f}x" if f["floor_seconds"] else "-",
            f"{f['rule_seconds']:.1f}",
        ]
        for name, f in scenarios
    ]
    print()
    print(
        _table(
            "Wall time against the floor (calls x a warm call's ms + states x the interpreter's ms; same run)",
            [
                "scenario",
                "calls",
                "ms/call",
                "moto ms",
                "states",
                "ms/state",
                "floor s",
                "run s",
                "vs floor",
                "rules s",
            ],
            floor_rows,
        )
    )

    mixed_size = int(os.environ.get("MLPLANE_BENCH_MIXED", "20"))
    mixed_config = {**MIXED_FLEET, **{k: v for k, v in config.items() if k not in MIXED_FLEET}}
    mixed = _run_scenario(mixed_size, mixed_config, ous=["Workloads", "Sandbox"])
    print()
    print(
        _table(
            "Mixed fleet (network blueprint per OU: Workloads tgw 10.128.0.0/12, Sandbox nat)",
            ["accounts", "outcomes", "blueprints", "connected", "CIDR overlaps", "cross-talk", "acct/min", "run s"],
            [
                [
                    str(mixed["accounts"]),
                    ", ".join(f"{k} {v}" for k, v in mixed["outcomes"].items()),
                    ", ".join(f"{k} {v}" for k, v in mixed["blueprints"].items()),
                    str(mixed["connected_accounts"]),
                    str(mixed["cidr_overlaps"]),
                    str(mixed["cross_talk"]),
                    f"{mixed['accounts_per_minute']:.1f}",
                    f"{mixed['run_seconds']:.1f}",
                ]
            ],
        )
    )

    print()
    print(_table("What a long wait costs (the quota wait, backing off x2 to 15 min; measured runs)", *wait_costs()))

    with shipped_copy(root) as shipped:
        baseline = import_seconds("boto3", shipped)
        import_rows = [["import boto3 (baseline)", f"{baseline * 1000:.0f}", "1.00x", ""]]
        for step in _handlers(root):
            ratio = import_seconds(f"functions.{step}.app", shipped) / baseline
            verdict = "ok" if ratio <= IMPORT_TARGET else "OVER"
            import_rows.append([f"functions/{step}/app.py", f"{ratio * baseline * 1000:.0f}", f"{ratio:.2f}x", verdict])
    print()
    title = (
        f"Cold import with the shipped bytecode (CPU ms, fastest of {IMPORT_RUNS};"
        f" target: at most {IMPORT_TARGET:.0f}x a bare import boto3)"
    )
    print(_table(title, ["module", "ms", "vs boto3", "target"], import_rows))
    print(f"\nbench finished in {time.perf_counter() - started:.0f} s")
    return 0


def _measure_main(argv: list[str]) -> int:
    count = int(argv[0])
    config = json.loads(argv[1]) if len(argv) > 1 else {}
    fails = json.loads(argv[2]) if len(argv) > 2 else []
    ous = json.loads(argv[3]) if len(argv) > 3 else []
    figures = measure(count, config, fails, ous)
    sys.stdout.write(json.dumps(figures) + "\n")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--measure":
        raise SystemExit(_measure_main(sys.argv[2:]))
    raise SystemExit(main())
