"""`repo`: one fresh repository per test, for each of the three backends."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator

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


@pytest.fixture
def pg_repo(request: pytest.FixtureRequest, tmp_path) -> Iterator[Repository]:
    """A fresh PostgreSQL repository, for what only that backend has (its bulk strategies)."""
    repository = make_repository("postgres", request, tmp_path)
    repository.ensure_schema()
    try:
        yield repository
    finally:
        repository.close()


def race(contenders: list[Repository], attempt: Callable[[int, Repository], bool]) -> list[int]:
    """Every contender runs `attempt(index, repository)` at once (one thread each, released together);
    returns the indexes of those for which it returned true."""
    won: list[int] = []
    start = threading.Barrier(len(contenders))

    def run(index: int) -> None:
        start.wait()
        if attempt(index, contenders[index]):
            won.append(index)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(contenders))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won
