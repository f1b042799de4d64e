"""The local host: routes, methods and auth levels from the function metadata; queues and timers."""

from __future__ import annotations

import json
import threading
import time

import azure.functions as func
import pytest
import requests

from devhost import DevHost
from devhost.host import registered_functions
from shared.queues import open_queue, poison_queue_name


def _test_app(calls: list) -> func.FunctionApp:
    app = func.FunctionApp()

    @app.route(route="open", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    def open_route(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("open")

    @app.route(route="items/{item_id}", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
    def item(req: func.HttpRequest) -> func.HttpResponse:
        body = {"id": req.route_params["item_id"], "q": req.params.get("q"), "body": req.get_json()}
        return func.HttpResponse(json.dumps(body), mimetype="application/json", status_code=201,
                                 headers={"Retry-After": "3"})

    @app.route(route="admin/thing", methods=["GET"], auth_level=func.AuthLevel.ADMIN)
    def admin(req: func.HttpRequest) -> func.HttpResponse:
        return func.HttpResponse("admin")

    @app.route(route="crash", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
    def crash(req: func.HttpRequest) -> func.HttpResponse:
        raise RuntimeError("secret internals")

    @app.queue_trigger(arg_name="msg", queue_name="devhost-test", connection="AzureWebJobsStorage")
    def worker(msg: func.QueueMessage) -> None:
        body = msg.get_body().decode()
        calls.append((body, msg.dequeue_count))
        if body == "boom":
            raise RuntimeError("cannot handle")

    @app.timer_trigger(schedule="%RENEWAL_SCHEDULE%", arg_name="timer")
    def tick(timer: func.TimerRequest) -> None:
        calls.append(("tick", timer.past_due))

    return app


@pytest.fixture
def host(app_env):
    app_env()
    calls: list = []
    server = DevHost(_test_app(calls), port=0, function_key="fkey", master_key="mkey", timers=False,
                     poll_interval=0.05, queue_options={"visibility_timeout": 0, "max_dequeue_count": 3})
    server.calls = calls
    with server:
        yield server


def test_routes_methods_and_auth_levels(host):
    base = f"{host.base_url}/api"
    assert requests.get(f"{base}/open", timeout=5).text == "open"
    assert requests.post(f"{base}/items/42", json={"a": 1}, timeout=5).status_code == 401
    wrong_key = {"x-functions-key": "wrong"}
    assert requests.post(f"{base}/items/42", json={}, headers=wrong_key, timeout=5).status_code == 401
    ok = requests.post(f"{base}/items/42?q=x", json={"a": 1}, headers={"x-functions-key": "fkey"}, timeout=5)
    assert ok.status_code == 201
    assert ok.json() == {"id": "42", "q": "x", "body": {"a": 1}}
    assert ok.headers["Retry-After"] == "3"
    assert ok.headers["Content-Type"].startswith("application/json")
    assert requests.post(f"{base}/items/7?code=fkey", json={}, timeout=5).status_code == 201
    assert requests.get(f"{base}/admin/thing?code=fkey", timeout=5).status_code == 401
    assert requests.get(f"{base}/admin/thing?code=mkey", timeout=5).text == "admin"
    assert requests.get(f"{base}/items/42", headers={"x-functions-key": "fkey"}, timeout=5).status_code == 405
    assert requests.get(f"{base}/nowhere", timeout=5).status_code == 404
    assert requests.get(f"{host.base_url}/open", timeout=5).status_code == 404  # routePrefix api


def test_a_crashing_function_answers_500_without_internals(host):
    response = requests.get(f"{host.base_url}/api/crash", timeout=5)
    assert response.status_code == 500
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text


def test_queue_trigger_runs_messages_and_parks_poison(host):
    queue = open_queue("devhost-test")
    queue.send_many(["a", "b", "boom"])
    assert host.drain(timeout=30)
    bodies = [body for body, _ in host.calls]
    assert bodies.count("a") == 1 and bodies.count("b") == 1
    assert [count for body, count in host.calls if body == "boom"] == [1, 2, 3]
    poison = open_queue(poison_queue_name("devhost-test")).peek()
    assert [m.body for m in poison] == ["boom"]


def test_timer_schedule_resolves_from_app_settings(host, monkeypatch):
    from devhost.settings import resolve_app_setting
    from shared.config import get_settings

    (job,) = host.timers
    assert job.schedule == "%RENEWAL_SCHEDULE%"
    assert resolve_app_setting(job.schedule) == get_settings().renewal_schedule  # the code's default
    monkeypatch.setenv("RENEWAL_SCHEDULE", "0 0 */2 * * *")
    assert resolve_app_setting(job.schedule) == "0 0 */2 * * *"  # an app setting wins
    host.fire_timer("tick")
    assert ("tick", False) in host.calls


def test_real_app_health_and_every_keyed_route_refuses_without_key(app_env):
    app_env()
    with DevHost(port=0, function_key="fkey", master_key="mkey", timers=False, queues=False) as server:
        health = requests.get(f"{server.base_url}/api/health", timeout=5)
        assert health.status_code == 200 and health.json()["status"] == "ok"
        keyed = [r for r in server.routes if r.auth_level != "ANONYMOUS"]
        for route in keyed:
            path = route.template
            for name in route.regex.groupindex:
                path = path.replace("{" + name + "}", "x").replace("{*" + name + "}", "x")
            method = sorted(route.methods)[0] if route.methods else "GET"
            answer = requests.request(method, f"{server.base_url}/api/{path}", timeout=5)
            assert answer.status_code == 401, f"{method} /api/{path} answered {answer.status_code} without a key"


def test_registered_functions_are_callable_with_http_request():
    import function_app

    by_name = {f.get_function_name(): f for f in registered_functions(function_app.app)}
    response = by_name["health"].get_user_function()(
        func.HttpRequest("GET", "http://localhost/api/health", body=b"")
    )
    assert response.status_code == 200
    assert json.loads(response.get_body())["status"] == "ok"



def test_each_app_gets_its_own_functions_even_when_an_id_is_reused():
    """Apps created and dropped one after another often reuse a memory address (an id); each must still
    be served its own functions, not a collected app's (whose closures point at another test's state)."""
    import gc

    for n in range(50):
        app = func.FunctionApp()

        @app.route(route=f"r{n}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
        def handler(req: func.HttpRequest, n: int = n) -> func.HttpResponse:
            return func.HttpResponse(str(n))

        (function,) = registered_functions(app)
        assert function.get_function_name() == "handler"
        assert function.get_trigger().route == f"r{n}", f"app {n} was served another app's functions"
        del app, function, handler
        gc.collect()


def test_a_slow_message_does_not_hold_back_the_next_batches(app_env):
    """As the Functions host: a new batch is fetched once the messages in flight fall to newBatchThreshold,
    so messages queued behind a slow one (in later batches) are handled while it still runs."""
    import threading

    app_env()
    release = threading.Event()
    done: list[str] = []
    app = func.FunctionApp()

    @app.queue_trigger(arg_name="msg", queue_name="devhost-slow", connection="AzureWebJobsStorage")
    def worker(msg: func.QueueMessage) -> None:
        body = msg.get_body().decode()
        if body == "slow" and not release.wait(10):
            done.append("held back")  # the fast messages did not run while this one was in flight
            raise RuntimeError("held back")
        done.append(body)
        if len([b for b in done if b != "slow"]) == 9:
            release.set()

    queue = open_queue("devhost-slow")
    queue.clear()
    for body in ["slow", *[f"fast-{i}" for i in range(9)]]:  # 10 messages: more than one batch of 4
        queue.send(body)
    options = {"batch_size": 4, "new_batch_threshold": 2, "visibility_timeout": 0, "max_dequeue_count": 3}
    with DevHost(app, port=0, function_key="fkey", master_key="mkey", timers=False, poll_interval=0.05,
                 queue_options=options) as host:
        assert host.drain(timeout=60)
    assert "held back" not in done
    assert sorted(done) == sorted(["slow", *[f"fast-{i}" for i in range(9)]])
    assert done[-1] == "slow"


def test_the_demo_stops_waiting_for_a_row_when_stopped(app_env, graphsim):
    """SIGTERM while a change has not become a row yet: the demo goes on to stop its host at once instead
    of waiting out the change's 30 s (past which `make run`'s stopper kills it unreaped)."""
    from devhost.demo import Changer
    from graphsim.demo import seed

    app_env(DATABASE_BACKEND="sqlite")
    demo = seed(graphsim)
    users = {upn.split("@")[0].capitalize(): uid for upn, uid in demo["users"].items()}
    stop = threading.Event()
    said: list[str] = []
    stopper = threading.Timer(0.5, stop.set)
    stopper.start()
    started = time.monotonic()
    try:
        Changer(graphsim, users, said.append, stop).one("Adele", kind="create")  # no host: it never becomes a row
    finally:
        stopper.cancel()
    assert time.monotonic() - started < 5
    assert said == []
    events = {uid: len(graphsim.store.mailbox(uid).events) for uid in users.values()}
    Changer(graphsim, users, said.append, stop).tour()  # stopped: no further change is made
    assert {uid: len(graphsim.store.mailbox(uid).events) for uid in users.values()} == events
