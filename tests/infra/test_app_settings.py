"""Acceptance 3: the app settings the code reads (shared/config.py, deployed=True)
are the ones the template sets: none missing, none unused.

The template's settings are the keys of `var appSettings` in infra/main.bicep
(the app's own settings) plus the platform settings of
infra/modules/functionapp.bicep, which the code never reads and which are
listed below with their purpose.
"""

from __future__ import annotations

import pytest

from shared.config import SETTINGS
from tests.infra.bicep import (
    INFRA,
    MAIN,
    decorators,
    is_literal,
    module_declarations,
    object_variable,
    parse,
    render,
)

FUNCTION_APP = INFRA / "modules" / "functionapp.bicep"

# Settings read by the Functions platform, not by shared/config.py.
PLATFORM_SETTINGS = {
    # Host storage through the managed identity (no connection string, shared keys are off).
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__credential",
    # Telemetry; AUTHENTICATION_STRING makes it use Entra ID (local auth is disabled).
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
    # Dedicated plans only (Flex Consumption takes these from functionAppConfig).
    "FUNCTIONS_EXTENSION_VERSION",
    "FUNCTIONS_WORKER_RUNTIME",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
}

# Deployed settings the template deliberately leaves unset, with the reason.
NOT_SET_BY_TEMPLATE = {
    # Shared keys are disabled on the storage account: TABLES_ACCOUNT_URL /
    # BLOBS_ACCOUNT_URL + the managed identity replace the connection string.
    "TABLES_CONNECTION_STRING": "TABLES_ACCOUNT_URL",
    # Same for the queues: QUEUE_ACCOUNT_URL + the managed identity.
    "QUEUE_CONNECTION_STRING": "QUEUE_ACCOUNT_URL",
}

DEPLOYED = {s.env: s for s in SETTINGS if s.deployed}


def _template_app_settings() -> dict:
    return object_variable(parse(MAIN), "appSettings")


def _template_platform_settings() -> set[str]:
    template = parse(FUNCTION_APP)
    return set(object_variable(template, "platformSettings")) | set(object_variable(template, "dedicatedSettings"))


def test_template_sets_every_setting_the_code_reads():
    missing = set(DEPLOYED) - set(_template_app_settings()) - set(NOT_SET_BY_TEMPLATE)
    assert not missing, (
        f"shared/config.py declares deployed settings infra/main.bicep does not set: {sorted(missing)}; "
        "add them to `var appSettings` (or mark them deployed=False)"
    )


def test_template_sets_no_setting_the_code_does_not_read():
    unused = set(_template_app_settings()) - set(DEPLOYED)
    assert not unused, f"infra/main.bicep sets settings no code reads: {sorted(unused)}"
    unknown_platform = _template_platform_settings() - PLATFORM_SETTINGS
    assert not unknown_platform, f"functionapp.bicep sets unlisted platform settings: {sorted(unknown_platform)}"


def test_platform_and_app_settings_do_not_overlap():
    assert not set(_template_app_settings()) & _template_platform_settings()
    assert not PLATFORM_SETTINGS & set(DEPLOYED)


def test_settings_left_unset_have_their_identity_replacement_set():
    app_settings = _template_app_settings()
    for env, replacement in NOT_SET_BY_TEMPLATE.items():
        assert env in DEPLOYED, f"{env} is no longer a deployed setting; drop it from NOT_SET_BY_TEMPLATE"
        assert env not in app_settings
        assert replacement in app_settings, f"{env} is left unset, so {replacement} must be set"


def test_the_app_settings_reach_the_function_app():
    modules = module_declarations(parse(MAIN))
    path, params = modules["functionApp"]
    assert path == FUNCTION_APP.resolve()
    assert params["appSettings"] == "appSettings"
    text = FUNCTION_APP.read_text(encoding="utf-8")
    assert "union(appSettings, platformSettings" in text
    assert "appSettings: [for setting in items(allSettings)" in text


def test_secrets_are_key_vault_references():
    for env, value in _template_app_settings().items():
        if not DEPLOYED[env].secret:
            continue
        rendered = render(value)
        assert "@Microsoft.KeyVault(SecretUri=" in rendered, f"{env} must be a Key Vault reference"
        # The only other value allowed is empty (the secret's feature is off).
        if isinstance(value, dict) and value.get("operator", {}).get("type") == "conditional":
            branches = value["operator"]["operands"]
            for branch in (branches["true_value"], branches["false_value"]):
                assert branch == "" or str(branch).startswith("@Microsoft.KeyVault(SecretUri="), env
        else:
            assert str(value).startswith("@Microsoft.KeyVault(SecretUri="), env


def test_literal_values_parse_like_the_app_parses_them():
    """Fixed values in the template, and every allowed/default value of the
    parameters feeding a setting, are accepted by the setting's parser."""
    template = parse(MAIN)
    parameters = template["parameters"]
    for env, value in _template_app_settings().items():
        setting = DEPLOYED[env]
        candidates = []
        if is_literal(template, value):
            candidates.append(value)
        elif isinstance(value, str) and value in parameters:
            decl = parameters[value]
            if decl["type"] == "string":
                candidates += decorators(decl).get("allowed") or []
                if decl.get("default"):
                    candidates.append(decl["default"])
        for candidate in candidates:
            try:
                setting.parse(candidate)
            except ValueError as exc:
                pytest.fail(f"{env}={candidate!r} from the template is rejected by the app: {exc}")


def test_database_backend_choices_exist_in_the_app():
    allowed = decorators(parse(MAIN)["parameters"]["databaseBackend"])["allowed"]
    assert set(allowed) == {"tables", "postgres"}
    for choice in allowed:
        assert DEPLOYED["DATABASE_BACKEND"].parse(choice) == choice


def test_fixed_values_repeat_the_code_defaults():
    """The tuning literals in `var appSettings` are documented as the code's defaults."""
    template = parse(MAIN)
    drift = {
        env: (value, DEPLOYED[env].default)
        for env, value in _template_app_settings().items()
        if is_literal(template, value) and DEPLOYED[env].parse(value) != DEPLOYED[env].default
    }
    assert not drift, f"template value differs from the shared/config.py default (template, code): {drift}"
