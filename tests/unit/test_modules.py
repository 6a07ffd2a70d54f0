"""The optional modules' settings and enablement (issue 17): global, per OU, by the account's tag."""

from __future__ import annotations

import pytest

from mlplane import modules
from mlplane.config import ModulesSettings, settings_from, settings_from_env
from mlplane.errors import ConfigError


def test_the_table_names_every_module_the_settings_have() -> None:
    assert set(modules.MODULES) == set(ModulesSettings.model_fields)


def test_each_module_s_code_is_the_table_s_entry_and_its_ledger_types_begin_with_its_prefix() -> None:
    # A record's type names its module by its prefix alone (`modules.recorded` imports no other module's code).
    for name, listing in modules.MODULES.items():
        module = modules.load(name)
        assert module.name == name
        assert module.handlers and all(kind.startswith(listing.type_prefix) for kind in module.handlers)
        assert modules.recorded(["ec2:vpc", *module.handlers]) == [module]
        assert modules.handlers(module.handlers) == module.handlers
    prefixes = [listing.type_prefix for listing in modules.MODULES.values()]
    assert not any(a != b and a.startswith(b) for a in prefixes for b in prefixes)
    assert modules.recorded(["ec2:vpc", "canvas:unknown"]) == []


def test_every_module_is_off_by_default() -> None:
    assert modules.enabled_for(settings_from({}), ou="Workloads", tags={}) == ()


def test_enabled_globally_per_ou_and_by_the_account_tag_which_wins() -> None:
    settings = settings_from({"modules": {"canvas": {"ous": ["Workloads"]}, "service_catalog": {"enabled": True}}})
    assert modules.enabled_for(settings, ou="Workloads", tags={}) == ("canvas", "service_catalog")
    assert modules.enabled_for(settings, ou="Sandbox", tags={}) == ("service_catalog",)
    tags = {"mlplane:module:canvas": "true", "mlplane:module:service_catalog": "False"}
    assert modules.enabled_for(settings, ou="Sandbox", tags=tags) == ("canvas",)
    assert modules.enabled_for(settings, ou="Workloads", tags={"mlplane:module:canvas": "false"}) == (
        "service_catalog",
    )


def test_a_tag_that_is_not_true_or_false_is_one_line_error() -> None:
    with pytest.raises(ConfigError, match="mlplane:module:canvas='yes'"):
        modules.enabled_for(settings_from({}), ou="Workloads", tags={"mlplane:module:canvas": "yes"})


def test_modules_come_from_the_environment_as_json_and_go_back_the_same() -> None:
    settings = settings_from_env({"MODULES": '{"canvas": {"enabled": true, "s3_buckets": ["analytics-data"]}}'})
    assert settings.modules.canvas.enabled and settings.modules.canvas.s3_buckets == ("analytics-data",)
    assert settings_from_env(settings.to_env()) == settings


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"canvas": {"enabled": "maybe"}}, "modules.canvas.enabled"),
        ({"canvas": {"s3_buckets": ["Not_A_Bucket"]}}, "is not an S3 bucket name"),
        ({"canvas": {"execution_role_name": "a*b"}}, "role name"),
        ({"canvas": {"role_suffix": "x" * 24}}, "1-23"),
        ({"nope": {}}, "modules.nope"),
        ("{not json", "modules"),
    ],
)
def test_bad_module_settings_are_one_line_errors(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        settings_from({"modules": value})


def test_an_unknown_module_name_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown module 'nope'"):
        modules.plan(None, settings_from({}), ["nope"])  # type: ignore[arg-type]
