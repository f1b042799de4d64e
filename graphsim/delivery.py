"""Background POSTs of change and lifecycle notifications: batched per URL, 3 s timeout, retries."""

from __future__ import annotations

import heapq
import http.client
import json
import ssl
import threading
import time
import urllib.parse
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from .faults import Faults


@dataclass(order=True)
class _Retry:
    due: float
    seq: int
    url: str = field(compare=False)
    items: list[dict[str, Any]] = field(compare=False)
    attempt: int = field(compare=False)


def _connect(url: str, timeout: float, ctx: ssl.SSLContext | None) -> tuple[http.client.HTTPConnection, str]:
    parts = urllib.parse.urlsplit(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(parts.hostname or "", parts.port,
                                                                         timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    return conn, path


def post_once(url: str, body: bytes, headers: dict[str, str], timeout: float,
              ctx: ssl.SSLContext | None) -> tuple[int, bytes, dict[str, str]]:
    """One POST on a fresh connection (used for validation handshakes)."""
    conn, path = _connect(url, timeout, ctx)
    try:
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, data, {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


class Delivery:
    """Queue of pending notifications; one in-flight POST per URL so later items batch up."""

    def __init__(self, faults: Faults, timeout: float = 3.0, retry_delays: tuple[float, ...] = (1.0, 2.0, 4.0),
                 workers: int = 4, max_batch: int = 100, ssl_context: ssl.SSLContext | None = None,
                 record_limit: int = 200000) -> None:
        self.faults = faults
        self.timeout = timeout
        self.retry_delays = retry_delays
        self.max_batch = max_batch
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.cond = threading.Condition()
        self.pending: OrderedDict[str, list[tuple[dict[str, Any], int]]] = OrderedDict()
        self.inflight: set[str] = set()
        self.retries: list[_Retry] = []
        self.records: deque[dict[str, Any]] = deque(maxlen=record_limit)
        self.user_agent = "Microsoft-Graph-ChangeTracking/1.0 (graphsim)"
        self._seq = 0
        self._stop = False
        self._threads = [threading.Thread(target=self._run, name=f"graphsim-delivery-{i}", daemon=True)
                         for i in range(workers)]
        for t in self._threads:
            t.start()

    # -- producer side -----------------------------------------------------
    def enqueue(self, url: str, item: dict[str, Any], kind: str = "notification") -> None:
        if kind == "notification" and self.faults.roll(self.faults.drop_notifications):
            self.records.append({"url": url, "kind": kind, "dropped": True, "value": [item], "ok": False,
                                 "time": time.time()})
            return
        copies = 2 if kind == "notification" and self.faults.roll(self.faults.duplicate_notifications) else 1
        with self.cond:
            bucket = self.pending.setdefault(url, [])
            for _ in range(copies):
                bucket.append((item, 0))
            self.cond.notify()

    def idle(self) -> bool:
        return not self.pending and not self.inflight and not self.retries

    def flush(self, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not self.idle():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(min(left, 0.05))
        return True

    def clear(self) -> None:
        with self.cond:
            self.pending.clear()
            self.retries.clear()
            self.records.clear()

    def stop(self) -> None:
        with self.cond:
            self._stop = True
            self.cond.notify_all()
        for t in self._threads:
            t.join(timeout=2)

    # -- worker side ---------------------------------------------------------
    def _take(self) -> tuple[str, list[tuple[dict[str, Any], int]]] | None:
        now = time.monotonic()
        while self.retries and self.retries[0].due <= now:
            r = heapq.heappop(self.retries)
            self.pending.setdefault(r.url, []).extend((it, r.attempt) for it in r.items)
        for url, items in self.pending.items():
            if url in self.inflight:
                continue
            batch = items[: self.max_batch]
            rest = items[self.max_batch:]
            if rest:
                self.pending[url] = rest
            else:
                del self.pending[url]
            self.inflight.add(url)
            return url, batch
        return None

    def _run(self) -> None:
        conns: dict[str, http.client.HTTPConnection] = {}
        while True:
            with self.cond:
                job = None
                while not self._stop:
                    job = self._take()
                    if job:
                        break
                    wait = 0.5
                    if self.retries:
                        wait = max(0.0, min(wait, self.retries[0].due - time.monotonic()))
                    self.cond.wait(wait)
                if self._stop:
                    return
            assert job is not None
            url, batch = job
            try:
                self._post(conns, url, batch)
            finally:
                with self.cond:
                    self.inflight.discard(url)
                    self.cond.notify_all()

    def _post(self, conns: dict[str, http.client.HTTPConnection], url: str,
              batch: list[tuple[dict[str, Any], int]]) -> None:
        attempt = max(a for _, a in batch)
        items = [it for it, _ in batch]
        body = json.dumps({"value": items}).encode()
        parts = urllib.parse.urlsplit(url)
        key = f"{parts.scheme}://{parts.netloc}"
        path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        status, error = 0, None
        started = time.monotonic()
        for fresh in (False, True):
            conn = conns.get(key)
            if conn is None or fresh:
                if conn is not None:
                    conn.close()
                conn, _ = _connect(url, self.timeout, self.ssl_context)
                conns[key] = conn
            try:
                conn.request("POST", path, body=body, headers={
                    "Content-Type": "application/json; charset=utf-8", "User-Agent": self.user_agent,
                    "Accept": "text/plain, application/json"})
                resp = conn.getresponse()
                resp.read()
                status = resp.status
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conns.pop(key, None)
                error = None
                break
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                conns.pop(key, None)
                error = repr(exc)
                if isinstance(exc, TimeoutError):
                    break
        ok = 200 <= status < 300
        self.records.append({"url": url, "kind": "lifecycle" if "lifecycleEvent" in items[0] else "notification",
                             "value": items, "status": status, "error": error, "ok": ok, "attempt": attempt,
                             "elapsed_ms": round((time.monotonic() - started) * 1000, 1),
                             "time": time.time()})
        if not ok and attempt < len(self.retry_delays):
            with self.cond:
                self._seq += 1
                heapq.heappush(self.retries, _Retry(time.monotonic() + self.retry_delays[attempt], self._seq,
                                                    url, items, attempt + 1))
                self.cond.notify()
