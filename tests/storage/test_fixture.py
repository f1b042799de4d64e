"""DDL output: the user table equals WebhookDB's seed; the CLI prints every table."""

import subprocess
import sys

import pytest

from shared.storage import schema
from shared.storage.fixture import fixture_ddl

SEED_USER_DDL = """
CREATE TABLE public.microsoft_calendar_user_v1_fixture (
  pk bigserial PRIMARY KEY,
  microsoft_user_id text UNIQUE NOT NULL,
  row_created_at timestamptz,
  row_updated_at timestamptz,
  encrypted_refresh_token text,
  events_subscription_id text,
  events_subscription_expiration timestamptz,
  data jsonb NOT NULL
);
CREATE INDEX IF NOT EXISTS svi_fixture_row_created_at_idx ON public.microsoft_calendar_user_v1_fixture (row_created_at);
CREATE INDEX IF NOT EXISTS svi_fixture_row_updated_at_idx ON public.microsoft_calendar_user_v1_fixture (row_updated_at);
CREATE INDEX IF NOT EXISTS svi_fixture_events_subscription_id_idx ON public.microsoft_calendar_user_v1_fixture (events_subscription_id);
CREATE INDEX IF NOT EXISTS svi_fixture_events_subscription_expiration_idx ON public.microsoft_calendar_user_v1_fixture (events_subscription_expiration);
"""  # noqa: E501 - copied verbatim from the seed


def normalized(text: str) -> str:
    return " ".join(text.split())


def test_user_table_ddl_equals_the_seed():
    assert normalized(fixture_ddl(schema.USERS)) == normalized(SEED_USER_DDL)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared", "fixture", *args], capture_output=True, text=True,
                          check=False)


def test_cli_prints_the_seed_and_renames():
    assert normalized(run_cli("microsoft_calendar_user_v1").stdout) == normalized(SEED_USER_DDL)
    renamed = run_cli("microsoft_calendar_user_v1", "--table", "my_users").stdout
    assert "CREATE TABLE public.my_users (" in renamed and "svi_my_users_row_created_at_idx" in renamed


def test_cli_all_tables_both_dialects():
    for dialect in ("postgres", "sqlite"):
        out = run_cli("--all", "--dialect", dialect)
        assert out.returncode == 0
        assert out.stdout.count("CREATE TABLE") == len(schema.ALL)
    assert "INTEGER PRIMARY KEY AUTOINCREMENT" in run_cli("microsoft_calendar_event_v1", "--dialect", "sqlite").stdout


@pytest.mark.parametrize("args", [("nope",), (), ("microsoft_calendar_v1", "--table", "bad name")])
def test_cli_errors_are_one_line(args):
    out = run_cli(*args)
    assert out.returncode == 1 and out.stderr.startswith("error:")


def test_real_tables_created_in_postgres_match_the_specs(pg_dsn):
    import psycopg

    from shared.storage.postgres import PostgresRepository

    repo = PostgresRepository(pg_dsn)
    repo.ensure_schema()
    repo.close()
    with psycopg.connect(pg_dsn) as conn:
        for spec in schema.ALL:
            columns = [r[0] for r in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
                (spec.name,))]
            assert columns == (["pk"] if spec.replicated else []) + spec.names()


# WebhookDB's microsoft_calendar_event_v1 columns in its order (its replicator's remote key, then its
# denormalized columns, with pk first and data last).
WEBHOOKDB_EVENT_COLUMNS = [
    "pk", "microsoft_event_id", "microsoft_calendar_id", "microsoft_user_id", "row_created_at", "row_updated_at",
    "created", "updated", "is_all_day", "start_at", "start_timezone", "original_start_timezone", "end_at",
    "end_timezone", "original_end_timezone", "data",
]


def _index_count() -> int:
    return sum(len(spec.indexed) for spec in schema.ALL)


def test_fixture_all_creates_every_index_in_postgres_without_notice(pg_dsn):
    import psycopg

    script = run_cli("--all").stdout
    assert script.count("CREATE INDEX") == _index_count()
    psql = subprocess.run(["psql", "-v", "ON_ERROR_STOP=1", "-X", "-q", pg_dsn], input=script,
                          capture_output=True, text=True, check=False)
    assert psql.returncode == 0, psql.stderr
    assert "NOTICE" not in psql.stderr and psql.stderr == ""
    with psycopg.connect(pg_dsn) as conn:
        created = conn.execute("SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' "
                               "AND indexname LIKE 'svi_fixture_%'").fetchone()[0]
    assert created == _index_count() == 17  # WebhookDB's tables' and the operational ones'


def test_fixture_all_creates_every_index_in_sqlite(tmp_path):
    import sqlite3

    script = run_cli("--all", "--dialect", "sqlite").stdout
    path = tmp_path / "fixture.db"
    cli = subprocess.run(["sqlite3", "-bail", str(path)], input=script, capture_output=True, text=True, check=False)
    assert cli.returncode == 0 and cli.stderr == "", cli.stderr
    with sqlite3.connect(path) as conn:
        names = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index' "
                                            "AND name LIKE 'svi_fixture_%'")]
    assert len(names) == len(set(names)) == _index_count()


def test_event_table_keeps_webhookdb_column_order(pg_dsn):
    """WebhookDB's 16 columns come first, in its order (then the added ones, then data): positional
    `INSERT ... SELECT` / `COPY` of WebhookDB's first 15 columns lines up."""
    import psycopg

    from shared.storage.postgres import PostgresRepository

    repo = PostgresRepository(pg_dsn)
    repo.ensure_schema()
    repo.close()
    with psycopg.connect(pg_dsn) as conn:
        columns = [r[0] for r in conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'public.microsoft_calendar_event_v1'::regclass "
            "AND attnum > 0 AND NOT attisdropped ORDER BY attnum")]
    assert columns[:15] == WEBHOOKDB_EVENT_COLUMNS[:15]
    assert [c for c in columns if c in WEBHOOKDB_EVENT_COLUMNS] == WEBHOOKDB_EVENT_COLUMNS
    assert columns[-1] == "data"
    fixture = run_cli("microsoft_calendar_event_v1").stdout
    listed = [line.split()[0] for line in fixture.splitlines() if line.startswith("  ")]
    assert listed == columns
