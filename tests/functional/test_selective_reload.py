"""Restart only what imported the change: each service reports the project files it imported, and a save
restarts the services that imported the file (real Redis, Flask, Celery worker and beat).

The app, written into tmp_path: `app.py` (Flask + Celery, imports `shared.py`) is what every service
loads; the API runs `api_main:app`, which adds `views.py`; the worker alone loads `worker_tasks.py`
(`celery worker -I worker_tasks`); beat loads `app.py` only.
"""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from devstack.config import load_config
from devstack.engine import Engine
from devstack.events import State
from devstack.module_report import REPORT_VAR, ROOT_VAR, SITE_DIR, child_env
from tests.functional.test_reload import Recorder, settled
from tests.waiting import wait_until_async as until
from tests.stack import free_port

pytestmark = [pytest.mark.functional, pytest.mark.timeout(240)]

APP = '''
import os

from celery import Celery
from flask import Flask

import shared

app = Flask(__name__)
celery = Celery("selective", broker=os.environ["CELERY_BROKER_URL"], backend=os.environ["CELERY_RESULT_BACKEND"])
celery.conf.broker_connection_retry_on_startup = True
'''

API_MAIN = '''
from app import app

import views  # noqa: F401  (the routes: only the API loads them)
'''

VIEWS = '''
from app import app

VERSION = {version!r}


@app.get("/version")
def version():
    return {{"version": VERSION}}
'''

WORKER_TASKS = '''
from app import celery

VERSION = {version!r}
{extra}

@celery.task(name="worker_tasks.version")
def version():
    return VERSION
'''

CONFIG = '''
[project]
name = "selective"
env_file = ""

[redis]
port = {redis_port}

[api]
app = "api_main:app"
port = {api_port}
ready_path = "/version"

[worker]
app = "app:celery"
concurrency = 1
args = ["-I", "worker_tasks"]

[reload]
debounce_ms = 150
'''


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(textwrap.dedent(text))


def write_app(folder: Path) -> Path:
    write(folder, "app.py", APP)
    write(folder, "shared.py", "VERSION = 'v1'\n")
    write(folder, "api_main.py", API_MAIN)
    write(folder, "views.py", VIEWS.format(version="v1"))
    write(folder, "worker_tasks.py", WORKER_TASKS.format(version="v1", extra=""))
    path = folder / "devstack.toml"
    path.write_text(CONFIG.format(redis_port=free_port(), api_port=free_port()))
    return path


def pids(engine: Engine) -> dict[str, int | None]:
    return {name: engine.services[name].pid for name in ("api", "worker", "beat")}


def reported(engine: Engine, service: str) -> set[str]:
    files = engine.reloader.reports.files(service)
    return {p.name for p in files} if files else set()


async def reloaded(engine: Engine, rec: Recorder, before: dict[str, int | None], expected: set[str]) -> None:
    """Wait until exactly `expected` restarted (new pids, ready, reports written again); the rest kept theirs."""
    await until(lambda: all(engine.services[n].pid != before[n] and engine.services[n].state == State.READY
                            for n in expected), 40, f"{sorted(expected)} to restart")
    await settled(engine)
    after = pids(engine)
    assert {n for n in after if after[n] != before[n]} == expected, (before, after, rec.texts()[-5:])
    await until(lambda: all(engine.reloader.loaded().get(n) for n in expected), 10, "the new reports")


async def test_only_the_services_that_imported_a_file_restart(tmp_path):
    engine = Engine(load_config(write_app(tmp_path)))
    rec = Recorder(engine)
    await engine.start()
    try:
        assert await engine.wait_all_ready(90), engine.status()
        await asyncio.wait_for(engine.reloader.armed.wait(), 10)
        await until(lambda: {"worker_tasks.py", "app.py"} <= reported(engine, "worker")
                    and {"views.py", "api_main.py"} <= reported(engine, "api") and "app.py" in reported(engine, "beat"),
                    15, f"every service's report ({engine.reloader.loaded()})")
        assert "views.py" not in reported(engine, "worker") and "worker_tasks.py" not in reported(engine, "api")
        assert not {"views.py", "worker_tasks.py"} & reported(engine, "beat")

        before = pids(engine)
        write(tmp_path, "worker_tasks.py", WORKER_TASKS.format(version="v2", extra=""))
        await reloaded(engine, rec, before, {"worker"})
        assert ("reload: worker_tasks.py changed -> restarting worker (worker_tasks.py imported by worker)"
                in rec.texts()), rec.texts()

        before = pids(engine)
        write(tmp_path, "views.py", VIEWS.format(version="v2"))
        await reloaded(engine, rec, before, {"api"})
        assert "reload: views.py changed -> restarting api (views.py imported by api)" in rec.texts()

        before = pids(engine)
        write(tmp_path, "shared.py", "VERSION = 'v2'\n")
        await reloaded(engine, rec, before, {"api", "worker", "beat"})
        assert "reload: shared.py changed -> restarting api, worker, beat (shared.py imported by api, worker, beat)" \
            in rec.texts()

        # A module nobody imported yet: the watch paths decide (all three watch the project folder).
        before = pids(engine)
        write(tmp_path, "helpers.py", "X = 1\n")
        await reloaded(engine, rec, before, {"api", "worker", "beat"})
        assert any(t.startswith("reload: helpers.py changed -> restarting api, worker, beat (helpers.py imported "
                                "by no service yet") for t in rec.texts()), rec.texts()

        # Once the worker imports it, it is the worker's alone. That worker runs in a warm spare (the
        # guard starts the report there, devstack/guard.py): its report must name the new import.
        await until(lambda: engine.services["worker"].spare is not None, 30, "the worker's warm spare")
        before = pids(engine)
        write(tmp_path, "worker_tasks.py", WORKER_TASKS.format(version="v3", extra="import helpers  # noqa: F401\n"))
        await reloaded(engine, rec, before, {"worker"})
        assert "(warm start)" in [s for s in rec.states if s.service == "worker" and s.state == State.READY][-1].detail
        await until(lambda: "helpers.py" in reported(engine, "worker"), 10, "the worker to report helpers.py")
        before = pids(engine)
        write(tmp_path, "helpers.py", "X = 2\n")
        await reloaded(engine, rec, before, {"worker"})
    finally:
        await engine.shutdown()


def test_the_report_hook_chains_cleans_up_and_reports(tmp_path):
    """The start-up hook in a plain Python process: the app's own sitecustomize still runs, PYTHONPATH is
    as the user set it, the report variables are gone, and the report lists the project's modules only."""
    project, other = tmp_path / "project", tmp_path / "other"
    project.mkdir()
    other.mkdir()
    (other / "sitecustomize.py").write_text("import os\nos.environ['APP_SITECUSTOMIZE'] = 'ran'\n")
    (project / "mymod.py").write_text("X = 1\n")
    (project / "main.py").write_text(textwrap.dedent("""
        import json, os, sys, time
        import mymod, json.decoder
        print(json.dumps({"pythonpath": os.environ.get("PYTHONPATH"), "site": os.environ.get("APP_SITECUSTOMIZE"),
                          "vars": [k for k in os.environ if k.startswith("DEVSTACK_")],
                          "on_path": [p for p in sys.path if "module_report_site" in p]}), flush=True)
        time.sleep(2.5)  # the hook writes once the module count held still for 0.5 s
    """))
    state = tmp_path / "state"
    env = child_env({"PATH": os.environ["PATH"], "PYTHONPATH": str(other)}, "api", state, project)
    assert env["PYTHONPATH"].startswith(SITE_DIR) and REPORT_VAR in env and ROOT_VAR in env
    out = subprocess.run([sys.executable, str(project / "main.py")], cwd=project, env=env, capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout)
    assert seen == {"pythonpath": str(other), "site": "ran", "vars": [], "on_path": []}
    report = json.loads((state / "modules" / "api.json").read_text())
    assert sorted(Path(f).name for f in report["files"]) == ["main.py", "mymod.py"]
