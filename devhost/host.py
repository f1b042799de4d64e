"""The local host: HTTP server, timer scheduler and queue pollers around `function_app.app`."""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import inspect
import json
import logging
import threading
import time
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

import azure.functions as func

from devhost import settings as host_settings
from devhost.routes import HttpRoute, compile_route
from shared.config import HOST_STORAGE

if TYPE_CHECKING:
    from shared.queues.base import Queue, QueueMessage
from shared.queues.wiring import QueueEndpoint

log = logging.getLogger("devhost")

MAX_BODY_BYTES = 100 * 1024 * 1024  # the Functions host's request size limit


@dataclass
class TimerJob:
    name: str
    schedule: str
    function: Callable[..., Any]
    arg_name: str
    run_on_startup: bool


@dataclass
class QueueJob:
    name: str
    queue_name: str
    function: Callable[..., Any]
    arg_name: str
    connection: str
    endpoint: QueueEndpoint  # where the Functions host would read `connection`


class QueueWiringError(Exception):
    """A queue trigger would read another queue service than the one the app sends to."""


def trigger_endpoint(connection: str) -> QueueEndpoint:
    """The queue service a trigger's `connection` names, as the Functions host resolves it. With the
    setting absent (a machine without Azurite), the embedded queue: `func start` would refuse."""
    from shared.config import get_settings
    from shared.queues.wiring import EMBEDDED, connection_endpoint

    settings = get_settings()
    found = connection_endpoint(connection, settings)
    return found or QueueEndpoint(EMBEDDED, str(settings.local_queue_path), "LOCAL_QUEUE_PATH")


# Keyed by the app object itself, held weakly: keyed by id(), a new app that reused a collected one's
# id was served the old app's functions (and their closures).
_functions_cache: weakref.WeakKeyDictionary[func.FunctionApp, list[Any]] = weakref.WeakKeyDictionary()
_functions_lock = threading.Lock()


def registered_functions(app: func.FunctionApp) -> list[Any]:
    """`app.get_functions()`, which the SDK allows only once per app object: cached."""
    with _functions_lock:
        if app not in _functions_cache:
            _functions_cache[app] = app.get_functions()
        return _functions_cache[app]


def _call(function: Callable[..., Any], arg_name: str, value: Any) -> Any:
    result = function(**{arg_name: value})
    if inspect.isawaitable(result):
        import asyncio

        result = asyncio.run(result)  # type: ignore[arg-type]  # an async def function returns a coroutine
    return result


class DevHost:
    """Serve one FunctionApp locally. `start()` returns at once; `stop()` ends everything."""

    def __init__(
        self,
        app: func.FunctionApp | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 7071,
        function_key: str | None = None,
        master_key: str | None = None,
        timers: bool = True,
        queues: bool = True,
        poll_interval: float = 0.2,
        queue_options: dict[str, Any] | None = None,
    ) -> None:
        if app is None:
            from function_app import app as default_app

            app = default_app
        self.host_json = host_settings.load_host_json()
        self.prefix = host_settings.route_prefix(self.host_json)
        self.queue_options = {**host_settings.queue_options(self.host_json), **(queue_options or {})}
        if function_key is None or master_key is None:
            generated = host_settings.function_keys()
            function_key = function_key or generated[0]
            master_key = master_key or generated[1]
        self.function_key, self.master_key = function_key, master_key
        self.routes: list[HttpRoute] = []
        self.timers: list[TimerJob] = []
        self.queue_jobs: list[QueueJob] = []
        self._read_metadata(app)
        self._bind = (host, port)
        self._run_timers, self._run_queues = timers, queues
        self._poll_interval = poll_interval
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._server: ThreadingHTTPServer | None = None
        self._inflight = 0
        self._inflight_lock = threading.Lock()

    # --- metadata --------------------------------------------------------------------
    def _read_metadata(self, app: func.FunctionApp) -> None:
        for function in registered_functions(app):
            trigger = function.get_trigger()
            user_function = function.get_user_function()
            kind = type(trigger).__name__
            if kind == "HttpTrigger":
                template = (trigger.route or function.get_function_name()).strip("/")
                methods = frozenset(str(getattr(m, "value", m)).upper() for m in (trigger.methods or []))
                level = str(getattr(trigger.auth_level, "value", trigger.auth_level) or "FUNCTION").upper()
                self.routes.append(HttpRoute(function.get_function_name(), template, compile_route(template),
                                             methods, level, user_function, trigger.name))
            elif kind == "TimerTrigger":
                self.timers.append(TimerJob(function.get_function_name(), trigger.schedule, user_function,
                                            trigger.name, bool(getattr(trigger, "run_on_startup", False))))
            elif kind == "QueueTrigger":
                connection = trigger.connection or HOST_STORAGE  # the Functions default
                self.queue_jobs.append(QueueJob(function.get_function_name(),
                                                host_settings.resolve_app_setting(trigger.queue_name),
                                                user_function, trigger.name, connection,
                                                trigger_endpoint(connection)))
            else:
                log.warning("function %s has a %s trigger the local host does not run",
                            function.get_function_name(), kind)
        # Literal segments win over parameters, as in the Functions host.
        self.routes.sort(key=lambda r: (r.template.count("{"), -len(r.template)))
        self._check_queue_wiring()

    def _check_queue_wiring(self) -> None:
        """Refuse to serve when a queue trigger would never see what the app sends (as under `func start`)."""
        if not self.queue_jobs:
            return
        from shared.config import get_settings
        from shared.queues.wiring import app_endpoint, connection_endpoint, wiring_problem

        settings = get_settings()
        app = app_endpoint(settings)
        for job in self.queue_jobs:
            problem = wiring_problem(app, connection_endpoint(job.connection, settings), job.connection)
            if problem:
                raise QueueWiringError(problem)

    # --- lifecycle -------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"  # type: ignore[str-bytes-safe]  # an AF_INET server's host is a str

    def start(self) -> DevHost:
        self._server = ThreadingHTTPServer(self._bind, self._handler_class())
        self._server.daemon_threads = True
        self._spawn("http", self._server.serve_forever)
        if self._run_timers:
            for timer in self.timers:
                self._spawn(f"timer:{timer.name}", functools.partial(self._timer_loop, timer))
        if self._run_queues:
            for queue_job in self.queue_jobs:
                self._spawn(f"queue:{queue_job.name}", functools.partial(self._queue_loop, queue_job))
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)

    def __enter__(self) -> DevHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"devhost-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    # --- HTTP ------------------------------------------------------------------------
    def authorized(self, level: str, headers: dict[str, str], query: dict[str, str]) -> bool:
        if level == "ANONYMOUS":
            return True
        given = headers.get("x-functions-key") or query.get("code") or ""
        accepted = [self.master_key] if level == "ADMIN" else [self.function_key, self.master_key]
        return any(hmac.compare_digest(given.encode(), key.encode()) for key in accepted)

    def dispatch(self, method: str, raw_url: str, headers: dict[str, str], body: bytes) -> func.HttpResponse:
        """Route one request to its function, as the Functions host would."""
        parts = urlsplit(raw_url)
        path = parts.path.lstrip("/")
        if self.prefix:
            if not (path == self.prefix or path.startswith(self.prefix + "/")):
                return _json_response(404, {"error": "not found"})
            path = path[len(self.prefix):].lstrip("/")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        lowered = {k.lower(): v for k, v in headers.items()}
        method_seen = False
        for route in self.routes:
            params = route.match(path)
            if params is None:
                continue
            if route.methods and method not in route.methods:
                method_seen = True
                continue
            if not self.authorized(route.auth_level, lowered, query):
                return _json_response(401, {"error": "a function key is required (x-functions-key header "
                                                     "or code query parameter)"})
            request = func.HttpRequest(method=method, url=f"{self.base_url}{raw_url}", headers=headers,
                                       params=query, route_params=params, body=body)
            try:
                response = _call(route.function, route.arg_name, request)
            except Exception:
                log.exception("function %s failed", route.name)
                return _json_response(500, {"error": "the function failed; see the host log"})
            if not isinstance(response, func.HttpResponse):
                return _json_response(500, {"error": f"function {route.name} returned no HttpResponse"})
            return response
        return _json_response(405 if method_seen else 404, {"error": "method not allowed" if method_seen
                                                            else "not found"})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body go out at once, not 40 ms apart

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    self._send(_json_response(413, {"error": "request body too large"}))
                    return
                body = self.rfile.read(length) if length else b""
                response = host.dispatch(self.command, self.path, dict(self.headers.items()), body)
                self._send(response)

            def _send(self, response: func.HttpResponse) -> None:
                payload = response.get_body() or b""
                self.send_response(response.status_code)
                sent = {k.lower() for k, _ in response.headers.items()}
                for key, value in response.headers.items():
                    self.send_header(key, value)
                if "content-type" not in sent and response.mimetype:
                    charset = f"; charset={response.charset}" if response.charset else ""
                    self.send_header("Content-Type", f"{response.mimetype}{charset}")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("%s %s", self.address_string(), fmt % args)

        return Handler

    # --- timers ----------------------------------------------------------------------
    def _timer_loop(self, job: TimerJob) -> None:
        from croniter import croniter

        schedule = host_settings.resolve_app_setting(job.schedule)
        times = croniter(schedule, dt.datetime.now(), second_at_beginning=True)
        if job.run_on_startup:
            self.fire_timer(job.name)
        while not self._stopping.is_set():
            due = times.get_next(dt.datetime)
            while not self._stopping.wait(min(1.0, max(0.0, (due - dt.datetime.now()).total_seconds()))):
                if dt.datetime.now() >= due:
                    past_due = (dt.datetime.now() - due).total_seconds() > 60
                    self.fire_timer(job.name, past_due=past_due)
                    break

    def fire_timer(self, name: str, *, past_due: bool = False) -> None:
        """Run a timer trigger now (the scheduler does this; tests and operators may too)."""
        from azure.functions.timer import TimerRequest

        job = next(j for j in self.timers if j.name == name)
        try:
            _call(job.function, job.arg_name, TimerRequest(past_due=past_due))
        except Exception:
            log.exception("timer %s failed", name)

    # --- queues ----------------------------------------------------------------------
    def _queue_loop(self, job: QueueJob) -> None:
        """Poll `job`'s queue as the Functions host does: a new batch as soon as the messages in flight
        fall to newBatchThreshold (not when the whole batch is done, so one slow message does not hold
        the others back), and an idle queue polled less and less often, up to maxPollingInterval."""
        options = self.queue_options
        threshold = options["new_batch_threshold"]
        longest_idle = max(self._poll_interval, float(options["max_polling_interval"]))
        idle = outage = self._poll_interval
        running = 0
        changed = threading.Condition()

        def finished(_: object) -> None:
            nonlocal running
            with changed:
                running -= 1
                changed.notify()

        def has_room() -> bool:
            return running <= threshold

        workers = options["batch_size"] + threshold
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"q-{job.name}") as pool:
            while not self._stopping.is_set():
                with changed:
                    if not changed.wait_for(has_room, timeout=0.5):
                        continue
                try:
                    queue, messages = self._receive(job)
                except Exception as exc:  # the queue is out: keep polling, less often, until it is back
                    log.warning("queue %s unreachable (%s: %s); polling again in %.1fs", job.queue_name,
                                type(exc).__name__, exc, outage)
                    self._stopping.wait(outage)
                    outage = min(outage * 2, 5.0)
                    continue
                outage = self._poll_interval
                if not messages:
                    self._stopping.wait(idle)
                    idle = min(idle * 2, longest_idle)
                    continue
                idle = self._poll_interval
                for message in messages:
                    with changed:
                        running += 1
                    pool.submit(self._handle, job, queue, message).add_done_callback(finished)

    def _receive(self, job: QueueJob) -> tuple[Queue, list[QueueMessage]]:
        from shared.queues import open_queue

        queue = open_queue(job.queue_name, endpoint=job.endpoint)
        options = self.queue_options
        return queue, queue.receive(options["batch_size"], visibility_timeout=max(30, options["visibility_timeout"]))

    def _handle(self, job: QueueJob, queue: Queue, message: QueueMessage) -> None:
        """Run the trigger on one message; delete it when done, else release it or park it in the poison queue."""
        from azure.functions.queue import QueueMessage as TriggerMessage

        from shared.queues import open_queue, poison_queue_name

        options = self.queue_options
        with self._inflight_lock:
            self._inflight += 1
        try:
            item = TriggerMessage(id=message.id, body=message.body.encode("utf-8"),
                                  dequeue_count=message.dequeue_count, pop_receipt=message.pop_receipt)
            _call(job.function, job.arg_name, item)
            queue.delete(message)
        except Exception:
            log.exception("queue trigger %s failed on message %s (attempt %d)", job.name, message.id,
                          message.dequeue_count)
            if message.dequeue_count >= options["max_dequeue_count"]:
                open_queue(poison_queue_name(job.queue_name), endpoint=job.endpoint).send(message.body)
                queue.delete(message)
            else:
                queue.release(message, delay_seconds=options["visibility_timeout"])
        finally:
            with self._inflight_lock:
                self._inflight -= 1

    def poll_queue(self, name: str) -> int:
        """Receive one batch for queue trigger `name` and run it here, message by message; returns the batch size."""
        job = next(j for j in self.queue_jobs if j.name == name)
        queue, messages = self._receive(job)
        for message in messages:
            self._handle(job, queue, message)
        return len(messages)

    def drain(self, timeout: float = 60.0) -> bool:
        """Wait until every triggered queue is empty and no message is being handled."""
        from shared.queues import open_queue

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._inflight_lock:
                busy = self._inflight
            if busy == 0 and all(open_queue(j.queue_name, endpoint=j.endpoint).depth() == 0
                                 for j in self.queue_jobs):
                return True
            time.sleep(0.1)
        return False


def _json_response(status: int, body: dict[str, Any]) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")
