"""The queue contract shared by every backend."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass

MAX_MESSAGE_BYTES = 64 * 1024  # Azure Storage Queues' limit; the embedded queue keeps it too


def poison_queue_name(name: str) -> str:
    """Where the host parks a message that failed maxDequeueCount times (Azure's naming)."""
    return f"{name}-poison"


class QueueUnavailable(RuntimeError):
    """The queue could not be reached in time: callers answer 503 (Retry-After) rather than hang."""


class MessageTooLarge(ValueError):
    """A message body over 64 KiB: callers must send a reference instead."""


@dataclass(frozen=True)
class QueueMessage:
    id: str
    body: str
    dequeue_count: int
    pop_receipt: str
    inserted_at: float | None = None


class Queue(ABC):
    """At-least-once queue: receive hides a message, delete acknowledges it."""

    name: str

    @abstractmethod
    def send_many(self, bodies: Iterable[str], *, delay_seconds: int = 0) -> int:
        """Enqueue each body; returns how many were sent."""

    def send(self, body: str, *, delay_seconds: int = 0) -> None:
        self.send_many([body], delay_seconds=delay_seconds)

    @abstractmethod
    def receive(self, max_messages: int = 16, visibility_timeout: int = 30) -> list[QueueMessage]:
        """Messages now visible, hidden for `visibility_timeout` seconds and counted as dequeued."""

    @abstractmethod
    def delete(self, message: QueueMessage) -> None:
        """Acknowledge a received message; one already gone (deleted, expired) counts as acknowledged."""

    @abstractmethod
    def release(self, message: QueueMessage, delay_seconds: int = 0) -> None:
        """Make a received message visible again (a failed attempt)."""

    @abstractmethod
    def depth(self) -> int:
        """Approximate number of messages, visible or not."""

    @abstractmethod
    def peek(self, max_messages: int = 32) -> list[QueueMessage]:
        """Look at messages without hiding them (status, replay)."""

    @abstractmethod
    def clear(self) -> None:
        """Remove every message (tests, replay)."""

    @staticmethod
    def check_size(body: str) -> None:
        if len(body.encode("utf-8")) > MAX_MESSAGE_BYTES * 3 // 4:  # base64 grows it by 4/3
            raise MessageTooLarge(f"queue message of {len(body)} characters is over the 64 KiB limit")
