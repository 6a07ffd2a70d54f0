"""`mlplane local serve`: the sandbox as a local AWS endpoint, for real, unmodified AWS clients.

Each HTTP request is handed to the sandbox's in-process moto the way an in-process boto3 call reaches it:
through moto's `BotocoreStubber`, which the interceptor has patched. So an external client's call passes
the same fidelity rules, emulators (Service Quotas, CloudFormation's DescribeStacks of the deployed stack)
and vendor simulator as mlplane's handlers' calls, and an execution it starts runs the real ASL and
handlers. moto's own server mode (`moto.server`, Flask) dispatches straight to moto's response classes and
would bypass all of that.

The service and operation come from the request as AWS reads them: the SigV4 credential scope names the
region and signing name; `X-Amz-Target` (JSON protocols), `Action` (query protocols) or the HTTP method
and path (REST protocols) name the operation. The account is the one moto gives the access key (the hub,
123456789012, for any key it did not issue).
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import cache
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

import botocore.session
from botocore.awsrequest import AWSPreparedRequest
from botocore.compat import HTTPHeaders
from werkzeug.serving import BaseWSGIServer, make_server

from mlplane_sandbox import clock as clock_module
from mlplane_sandbox.options import Options, UsageError
from mlplane_sandbox.runner import Sandbox

# The services the sandbox plays (botocore model names).
SERVICES = (
    "stepfunctions",
    "dynamodb",
    "cloudformation",
    "lambda",
    "sts",
    "organizations",
    "ec2",
    "iam",
    "kms",
    "sns",
    "events",
    "eks",
    "ram",
    "service-quotas",
)
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/([a-z0-9-]+)/aws4_request")
# Hop-by-hop or recomputed here; moto's answers sometimes carry a `status` pseudo-header too.
_DROPPED_HEADERS = {"content-length", "status", "transfer-encoding", "connection", "server", "date"}

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True)
class Service:
    model_name: str
    service_id: str  # botocore's hyphenated service id, as in its event names (`sfn`, `service-quotas`)
    endpoint_prefix: str
    protocol: str
    model: Any

    def operation(self, method: str, path: str, headers: HTTPHeaders, body: bytes, query: str) -> str | None:
        if self.protocol.startswith("json"):
            target = headers.get("X-Amz-Target", "")
            return target.rpartition(".")[2] or None
        if self.protocol in ("query", "ec2"):
            fields = parse_qs(query) | parse_qs(body.decode("utf-8", errors="replace"))
            return fields.get("Action", [None])[0]
        return _rest_operation(self.model, method, path)


@cache
def _services() -> dict[str, Service]:
    """Signing name -> the service (the credential scope names a service by its signing name)."""
    session = botocore.session.get_session()
    found: dict[str, Service] = {}
    for name in SERVICES:
        model = session.get_service_model(name)  # the model alone: no client, no credentials
        found[model.signing_name] = Service(
            name, model.service_id.hyphenize(), model.endpoint_prefix, model.metadata["protocol"], model
        )
    return found


def _rest_operation(model: Any, method: str, path: str) -> str | None:
    """The REST operation whose method and request URI match (the most literal match wins)."""
    best: tuple[int, str] | None = None
    for name in model.operation_names:
        http = model.operation_model(name).http
        uri = str(http.get("requestUri", "/")).split("?")[0]
        if http.get("method") != method or not re.fullmatch(_uri_pattern(uri), path):
            continue
        literal = len(re.sub(r"\{[^}]+\}", "", uri))
        if best is None or literal > best[0]:
            best = (literal, name)
    return best[1] if best else None


def _uri_pattern(uri: str) -> str:
    """A request URI template (`/clusters/{name}`, `/{Key+}`) as a regular expression for the path."""
    parts = re.split(r"(\{[^}]+\})", uri)
    return "".join((".+" if p.endswith("+}") else "[^/]+") if p.startswith("{") else re.escape(p) for p in parts) + "/?"


def _error(start_response: StartResponse, status: int, message: str) -> list[bytes]:
    body = message.encode()
    start_response(
        f"{status} {HTTPStatus(status).phrase}",
        [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))],
    )
    return [body]


def application(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
    """WSGI: one AWS API request, answered by the sandbox."""
    from moto.core.models import botocore_stubber

    method = str(environ["REQUEST_METHOD"])
    path = str(environ.get("PATH_INFO", "/")) or "/"
    query = str(environ.get("QUERY_STRING", ""))
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body: bytes = environ["wsgi.input"].read(length) if length else b""
    headers = HTTPHeaders()
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers[key[5:].replace("_", "-").title()] = value
    if environ.get("CONTENT_TYPE"):
        headers["Content-Type"] = environ["CONTENT_TYPE"]
    scope = _SCOPE.search(headers.get("Authorization", ""))
    if scope is None:
        return _error(start_response, 403, "MissingAuthenticationToken: sign the request (SigV4); any keys do")
    region, signing_name = scope.groups()
    service = _services().get(signing_name)
    if service is None:
        return _error(start_response, 400, f"the sandbox does not play {signing_name!r}")
    operation = service.operation(method, path, headers, body, query)
    if operation is None:
        return _error(start_response, 400, f"{service.service_id}: cannot tell the operation of {method} {path}")
    url = f"https://{service.endpoint_prefix}.{region}.amazonaws.com{path}" + (f"?{query}" if query else "")
    request = AWSPreparedRequest(method=method, url=url, headers=headers, body=body, stream_output=False)
    response = botocore_stubber(f"before-send.{service.service_id}.{operation}", request)
    if response is None:
        return _error(start_response, 404, f"{service.service_id}:{operation} is not played by the sandbox")
    content: bytes = response.content
    answer = [(k, str(v)) for k, v in response.headers.items() if k.lower() not in _DROPPED_HEADERS]
    answer.append(("Content-Length", str(len(content))))
    start_response(f"{response.status_code} {HTTPStatus(response.status_code).phrase}", answer)
    return [content]


class Ticker:
    """Keeps the sandbox clock moving while nothing waits: `speed` virtual seconds per real second."""

    def __init__(self, speed: float, *, interval: float = 0.1) -> None:
        self.speed = speed
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sandbox-clock", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            clock_module.clock().advance(self.speed * self.interval)

    def start(self) -> None:
        if self.speed > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class Endpoint:
    """The sandbox's HTTP endpoint on `host:port` (port 0: any free port), served from a thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        # Bound here, so that a port in use is an OSError to report (werkzeug would print and exit).
        self._socket = socket.create_server((host, port))
        bound = self._socket.getsockname()[1]
        self._server: BaseWSGIServer = make_server(host, bound, application, threaded=True, fd=self._socket.fileno())
        self._thread = threading.Thread(target=self._server.serve_forever, name="sandbox-endpoint", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join()
        self._server.server_close()
        self._socket.close()


DEFAULT_ACCOUNTS = ("111111111111",)  # the account events/manual/start.json names


def serve(
    options: Options,
    *,
    port: int,
    speed: float,
    accounts: Iterable[str] = DEFAULT_ACCOUNTS,
    ready: Callable[[Endpoint, Sandbox], None],
    stop: threading.Event,
) -> None:
    """Deploy the stack in a sandbox, place `accounts` as vended ones, serve it on `port` until `stop`."""
    try:  # bound first: a port in use fails before the stack is deployed
        endpoint = Endpoint(port=port)
    except OSError as err:
        raise UsageError(f"--port {port}: {err.strerror or err}") from None
    with Sandbox(options) as sandbox:
        for account_id in accounts:
            sandbox.world.place_account(account_id, "Workloads", role_name=sandbox.settings.member_role_name)
        ticker = Ticker(speed)
        endpoint.start()
        ticker.start()
        try:
            ready(endpoint, sandbox)
            stop.wait()
        finally:
            ticker.stop()
            endpoint.stop()
