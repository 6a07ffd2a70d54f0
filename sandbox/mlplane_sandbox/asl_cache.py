"""moto's Step Functions parses a definition with ANTLR on CreateStateMachine and again on every StartExecution,
about a second each for provision.asl.json: most of a short sandbox run. The sandbox keeps each definition's
parse tree (the ANTLR part; read-only once built) and builds a fresh program from it for every call, which
is what moto's parse returns, so no execution shares evaluation state with another. A definition that does
not parse is never cached: the error comes from moto's own parse, each time.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

_original = AmazonStateLanguageParser.parse
_trees: dict[str, Any] = {}
_lock = threading.Lock()


def _parse(definition: str) -> tuple[Any, Any]:
    with _lock:
        tree = _trees.get(definition)
    if tree is None:
        program, tree = _original(definition)
        with _lock:
            _trees[definition] = tree
        return program, tree
    return Preprocessor().visit(tree), tree


def install() -> None:
    """Idempotent; the cache lives as long as the process (definitions are keyed by their whole text)."""
    AmazonStateLanguageParser.parse = staticmethod(_parse)  # type: ignore[method-assign]
