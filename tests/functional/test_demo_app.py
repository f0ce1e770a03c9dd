"""End to end: the bundled demo (devstack.demo.app) with a real redis-server, `flask run`,
a prefork Celery worker and Celery beat, driven through its HTTP API."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.functional

BIN = Path(sys.executable).parent
QUEUES = "celery,dataset,generation,mail"


def _env(redis_server, **extra) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("FLASK_APP", None)
    env.update(
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
        PYTHONUNBUFFERED="1",
        CELERY_BROKER_URL=redis_server.url(1),
        CELERY_RESULT_BACKEND=redis_server.url(1),
        REDIS_URL=redis_server.url(0),
        **extra,
    )
    return env


def _start(cmd: list[str], env: dict[str, str], log: Path, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
        stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # this process's own group (start_new_session)
        proc.wait(5)


def _http(method: str, url: str) -> tuple[int, dict]:
    req = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _wait_for(predicate, timeout: float, what: str, logs: list[Path]):
    """`wait_until`, with the tail of each log in the failure."""
    def tails() -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in logs if p.exists())

    return wait_until(predicate, timeout, lambda: f"{what}\n{tails()}", interval=0.1)


def test_demo_stack_end_to_end(redis_server, tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = _env(redis_server, DEMO_TICK_SECONDS="1")
    logs = {name: tmp_path / f"{name}.log" for name in ("api", "worker", "beat")}
    procs: list[subprocess.Popen] = []
    try:
        procs.append(_start(
            [str(BIN / "flask"), "--app", "devstack.demo.app:app", "run", "--port", str(port), "--no-reload"],
            env, logs["api"], tmp_path,
        ))
        procs.append(_start(
            [str(BIN / "celery"), "-A", "devstack.demo.app:celery", "worker", "-P", "prefork", "-c", "2",
             "-Q", QUEUES, "-E", "--without-mingle", "--without-gossip", "-l", "INFO"],
            env, logs["worker"], tmp_path,
        ))
        procs.append(_start(
            [str(BIN / "celery"), "-A", "devstack.demo.app:celery", "beat", "-s", str(tmp_path / "beat-schedule"),
             "-l", "INFO"],
            env, logs["beat"], tmp_path,
        ))
        all_logs = list(logs.values())

        def api_up():
            try:
                return _http("GET", base + "/")
            except (urllib.error.URLError, ConnectionError):
                return None

        status, body = _wait_for(api_up, 20, "the Flask API", all_logs)
        assert status == 200 and body["status"] == "ok"
        assert {"demo.add", "demo.sleep", "demo.fail", "demo.send_mail", "demo.tick", "demo.echo",
                "demo.debug"} <= set(body["tasks"])

        enqueued = {}
        for key, path, method, queue in [
            ("add", "/tasks/add?x=1&y=2", "POST", "celery"),
            ("fail", "/tasks/fail?message=boom-123", "POST", "generation"),
            ("sleep", "/tasks/sleep?seconds=0.5", "GET", "dataset"),
            ("mail", "/tasks/mail?to=a@b.c", "GET", "mail"),
            ("echo", "/tasks/echo?text=%5Bbold%5Dx%5B/bold%5D", "POST", "celery"),
        ]:
            status, body = _http(method, base + path)
            assert status == 202, body
            assert body["queue"] == queue
            enqueued[key] = body["id"]

        def finished(task_id):
            def check():
                _, body = _http("GET", f"{base}/tasks/{task_id}")
                return body if body["state"] in ("SUCCESS", "FAILURE") else None
            return check

        add = _wait_for(finished(enqueued["add"]), 20, "demo.add", all_logs)
        assert add == {"id": enqueued["add"], "state": "SUCCESS", "result": 3}

        fail = _wait_for(finished(enqueued["fail"]), 10, "demo.fail", all_logs)
        assert fail["state"] == "FAILURE"
        assert "ValueError" in fail["result"] and "boom-123" in fail["result"]

        sleep = _wait_for(finished(enqueued["sleep"]), 10, "demo.sleep", all_logs)
        assert sleep["state"] == "SUCCESS" and sleep["result"] == 0.5

        mail = _wait_for(finished(enqueued["mail"]), 10, "demo.send_mail", all_logs)
        assert mail["state"] == "SUCCESS"

        echo = _wait_for(finished(enqueued["echo"]), 10, "demo.echo", all_logs)
        assert echo["state"] == "SUCCESS"
        _wait_for(lambda: "[bold]x[/bold]" in logs["worker"].read_text(errors="replace"), 5,
                  "the echoed text in the worker output", all_logs)

        # Beat (every 1 s here) -> worker -> cache db 0, read back through the API and directly.
        def ticked():
            status, body = _http("GET", base + "/cache/last_tick")
            return body if status == 200 and body["value"] else None

        tick = _wait_for(ticked, 15, "demo.tick to write demo:last_tick", all_logs)
        assert redis_server.client(0).get("demo:last_tick") is not None
        assert tick["key"] == "demo:last_tick"
    finally:
        for proc in reversed(procs):
            _stop(proc)


def test_demo_without_broker_url_says_run_devstack_up(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for name in ("CELERY_BROKER_URL", "CELERY_RESULT_BACKEND", "REDIS_URL", "FLASK_CELERY__broker_url"):
        env.pop(name, None)
    proc = subprocess.run(
        [sys.executable, "-c", "import devstack.demo.app"], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode != 0
    assert "CELERY_BROKER_URL is not set" in proc.stderr
    assert "devstack up" in proc.stderr
