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
