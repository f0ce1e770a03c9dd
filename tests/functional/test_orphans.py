"""No orphans: after `kill -9` of devstack (headless or TUI), nothing it started survives 3 s later.

Real processes throughout: redis-server, `flask run`, a Celery worker (prefork with 2 children, or
gevent) and beat, each under its guard. Also: the next `devstack up` cleans what a run whose guards
died too left behind (by pid record, identity-checked), and Redis keeps queued tasks across a kill.
"""
from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from pathlib import Path

import psutil
import pytest
import redis

from tests.stack import stack_ready_from_logs, started_by, write_demo_config
from tests.waiting import poll_until, wait_until

pytestmark = pytest.mark.functional

DEVSTACK = str(Path(sys.executable).with_name("devstack"))
KILL_WAIT = 3.0  # the promise: everything gone within 3 s of devstack's death


class DevstackRun:
    """One `devstack up` of a config in a folder: start it, wait for ready, list its process tree, kill it."""

    def __init__(self, config: Path, *, env: dict[str, str] | None = None):
        self.config = config
        self.folder = config.parent
        self.env = dict(os.environ if env is None else env)
        self.env.pop("FLASK_APP", None)
        self.out_path = self.folder / f"devstack-{time.monotonic_ns()}.out"
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self.master_fd: int | None = None
        self._pty_out = bytearray()

    # ----- start ---------------------------------------------------------------------------------
    def start(self) -> "DevstackRun":
        with open(self.out_path, "wb") as out:
            self.proc = subprocess.Popen(
                [DEVSTACK, "up", "--no-tui", "--config", str(self.config)], cwd=self.folder, env=self.env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.proc.pid
        return self

    def start_in_pty(self) -> "DevstackRun":
        """`devstack up` on a pseudo-terminal, so it opens the TUI; its screen output is drained in a thread."""
        env = dict(self.env, TERM="xterm-256color", COLUMNS="160", LINES="48")
        pid, fd = pty.fork()
        if pid == 0:  # child: becomes the session leader of the new terminal
            try:
                os.chdir(self.folder)
                os.execve(DEVSTACK, [DEVSTACK, "up", "--config", str(self.config)], env)
            finally:
                os._exit(127)
        self.pid, self.master_fd = pid, fd
        threading.Thread(target=self._drain_pty, daemon=True).start()
        return self

    def _drain_pty(self) -> None:
        while True:
            try:
                data = os.read(self.master_fd, 65536)
            except OSError:
                return
            if not data:
                return
            self._pty_out += data

    # ----- observe ---------------------------------------------------------------------------------
    def output(self) -> str:
        if self.master_fd is not None:
            return self._pty_out.decode("utf-8", errors="replace")
        return self.out_path.read_text(errors="replace") if self.out_path.exists() else ""

    @property
    def state_dir(self) -> Path:
        return self.folder / ".devstack"

    def settings(self) -> dict:
        return tomllib.loads(self.config.read_text())

    def api_url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.settings()['api']['port']}{path}"

    def exited(self) -> bool:
        if self.proc is not None:
            return self.proc.poll() is not None
        try:
            return os.waitpid(self.pid, os.WNOHANG)[0] != 0
        except ChildProcessError:
            return True

    def wait_ready(self, timeout: float = 40) -> None:
        """Headless: devstack's own "all services ready" line."""
        self.wait_for(lambda: "all services ready" in self.output(), timeout, "all services ready")

    def wait_ready_from_logs(self, timeout: float = 40) -> None:
        """Readiness seen from outside (the TUI prints no such line): log markers plus the API answering."""
        self.wait_for(lambda: stack_ready_from_logs(self.state_dir / "logs", self.api_url()), timeout,
                      "redis, api, worker and beat ready (from their logs)")

    def wait_for(self, predicate, timeout: float, what: str):
        """The predicate's first truthy value; fails with devstack's output if it exits or `timeout` passes."""
        def holds():
            if value := predicate():
                return value
            if self.exited():
                pytest.fail(f"devstack exited before {what}:\n{self.output()[-4000:]}")
            return value

        return wait_until(holds, timeout, lambda: f"{what}:\n{self.output()[-4000:]}")

    def tree(self) -> list[psutil.Process]:
        """Every process devstack started: its descendants plus every member of their process groups."""
        return list(started_by(self.pid).values())

    def record(self) -> dict:
        return json.loads((self.state_dir / "processes.json").read_text())

    def cli(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run([DEVSTACK, *args, "--config", str(self.config)], cwd=self.folder, env=self.env,
                              capture_output=True, text=True, timeout=timeout)

    # ----- stop ------------------------------------------------------------------------------------
    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)
        else:
            os.waitpid(self.pid, 0)
        if self.master_fd is not None:
            os.close(self.master_fd)
            self.master_fd = None

    def stop(self, timeout: float = 60) -> None:
        """Orderly stop (SIGTERM), used at test end; never fails the test by itself."""
        if self.exited():
            return
        os.kill(self.pid, signal.SIGTERM)
        if not poll_until(self.exited, timeout):
            self.kill()


def alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """Processes still running (same pid *and* start time; a zombie has exited and holds nothing)."""
    living = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                living.append(p)
        except psutil.NoSuchProcess:
            pass
    return living


def describe(procs: list[psutil.Process]) -> str:
    lines = []
    for p in procs:
        try:
            lines.append(f"  {p.pid}: {' '.join(p.cmdline())[:160]}")
        except psutil.Error:
            lines.append(f"  {p.pid}: (gone)")
    return "\n".join(lines)


def kill_and_count_survivors(run: DevstackRun, minimum: int) -> list[psutil.Process]:
    tree = run.tree()
    assert len(tree) >= minimum, f"expected at least {minimum} processes under devstack:\n{describe(tree)}"
    run.kill()
    poll_until(lambda: not alive(tree), KILL_WAIT)
    survivors = alive(tree)
    for p in survivors:  # never leave them for the next test, but still fail this one
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    return survivors


# 4 guards + redis, api, beat, worker main; prefork adds its 2 pool children.
MINIMUM = {"prefork": 10, "gevent": 8}
WORKER = {"prefork": 'pool = "prefork"', "gevent": 'pool = "gevent"'}
RUNS = [("prefork", i) for i in range(10)] + [("gevent", i) for i in range(2)]


@pytest.mark.parametrize("pool,attempt", RUNS, ids=[f"{p}-{i}" for p, i in RUNS])
def test_sigkill_headless_leaves_no_survivors(tmp_path, pool, attempt):
    run = DevstackRun(write_demo_config(tmp_path, worker=WORKER[pool])).start()
    try:
        run.wait_ready()
        survivors = kill_and_count_survivors(run, MINIMUM[pool])
        assert not survivors, f"{len(survivors)} process(es) outlived devstack by {KILL_WAIT} s:\n{describe(survivors)}"
    finally:
        run.stop()


@pytest.mark.parametrize("pool,attempt", RUNS, ids=[f"{p}-{i}" for p, i in RUNS])
def test_sigkill_tui_leaves_no_survivors(tmp_path, pool, attempt):
    run = DevstackRun(write_demo_config(tmp_path, worker=WORKER[pool])).start_in_pty()
    try:
        run.wait_ready_from_logs()
        # Textual switches to the alternate screen: proof this is the TUI, not the headless fallback.
        assert "\x1b[?1049h" in run.output(), f"devstack did not open the TUI:\n{run.output()[-2000:]}"
        survivors = kill_and_count_survivors(run, MINIMUM[pool])
        assert not survivors, f"{len(survivors)} process(es) outlived the TUI by {KILL_WAIT} s:\n{describe(survivors)}"
    finally:
        run.stop()


def test_next_up_stops_what_a_run_with_dead_guards_left(tmp_path):
    """Guards killed too (so the services survive): the next `devstack up` stops them from its pid record,
    and leaves alone an unrelated process whose pid appears in the record with another start time."""
    config = write_demo_config(tmp_path)
    first = DevstackRun(config).start()
    unrelated = subprocess.Popen(["sleep", "300"], start_new_session=True)
    second = None
    try:
        first.wait_ready()
        record = first.record()
        guards = [rec["pid"] for key, rec in record["processes"].items() if key.endswith("-guard")]
        services = [rec["pid"] for key, rec in record["processes"].items() if not key.endswith("-guard")]
        assert len(guards) == 4 and len(services) == 4, record
        leftovers = [p for p in first.tree() if p.pid not in guards]
        # Freeze devstack so it cannot react, kill the guards, then devstack: the services are orphaned.
        os.kill(first.pid, signal.SIGSTOP)
        for pid in guards:
            os.kill(pid, signal.SIGKILL)
        first.kill()
        time.sleep(0.5)  # a chance to die with their guards, which they must not take: nothing to wait for
        assert len(alive(leftovers)) >= len(services), "the simulation failed: services should outlive dead guards"

        me = psutil.Process(unrelated.pid)
        record["processes"]["impostor"] = {"pid": unrelated.pid, "create_time": me.create_time() - 1000,
                                           "cmdline": me.cmdline()}
        record["processes"]["impostor-cmd"] = {"pid": unrelated.pid, "create_time": me.create_time(),
                                               "cmdline": ["celery", "worker"]}
        (first.state_dir / "processes.json").write_text(json.dumps(record))

        second = DevstackRun(config).start()
        second.wait_ready()
        left = alive(leftovers)
        assert not left, f"the second run did not stop the leftovers:\n{describe(left)}"
        assert unrelated.poll() is None, "an unrelated process whose pid was in the record was touched"
        assert "previous, killed run" in second.output()
        status = json.loads(second.cli("status", "--json").stdout)
        assert all(s["state"] == "ready" for s in status["services"].values()), status
    finally:
        for run in (first, second):
            if run is not None:
                run.stop()
        for p in alive(locals().get("leftovers", [])):
            p.kill()
        unrelated.kill()
        unrelated.wait()


def _queued(port: int, password: str, queue: str) -> int:
    return redis.Redis(host="127.0.0.1", port=port, password=password, db=1).llen(queue)


def test_queued_tasks_survive_a_kill(tmp_path):
    """Tasks queued while the worker is stopped are still queued after a SIGKILL and the next start."""
    config = write_demo_config(tmp_path)
    first = DevstackRun(config).start()
    second = None
    try:
        first.wait_ready()
        stopped = first.cli("stop", "worker")
        assert stopped.returncode == 0, stopped.stderr
        ids = []
        for i in range(7):
            with urllib.request.urlopen(urllib.request.Request(first.api_url(f"/tasks/mail?to=u{i}@x.y"),
                                                               method="POST"), timeout=5) as resp:
                body = json.loads(resp.read())
            assert body["queue"] == "mail"
            ids.append(body["id"])
        port = first.settings()["redis"]["port"]
        password = (first.state_dir / "redis.password").read_text().strip()
        before = _queued(port, password, "mail")
        assert before == 7
        tree = first.tree()
        first.kill()
        poll_until(lambda: not alive(tree), KILL_WAIT)
        assert not alive(tree)

        # The next start keeps the worker off, so that nothing consumes the queue we count.
        config.write_text(config.read_text().replace("[worker]\n", "[worker]\nenabled = false\n"))
        second = DevstackRun(config).start()
        second.wait_ready()
        assert _queued(port, password, "mail") == before
    finally:
        for run in (first, second):
            if run is not None:
                run.stop()
