"""The embedded durable queue: one SQLite file, safe across processes and restarts."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from shared.private_files import prepare_private_file
from shared.queues.base import Queue, QueueMessage, QueueUnavailable

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue_messages (
  queue TEXT NOT NULL,
  id TEXT NOT NULL,
  body TEXT NOT NULL,
  dequeue_count INTEGER NOT NULL DEFAULT 0,
  visible_at REAL NOT NULL,
  inserted_at REAL NOT NULL,
  pop_receipt TEXT,
  PRIMARY KEY (queue, id)
);
CREATE INDEX IF NOT EXISTS queue_messages_visible ON queue_messages (queue, visible_at);
"""


class LocalQueue(Queue):
    """Azure Storage Queue semantics on SQLite (WAL): visibility timeout, dequeue count."""

    def __init__(self, name: str, path: str | os.PathLike[str]) -> None:
        self.name = name
        self.path = Path(path)
        prepare_private_file(self.path)  # 0600: messages name users and carry notifications
        self._local = threading.local()
        with self._connect() as db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            self._local.db = db
        return db

    def send_many(self, bodies: Iterable[str], *, delay_seconds: int = 0) -> int:
        now = time.time()
        rows = []
        for body in bodies:
            self.check_size(body)
            rows.append((self.name, uuid.uuid4().hex, body, now + delay_seconds, now))
        try:
            db = self._connect()
            db.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:  # locked past the busy timeout, disk gone
            raise QueueUnavailable(f"queue {self.name}: send failed ({exc})") from exc
        try:
            db.executemany(
                "INSERT INTO queue_messages (queue, id, body, visible_at, inserted_at) VALUES (?, ?, ?, ?, ?)",
                rows,
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return len(rows)

    def receive(self, max_messages: int = 16, visibility_timeout: int = 30) -> list[QueueMessage]:
        now = time.time()
        db = self._connect()
        db.execute("BEGIN IMMEDIATE")
        try:
            found = db.execute(
                "SELECT id, body, dequeue_count, inserted_at FROM queue_messages"
                " WHERE queue = ? AND visible_at <= ? ORDER BY inserted_at, id LIMIT ?",
                (self.name, now, max_messages),
            ).fetchall()
            messages = []
            for message_id, body, count, inserted_at in found:
                receipt = uuid.uuid4().hex
                db.execute(
                    "UPDATE queue_messages SET dequeue_count = ?, visible_at = ?, pop_receipt = ?"
                    " WHERE queue = ? AND id = ?",
                    (count + 1, now + visibility_timeout, receipt, self.name, message_id),
                )
                messages.append(QueueMessage(message_id, body, count + 1, receipt, inserted_at))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return messages

    def delete(self, message: QueueMessage) -> None:
        self._connect().execute(
            "DELETE FROM queue_messages WHERE queue = ? AND id = ? AND pop_receipt = ?",
            (self.name, message.id, message.pop_receipt),
        )

    def release(self, message: QueueMessage, delay_seconds: int = 0) -> None:
        self._connect().execute(
            "UPDATE queue_messages SET visible_at = ? WHERE queue = ? AND id = ? AND pop_receipt = ?",
            (time.time() + delay_seconds, self.name, message.id, message.pop_receipt),
        )

    def depth(self) -> int:
        (count,) = self._connect().execute(
            "SELECT COUNT(*) FROM queue_messages WHERE queue = ?", (self.name,)
        ).fetchone()
        return int(count)

    def peek(self, max_messages: int = 32) -> list[QueueMessage]:
        rows = self._connect().execute(
            "SELECT id, body, dequeue_count, inserted_at FROM queue_messages WHERE queue = ?"
            " ORDER BY inserted_at, id LIMIT ?",
            (self.name, max_messages),
        ).fetchall()
        return [QueueMessage(i, b, c, "", t) for i, b, c, t in rows]

    def clear(self) -> None:
        self._connect().execute("DELETE FROM queue_messages WHERE queue = ?", (self.name,))
