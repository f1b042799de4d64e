"""Settings: parsed from the environment, with one clear line per problem."""

import subprocess
import sys
from pathlib import Path

import pytest

from shared.config import SETTINGS, ConfigError, load_settings

ROOT = Path(__file__).resolve().parents[2]


def test_defaults_are_the_embedded_local_setup():
    settings = load_settings({})
    assert settings.database_backend == "sqlite"
    assert settings.graph_base_url == "https://graph.microsoft.com/v1.0"
    assert settings.graph_scopes == ("User.Read", "Calendars.ReadWrite", "Mail.ReadWrite", "Mail.Send")
    assert settings.subscription_lifetime_minutes == 10070
    assert settings.delta_other_calendars == "auto"
    assert settings.authority == "https://login.microsoftonline.com/common"


def test_values_are_typed():
    settings = load_settings({"APP_ONLY": "yes", "GRAPH_PAGE_SIZE": "50", "GRAPH_SCOPES": "A, B C",
                              "GRAPH_BASE_URL": "https://graph.microsoft.us/v1.0/"})
    assert settings.app_only is True
    assert settings.graph_page_size == 50
    assert settings.graph_scopes == ("A", "B", "C")
    assert settings.graph_base_url == "https://graph.microsoft.us/v1.0"


@pytest.mark.parametrize(("env", "named"), [
    ({"DATABASE_BACKEND": "mysql"}, "DATABASE_BACKEND"),
    ({"GRAPH_PAGE_SIZE": "many"}, "GRAPH_PAGE_SIZE"),
    ({"APP_ONLY": "maybe"}, "APP_ONLY"),
    ({"KEY_VAULT_URL": "myvault"}, "KEY_VAULT_URL"),
])
def test_malformed_setting_names_itself_and_shows_an_example(env, named):
    with pytest.raises(ConfigError) as caught:
        load_settings(env)
    message = str(caught.value)
    assert message.startswith(named)
    assert "Example:" in message and "\n" not in message


def test_require_names_the_missing_setting():
    settings = load_settings({})
    with pytest.raises(ConfigError, match=r"^CLIENT_ID is not set: .*Example: CLIENT_ID="):
        settings.require("client_id")


def test_setting_names_are_unique():
    assert len({s.env for s in SETTINGS}) == len(SETTINGS)
    assert len({s.attr for s in SETTINGS}) == len(SETTINGS)


def test_cli_reports_a_bad_setting_in_one_line_without_traceback():
    env = {"PATH": "/usr/bin:/bin", "DATABASE_BACKEND": "mysql", "HOME": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "shared", "settings", "table"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0, result.stderr
    assert "DATABASE_BACKEND='mysql' is not valid" in result.stderr
    assert "Traceback" not in result.stderr


def test_sample_settings_file_is_generated_from_the_settings():
    from shared.config_docs import sample_settings_json

    committed = (ROOT / "local.settings.sample.json").read_text()
    assert committed == sample_settings_json(), "run: python -m shared settings sample > local.settings.sample.json"
    for setting in SETTINGS:
        assert f'"{setting.env}"' in committed


def test_readme_configuration_table_is_generated_from_the_settings():
    from shared.config_docs import settings_table

    readme = (ROOT / "README.md").read_text()
    assert settings_table() in readme, "run: python -m shared settings table, and paste it into README.md"


def _conforms(value, hint) -> bool:
    """isinstance for the shapes SettingValues uses: a class, `X | None`, `tuple[X, ...]`."""
    import types
    import typing

    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, arm) for arm in typing.get_args(hint))
    if origin is tuple:
        item = typing.get_args(hint)[0]
        return isinstance(value, tuple) and all(_conforms(v, item) for v in value)
    return isinstance(value, type(None) if hint is None else hint)


def test_the_typed_attributes_declare_every_setting_with_the_type_its_parser_returns():
    import typing

    from shared.config import SettingValues
    from shared.feed.endpoints import Endpoint

    hints = typing.get_type_hints(SettingValues, localns={"Endpoint": Endpoint})
    assert sorted(hints) == sorted(s.attr for s in SETTINGS)
    for setting in SETTINGS:
        hint = hints[setting.attr]
        assert _conforms(setting.default, hint), (setting.env, setting.default, hint)
        assert _conforms(setting.parse(setting.example), hint), (setting.env, setting.example, hint)
    assert not _conforms(None, hints["pg_pool_max"]) and not _conforms(("a", 1), hints["graph_scopes"])
