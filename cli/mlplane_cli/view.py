"""The live view of a workflow's states, from its execution history: `mlplane demo` and `mlplane watch`."""

from __future__ import annotations

from typing import Any

from rich.table import Table

_MARK = {"running": "[yellow]>[/yellow]", "done": "[green]✓[/green]", "failed": "[red]✗[/red]", "": " "}


def states_in_order(definition: dict[str, Any]) -> list[str]:
    """The states that do work, in definition order (a Parallel's branches indented); Choice states only route."""
    names: list[str] = []
    for name, state in definition["States"].items():
        if state["Type"] == "Choice":
            continue
        names.append(name)
        for branch in state.get("Branches", []):
            names.extend(f"  {inner}" for inner, s in branch["States"].items() if s["Type"] != "Choice")
    return names


def progress(history: list[dict[str, Any]]) -> dict[str, tuple[str, int]]:
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


def states_table(order: list[str], progress: dict[str, tuple[str, int]], title: str) -> Table:
    """One row per state of the definition: its mark (running, done, failed) and how often it ran."""
    table = Table(title=title)
    table.add_column("")
    table.add_column("state")
    table.add_column("runs", justify="right")
    for name in order:
        status, count = progress.get(name.strip(), ("", 0))
        table.add_row(_MARK[status], name, str(count) if count else "")
    return table
