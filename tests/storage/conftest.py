"""`repo`: one fresh repository per test, for each of the three backends."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from shared.storage.base import Repository

BACKENDS = ["sqlite", "postgres", "tables"]


def make_repository(backend: str, request: pytest.FixtureRequest, tmp_path, prefix: str | None = None) -> Repository:
    if backend == "sqlite":
        from shared.storage.sqlite import SqliteRepository

        return SqliteRepository(tmp_path / "calendar.db")
    if backend == "postgres":
        from shared.storage.postgres import PostgresRepository

        return PostgresRepository(request.getfixturevalue("pg_dsn"), pool_max=4)
    from azure.data.tables import TableServiceClient
    from azure.storage.blob import BlobServiceClient

    from shared.storage.tables import TablesRepository

    conn = request.getfixturevalue("azurite")
    return TablesRepository(TableServiceClient.from_connection_string(conn),
                            prefix=prefix or f"t{uuid.uuid4().hex[:12]}",
                            blob_service=BlobServiceClient.from_connection_string(conn))


@pytest.fixture(params=BACKENDS)
def repo(request: pytest.FixtureRequest, tmp_path) -> Iterator[Repository]:
    repository = make_repository(request.param, request, tmp_path)
    repository.ensure_schema()
    try:
        yield repository
    finally:
        repository.close()
