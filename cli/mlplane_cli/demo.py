"""`mlplane demo`: a sample Control Tower event through the real workflow, with a live view of the states."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from rich.console import Console
from rich.live import Live

from mlplane_cli.report import EXIT_OK, NEXT_STEPS, counted
from mlplane_cli.view import progress, states_in_order, states_table


def _title(elapsed: float, virtual: float) -> str:
    return f"provision workflow  (wall {elapsed:4.1f} s, sandbox clock +{virtual / 60:5.1f} min)"


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
    from mlplane_sandbox.options import Options
    from mlplane_sandbox.runner import Sandbox
    from mlplane_sandbox.template import project_root

    path = event_file or project_root() / "events" / "controltower" / "create_managed_account_succeeded.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    started = time.monotonic()
    with Sandbox(Options()) as sandbox:
        order = states_in_order(sandbox.definitions["provision"])
        begin = clock.clock().now()
        with Live(states_table(order, {}, _title(0.0, 0.0)), console=console, refresh_per_second=8) as live:

            def update(arns: list[str]) -> None:
                history = [e for arn in arns for e in sandbox.history(arn)]
                title = _title(time.monotonic() - started, clock.clock().now() - begin)
                live.update(states_table(order, progress(history), title))

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
    console.print(f"in the member account now: {counted(result.inventory)}", markup=False)
    console.print(f"AWS calls made by mlplane: {len(result.api_calls)}; leftovers: {len(result.leftovers)}")
    console.print(f"next: {NEXT_STEPS.get(result.outcome, '')}", markup=False)
    return 0 if result.outcome in EXIT_OK else 1
