"""Lambda's GetFunctionConfiguration for the functions the sandbox deploys from template.yaml.

The sandbox runs the handlers in-process (mlplane_sandbox.lambdas) and never creates them in moto's Lambda,
which would need Docker to invoke them; this answers an operator's client that reads a function's settings
(`mlplane plan|audit --endpoint-url …` read ValidateAccount's environment, as they do from a deployed stack).
The shape follows botocore's model (botocore/data/lambda/2015-03-31/service-2.json: FunctionConfiguration,
GET /2015-03-31/functions/{FunctionName}/configuration); FunctionName is a name, an ARN or a partial ARN
(`123456789012:function:NAME`), optionally with `:QUALIFIER`; an unknown function is
`ResourceNotFoundException` "Function not found: ARN" (HTTP 404), as Lambda answers it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any
from urllib.parse import unquote

from mlplane_sandbox.lambdas import Function
from mlplane_sandbox.rules import AwsError, Call, emulate

SERVICE = "lambda"
RUNTIME = "python3.13"  # template.yaml Globals: the sandbox runs the handlers with this machine's Python
ARCHITECTURE = "arm64"

_lock = threading.Lock()
_functions: dict[str, Function] = {}


def reset() -> None:
    with _lock:
        _functions.clear()


def publish(functions: Iterable[Function]) -> None:
    """These functions are deployed (Active), by name."""
    with _lock:
        _functions.clear()
        _functions.update({f.name: f for f in functions})


def _name(function_name: str) -> str:
    # arn:aws:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER], ACCOUNT:function:NAME, or NAME[:QUALIFIER].
    parts = function_name.split(":")
    if "function" in parts:
        return parts[parts.index("function") + 1]
    return parts[0]


@emulate(SERVICE, "GetFunctionConfiguration")
def get_function_configuration(call: Call) -> dict[str, Any]:
    wanted = unquote(str(call.params.get("__path", "")).split("/")[3])
    with _lock:
        function = _functions.get(_name(wanted))
    if function is None:
        arn = f"arn:aws:lambda:{call.region}:{call.account_id}:function:{_name(wanted)}"
        raise AwsError("ResourceNotFoundException", f"Function not found: {arn}", 404)
    return {
        "FunctionName": function.name,
        "FunctionArn": function.arn,
        "Runtime": RUNTIME,
        "Role": f"arn:aws:iam::{call.account_id}:role/{function.name}-role",
        "Handler": function.handler,
        "Timeout": function.timeout,
        "MemorySize": function.memory,
        "Environment": {"Variables": dict(function.environment)},
        "Architectures": [ARCHITECTURE],
        "PackageType": "Zip",
        "State": "Active",
        "LastUpdateStatus": "Successful",
        "Version": "$LATEST",
    }
