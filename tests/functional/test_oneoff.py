"""`devstack run`, `devstack env` and oneshot steps, with real Redis, Flask and Celery processes."""
from __future__ import annotations

import json
import re
import socket
import sys
from pathlib import Path

import psutil
import pytest

from devstack.module_report import app_view

from tests.functional.test_cli import Stack, run_cli, wait_for
from tests.stack import write_demo_config

pytestmark = pytest.mark.functional


def listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def left_behind(folder: Path) -> list[psutil.Process]:
    """Processes whose command line names the project folder (the guard of its Redis does)."""
    found = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if str(folder) in " ".join(p.info["cmdline"] or ()) and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.NoSuchProcess:
            pass
    return found


@pytest.fixture
def stacks(tmp_path):
    """`make(config, folder=tmp_path)` runs `devstack up --no-tui` there; every stack is stopped at the end."""
    made: list[Stack] = []

    def make(config: Path, folder: Path | None = None) -> Stack:
        s = Stack(folder or tmp_path, config)
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


def test_run_starts_redis_for_the_command_and_returns_its_exit_code(tmp_path):
    config = write_demo_config(tmp_path)
    port = int(config.read_text().split("[redis]")[1].split("port = ")[1].split()[0])
    code = ("import os, sys, redis; url = os.environ['CELERY_BROKER_URL']; print(url); print(os.getcwd()); "
            "print(redis.Redis.from_url(os.environ['REDIS_URL']).ping()); sys.exit(7)")
    res = run_cli("run", "--config", str(config), "--", sys.executable, "-c", code, cwd=tmp_path / "..")
    assert res.returncode == 7, res.stderr
    password = (tmp_path / ".devstack" / "redis.password").read_text().strip()
    url, cwd, ping = res.stdout.split()
    assert url.startswith(f"redis://:{password}@127.0.0.1:{port}/1")  # the wiring the worker gets
    assert cwd == str(tmp_path)  # the project folder, not where devstack was called
    assert ping == "True"  # the stack's Redis answered, with the password
    assert not listening(port), "the Redis started for the command is still running"
    assert not left_behind(tmp_path)


def test_run_says_when_the_command_does_not_exist(tmp_path):
    config = write_demo_config(tmp_path)
    res = run_cli("run", "--config", str(config), "--", "no-such-command-xyz", cwd=tmp_path)
    assert res.returncode == 127
    assert "no-such-command-xyz" in res.stderr and "Traceback" not in res.stderr
    assert not left_behind(tmp_path)


def test_env_is_what_the_running_worker_has_and_run_uses_the_running_redis(stacks, tmp_path):
    s = stacks(write_demo_config(tmp_path, worker='env = { ONLY_WORKER = "w-${REDIS_PORT}" }'))
    s.wait_ready()
    status = s.status()
    pid = status["services"]["worker"]["pid"]
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    worker_env = app_view(dict(item.decode().split("=", 1) for item in raw if item))  # what the app sees

    shown = s.cli("env", "worker", "--json", "--show-secrets")
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == worker_env
    assert worker_env["ONLY_WORKER"] == f"w-{status['redis']['port']}"

    password = worker_env["REDIS_PASSWORD"]
    masked = s.cli("env", "worker", "--json")
    assert password not in masked.stdout
    assert json.loads(masked.stdout)["REDIS_PASSWORD"] == "***"
    exported = s.cli("env", "--export")
    assert password not in exported.stdout and "export CELERY_BROKER_URL='redis://:***@" in exported.stdout
    assert "ONLY_WORKER" not in exported.stdout  # without SERVICE: what every service shares

    res = s.cli("run", "--", sys.executable, "-c", "import os; print(os.environ['REDIS_PORT'])")
    assert res.returncode == 0, res.stderr
    assert int(res.stdout) == status["redis"]["port"]
    assert s.status()["services"]["redis"]["pid"] == status["services"]["redis"]["pid"]  # not a second Redis


def test_a_failed_oneshot_keeps_the_api_from_starting_until_a_rerun_succeeds(stacks, tmp_path):
    (tmp_path / "broken").write_text("")
    step = ("import os, sys; print('migrating'); open('migrated', 'a').write('x'); broken = os.path.exists('broken'); "
            "broken and print('migration failed: table users already exists', file=sys.stderr); "
            "sys.exit(3 if broken else 0)")
    config = write_demo_config(tmp_path, api='depends_on = ["migrate"]', extra=f"""
[process.migrate]
command = {json.dumps([sys.executable, "-c", step])}
oneshot = true
""")
    s = stacks(config)
    wait_for(lambda: "api not started" in s.output, 60, what="the api blocked by the failed step")
    assert "api not started: migrate exited with code 3" in s.output
    status = s.status()
    assert status["services"]["migrate"]["exit_code"] == 3
    # The step failed (not crashed: it is never restarted), saying its code and its last line; the api waits.
    assert status["services"]["migrate"]["state"] == "failed"
    assert status["services"]["migrate"]["last_error"] == (
        "migrate exited with code 3: migration failed: table users already exists")
    assert status["services"]["api"]["state"] == "blocked" and status["services"]["api"]["pid"] is None
    assert status["services"]["api"]["last_error"].startswith("api not started: migrate exited with code 3")
    text = s.cli("status").stdout
    assert "failed (exit 3)" in text and "migration failed: table users already exists" in text
    assert re.search(r"api\s+blocked", text), text
    wait_for(lambda: s.status()["services"]["worker"]["state"] == "ready", 60, what="worker ready")
    assert s.status()["services"]["api"]["pid"] is None  # still not started

    (tmp_path / "broken").unlink()
    assert s.cli("restart", "migrate").returncode == 0
    after = wait_for(lambda: (st := s.status())["services"]["api"]["state"] == "ready" and st, 60,
                     what="api ready once the step succeeded")
    assert after["services"]["migrate"]["state"] == "stopped"
    assert after["services"]["migrate"]["exit_code"] == 0
    assert (tmp_path / "migrated").read_text() == "xx"  # once per run: the step is not restarted on exit
    assert s.api("/tasks/add?x=1&y=2")["id"]
