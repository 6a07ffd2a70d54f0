"""Human-readable output of a sandbox run (without --json)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlplane_sandbox.inventory import SECTIONS
from mlplane_sandbox.recording import is_mutating


def _console() -> Console:
    """A console for this command's output, sized when it prints (COLUMNS, the terminal): one made at import
    would keep the size of whatever environment first imported the module (Rich fixes COLUMNS and LINES it
    finds then), which outlives one command when the CLI runs in-process (typer's test runner)."""
    return Console(stderr=False)


EXIT_OK = frozenset({"READY", "DEPROVISIONED", "IGNORED"})
"""The outcomes `local run` and `demo` exit 0 with; any other outcome exits 1."""

_SECTIONS = SECTIONS
_MLPLANE_TAG = "mlplane:managed"
_VENDOR_ROLE_PREFIXES = ("aac-", "credential-service-role")

# What to do next, by outcome (the human summary's last line).
NEXT_STEPS = {
    "READY": "the AAC admin can use the account; `mlplane status ACCOUNT` shows what mlplane recorded",
    "IGNORED": "nothing to do: no workflow was started for this input",
    "REJECTED": "nothing was changed: fix what the error names, then run again",
    "ROLLED_BACK": "everything mlplane made was removed: fix what the error names, then `mlplane provision ACCOUNT`",
    "ROLLBACK_INCOMPLETE": "what is left is named above: remove or unblock it, then `mlplane deprovision ACCOUNT`",
    "ROLLBACK_HELD": "the vendor's data plane is in the account: retry it in AAC and `mlplane resume ACCOUNT`, or "
    "remove it in AAC and `mlplane deprovision ACCOUNT`",
    "DEPROVISIONED": "the account holds nothing of mlplane's but what AWS keeps for a while (listed above)",
}


def created_counts(inventory: dict[str, Any]) -> dict[str, int]:
    return {section: len(inventory.get(section, [])) for section in _SECTIONS if inventory.get(section)}


def counted(inventory: dict[str, Any]) -> str:
    """`12 subnets, 13 route tables (12 mlplane's + the VPC's main table), ...`: each count with what it counts."""
    parts = []
    for section, n in created_counts(inventory).items():
        note = whose(section, inventory[section])
        parts.append(f"{n} {section.replace('_', ' ')}" + (f" ({note})" if note else ""))
    return ", ".join(parts) or "nothing"


def whose(section: str, items: list[dict[str, Any]]) -> str:  # noqa: PLR0911 - one note per section
    """What a count counts: whose the resources are, where it is not all mlplane's."""
    if section == "route_tables":
        tagged = sum(1 for t in items if _MLPLANE_TAG in t.get("tags", {}))
        return f"{tagged} mlplane's + the VPC's main table" if tagged < len(items) else "mlplane's"
    if section in ("network_interfaces", "security_groups"):
        owners = Counter(str(i.get("owner", "?")) for i in items)
        return ", ".join(
            f"{n} {owner}'s" if owner != "aws" else f"{n} AWS's (the VPC default)" for owner, n in owners.items()
        )
    if section == "eks_clusters":
        return "the vendor's (AAC): never touched by mlplane"
    if section == "iam_roles":
        vendor = sum(1 for r in items if str(r.get("name", "")).startswith(_VENDOR_ROLE_PREFIXES))
        parts = [f"{vendor} the vendor's"] if vendor else []
        if vendor < len(items):
            parts.append(f"{len(items) - vendor} the account's own (its execution role)")
        return ", ".join(parts)
    if section == "canvas":
        kinds = Counter(str(i.get("kind", "?")) for i in items)
        return ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) + " (the Canvas module)"
    if section == "kms_keys":
        return ", ".join(sorted({str(k.get("state", "")) for k in items}))
    return ""


def print_summary(label: str, result: Any, why: str = "") -> None:
    """A run in words: the outcome (and why, for IGNORED), the member account after it with what each count
    counts, what AWS keeps by its own rules, and what to do next."""
    console = _console()
    colour = "green" if result.outcome in EXIT_OK else "red"
    console.print(f"[bold]{label}[/bold]: account {result.account_id} -> [{colour}]{result.outcome}[/{colour}]")
    if why:
        console.print(f"  {escape(why)}")
    for execution in result.executions:
        console.print(f"  execution {execution['name']} ({execution['state_machine']}): {execution['status']}")
    if result.error:
        console.print(f"  error: {result.error['type']}: {escape(str(result.error['message']))}")
    table = Table(title="member account after the run", show_header=True)
    table.add_column("resource")
    table.add_column("count", justify="right")
    table.add_column("whose / state")
    for section, count in created_counts(result.inventory).items():
        table.add_row(section.replace("_", " "), str(count), whose(section, result.inventory[section]))
    if table.row_count:
        console.print(table)
    for item in result.deferred:
        console.print(f"  still there, by AWS's rules: {item['type']} {item['id']}: {escape(str(item['reason']))}")
    calls = Counter(c["call"] for c in result.api_calls)
    mutating = sum(n for call, n in calls.items() if is_mutating(call))
    console.print(
        f"  AWS calls by mlplane: {len(result.api_calls)} ({mutating} mutating); leftovers: {len(result.leftovers)}"
    )
    console.print(f"  next: {NEXT_STEPS.get(result.outcome, '')}", markup=False)


_ACTION_STYLE = {"create": "green", "change": "yellow", "keep": "dim", "refuse": "red", "wait": "cyan"}


def print_plan(document: dict[str, Any]) -> None:
    """The verdict, then one row per resource (what a run would do to it), then the counts, like a diff."""
    console = _console()
    verdict, reason = document["verdict"], document.get("reason") or ""
    colour = {"PROVISION": "green", "NOTHING_TO_DO": "green", "RESUME": "yellow"}.get(verdict, "red")
    where = f"account {document['account_id']} ({document['region']})"
    console.print(f"[bold]{where}[/bold]: [{colour}]{verdict}[/{colour}]" + (f" — {escape(reason)}" if reason else ""))
    if not document.get("changes"):
        return
    network = document["network"]
    blueprint = document.get("network_blueprint", {}).get("name", "default")
    console.print(
        f"  blueprint {escape(blueprint)}: egress {network['egress_mode']}, "
        f"VPC {network['vpc']['name']} {network['vpc']['cidr']} + {network['vpc']['secondary_cidr']}, "
        f"AZs {', '.join(network['azs'])}"
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
    console = _console()
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


_SEVERITY_STYLE = {"missing": "red", "drift": "yellow", "untracked": "magenta", "vendor": "dim"}


def print_audit(report: dict[str, Any]) -> None:
    """`mlplane audit` without --json: the verdict, then one row per finding."""
    console = _console()
    account = report["account_id"]
    if not report["audited"]:
        console.print(f"[bold]account {account}[/bold]: {report['status']}: not audited (nothing provisioned)")
        return
    from mlplane.accounts.audit import judged as judged_findings

    judged = judged_findings(report)
    vendor = len(report["findings"]) - len(judged)
    verdict = "[green]clean[/green]" if not judged else f"[red]{len(judged)} finding(s)[/red]"
    console.print(f"[bold]account {account}[/bold] ({report['status']}): {verdict}; {vendor} vendor resources reported")
    if not judged:
        return
    table = Table(show_header=True, box=None, pad_edge=False)
    for column in ("", "type", "key", "id", "expected", "actual"):
        table.add_column(column, overflow="fold")
    for finding in judged:
        style = _SEVERITY_STYLE[finding["severity"]]
        table.add_row(
            f"[{style}]{finding['severity']}[/{style}]",
            finding["type"],
            escape(finding["key"]),
            finding["id"] or "",
            escape(finding["expected"]),
            escape(finding["actual"]),
        )
    console.print(table)
