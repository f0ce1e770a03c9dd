"""Warm spares preload what the service loaded from outside the project (real Redis, Flask, Celery).

The app lives in tmp_path/project; its "third-party" libraries in tmp_path/libs (on PYTHONPATH, outside
the project): `preload_marker` appends one JSON line per import (pid, argv[0], whether gevent patched
the socket module) to MARKER_FILE, so a test sees in which process, and before what, it was imported.
In a spare it is imported before "go", while sys.argv[0] is still devstack's guard.py.
"""
from __future__ import annotations

import asyncio
import json
import os
import textwrap
from pathlib import Path

import psutil
import pytest

from devstack.config import load_config
from devstack.engine import Engine
from devstack.events import State
from tests.functional.test_reload import Recorder, celery_client, run_task
from tests.stack import free_port
from tests.waiting import wait_until_async as until

pytestmark = [pytest.mark.functional, pytest.mark.timeout(240)]

MARKER = '''
import json, os, sys

_monkey = sys.modules.get("gevent.monkey")
with open(os.environ["MARKER_FILE"], "a") as f:
    f.write(json.dumps({"pid": os.getpid(), "argv0": os.path.basename(sys.argv[0]),
                        "patched": bool(_monkey and _monkey.is_module_patched("socket"))}) + "\\n")
'''
# Stands for a library that works only once the app configured it (reads the app's settings at import).
FLAKY = '''
import sys

if "app" not in sys.modules:
    raise RuntimeError("flaky_lib needs the app configured first")
'''
# Stands for an extension that crashes its process when imported out of the app's order.
DEADLY = '''
import os, sys

if os.path.basename(sys.argv[0]) == "guard.py":
    os._exit(9)
'''
APP = '''
import os

import click  # noqa: F401
import pydantic  # noqa: F401
from celery import Celery
from flask import Flask

import preload_marker  # noqa: F401
{extra}
app = Flask(__name__)
celery = Celery("preload", broker=os.environ["CELERY_BROKER_URL"], backend=os.environ["CELERY_RESULT_BACKEND"])
celery.conf.broker_connection_retry_on_startup = True


@celery.task(name="ping")
def ping():
    return "pong"
'''
CONFIG = '''
[project]
name = "preload"
env_file = ""

[redis]
port = {redis_port}

[env]
PYTHONPATH = "{libs}"
MARKER_FILE = "{marker}"

[api]
app = "app:app"
port = {api_port}

[worker]
app = "app:celery"
concurrency = 1
{worker}

[beat]
enabled = false
'''


def write_app(tmp_path: Path, extra: str = "", worker: str = "", app: str = APP) -> Path:
    """The project (`app`, formatted with `extra`), its libraries and its devstack.toml (`worker`: more lines of
    its [worker] table)."""
    project, libs = tmp_path / "project", tmp_path / "libs"
    project.mkdir()
    libs.mkdir()
    for name, text in (("preload_marker", MARKER), ("flaky_lib", FLAKY), ("deadly_lib", DEADLY)):
        (libs / f"{name}.py").write_text(textwrap.dedent(text))
    (project / "app.py").write_text(textwrap.dedent(app.format(extra=extra)))
    path = project / "devstack.toml"
    path.write_text(CONFIG.format(redis_port=free_port(), api_port=free_port(), libs=libs,
                                  marker=tmp_path / "marker.jsonl", worker=worker))
    return path


def marks(tmp_path: Path) -> list[dict]:
    path = tmp_path / "marker.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def preload_list(engine: Engine, service: str) -> list[str]:
    try:
        return json.loads((engine.state_dir / "preload" / f"{service}.json").read_text())["modules"]
    except (OSError, ValueError, KeyError):
        return []


def spare_child(engine: Engine, service: str) -> psutil.Process | None:
    """The spare's child (the process holding the imports), once its guard forked it."""
    pid = engine.status()["services"][service]["spare_pid"]
    try:
        children = psutil.Process(pid).children() if pid else []
    except psutil.Error:
        return None
    return children[0] if children else None


def preloaded_in(tmp_path: Path, pid: int) -> list[dict]:
    """The marker's imports in `pid` that happened before "go" (still running as guard.py)."""
    return [m for m in marks(tmp_path) if m["pid"] == pid and m["argv0"] == "guard.py"]


async def started(config: Path) -> tuple[Engine, Recorder]:
    engine = Engine(load_config(config))
    rec = Recorder(engine)
    await engine.start()
    assert await engine.wait_all_ready(90), engine.status()
    return engine, rec


def last_ready(rec: Recorder, service: str) -> str:
    return [s for s in rec.states if s.service == service and s.state == State.READY][-1].detail


async def preloaded_spare(engine: Engine, tmp_path: Path, what: str) -> psutil.Process:
    """The worker's spare child, once it imported the marker ahead (so: the learned list)."""
    await until(lambda: (child := spare_child(engine, "worker")) is not None and preloaded_in(tmp_path, child.pid),
                40, what)
    return spare_child(engine, "worker")


async def restart_into(engine: Engine, rec: Recorder, child: psutil.Process) -> None:
    """`restart worker` runs the new generation in that spare, and it works."""
    await engine.restart(["worker"])
    assert engine.services["worker"].pid == child.pid and "(warm start)" in last_ready(rec, "worker")
    assert await run_task(celery_client(engine), "ping") == "pong"


async def test_the_list_is_written_then_used_by_the_spare_and_by_the_next_cold_start(tmp_path):
    config = write_app(tmp_path)
    engine, rec = await started(config)
    try:
        await until(lambda: {"preload_marker", "pydantic", "click", "flask"} <= set(preload_list(engine, "worker"))
                    and "preload_marker" in preload_list(engine, "api"), 20, "the preload lists")
        for service in ("api", "worker"):
            names = preload_list(engine, service)
            assert "app" not in names and not any(n.startswith("devstack") for n in names), names
        # The worker's spare imported the learned list (the fixed one has neither pydantic nor the marker).
        child = await preloaded_spare(engine, tmp_path, "the worker's spare")
        maps = Path(f"/proc/{child.pid}/maps").read_text()
        assert "_pydantic_core" in maps, "pydantic's extension is not loaded in the spare"
        assert "app" not in json.dumps([m for m in marks(tmp_path) if m["pid"] == child.pid and m["argv0"] != "guard.py"])
        # Its memory is shown (read every 2 s): the guard alone is ~8 MB, the imports put it above 20 MB.
        await until(lambda: (engine.status()["services"]["worker"]["spare_rss"] or 0) > 20 * 2**20, 10,
                    "the spare's RSS in the status")
        await restart_into(engine, rec, child)
    finally:
        await engine.shutdown()

    # The next `devstack up` keeps the recorded lists (the module reports are cleared, these are not): its
    # first spare takes the last run's list at once, without waiting for the new generation's report.
    recorded = preload_list(engine, "worker")
    (engine.state_dir / "preload" / "worker.json").write_text(json.dumps({"modules": [*recorded, "extra_lib"]}))
    # The worker alone this time: beside a slower API its spare waits until the API is ready (the spare gate),
    # and by then this run's report may have replaced the list (right, but not what this checks).
    config.write_text(config.read_text().replace('[api]\n', '[api]\nenabled = false\n'))
    engine, rec = await started(config)
    try:
        assert "(warm start)" not in last_ready(rec, "worker")  # cold: never begun before the service starts
        child = await preloaded_spare(engine, tmp_path, "the first spare of the next run")
        assert "extra_lib" in engine.services["worker"].spare.modules  # from the file, not this run's report
        await restart_into(engine, rec, child)
    finally:
        await engine.shutdown()


async def test_a_module_that_fails_or_kills_the_spare_is_dropped_with_a_notice(tmp_path):
    config = write_app(tmp_path, extra="import flaky_lib  # noqa: F401\nimport deadly_lib  # noqa: F401\n")
    engine, rec = await started(config)
    try:
        await until(lambda: {"flaky_lib", "deadly_lib"} <= set(preload_list(engine, "worker")), 20, "the list")
        await until(lambda: any("deadly_lib (the spare died while importing it)" in t for t in rec.texts()
                                if t.startswith("worker:")), 40, f"the notice ({rec.texts()})")
        notice = next(t for t in rec.texts() if t.startswith("worker:") and "deadly_lib" in t)
        assert "flaky_lib (RuntimeError: flaky_lib needs the app configured first)" in notice, notice
        assert "preload_exclude" in notice, notice
        dropped = json.loads((engine.state_dir / "preload" / "worker.dropped.json").read_text())["modules"]
        assert {"flaky_lib", "deadly_lib"} <= set(dropped)
        # A new spare is prepared without them, and serves the next restart.
        await restart_into(engine, rec, await preloaded_spare(engine, tmp_path, "a spare without them"))
    finally:
        await engine.shutdown()


async def test_a_gevent_worker_spare_patches_first_then_preloads(tmp_path):
    config = write_app(tmp_path, worker='pool = "gevent"')
    engine, rec = await started(config)
    try:
        await until(lambda: {"gevent.monkey", "preload_marker"} <= set(preload_list(engine, "worker")), 20, "the list")
        child = await preloaded_spare(engine, tmp_path, "the gevent worker's spare")
        assert all(m["patched"] for m in preloaded_in(tmp_path, child.pid)), marks(tmp_path)
        await restart_into(engine, rec, child)
        # The module report still runs in the warm-started gevent worker (a greenlet there).
        report = engine.state_dir / "modules" / "worker.json"
        await until(lambda: report.exists() and json.loads(report.read_text())["pid"] == child.pid, 20,
                    "the warm worker's module report")
        assert not [t for t in rec.texts() if "preload list" in t or "warm spare exited" in t], rec.texts()
    finally:
        await engine.shutdown()


SLOW_API = '''
import os, sys, time

if "flask" in os.path.basename(sys.argv[0]):
    time.sleep(5)  # stands for a big app's API, still importing long after the worker is ready
'''


async def test_no_spare_is_made_while_another_service_is_still_starting(tmp_path):
    """A spare's imports would take the CPU of a service still starting (on 2 cores beat's spare cost a big app's
    api and worker 1.6 s): the worker's spare waits until the API is ready, then is made."""
    config = write_app(tmp_path, extra=SLOW_API)
    engine = Engine(load_config(config))
    await engine.start()
    try:
        worker, api = engine.services["worker"], engine.services["api"]
        await until(lambda: worker.state == State.READY, 60, "the worker ready")
        assert api.state == State.STARTING, "the API was meant to be still starting (it sleeps 5 s at import)"
        seen = []  # (api's state, the worker's spare) every 20 ms until the API is ready
        while api.state == State.STARTING:
            seen.append(engine.status()["services"]["worker"]["spare_pid"])
            await asyncio.sleep(0.02)
        assert len(seen) > 75, f"the API was ready {len(seen) * 0.02:.1f} s after the worker: too soon to mean anything"
        assert not any(seen), "a spare was made while the API was still starting"
        assert await engine.wait_all_ready(60), engine.status()
        await until(lambda: engine.status()["services"]["worker"]["spare_pid"], 20, "the worker's spare, after")
    finally:
        await engine.shutdown()
