"""A burst: N accounts vended at once, through EventBridge, in one sandbox (`mlplane local burst N`).

Each account gets a Control Tower `CreateManagedAccount` SUCCEEDED event of the sample's shape; the accounts
are placed in the organization as Control Tower leaves them, every event is put on the sandbox's EventBridge
before any execution is waited for, and then all executions run side by side (moto runs each in its own
threads). The report gives each outcome's count and two isolation checks:

- `cidr_overlaps`: pairs of accounts whose VPCs are connected (attached to the same transit gateway) and
  whose blocks overlap: addresses that must be unique. The target is 0. In egress mode `nat` every account
  gets the same 10.10.0.0/21 + 10.64.0.0/18 by design, in VPCs that are never connected, so they cannot
  conflict; in mode `tgw` each account gets its own slot of the CIDR pool. A mixed fleet (`ous`: accounts
  spread over OUs with different network blueprints) counts the same way: only accounts on one gateway can
  conflict, and each tgw blueprint's pool is its own (or disjoint from the others on its gateway).
- `cross_talk`: resources in one account's inventory tagged `mlplane:account=<another account>`, or a READY
  account whose VPC is missing or not tagged with its own id. The target is 0 in every mode.

Account ids are obviously fake and made at run time: 200000000000, 200000000001, ...
"""

from __future__ import annotations

import ipaddress
import json
import os
import resource
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

from mlplane.aws import new_session
from mlplane.member import ACCOUNT_TAG
from mlplane.network import blueprint
from mlplane_sandbox import interceptor, recording
from mlplane_sandbox.inventory import TAGGED_SECTIONS
from mlplane_sandbox.options import Options, UsageError
from mlplane_sandbox.recording import ApiCall
from mlplane_sandbox.runner import RunResult, Sandbox
from mlplane_sandbox.world import HUB_ACCOUNT

BASE_ACCOUNT = 200_000_000_000
_EVENT_NAMESPACE = uuid.UUID("6d1f7a52-0c4e-4e0b-9a51-6d6c6e616e65")  # any fixed UUID: event ids are stable
_TAGGED_SECTIONS = TAGGED_SECTIONS


def account_ids(count: int, *, base: int = BASE_ACCOUNT) -> list[str]:
    """`count` obviously fake, deterministic 12-digit account ids."""
    return [f"{base + i:012d}" for i in range(count)]


def control_tower_event(account_id: str, *, ou_name: str, ou_id: str, hub_account: str, region: str) -> dict[str, Any]:
    """A CreateManagedAccount SUCCEEDED event for `account_id`, shaped like the sample in events/controltower/."""
    event_id = str(uuid.uuid5(_EVENT_NAMESPACE, f"event/{account_id}"))
    moment = "2026-11-23T10:15:30Z"
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "AWS Service Event via CloudTrail",
        "source": "aws.controltower",
        "account": hub_account,
        "time": moment,
        "region": region,
        "resources": [],
        "detail": {
            "eventVersion": "1.08",
            "userIdentity": {"accountId": hub_account, "invokedBy": "AWS Internal"},
            "eventTime": moment,
            "eventSource": "controltower.amazonaws.com",
            "eventName": "CreateManagedAccount",
            "awsRegion": region,
            "sourceIPAddress": "AWS Internal",
            "userAgent": "AWS Internal",
            "requestParameters": None,
            "responseElements": None,
            "eventID": str(uuid.uuid5(_EVENT_NAMESPACE, f"cloudtrail/{account_id}")),
            "readOnly": False,
            "eventType": "AwsServiceEvent",
            "managementEvent": True,
            "recipientAccountId": hub_account,
            "eventCategory": "Management",
            "serviceEventDetails": {
                "createManagedAccountStatus": {
                    "organizationalUnit": {"organizationalUnitName": ou_name, "organizationalUnitId": ou_id},
                    "account": {"accountName": f"ml-burst-{account_id}", "accountId": account_id},
                    "state": "SUCCEEDED",
                    "message": "AWS Control Tower successfully created an enrolled account.",
                    "requestedTimestamp": "Mon Nov 23 10:01:12 UTC 2026",
                    "completedTimestamp": "Mon Nov 23 10:15:29 UTC 2026",
                }
            },
        },
    }


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # macOS: bytes; Linux: KiB


@dataclass
class Burst:
    """What a burst did: one RunResult per account, every recorded call, the wall time."""

    egress_mode: str
    accounts: list[str]
    results: dict[str, RunResult]
    blueprints: dict[str, str] = field(default_factory=dict)  # account -> the network blueprint it was built with
    calls: list[ApiCall] = field(default_factory=list)
    wall_seconds: float = 0.0  # the whole burst, sandbox set-up included
    run_seconds: float = 0.0  # from the first event put to the last execution ended
    run_stats: interceptor.CallStats = field(default_factory=interceptor.CallStats)  # the calls of that window
    probe: Any = None  # what `run_burst(probe=...)` measured inside the sandbox afterwards

    def outcomes(self) -> dict[str, int]:
        return dict(sorted(Counter(r.outcome for r in self.results.values()).items()))

    def blueprint_counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.blueprints.values()).items()))

    def connected_accounts(self) -> int:
        """Accounts attached to a transit gateway (the ones whose CIDRs must be unique on it)."""
        return sum(1 for r in self.results.values() if r.inventory.get("transit_gateway_attachments"))

    def cidr_overlaps(self) -> int:
        """Pairs of connected accounts (a shared transit gateway) with at least one overlapping VPC block."""
        networks = [
            (
                {a["transit_gateway_id"] for a in r.inventory.get("transit_gateway_attachments", [])},
                [ipaddress.ip_network(c) for vpc in r.inventory.get("vpcs", []) for c in vpc["cidrs"]],
            )
            for r in self.results.values()
        ]
        return sum(
            1
            for i, (my_tgws, mine) in enumerate(networks)
            for their_tgws, theirs in networks[i + 1 :]
            if my_tgws & their_tgws and any(a.overlaps(b) for a in mine for b in theirs)
        )

    def cross_talk(self) -> list[str]:
        """One line per isolation breach: a resource tagged for another account, or a READY account's VPC
        missing or tagged for someone else."""
        found: list[str] = []
        for account, result in self.results.items():
            for section in _TAGGED_SECTIONS:
                for item in result.inventory.get(section, []):
                    owner = item.get("tags", {}).get(ACCOUNT_TAG)
                    if owner is not None and owner != account:
                        found.append(f"{account}: {section} {item.get('id') or item.get('name')} tagged for {owner}")
            if result.outcome == "READY":
                owners = [v.get("tags", {}).get(ACCOUNT_TAG) for v in result.inventory.get("vpcs", [])]
                if owners != [account]:
                    found.append(f"{account}: READY with VPCs tagged for {owners}")
        return found

    def member_calls(self, account_id: str) -> list[ApiCall]:
        """The calls mlplane made inside one member account."""
        return [c for c in self.calls if c.account_id == account_id]

    @property
    def ok(self) -> bool:
        """Every account READY, no cross-talk, no overlapping CIDRs between connected accounts."""
        all_ready = all(r.outcome == "READY" for r in self.results.values())
        return all_ready and self.cidr_overlaps() == 0 and not self.cross_talk()

    def as_json(self) -> dict[str, Any]:
        return {
            "accounts": len(self.accounts),
            "outcomes": self.outcomes(),
            "cidr_overlaps": self.cidr_overlaps(),
            "cross_talk": len(self.cross_talk()),
            "egress_mode": self.egress_mode,
            "blueprints": self.blueprint_counts(),
            "connected_accounts": self.connected_accounts(),
            "wall_seconds": round(self.wall_seconds, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1),
        }


def run_burst(
    count: int,
    options: Options | None = None,
    *,
    base: int = BASE_ACCOUNT,
    probe: Callable[[Sandbox], Any] | None = None,
    ous: Sequence[str] = (),
) -> Burst:
    """Vend `count` accounts at once through EventBridge in one sandbox and read every account back.

    `ous`: the OUs the accounts are spread over, in turn (a mixed fleet, N6); default the first allowed OU.
    `probe`, if given, runs in the same sandbox once the accounts are read back (the bench's cost probes)."""
    if count < 1:
        raise ValueError("a burst needs at least one account")
    started = time.perf_counter()
    ids = account_ids(count, base=base)
    with _lighter_moto(), Sandbox(options or Options()) as sandbox:
        settings = sandbox.settings
        spread = list(ous) or [settings.allowed_ous[0]]
        unknown = [ou for ou in spread if ou not in settings.allowed_ous]
        if unknown:
            raise UsageError(f"--ous: {unknown[0]!r} is not in allowed_ous ({', '.join(settings.allowed_ous)})")
        placed = {account_id: spread[i % len(spread)] for i, account_id in enumerate(ids)}
        for account_id, ou_name in placed.items():
            sandbox.world.place_account(account_id, ou_name, role_name=settings.member_role_name)
        events = [
            control_tower_event(
                account_id,
                ou_name=ou_name,
                ou_id=sandbox.world.ou(ou_name),
                hub_account=HUB_ACCOUNT,
                region=settings.aws_region,
            )
            for account_id, ou_name in placed.items()
        ]
        first_call = recording.mark()
        known = sandbox._execution_arns()
        interceptor.reset_stats()
        put_at = time.perf_counter()
        sandbox.put_events(events)
        executions = sandbox._wait_new(known)
        run_seconds = time.perf_counter() - put_at
        run_stats = interceptor.stats()
        interceptor.reset_stats()
        by_account: dict[str, list[dict[str, Any]]] = {account_id: [] for account_id in ids}
        for execution in executions:
            owner = _account_of(execution)
            if owner in by_account:
                by_account[owner].append(execution)
        calls = recording.since(first_call)
        no_calls = recording.mark()  # each RunResult's own api_calls would be every account's: leave them out
        results = {account_id: sandbox._result(account_id, by_account[account_id], no_calls) for account_id in ids}
        ledger = sandbox.ledger()
        blueprints = {account_id: blueprint.built_with(ledger, account_id) for account_id in ids}
        modes = {settings.network_for(name).egress_mode for name in blueprints.values()} or {settings.egress_mode}
        egress_mode = modes.pop() if len(modes) == 1 else "mixed"
        measured = probe(sandbox) if probe is not None else None
    return Burst(
        egress_mode=egress_mode,
        accounts=ids,
        results=results,
        blueprints=blueprints,
        calls=calls,
        wall_seconds=time.perf_counter() - started,
        run_seconds=run_seconds,
        run_stats=run_stats,
        probe=measured,
    )


@contextmanager
def _lighter_moto() -> Iterator[None]:
    """Two moto costs that grow with the number of accounts and that mlplane never exercises (measured on
    50 accounts in tgw mode: 276 s and 1.0 GB -> 198 s and 0.6 GB):

    - every new account's EC2 backend loads moto's catalogue of default AMIs (memory and time);
    - EKS validates each role ARN with a fresh boto3 Session, re-reading botocore's endpoints.json (the
      vendor simulator creates a cluster and two node groups per account): one shared session instead.
    """
    import moto.eks.utils

    shared = new_session()
    with (
        mock.patch.dict(os.environ, {"MOTO_EC2_LOAD_DEFAULT_AMIS": "false"}),
        mock.patch.object(moto.eks.utils, "Session", lambda: shared),
    ):
        yield


def _account_of(execution: dict[str, Any]) -> str | None:
    """The account an execution provisions, from the event it was started with."""
    try:
        raw = json.loads(execution.get("input") or "{}")
    except json.JSONDecodeError:
        return None
    status = raw.get("detail", {}).get("serviceEventDetails", {}).get("createManagedAccountStatus") or {}
    account = status.get("account", {}).get("accountId")
    return str(account) if account else None
