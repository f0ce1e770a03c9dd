"""QuietLinuxDriver on a real pseudo-terminal: keys (a lone Escape too) arrive promptly, the app exits at
once although its input thread sleeps up to a second, and an idle input thread does not wake 10 times a second."""
from __future__ import annotations

import os
import pty
import select
import signal
import sys
import textwrap
import time

import psutil
import pytest

from tui import driver

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux") or not driver.compatible(),
                                reason="QuietLinuxDriver is for Textual's Linux driver")

APP = textwrap.dedent("""
    import sys
    sys.path.insert(0, {root!r})
    from textual.app import App
    from tui.driver import QuietLinuxDriver

    class Keys(App):
        def on_key(self, event):
            sys.__stderr__.write(f"KEY {{event.key}}\\n")
            sys.__stderr__.flush()
            if event.key == "q":
                self.exit()

    Keys(driver_class=QuietLinuxDriver).run()
    sys.__stderr__.write("EXITED\\n")
    sys.__stderr__.flush()
""")


def test_keys_escape_and_exit_on_a_pty(tmp_path):
    script = tmp_path / "keys.py"
    script.write_text(APP.format(root=os.getcwd()))
    err_r, err_w = os.pipe()
    pid, fd = pty.fork()
    if pid == 0:
        os.dup2(err_w, 2)
        os.execve(sys.executable, [sys.executable, str(script)], dict(os.environ, TERM="xterm-256color"))
    os.close(err_w)
    got = b""

    def drain(seconds: float) -> None:
        nonlocal got
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd, err_r], [], [], 0.02)
            for r in ready:
                try:
                    data = os.read(r, 65536)
                except OSError:
                    data = b""
                if r == err_r:
                    got += data

    def wait_for(marker: bytes, seconds: float) -> float:
        started = time.monotonic()
        while marker not in got and time.monotonic() - started < seconds:
            drain(0.02)
        assert marker in got, (marker, got)
        return time.monotonic() - started

    try:
        drain(2.0)  # started, settled
        threads = {t.id: t for t in psutil.Process(pid).threads()}
        before = sum(t.user_time + t.system_time for t in threads.values())
        drain(3.0)
        after = sum(t.user_time + t.system_time for t in psutil.Process(pid).threads())
        assert after - before < 0.05  # idle: no thread ticking
        os.write(fd, b"a")
        assert wait_for(b"KEY a", 2.0) < 0.5
        os.write(fd, b"\x1b")  # a lone Escape is reported after the parser's short timeout
        assert wait_for(b"KEY escape", 2.0) < 0.6
        os.write(fd, b"q")
        assert wait_for(b"EXITED", 5.0) < 0.9  # the input thread is woken, not waited for
    finally:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        os.close(fd)
        os.close(err_r)
