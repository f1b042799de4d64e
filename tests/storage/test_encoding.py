"""Table Storage key escaping and data splitting; the package's light import; open_repository."""

import subprocess
import sys

import pytest

from shared.storage import tablekeys


@pytest.mark.parametrize("value", ["plain", "AAMk/a+b==", "#?\\/%:", "tab\there\x00\x7f\x9f", "ü😀RTL שלום", "%41", ""])
def test_key_encoding_round_trips_and_avoids_forbidden_characters(value):
    encoded = tablekeys.encode_key(value)
    assert tablekeys.decode_key(encoded) == value
    assert not set(encoded) & set("/\\#?") and all(ord(c) >= 0x20 and not 0x7F <= ord(c) < 0xA0 for c in encoded)


def test_split_text_respects_property_limit_and_surrogates():
    text = "a" + "😀" * 40_000 + "b" * 70_000
    parts = tablekeys.split_text(text)
    assert "".join(parts) == text
    assert all(tablekeys.utf16_units(p) <= tablekeys.SLICE_UNITS for p in parts)
    assert tablekeys.needs_blob("x" * 500_000) and not tablekeys.needs_blob("x" * 300_000)


def test_importing_the_package_loads_no_driver():
    code = ("import sys, shared.storage; "
            "print([m for m in sys.modules if m.startswith(('psycopg', 'azure'))])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_open_repository_uses_the_settings(app_env, tmp_path):
    from shared.storage import open_repository
    from shared.storage.base import RepositoryBase

    app_env(DATABASE_BACKEND="sqlite", SQLITE_PATH=str(tmp_path / "x.db"))
    repo = open_repository()
    assert isinstance(repo, RepositoryBase) and repo.backend == "sqlite"
    assert open_repository() is repo
    repo.upsert_user("u", {"id": "u"})
    assert (tmp_path / "x.db").exists()
