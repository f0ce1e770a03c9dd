"""SIGTERM and SIGHUP to a real `devstack up` TUI on a pseudo-terminal stop the whole stack and restore the terminal.

The TUI runs as a real process (`pty.fork()`, TERM=xterm-256color, 160x48): Redis, the API, a prefork
worker with its pool children and beat, each under its guard. After the signal: exit code 0, none of
the processes devstack started (its descendants and their process groups, plus the pid record) is
still running, and the last thing written to the terminal leaves the alternate screen (`ESC[?1049l`).
"""
from __future__ import annotations

import fcntl
import os
import pty
import signal
import struct
import sys
import termios
import threading
from pathlib import Path

import psutil
import pytest

from tests.functional.test_orphans import KILL_WAIT, alive, describe
from tests.stack import stack_ready_from_logs, started_by, write_demo_config
from tests.waiting import poll_until, wait_until

pytestmark = pytest.mark.functional

DEVSTACK = str(Path(sys.executable).with_name("devstack"))
ROWS, COLS = 48, 160
LEAVE_ALT_SCREEN = b"\x1b[?1049l"


class PtyRun:
    def __init__(self, config: Path):
        self.config, self.folder = config, config.parent
        self.out = bytearray()
        self.status: int | None = None
        env = {k: v for k, v in os.environ.items() if k != "FLASK_APP"}
        env.update(TERM="xterm-256color", COLUMNS=str(COLS), LINES=str(ROWS))
        pid, fd = pty.fork()
        if pid == 0:
            try:
                os.chdir(self.folder)
                os.execve(DEVSTACK, [DEVSTACK, "up", "--config", str(config)], env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", ROWS, COLS, 0, 0))
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 65536)
            except OSError:  # EIO: every process holding the terminal is gone
                return
            if not data:
                return
            self.out += data

    def poll(self) -> int | None:
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
        return self.status

    def wait(self, timeout: float) -> int | None:
        poll_until(lambda: self.poll() is not None, timeout)
        return self.status

    def text(self) -> str:
        return self.out.decode("utf-8", errors="replace")

    def wait_ready(self, timeout: float = 45) -> None:
        logs = self.folder / ".devstack" / "logs"
        import tomllib

        api = f"http://127.0.0.1:{tomllib.loads(self.config.read_text())['api']['port']}/"

        def ready() -> bool:
            if stack_ready_from_logs(logs, api):
                return True
            if self.poll() is not None:
                pytest.fail(f"devstack exited ({self.status}) before the stack was ready:\n{self.text()[-3000:]}")
            return False

        wait_until(ready, timeout, lambda: f"the stack to be ready:\n{self.text()[-3000:]}", interval=0.1)

    def started(self) -> list[psutil.Process]:
        """Every process devstack started: descendants, members of their process groups, the pid record."""
        found = started_by(self.pid)
        import json

        record = json.loads((self.folder / ".devstack" / "processes.json").read_text())
        for rec in record["processes"].values():
            try:
                p = psutil.Process(rec["pid"])
                if abs(p.create_time() - rec["create_time"]) < 1:
                    found.setdefault(p.pid, p)
            except psutil.Error:
                pass
        return list(found.values())

    def cleanup(self) -> None:
        if self.poll() is None:
            os.kill(self.pid, signal.SIGKILL)
            self.wait(10)
        try:
            os.close(self.fd)
        except OSError:
            pass


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_signal_stops_the_stack_and_restores_the_terminal(tmp_path, sig):
    run = PtyRun(write_demo_config(tmp_path / "project"))
    procs: list[psutil.Process] = []
    try:
        run.wait_ready()
        assert b"\x1b[?1049h" in run.out, f"devstack did not open the TUI:\n{run.text()[-2000:]}"
        procs = run.started()
        names = " ".join(" ".join(p.cmdline()) for p in procs)
        assert len(procs) >= 10 and "redis-server" in names and "beat" in names, describe(procs)

        os.kill(run.pid, sig)
        code = run.wait(60)
        assert code == 0, f"devstack exited with {code} after {sig.name}:\n{run.text()[-3000:]}"
        run.reader.join(10)  # the terminal's last bytes
        survivors = alive(procs)
        assert not survivors, f"{len(survivors)} process(es) outlived devstack:\n{describe(survivors)}"
        tail = bytes(run.out[-200:])
        assert LEAVE_ALT_SCREEN in tail, f"the alternate screen was not left: {tail!r}"
        after = tail[tail.rindex(LEAVE_ALT_SCREEN) + len(LEAVE_ALT_SCREEN):]
        # Nothing drawn after leaving the alternate screen but mode resets (cursor, mouse, paste).
        assert not after.replace(b"\x1b[", b"").strip(b"?0123456789;hlm\r\n"), f"output after ESC[?1049l: {after!r}"
    finally:
        run.cleanup()
        for p in alive(procs):
            p.kill()


def test_a_closed_terminal_leaves_no_devstack_behind(tmp_path):
    """The terminal window closed under the TUI (the pty's master end gone, then SIGHUP, as tmux kill-server
    or closing a terminal does): the stack stops and devstack itself exits. Seen before the fix: every
    child stopped, but devstack blocked for ever in Textual's teardown writing to the dead terminal."""
    run = PtyRun(write_demo_config(tmp_path / "project"))
    procs: list[psutil.Process] = []
    try:
        run.wait_ready()
        procs = run.started()
        os.close(run.fd)  # the terminal is gone: nothing reads what devstack writes any more
        run.reader.join(10)
        os.kill(run.pid, signal.SIGHUP)
        code = run.wait(60)
        assert code is not None, "devstack was still running 60 s after its terminal closed"
        # it stopped the stack itself, in order (not by HANGUP_PATIENCE and the guards): Redis' own shutdown lines
        # reached its log, which only a living devstack writes (seen: Textual, resumed by the SIGCONT the
        # hangup brings, blocked writing to the dead terminal, and nothing stopped for 20 s)
        redis_log = (tmp_path / "project" / ".devstack" / "logs" / "redis.log").read_text()
        assert "ready to exit" in redis_log, redis_log[-500:]
        # when devstack had to end itself, its guards stop what is left, as after `kill -9`: same promise
        poll_until(lambda: not alive(procs), KILL_WAIT)
        survivors = alive(procs)
        assert not survivors, f"{len(survivors)} process(es) outlived devstack:\n{describe(survivors)}"
    finally:
        run.cleanup()
        for p in alive(procs):
            p.kill()
