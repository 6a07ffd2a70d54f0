"""Annotated types shared by the models of every domain."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from pydantic import AfterValidator, StringConstraints


def _check_cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as err:
        raise ValueError(f"{value!r} is not a valid IPv4 CIDR block") from err
    return str(network)


AccountId = Annotated[str, StringConstraints(pattern=r"^[0-9]{12}$")]
"""A 12-digit AWS account id: ASCII digits only (a Unicode digit class accepts fullwidth or Arabic digits)."""

Cidr = Annotated[str, AfterValidator(_check_cidr)]
"""An IPv4 CIDR block with no host bits set."""

BlueprintName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,64}$")]
"""A network blueprint's name (`network_blueprints`, or `default`: the global network settings)."""

ExecutionName = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z_-]{1,80}$")]
"""A Step Functions execution name."""

Region = Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[a-z]+)+-[0-9]$")]
