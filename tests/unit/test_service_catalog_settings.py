"""M2's settings (modules.service_catalog): the analysts' role, the sizes (SageMaker's own list), the deprovision
mode; bad values are one-line ConfigErrors before anything runs."""

from __future__ import annotations

import json

import botocore.session
import pytest

from mlplane.config import (
    NOTEBOOK_SIZES,
    ServiceCatalogSettings,
    Settings,
    notebook_instance_types,
    settings_from_env,
)
from mlplane.errors import ConfigError
from mlplane.modules.service_catalog import product


def test_the_defaults_refuse_a_deprovision_and_offer_the_shipped_templates_sizes() -> None:
    config = Settings().modules.service_catalog
    assert (config.enabled, config.analyst_role, config.on_deprovision) == (False, "", "refuse")
    assert config.instance_types == NOTEBOOK_SIZES == product.INSTANCE_TYPES
    assert set(NOTEBOOK_SIZES) <= notebook_instance_types()


def test_the_sizes_are_sagemakers_notebook_instance_types() -> None:
    model = botocore.session.get_session().get_service_model("sagemaker")
    assert notebook_instance_types() == set(model.shape_for("InstanceType").enum)
    assert ServiceCatalogSettings(instance_types=("ml.g5.xlarge",)).instance_types == ("ml.g5.xlarge",)
    with pytest.raises(ValueError, match=r"'ml\.x9\.huge' is not a SageMaker notebook instance type"):
        ServiceCatalogSettings(instance_types=("ml.t3.medium", "ml.x9.huge"))
    with pytest.raises(ValueError, match="at least one size"):
        ServiceCatalogSettings(instance_types=())


def test_the_analysts_role_is_a_name_with_its_path_or_an_arn() -> None:
    assert ServiceCatalogSettings(analyst_role="DataAnalyst").role_path_name() == "DataAnalyst"
    assert ServiceCatalogSettings(analyst_role="/saml/DataAnalyst").role_path_name() == "saml/DataAnalyst"
    arn = ServiceCatalogSettings(analyst_role="arn:aws:iam::111111111111:role/saml/DataAnalyst")
    assert (arn.role_path_name(), arn.role_account()) == ("saml/DataAnalyst", "111111111111")
    with pytest.raises(ValueError, match="neither a role name"):
        ServiceCatalogSettings(analyst_role="Data Analyst")


def test_a_bad_module_setting_is_a_config_error_from_the_environment() -> None:
    with pytest.raises(ConfigError, match="on_deprovision"):
        settings_from_env({"MODULES": json.dumps({"service_catalog": {"on_deprovision": "delete"}})})
    config = settings_from_env({"MODULES": json.dumps({"service_catalog": {"on_deprovision": "terminate"}})})
    assert config.modules.service_catalog.on_deprovision == "terminate"


def test_the_rendered_template_offers_the_configured_sizes_only() -> None:
    text = product.render(
        subnet_id="subnet-1", vpc_id="vpc-1", kms_key_arn="k", instance_types=("ml.g5.xlarge", "ml.t3.medium")
    )
    block = text[text.index("  InstanceType:") : text.index("  VolumeSizeInGB:")]
    assert "Default: ml.g5.xlarge" in block
    assert [line.strip()[2:] for line in block.splitlines() if line.strip().startswith("- ")] == [
        "ml.g5.xlarge",
        "ml.t3.medium",
    ]
