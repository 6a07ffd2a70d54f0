"""template.yaml as the sandbox deploys it: CloudFormation tags, parameters and the intrinsics mlplane uses."""

from __future__ import annotations

import copy
import re
import threading
from pathlib import Path
from typing import Any

import yaml

_SUB = re.compile(r"\$\{([A-Za-z0-9_:.]+)\}")


class _CfnLoader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _tag)


def project_root() -> Path:
    """The checkout that holds template.yaml (the sandbox runs the artifact that is deployed)."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "template.yaml").is_file() and (parent / "statemachines").is_dir():
            return parent
    raise FileNotFoundError("template.yaml not found above the sandbox package")


def parse_template(text: str) -> dict[str, Any]:
    """A CloudFormation template's YAML (short tags as their long forms)."""
    loaded = yaml.load(text, Loader=_CfnLoader)
    return dict(loaded)


_parsed: dict[tuple[Path, int, int], dict[str, Any]] = {}
_parsed_lock = threading.Lock()


def load_template(path: Path | None = None) -> dict[str, Any]:
    """A template file, parsed once per process while the file is unchanged (a sandbox deploys three and the
    YAML parse is ~0.2 s each); every caller gets its own copy to resolve and change."""
    path = (path or project_root() / "template.yaml").resolve()
    stat = path.stat()
    key = (path, stat.st_mtime_ns, stat.st_size)
    with _parsed_lock:
        parsed = _parsed.get(key)
    if parsed is None:
        parsed = parse_template(path.read_text(encoding="utf-8"))
        with _parsed_lock:
            _parsed[key] = parsed
    return copy.deepcopy(parsed)


class Resolver:
    """Resolves Ref, Fn::GetAtt, Fn::Sub and Fn::Join against parameters and the sandbox's resources."""

    def __init__(
        self,
        *,
        parameters: dict[str, Any],
        refs: dict[str, Any],
        attrs: dict[str, Any],
        pseudo: dict[str, str],
        conditions: dict[str, Any] | None = None,
    ) -> None:
        self.parameters = parameters
        self.refs = refs
        self.attrs = attrs
        self.pseudo = pseudo
        self.condition_specs = conditions or {}

    def ref(self, name: str) -> Any:
        for source in (self.pseudo, self.parameters, self.refs):
            if name in source:
                return source[name]
        raise KeyError(f"template: unresolved Ref {name}")

    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.resolve(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, value),) = node.items()
            intrinsic = self._intrinsics().get(key)
            if intrinsic is not None:
                return intrinsic(value)
        return {k: self.resolve(v) for k, v in node.items()}

    def _intrinsics(self) -> dict[str, Any]:
        return {
            "Ref": self.ref,
            "Fn::GetAtt": lambda value: self.attrs[f"{value[0]}.{value[1]}"],
            "Fn::Join": self._join,
            "Fn::Sub": self._sub,
            "Fn::If": lambda value: self.resolve(value[1] if self.condition(value[0]) else value[2]),
            "Fn::Equals": lambda value: self.resolve(value[0]) == self.resolve(value[1]),
            "Fn::Not": lambda value: not self.resolve(value[0]),
            "Fn::And": lambda value: all(self.resolve(item) for item in value),
            "Fn::Or": lambda value: any(self.resolve(item) for item in value),
            "Condition": self.condition,
        }

    def condition(self, name: str) -> bool:
        """A template condition (Conditions section), evaluated against the parameters."""
        if name not in self.condition_specs:
            raise KeyError(f"template: unknown condition {name}")
        return bool(self.resolve(self.condition_specs[name]))

    def _sub(self, value: str | list[Any]) -> str:
        """Fn::Sub, in its string form or its [string, {name: value}] form."""
        text, local = (value, {}) if isinstance(value, str) else (value[0], self.resolve(value[1]))

        def name(match: re.Match[str]) -> str:
            key = match.group(1)
            return str(local[key] if key in local else self._sub_name(key))

        return _SUB.sub(name, text)

    def _join(self, value: list[Any]) -> str:
        sep, items = value
        resolved = self.resolve(items)
        return str(sep).join(str(v) for v in (resolved if isinstance(resolved, list) else [resolved]))

    def _sub_name(self, name: str) -> Any:
        return self.attrs[name] if "." in name else self.ref(name)


def parameter_values(template: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Parameter defaults, with overrides; CommaDelimitedList values are lists, as CloudFormation gives them."""
    values: dict[str, Any] = {}
    for name, spec in template.get("Parameters", {}).items():
        value = overrides.get(name, spec.get("Default"))
        if spec.get("Type") == "CommaDelimitedList" and isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        values[name] = value
    return values


def parameter_error(spec: dict[str, Any], value: str) -> str | None:
    """What CloudFormation would say of a string parameter value: AllowedPattern (the whole value) and
    AllowedValues; None when it would accept it."""
    pattern = spec.get("AllowedPattern")
    if pattern is not None and not re.fullmatch(str(pattern), value):
        return f"{value!r} does not match the parameter's AllowedPattern {pattern}"
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [str(v) for v in allowed]:
        return f"{value!r} is not one of {', '.join(str(v) for v in allowed)}"
    return None


def pascal(key: str) -> str:
    """A --config key's stack parameter: egress_mode -> EgressMode."""
    return "".join(part.capitalize() for part in key.split("_"))
