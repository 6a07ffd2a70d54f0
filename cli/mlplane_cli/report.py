"""Human-readable output of a sandbox run (without --json)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlplane_sandbox.recording import is_mutating

console = Console(stderr=False)

EXIT_OK = frozenset({"READY", "DEPROVISIONED", "IGNORED"})
"""The outcomes `local run` and `demo` exit 0 with; any other outcome exits 1."""

_SECTIONS = (
    "vpcs",
    "subnets",
    "route_tables",
    "internet_gateways",
    "nat_gateways",
    "vpc_endpoints",
    "transit_gateway_attachments",
    "iam_users",
    "iam_policies",
    "kms_keys",
    "quota_requests",
    "eks_clusters",
)


def created_counts(inventory: dict[str, Any]) -> dict[str, int]:
    return {section: len(inventory.get(section, [])) for section in _SECTIONS if inventory.get(section)}


def print_summary(label: str, result: Any) -> None:
    colour = "green" if result.outcome in ("READY", "DEPROVISIONED", "IGNORED") else "red"
    console.print(f"[bold]{label}[/bold]: account {result.account_id} -> [{colour}]{result.outcome}[/{colour}]")
    for execution in result.executions:
        console.print(f"  execution {execution['name']} ({execution['state_machine']}): {execution['status']}")
    if result.error:
        console.print(f"  error: {result.error['type']}: {result.error['message']}")
    table = Table(title="member account after the run", show_header=True)
    table.add_column("resource")
    table.add_column("count", justify="right")
    for section, count in created_counts(result.inventory).items():
        table.add_row(section, str(count))
    console.print(table)
    calls = Counter(c["call"] for c in result.api_calls)
    mutating = sum(n for call, n in calls.items() if is_mutating(call))
    console.print(
        f"  AWS calls by mlplane: {len(result.api_calls)} ({mutating} mutating); leftovers: {len(result.leftovers)}"
    )


_ACTION_STYLE = {"create": "green", "change": "yellow", "keep": "dim", "refuse": "red", "wait": "cyan"}


def print_plan(document: dict[str, Any]) -> None:
    """The verdict, then one row per resource (what a run would do to it), then the counts, like a diff."""
    verdict, reason = document["verdict"], document.get("reason") or ""
    colour = {"PROVISION": "green", "NOTHING_TO_DO": "green", "RESUME": "yellow"}.get(verdict, "red")
    where = f"account {document['account_id']} ({document['region']})"
    console.print(f"[bold]{where}[/bold]: [{colour}]{verdict}[/{colour}]" + (f" — {escape(reason)}" if reason else ""))
    if not document.get("changes"):
        return
    network = document["network"]
    console.print(
        f"  egress {network['egress_mode']}, VPC {network['vpc']['name']} {network['vpc']['cidr']} + "
        f"{network['vpc']['secondary_cidr']}, AZs {', '.join(network['azs'])}"
    )
    ids = any(change["id"] for change in document["changes"])  # a fresh account has none: no empty column
    table = Table(show_header=True, box=None, pad_edge=False)
    for column in ("", "type", "key", *(("id",) if ids else ()), "detail"):
        table.add_column(column, overflow="fold")
    for change in document["changes"]:
        style = _ACTION_STYLE[change["action"]]
        row = [f"[{style}]{change['action']}[/{style}]", change["type"], escape(change["key"])]
        table.add_row(*row, *((change["id"] or "",) if ids else ()), escape(change["detail"]))
    console.print(table)
    counts = document["summary"]
    console.print(
        f"Plan: {counts['create']} to create, {counts['change']} to change, {counts['keep']} to keep, "
        f"{counts['refuse']} refused, {counts['wait']} waiting on the vendor or AWS."
    )


def print_accounts(listed: list[dict[str, Any]]) -> None:
    """`mlplane accounts` without --json: one row per account."""
    if not listed:
        console.print("no accounts in the ledger match")
        return
    table = Table(title=f"{len(listed)} accounts in the ledger", show_header=True)
    for column in ("account", "status", "OU", "execution", "since", "last error", "deferred / held"):
        table.add_column(column, overflow="fold")
    for row in listed:
        kept = [f"deferred {d['type']} {d['id']}" for d in row["deferred"]]
        kept += [f"held {h['type']} {h['id']}" for h in row["held"]]
        table.add_row(
            row["account_id"],
            row["status"],
            row["ou"] or "",
            row["execution"],
            row["since"],
            escape(row["error"] or ""),
            escape("; ".join(kept)),
        )
    console.print(table)
