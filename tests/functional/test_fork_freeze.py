"""A prefork worker freezes its heap before its pool forks; a warm spare freezes what it preloaded, and runs
every service's start-up, cold or warm, runs without the cyclic collector (real Redis, Flask and Celery; see
module_report_site/sitecustomize.py `freeze_before_forks` and `collector_off_while_starting`, guard.py `_preload`).

The app notes `gc.get_freeze_count()` once it is imported (what a spare froze before "go": its libraries) and
the task returns that and the count in the pool process (which inherits what the worker froze before forking
it), so each freeze is seen apart from the other. The count only grows by a freeze (a frozen object that is
freed leaves it).
"""
from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from tests.functional import test_preload as preload
from tests.functional.test_preload import last_ready, preloaded_in, preloaded_spare, spare_child, started
from tests.functional.test_reload import celery_client, run_task
from tests.waiting import wait_until_async as until

pytestmark = [pytest.mark.functional, pytest.mark.timeout(240)]

APP = '''
import gc
import os

import preload_marker  # noqa: F401
from celery import Celery
from flask import Flask
{extra}
app = Flask(__name__)
celery = Celery("freeze", broker=os.environ["CELERY_BROKER_URL"], backend=os.environ["CELERY_RESULT_BACKEND"])
celery.conf.broker_connection_retry_on_startup = True
FROZEN_AT_IMPORT = gc.get_freeze_count()
COLLECTING_AT_IMPORT = gc.isenabled()


@celery.task(name="frozen")
def frozen():
    return {{"at_import": FROZEN_AT_IMPORT, "in_pool": gc.get_freeze_count(), "collecting": gc.isenabled(),
            "leaked": sorted(k for k in os.environ if k.startswith("DEVSTACK_"))}}


@app.route("/gc")
def collector():
    return {{"at_import": COLLECTING_AT_IMPORT, "now": gc.isenabled()}}
'''


def write_app(tmp_path: Path, worker: str = "") -> Path:
    """test_preload's project and config (a prefork worker, `-c 1`: the default pool) with this app."""
    return preload.write_app(tmp_path, worker=worker, app=APP)


async def counts(engine) -> dict:
    return await run_task(celery_client(engine), "frozen")


async def warm_restart(engine, rec, tmp_path) -> None:
    child = await preloaded_spare(engine, tmp_path, "the worker's spare")
    await engine.restart(["worker"])
    assert engine.services["worker"].pid == child.pid and "(warm start)" in last_ready(rec, "worker")


def collector(engine) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{engine.config.api.port}/gc", timeout=5) as resp:
        return json.loads(resp.read())


async def warm_api(engine, rec, tmp_path) -> None:
    await until(lambda: (child := spare_child(engine, "api")) is not None and preloaded_in(tmp_path, child.pid),
                40, "the API's spare")
    child = spare_child(engine, "api")
    await engine.restart(["api"])
    assert engine.services["api"].pid == child.pid and "(warm start)" in last_ready(rec, "api")


async def test_the_start_up_runs_without_the_collector_until_its_imports_settle_cold_and_warm(tmp_path):
    engine, rec = await started(write_app(tmp_path))
    try:
        assert collector(engine)["at_import"] is False  # cold: off from the interpreter's start
        await until(lambda: collector(engine)["now"], 10, "the collector back on in the cold API")
        await warm_api(engine, rec, tmp_path)
        assert collector(engine)["at_import"] is False
        # Back on once no module was imported for 2 s (sitecustomize.py GC_OFF_SETTLE).
        await until(lambda: collector(engine)["now"], 10, "the collector back on in the API")
    finally:
        await engine.shutdown()


async def test_collector_off_at_start_false_leaves_the_collector_alone(tmp_path):
    config = write_app(tmp_path)
    config.write_text(config.read_text().replace("[worker]", "collector_off_at_start = false\n\n[worker]"))
    engine, rec = await started(config)
    try:
        assert collector(engine) == {"at_import": True, "now": True}
        await warm_api(engine, rec, tmp_path)
        assert collector(engine) == {"at_import": True, "now": True}
    finally:
        await engine.shutdown()


async def test_the_worker_freezes_before_forking_its_pool_cold_and_warm(tmp_path):
    engine, rec = await started(write_app(tmp_path))
    try:
        cold = await counts(engine)
        assert cold["at_import"] == 0 and cold["in_pool"] > 0, cold  # nothing preloaded: the fork's freeze alone
        assert cold["leaked"] == [], "devstack's variables must not reach the app"
        assert cold["collecting"]
        await warm_restart(engine, rec, tmp_path)
        warm = await counts(engine)
        # The spare froze its libraries before "go"; the worker froze the app too before forking.
        assert warm["at_import"] > 0 and warm["in_pool"] > warm["at_import"], warm
        assert warm["leaked"] == []
        # Forked while the worker's start-up ran without the collector: the pool process collects again.
        assert warm["collecting"], warm
    finally:
        await engine.shutdown()


async def test_freeze_before_fork_false_leaves_the_fork_alone(tmp_path):
    engine, rec = await started(write_app(tmp_path, "freeze_before_fork = false"))
    try:
        assert await counts(engine) == {"at_import": 0, "in_pool": 0, "collecting": True, "leaked": []}
        await warm_restart(engine, rec, tmp_path)
        warm = await counts(engine)
        # The spare's freeze only: objects leave the permanent generation when freed, never join it unfrozen.
        assert 0 < warm["in_pool"] <= warm["at_import"], warm
    finally:
        await engine.shutdown()
