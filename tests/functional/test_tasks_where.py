"""`devstack task ID` follows one task through every `where` state, and `devstack revoke --terminate` stops a
running task, on a real stack (Redis, the demo's Flask API, a Celery worker with one pool process)."""
from __future__ import annotations

import psutil
import pytest

from tests.functional.test_cli import stack  # noqa: F401  (stack: the fixture)
from tests.functional.test_tasks import task_json, wait_where
from tests.stack import write_demo_config
from tests.waiting import wait_until

pytestmark = pytest.mark.functional


def one_process_config(tmp_path):
    """The demo with `-c 1`: a second task waits in the worker's prefetch while the first one runs."""
    config = write_demo_config(tmp_path)
    config.write_text(config.read_text().replace("concurrency = 2", "concurrency = 1"))
    return config


def sleep_task(s, seconds: float) -> str:
    return s.api(f"/tasks/sleep?seconds={seconds}")["id"]


def test_one_task_is_queued_reserved_running_done_and_terminate_stops_a_running_one(stack, tmp_path):
    s = stack(one_process_config(tmp_path))
    s.wait_ready()
    assert s.cli("stop", "worker").returncode == 0
    wait_until(lambda: s.status()["services"]["worker"]["state"] == "stopped", 30, "worker stopped")
    long = sleep_task(s, 4)
    followed = sleep_task(s, 3)
    queued = task_json(s, followed)
    assert queued["where"] == "queued" and queued["where_detail"]["queue"] == "dataset", queued
    assert queued["where_detail"]["position"] == 2, queued  # behind the long one

    assert s.cli("start", "worker").returncode == 0
    wait_where(s, long, "running")
    reserved = task_json(s, followed)  # the long task holds the only pool process: this one is prefetched
    assert reserved["where"] == "reserved", reserved
    assert reserved["where_detail"]["queue"] == "dataset", reserved
    assert "reserved by" in reserved["where_detail"]["detail"] and "unacked" in reserved["where_detail"]["detail"]

    running = wait_where(s, followed, "running", timeout=15)["where_detail"]
    assert running["hostname"] and f"in pool process {running['pid']}" in running["detail"], running
    assert psutil.Process(running["pid"]).ppid() == running["worker_pid"], running  # the pool's, not the worker's

    done = wait_where(s, followed, "done", timeout=15, state="succeeded")
    assert done["result"] == "3" and done["where_detail"]["state"] == "succeeded", done

    # terminate: the running task's pool process is stopped, the worker itself survives and runs the next task
    worker_pid = s.status()["services"]["worker"]["pid"]
    doomed = sleep_task(s, 60)
    pid = wait_where(s, doomed, "running")["where_detail"]["pid"]
    res = s.cli("revoke", doomed[:8], "--terminate")
    assert res.returncode == 0, res.stderr
    assert "terminated with SIGTERM" in res.stdout, res.stdout
    gone = wait_where(s, doomed, "done", timeout=15, state="revoked")
    assert "succeeded" not in gone["times"], gone
    wait_until(lambda: not _alive(pid), 10, f"pool process {pid} gone")
    after = s.api("/tasks/add?x=2&y=3")["id"]  # one pool process: it can run only if the pool came back
    assert wait_where(s, after, "done", state="succeeded")["result"] == "5"
    assert s.status()["services"]["worker"]["pid"] == worker_pid


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
