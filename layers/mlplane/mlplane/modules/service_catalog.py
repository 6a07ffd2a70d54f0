"""M2, self-service SageMaker instances through Service Catalog (seed 003): a placeholder until it is built.

Enabled or not, it does nothing and makes no AWS call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlplane.modules.base import Module
from mlplane.steps import StepOutput

if TYPE_CHECKING:
    from mlplane.changes import PlannedChange
    from mlplane.config import Settings
    from mlplane.member import Member


def check(member: Member, settings: Settings) -> None:
    del member, settings


def plan(member: Member, settings: Settings) -> list[PlannedChange]:
    del member, settings
    return []


def apply(member: Member, settings: Settings) -> StepOutput:
    del member, settings
    return StepOutput()


MODULE = Module(name="service_catalog", check=check, plan=plan, apply=apply, handlers={})
