"""`devstack up --no-tui` and the control commands, end to end with real Redis, Flask and Celery."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path

import psutil
import pytest

from tests.stack import free_port, write_demo_config
from tests.waiting import wait_until

pytestmark = pytest.mark.functional
DEVSTACK = [sys.executable, "-m", "devstack"]


def run_cli(*args: str, cwd: Path, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*DEVSTACK, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env=env or os.environ.copy())



def wait_for(predicate, timeout: float = 30, interval: float = 0.1, what: str = "condition"):
    """tests.waiting.wait_until with the keyword names the functional tests of the CLI use."""
    return wait_until(predicate, timeout, what, interval)


class Stack:
    """A `devstack up --no-tui` subprocess with its output captured in a file."""

    def __init__(self, folder: Path, config: Path, extra_args=(), env=None, prefix=()):
        self.folder, self.config = folder, config
        self.out_path = folder / "up.out"
        self.out = open(self.out_path, "w")
        self.proc = subprocess.Popen([*prefix, *DEVSTACK, "up", "--no-tui", "--config", str(config), *extra_args],
                                     cwd=folder, stdout=self.out, stderr=subprocess.STDOUT,
                                     env=env or os.environ.copy())
        self.settings = tomllib.loads(config.read_text())

    @property
    def output(self) -> str:
        return self.out_path.read_text()

    def wait_ready(self, timeout: float = 60) -> None:
        wait_until(lambda: "all services ready" in self.output or self.proc.poll() is not None, timeout,
                   "all services ready")
        assert self.proc.poll() is None, self.output

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return run_cli(*args, "--config", str(self.config), cwd=self.folder, timeout=timeout)

    def status(self) -> dict:
        res = self.cli("status", "--json")
        assert res.returncode == 0, res.stderr
        return json.loads(res.stdout)

    def api(self, path: str) -> dict:
        port = self.settings["api"]["port"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as resp:
            return json.loads(resp.read())

    def descendants(self) -> list[int]:
        try:
            return [p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.out.close()


@pytest.fixture
def stack(tmp_path):
    stacks = []

    def make(config: Path | None = None, **kwargs) -> Stack:
        s = Stack(tmp_path, config or write_demo_config(tmp_path), **kwargs)
        stacks.append(s)
        return s

    yield make
    for s in stacks:
        pids = s.descendants()
        s.stop()
        assert not [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"], \
            "processes survived the shutdown"


def test_up_runs_the_demo_and_control_commands_work(stack, tmp_path):
    s = stack()
    s.wait_ready()
    started = s.descendants()
    assert started

    # a task through the API, result read back
    task = s.api("/tasks/add?x=2&y=3")
    result = wait_until(lambda: (r := s.api(f"/tasks/{task['id']}"))["state"] == "SUCCESS" and r, 20,
                        "task result")
    assert result["result"] == 5

    status = s.status()
    assert set(status["services"]) == {"redis", "api", "worker", "beat"}
    assert all(v["state"] == "ready" for v in status["services"].values()), status
    assert status["redis"]["version"].startswith(("6.", "7."))
    password = (tmp_path / ".devstack" / "redis.password").read_text().strip()
    assert password not in json.dumps(status)

    # restart worker: new pid, ready again
    old_pid = status["services"]["worker"]["pid"]
    assert s.cli("restart", "worker").returncode == 0
    after = wait_until(lambda: (st := s.status())["services"]["worker"]["state"] == "ready" and st, 30,
                       "worker ready after restart")
    assert after["services"]["worker"]["pid"] != old_pid
    assert not psutil.pid_exists(old_pid) or psutil.Process(old_pid).status() == "zombie"

    # stop / start
    assert s.cli("stop", "beat").returncode == 0
    assert s.status()["services"]["beat"]["state"] == "stopped"
    assert s.cli("start", "beat").returncode == 0
    wait_until(lambda: s.status()["services"]["beat"]["state"] == "ready", 30, "beat ready")

    # solo on / off: the worker's real command line changes
    assert s.cli("solo", "on").returncode == 0
    st = wait_until(lambda: (st := s.status())["services"]["worker"]["state"] == "ready" and st, 30, "worker ready")
    cmdline = psutil.Process(st["services"]["worker"]["pid"]).cmdline()
    assert "-P" in cmdline and cmdline[cmdline.index("-P") + 1] == "solo" and st["solo"] is True
    assert s.cli("solo", "off").returncode == 0
    st = wait_until(lambda: (st := s.status())["services"]["worker"]["state"] == "ready" and st, 30, "worker ready")
    cmdline = psutil.Process(st["services"]["worker"]["pid"]).cmdline()
    assert cmdline[cmdline.index("-P") + 1] == "prefork"

    # logs from the file
    logs = s.cli("logs", "worker", "-n", "5")
    assert logs.returncode == 0 and logs.stdout.strip()

    # down from a second process stops everything
    pids = s.descendants()
    res = s.cli("down")
    assert res.returncode == 0, res.stderr
    assert s.proc.wait(30) == 0
    gone = wait_until(lambda: not [p for p in pids if psutil.pid_exists(p)], 5, "all children gone")
    assert gone
    assert password not in s.output


def test_second_up_is_refused_while_one_runs(stack, tmp_path):
    s = stack()
    s.wait_ready()
    res = run_cli("up", "--no-tui", "--config", str(s.config), cwd=tmp_path)
    assert res.returncode == 1
    assert f"pid {s.proc.pid}" in res.stderr and "devstack down" in res.stderr


def test_up_after_a_sigkilled_run_starts_cleanly(stack, tmp_path):
    first = stack()
    first.wait_ready()
    first.proc.kill()
    first.proc.wait()
    second = stack(first.config)
    second.wait_ready()
    assert "stopped processes a previous, killed run" in second.output or "ready" in second.output
    assert all(v["state"] == "ready" for v in second.status()["services"].values())


def test_env_precedence_and_interpolation(stack, tmp_path):
    (tmp_path / ".env").write_text("A=file\nB=file\nC=file\nD=file\nREDIS_HOST=from-env-file\n")
    dump = tmp_path / "env.json"
    extra = f"""
[env]
C = "global"
D = "global"
FLASK_CELERY__broker_url = "${{CELERY_BROKER_URL}}"
WITH_DEFAULT = "${{NOT_SET_ANYWHERE:-fallback}}"

[process.envdump]
command = ["{sys.executable}", "-c", "import json, os, time; json.dump(dict(os.environ), open({str(dump)!r}, 'w')); time.sleep(600)"]
env = {{ D = "service" }}
"""
    config = write_demo_config(tmp_path, extra=extra)
    # keep it small: only Redis and the env dump
    text = config.read_text().replace('[api]\n', '[api]\nenabled = false\n') \
        .replace('[worker]\n', '[worker]\nenabled = false\n').replace('[beat]\n', '[beat]\nenabled = false\n')
    config.write_text(text)
    env = os.environ.copy()
    env.update(B="environ", C="environ", REDIS_HOST="from-environ")
    s = stack(config, env=env)
    s.wait_ready()
    data = json.loads(wait_until(lambda: dump.exists() and dump.read_text(), 20, "the environment dump"))
    assert (data["A"], data["B"], data["C"], data["D"]) == ("file", "environ", "global", "service")
    assert data["REDIS_HOST"] == "127.0.0.1"  # devstack's wiring beats the env file and the environment
    port = s.settings["redis"]["port"]
    assert data["REDIS_PORT"] == str(port) and data["REDIS_DB"] == "0"
    assert data["CELERY_BROKER_URL"].endswith(f"@127.0.0.1:{port}/1")
    assert data["REDIS_URL"].endswith(f"@127.0.0.1:{port}/0")
    assert data["FLASK_CELERY__broker_url"] == data["CELERY_BROKER_URL"]
    assert data["WITH_DEFAULT"] == "fallback"
    assert data["PYTHONUNBUFFERED"] == "1"


def test_external_redis_mode(stack, tmp_path, redis_server):
    config = write_demo_config(tmp_path, redis=f'mode = "external"\nurl = "{redis_server.url(0)}"')
    s = stack(config)
    s.wait_ready()
    status = s.status()
    assert status["redis"]["mode"] == "external" and status["redis"]["port"] == redis_server.port
    task = s.api("/tasks/add?x=20&y=22")
    result = wait_until(lambda: (r := s.api(f"/tasks/{task['id']}"))["state"] == "SUCCESS" and r, 20, "task result")
    assert result["result"] == 42
    assert redis_server.client(1).exists(f"celery-task-meta-{task['id']}")
    assert redis_server.password not in s.output


def test_external_sentinel_mode(stack, tmp_path, redis_server, sentinel):
    """Sentinel URLs reach the apps as Dify reads them; devstack itself talks to the master the sentinel names."""
    url = f"sentinel://:{redis_server.password}@127.0.0.1:{sentinel}"
    config = write_demo_config(tmp_path, redis=f'mode = "external"\nurl = "{url}"\nmaster_name = "mymaster"')
    s = stack(config)
    s.wait_ready()
    status = s.status()
    assert status["redis"]["mode"] == "external" and status["services"]["redis"]["state"] == "ready"
    assert status["services"]["worker"]["state"] == "ready"
    task = s.api("/tasks/add?x=20&y=22")
    result = wait_until(lambda: (r := s.api(f"/tasks/{task['id']}"))["state"] == "SUCCESS" and r, 20, "task result")
    assert result["result"] == 42
    assert redis_server.client(1).exists(f"celery-task-meta-{task['id']}")  # on the master, db 1
    assert "does not answer a ping" not in s.output
    assert redis_server.password not in s.output


def test_external_redis_that_does_not_answer_is_named_with_the_reason(stack, tmp_path):
    port = free_port()  # nothing listens here
    config = write_demo_config(tmp_path, redis=f'mode = "external"\nurl = "redis://:secret-pw@127.0.0.1:{port}/0"')
    s = stack(config)
    wait_until(lambda: "does not answer yet" in s.output, 15, "the notice about the external Redis")
    line = next(line for line in s.output.splitlines() if "does not answer yet" in line)
    assert f"127.0.0.1:{port}" in line and "connection refused" in line and "[redis] url" in line
    assert "api starting" not in s.output  # the apps wait for Redis
    assert "secret-pw" not in s.output
    assert s.proc.poll() is None  # still trying: starting Redis late must still work


def test_busy_redis_port_names_its_owner(tmp_path):
    port = free_port()
    holder = subprocess.Popen([sys.executable, "-c",
                               f"import socket,time; s=socket.socket(); s.bind(('127.0.0.1',{port})); s.listen(); "
                               "print('ok', flush=True); time.sleep(60)"], stdout=subprocess.PIPE)
    try:
        holder.stdout.readline()
        config = write_demo_config(tmp_path)
        config.write_text(config.read_text().replace("port = ", f"port = {port}\n#", 1))
        res = run_cli("up", "--no-tui", "--config", str(config), cwd=tmp_path)
        assert res.returncode == 1
        assert f"Port {port}" in res.stderr and f"pid {holder.pid}" in res.stderr and "[redis] port" in res.stderr
        assert "Traceback" not in res.stderr
    finally:
        holder.kill()
        holder.wait()


NO_APP = "[api]\nenabled = false\n[worker]\nenabled = false\n"
MALFORMED = [
    ("[redis]\nport = \"abc\"\n", "port"),
    ("[redis]\nmode = \"dockr\"\n", "mode"),
    ("[worker]\nconcurency = 2\napp = \"x\"\n", "concurency"),
    ("[wroker]\napp = \"x\"\n", "wroker"),
    ("[api]\nport = 70000\napp = \"x\"\n", "port"),
    ("[worker]\napp = \"x\"\npool = \"forkserver\"\n", "pool"),
    (NO_APP + "[process.web]\ncwd = \".\"\n", "command"),
    (NO_APP + "[process.web]\ncommand = \"npm run dev\"\nready_log = \"([\"\n", "ready_log"),
    (NO_APP + "[process.web]\ncommand = \"npm run dev\"\ndepends_on = [\"wokrer\"]\n", "wokrer"),
    ("[redis]\nmode = \"external\"\n", "url"),
    ("[project]\nenv_file = \"missing.env\"\n", "env_file"),
    ("[api]\nenabled = true\n[worker]\nenabled = false\n[beat]\nenabled = false\n", "app"),
    ("this is not toml = = \n", "line"),
]


@pytest.mark.parametrize("text,key", MALFORMED)
def test_malformed_config_exits_2_naming_the_key(tmp_path, text, key):
    config = tmp_path / "devstack.toml"
    config.write_text(text)
    res = run_cli("up", "--no-tui", "--config", str(config), cwd=tmp_path, timeout=30)
    assert res.returncode == 2, res.stderr
    assert key in res.stderr
    assert "Traceback" not in res.stderr
    assert not (tmp_path / ".devstack" / "redis.password").exists()  # nothing was started


def test_control_commands_without_a_stack_say_so(tmp_path):
    config = write_demo_config(tmp_path)
    res = run_cli("status", "--config", str(config), cwd=tmp_path)
    assert res.returncode == 1 and "devstack up" in res.stderr and "Traceback" not in res.stderr


def test_redis_killed_under_the_stack_is_restarted_and_announced(stack, tmp_path):
    s = stack()
    s.wait_ready()
    before = s.status()["services"]["redis"]["pid"]
    os.kill(before, signal.SIGKILL)
    st = wait_until(lambda: (st := s.status())["services"]["redis"]["state"] == "ready"
                    and st["services"]["redis"]["pid"] != before and st, 30, "redis back")
    assert st["services"]["redis"]["restarts"] >= 1
    wait_until(lambda: "Redis went away" in s.output and "Redis is back" in s.output, 10, "notices")
    task = s.api("/tasks/add?x=1&y=1")  # the API and the worker work again
    assert wait_until(lambda: s.api(f"/tasks/{task['id']}")["state"] == "SUCCESS", 30, "task after restart")


def test_restarts_use_warm_spares_that_run_the_exact_command(stack, tmp_path):
    s = stack()
    s.wait_ready()

    def spares() -> list[psutil.Process]:
        """Spare guards still waiting (not the adopted ones, whose child is a running service)."""
        running = {v["pid"] for v in s.status()["services"].values()}
        found = []
        for pid in s.descendants():
            try:
                p = psutil.Process(pid)
                if "--spare" in p.cmdline() and p.ppid() == s.proc.pid \
                        and not {c.pid for c in p.children()} & running:
                    found.append(p)
            except psutil.NoSuchProcess:
                pass
        return found

    wait_until(lambda: len(spares()) == 3, 20, "a warm spare for api, worker and beat")
    assert s.cli("restart", "worker", "api").returncode == 0
    wait_until(lambda: s.output.count("(warm start)") >= 2, 20, "warm starts")
    status = wait_until(lambda: (st := s.status())["services"]["worker"]["state"] == "ready" and st, 20,
                        "worker ready")
    worker = psutil.Process(status["services"]["worker"]["pid"])
    cmdline = worker.cmdline()
    # the process shows (after the guard's own arguments) exactly the command devstack reports
    assert cmdline[cmdline.index("--") + 1:] == status["services"]["worker"]["command"]
    task = s.api("/tasks/add?x=4&y=5")
    result = wait_until(lambda: (r := s.api(f"/tasks/{task['id']}"))["state"] == "SUCCESS" and r, 20, "task result")
    assert result["result"] == 9
    # and a new spare is prepared for the next restart
    wait_until(lambda: len(spares()) == 3, 20, "spares again")
