"""One line of `mlplane plan`: what provisioning would do to one resource, decided by read-only calls."""

from typing import Literal

from pydantic import BaseModel, ConfigDict

Action = Literal["create", "keep", "change", "refuse", "wait"]
"""create: absent, would be made; keep: there as planned; change: there, would be corrected (what, in
`detail`); refuse: there and in the way (not mlplane's), the run would stop; wait: depends on the vendor."""


class PlannedChange(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    domain: Literal["network", "iam", "kms", "quotas", "canvas", "service_catalog"]  # the modules: their names
    type: str  # the ledger type (ec2:subnet, iam:user, ...)
    key: str  # the plan key
    action: Action
    id: str | None = None  # what exists now
    detail: str = ""
