"""Crashes explained and contained, with real Redis, Celery and Flask processes (issue 11): every exit
says why, crash loops stop, `stop` holds across reloads, `down` waits for the stack, and messages a
dead worker reserved come back by themselves."""
from __future__ import annotations

import asyncio
import os
import signal
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

from devstack.events import EventBus, State, StateChanged
from devstack.probes import LogProbe
from devstack.supervisor import Service, ServiceSpec
from tests.functional.test_cli import Stack, stack  # noqa: F401 (stack: the fixture)
from tests.waiting import wait_until
from tests.stack import free_port, write_demo_config

pytestmark = pytest.mark.functional


def status_of(s: Stack) -> dict:
    """`devstack status --json`, or {} while the control socket is not up yet."""
    res = s.cli("status", "--json")
    if res.returncode:
        assert "No devstack stack is running" in res.stderr, res.stderr
        assert s.proc.poll() is None, s.output
        return {"services": {}}
    import json

    return json.loads(res.stdout)


def state_of(status: dict, name: str) -> str | None:
    return status["services"].get(name, {}).get("state")


def crash_project(folder: Path, worker_module: str, beat_module: str | None = None) -> Path:
    """A project whose worker (and beat) apps fail at import; crash_limit 3 keeps the loop short."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "devstack.toml").write_text(textwrap.dedent(f"""
        [project]
        name = "crashes"
        crash_limit = 3

        [redis]
        mode = "auto"
        port = {free_port()}

        [api]
        enabled = false

        [worker]
        app = "{worker_module}:celery"
        concurrency = 1

        [beat]
        enabled = {"true" if beat_module else "false"}
        {f'app = "{beat_module}:celery"' if beat_module else ""}

        [reload]
        enabled = false
        """))
    return folder / "devstack.toml"


def test_version_mismatch_at_import_is_named_with_the_fix_and_the_crash_loop_stops(stack, tmp_path):
    (tmp_path / "mismatch.py").write_text(
        "import kombu.exceptions\n"
        "raise kombu.exceptions.VersionMismatch("
        "'Redis transport requires redis-py versions 6.1.0 or later. You have 5.3.1')\n")
    s = stack(crash_project(tmp_path, "mismatch"))
    line = "kombu.exceptions.VersionMismatch: Redis transport requires redis-py versions 6.1.0 or later"
    status = wait_until(lambda: state_of(st := status_of(s), "worker") == "crashed" and st, 60, "the worker to stop restarting")
    worker = status["services"]["worker"]
    assert line in worker["last_error"]
    assert "pip install 'redis>=6.1.0'" in worker["last_error"]
    assert "python" in worker["last_error"].split("pip install")[0]  # the app's interpreter, by path
    # Every backoff notice carried the reason, not a bare "exited with code 1".
    backoffs = [ln for ln in s.output.splitlines() if "restarting in" in ln]
    assert len(backoffs) == 2 and all(line in ln for ln in backoffs), backoffs
    assert "Crashed 3 times in a row" in s.output
    restarts = worker["restarts"]
    time.sleep(4)  # past the next backoff: no more restarts
    again = s.status()["services"]["worker"]
    assert again["state"] == "crashed" and again["restarts"] == restarts
    text = s.cli("status").stdout
    assert "last error: " + line in text
    doctor = s.cli("doctor")  # it asks the running stack
    assert doctor.returncode == 1
    assert "FAIL crashing services: worker crashed" in doctor.stdout and line in doctor.stdout, doctor.stdout

    # A restart command gives it a fresh chance (and it crashes again, with the reason).
    assert s.cli("restart", "worker").returncode == 0
    wait_until(lambda: s.status()["services"]["worker"]["restarts"] > restarts, 20, "a new attempt")


def test_import_error_names_module_and_interpreter_and_syntax_error_names_file_line(stack, tmp_path):
    (tmp_path / "needs_missing.py").write_text("import not_installed_anywhere_xyz\n")
    (tmp_path / "beatapp.py").write_text("from celery import Celery\ncelery = Celery('b')\nimport broken_tasks\n")
    (tmp_path / "broken_tasks.py").write_text("x = 1\ndef f(:\n    pass\n")
    s = stack(crash_project(tmp_path, "needs_missing", "beatapp"))
    status = wait_until(lambda: state_of(st := status_of(s), "worker") == "crashed"
                      and state_of(st, "beat") == "crashed" and st, 60, "both to give up")
    worker, beat = status["services"]["worker"]["last_error"], status["services"]["beat"]["last_error"]
    assert "ModuleNotFoundError: No module named 'not_installed_anywhere_xyz'" in worker
    assert "-m pip install not_installed_anywhere_xyz" in worker and "python" in worker
    assert f"Fix: the syntax at {tmp_path / 'broken_tasks.py'}:2" in beat
    assert f"broken_tasks.py:2" in s.output  # in the notices too


async def test_ready_then_crashing_is_never_shown_ready_and_stops_after_the_limit(tmp_path):
    """A beat stand-in: logs `beat: Starting...`, then dies a moment later, as at its first due task."""
    bus = EventBus()
    lifeline_r, lifeline_w = os.pipe()
    code = ("import time, sys; print('beat: Starting...', flush=True); time.sleep(0.6); "
            "print('Traceback (most recent call last):'); print('  File \"sched.py\", line 9, in tick'); "
            "print('RuntimeError: schedule entry broken', flush=True); sys.exit(1)")
    spec = ServiceSpec("beat", [sys.executable, "-c", code], tmp_path, dict(os.environ, PYTHONUNBUFFERED="1"),
                       LogProbe(r"beat: Starting\.\.\."))
    svc = Service(spec, bus, tmp_path / "logs", lifeline_r, crash_limit=3)
    seen: list[tuple[State, bool]] = []
    bus.subscribe(lambda e: isinstance(e, StateChanged) and seen.append((e.state, svc.running)))
    wrong: list[str] = []

    async def watch():
        while True:  # what `devstack status` would show at any moment
            st = svc.status()
            if st["state"] == "ready" and not svc.running:
                wrong.append(f"ready without a process: {st}")
            await asyncio.sleep(0.01)

    watcher = asyncio.ensure_future(watch())
    try:
        svc.start()
        deadline = time.monotonic() + 30
        while svc.state != State.CRASHED or svc._task is not None and not svc._task.done():
            assert time.monotonic() < deadline, seen
            await asyncio.sleep(0.05)
    finally:
        watcher.cancel()
        await svc.stop()
        svc.close()
        os.close(lifeline_r)
        os.close(lifeline_w)
    assert not wrong, wrong
    assert [s for s, _ in seen].count(State.READY) == 3
    assert all(running for s, running in seen if s == State.READY)
    assert "RuntimeError: schedule entry broken" in svc.last_error and "sched.py:9" in svc.last_error
    states = [s for s, _ in seen]
    assert states[-1] == State.STOPPED or State.CRASHED in states


def test_stop_holds_across_a_save_and_down_waits_for_the_up_process(stack, tmp_path):
    (tmp_path / "watched.py").write_text("X = 1\n")
    config = write_demo_config(tmp_path, worker="watch = ['watched.py']", api="watch = ['watched.py']",
                               beat="watch = ['watched.py']")
    s = stack(config)
    s.wait_ready()
    assert s.cli("stop", "api", "beat").returncode == 0
    status = s.status()["services"]
    assert status["api"]["state"] == "stopped" and status["api"]["held"] is True
    assert "stopped (held)" in s.cli("status").stdout
    (tmp_path / "watched.py").write_text("X = 2\n")
    wait_until(lambda: "watched.py changed -> restarting worker" in s.output, 20, "the reload of the worker")
    time.sleep(3)
    status = s.status()["services"]
    assert status["api"]["state"] == "stopped" and status["beat"]["state"] == "stopped", status
    assert "restarting api" not in s.output and "beat" not in s.output.split("watched.py changed -> ")[1].split("\n")[0]
    assert s.cli("start", "beat").returncode == 0
    wait_until(lambda: s.status()["services"]["beat"]["state"] == "ready", 30, "beat started again")
    assert s.status()["services"]["beat"]["held"] is False

    down = s.cli("down", timeout=120)
    assert down.returncode == 0, down.stderr
    assert s.proc.poll() is not None, "`devstack down` returned while `devstack up` was still running"


def _sleep_tasks(s: Stack, n: int, seconds: float) -> list[str]:
    return [s.api(f"/tasks/sleep?seconds={seconds}")["id"] for _ in range(n)]


def _all_succeed(s: Stack, ids: list[str], timeout: float) -> None:
    def done():
        try:  # the API answers 500 while Redis is away
            return all(s.api(f"/tasks/{i}")["state"] == "SUCCESS" for i in ids)
        except OSError:
            return False
    wait_until(done, timeout, "every task to succeed", interval=0.5)


@pytest.mark.parametrize("victim", ["redis", "worker"])
def test_reserved_tasks_of_a_killed_process_complete_without_a_manual_requeue(stack, tmp_path, victim):
    config = write_demo_config(tmp_path, worker='pool = "prefork"', extra="[reload]\nenabled = false")
    s = stack(config)
    s.wait_ready()
    pid = s.status()["services"][victim]["pid"]
    worker_pid = s.status()["services"]["worker"]["pid"]
    log = tmp_path / ".devstack" / "logs" / "worker.log"
    ids = _sleep_tasks(s, 5, 3)
    # Two run (prefork -c 2), three wait reserved in `unacked`. Killed early, so that the two running
    # ones can still store their results once Redis is back (early-ack tasks that are running when their
    # worker process dies are lost: Celery acked them at start).
    def received():
        return sum(1 for ln in log.read_text().splitlines() if "Task demo.sleep[" in ln and ln.endswith("] received"))
    wait_until(lambda: received() >= 5, 20, "five received", interval=0.02)
    os.kill(pid, signal.SIGKILL)
    _all_succeed(s, ids[2:], 90)  # the three reserved ones: what devstack's requeue promises
    if victim == "redis" and s.status()["services"]["worker"]["pid"] == worker_pid:
        # The worker rode out the Redis restart: its two running tasks stored their results too. (Now and
        # then kombu's channel close on the lost connection raises instead — `_connparams` on a closed
        # connection, celery/kombu#582 — and the worker dies with its two running, already acked tasks.)
        _all_succeed(s, ids[:2], 30)
    assert "requeued" in s.output and "reserved message(s) left in Redis' `unacked`" in s.output
    assert s.status()["auto_requeued"] >= 1


def test_doctor_checks_the_app_interpreter_and_the_redis_py_kombu_accepts(tmp_path):
    """A stand-in for an old redis-py on the worker's PYTHONPATH: kombu refuses it, as it would at start."""
    fake = tmp_path / "oldlibs"
    fake.mkdir(parents=True)  # the real redis-py, made to say it is 5.3.1 (as an old install would)
    (fake / "sitecustomize.py").write_text("import redis\nredis.VERSION = (5, 3, 1)\nredis.__version__ = '5.3.1'\n")
    config = write_demo_config(tmp_path, worker=f'env = {{ PYTHONPATH = "{tmp_path / "oldlibs"}" }}')
    from tests.functional.test_cli import run_cli

    res = run_cli("doctor", "--config", str(config), cwd=tmp_path, timeout=120)
    assert res.returncode == 1, res.stdout
    line = next(ln for ln in res.stdout.splitlines() if "app environment" in ln)
    assert line.startswith("FAIL") and "redis 5.3.1" in line and "VersionMismatch" in line, line
    assert "python" in line and "pip install 'redis>=6.1.0'" in res.stdout
