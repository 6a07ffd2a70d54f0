"""M2: self-service SageMaker notebook instances through Service Catalog (seed 003).

`MODULE` is its entry in `mlplane.modules.MODULES`. The names `apply` (the AWS calls) and `product` (the
template and the launch role, pure) stay the submodules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlplane.modules.base import Module
from mlplane.modules.service_catalog import apply as _apply
from mlplane.steps import StepOutput

if TYPE_CHECKING:
    from mlplane.changes import PlannedChange
    from mlplane.config import Settings
    from mlplane.member import Member


def check_module(member: Member, settings: Settings) -> None:
    del member, settings


def plan_module(member: Member, settings: Settings) -> list[PlannedChange]:
    del member, settings
    return []


def apply_module(member: Member, settings: Settings) -> StepOutput:
    del member, settings  # wired to apply.run with its settings in the next commit
    return StepOutput()


MODULE = Module(
    name="service_catalog", check=check_module, plan=plan_module, apply=apply_module, handlers=_apply.HANDLERS
)
