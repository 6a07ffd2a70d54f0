"""boto3's list of a service's regions, read once per process through mlplane's shared model loader.

moto asks for it when its modules are imported, with a new `boto3.Session()` each time (moto.ec2 three
times, one per partition): each new session has a loader of its own, which reads and parses the service's
whole JSON model again (EC2's: about 0.1 s) to find its endpoint prefix. The answer is botocore's data, the same
for the whole process. This must be installed before moto's service modules are imported (the package's
`__init__` does it), and it changes no answer.
"""

from __future__ import annotations

import functools

import boto3.session

from mlplane.aws import new_session

_original = boto3.session.Session.get_available_regions


@functools.cache
def _regions(service_name: str, partition_name: str, allow_non_regional: bool) -> tuple[str, ...]:
    return tuple(_original(new_session(), service_name, partition_name, allow_non_regional))


def _get_available_regions(
    self: boto3.session.Session, service_name: str, partition_name: str = "aws", allow_non_regional: bool = False
) -> list[str]:
    return list(_regions(service_name, partition_name, allow_non_regional))


def install() -> None:
    """Idempotent."""
    boto3.session.Session.get_available_regions = _get_available_regions  # type: ignore[method-assign]
