"""`mlplane demo`: a sample Control Tower event through the real workflow, with a live view of the states."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from mlplane_cli.report import EXIT_OK, created_counts

_MARK = {"running": "[yellow]>[/yellow]", "done": "[green]✓[/green]", "failed": "[red]✗[/red]", "": " "}


def _states_in_order(definition: dict[str, Any]) -> list[str]:
    names: list[str] = []
    for name, state in definition["States"].items():
        names.append(name)
        for branch in state.get("Branches", []):
            names.extend(f"  {inner}" for inner in branch["States"])
    return names


def _progress(history: list[dict[str, Any]]) -> dict[str, tuple[str, int]]:
    seen: dict[str, tuple[str, int]] = {}
    for event in history:
        kind = event["type"]
        for key in ("stateEnteredEventDetails", "stateExitedEventDetails"):
            details = event.get(key)
            if details:
                name = details["name"]
                _, count = seen.get(name, ("", 0))
                if key == "stateEnteredEventDetails":
                    seen[name] = ("running", count + 1)
                else:
                    seen[name] = ("done", count)
        if kind in ("TaskFailed", "LambdaFunctionFailed", "ExecutionFailed"):
            for name, (status, count) in list(seen.items()):
                if status == "running":
                    seen[name] = ("failed", count)
    return seen


def _table(order: list[str], progress: dict[str, tuple[str, int]], elapsed: float, virtual: float) -> Table:
    table = Table(title=f"provision workflow  (wall {elapsed:4.1f} s, sandbox clock +{virtual / 60:5.1f} min)")
    table.add_column("")
    table.add_column("state")
    table.add_column("runs", justify="right")
    for name in order:
        status, count = progress.get(name.strip(), ("", 0))
        table.add_row(_MARK[status], name, str(count) if count else "")
    return table


def run_demo(event_file: Path | None) -> int:
    real_stdout = sys.stdout
    sys.stdout = sys.stderr  # handler logs stay off the live view
    try:
        return _demo(event_file, Console(file=real_stdout))
    finally:
        sys.stdout = real_stdout


def _demo(event_file: Path | None, console: Console) -> int:
    import json

    from mlplane_sandbox import clock
    from mlplane_sandbox.runner import Options, Sandbox
    from mlplane_sandbox.template import project_root

    path = event_file or project_root() / "events" / "controltower" / "create_managed_account_succeeded.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    started = time.monotonic()
    with Sandbox(Options()) as sandbox:
        order = _states_in_order(sandbox.definitions["provision"])
        begin = clock.clock().now()
        with Live(_table(order, {}, 0.0, 0.0), console=console, refresh_per_second=8) as live:

            def update(arns: list[str]) -> None:
                history = [e for arn in arns for e in sandbox.history(arn)]
                live.update(_table(order, _progress(history), time.monotonic() - started, clock.clock().now() - begin))

            sandbox.on_progress = update
            result = sandbox.run(raw)
            update([f"{e['executionArn']}" for e in sandbox.last_executions])
    elapsed = time.monotonic() - started
    colour = "green" if result.outcome == "READY" else "red"
    console.print(
        f"\naccount [bold]{result.account_id}[/bold]: [{colour}]{result.outcome}[/{colour}] in "
        f"{elapsed:.1f} s wall time ({(clock.clock().now() - begin) / 60:.0f} min of AWS time compressed)"
    )
    if result.error:
        console.print(f"error: {result.error['type']}: {result.error['message']}")
    created = ", ".join(f"{n} {section.replace('_', ' ')}" for section, n in created_counts(result.inventory).items())
    console.print(f"created: {created}")
    console.print(f"AWS calls made by mlplane: {len(result.api_calls)}; leftovers: {len(result.leftovers)}")
    return 0 if result.outcome in EXIT_OK else 1
