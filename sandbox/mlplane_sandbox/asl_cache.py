"""moto's Step Functions parses a definition with ANTLR on CreateStateMachine and again on every StartExecution,
about a second each for provision.asl.json: most of a short sandbox run. The sandbox keeps each definition's
parse tree (the ANTLR part; read-only once built) and builds a fresh program from it for every call, which
is what moto's parse returns, so no execution shares evaluation state with another. A definition that does
not parse is never cached: the error comes from moto's own parse, each time.

CreateStateMachine validates by parsing and throws the program away: a text whose tree is cached parsed
once, and parses again (the parse is a function of the text), so each sandbox's deploy of the same four
definitions skips building four programs nobody runs.
"""

from __future__ import annotations

import threading
from typing import Any

from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor
from moto.stepfunctions.parser.models import StepFunctionsParserBackend

_original = AmazonStateLanguageParser.parse
_original_validate = StepFunctionsParserBackend._validate_definition
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


def _validate_definition(definition: str) -> None:
    with _lock:
        if definition in _trees:  # only a definition that parsed has a tree
            return
    _original_validate(definition)  # moto's parse (`_parse`, which keeps the tree) or its InvalidDefinition


def install() -> None:
    """Idempotent; the cache lives as long as the process (definitions are keyed by their whole text)."""
    AmazonStateLanguageParser.parse = staticmethod(_parse)  # type: ignore[method-assign]
    StepFunctionsParserBackend._validate_definition = staticmethod(_validate_definition)  # type: ignore[method-assign]
