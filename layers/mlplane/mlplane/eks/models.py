"""What mlplane reads of the vendor's EKS cluster (REQUIREMENTS V1). mlplane never changes any of it (V2)."""

from typing import Literal

from pydantic import BaseModel, ConfigDict

FAILED_CLUSTER_STATUSES: frozenset[str] = frozenset({"FAILED"})
FAILED_NODEGROUP_STATUSES: frozenset[str] = frozenset({"CREATE_FAILED", "DEGRADED"})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class HealthIssue(_Model):
    code: str
    message: str = ""

    def text(self) -> str:
        return f"{self.code}: {self.message}" if self.message else self.code


class NodegroupView(_Model):
    name: str
    status: str
    issues: tuple[HealthIssue, ...] = ()


class ClusterView(_Model):
    name: str
    status: str
    issues: tuple[HealthIssue, ...] = ()
    nodegroups: tuple[NodegroupView, ...] = ()


class EksReadiness(_Model):
    """The verdict on the vendor's clusters at one poll."""

    state: Literal["absent", "waiting", "ready", "failed"]
    detail: str
