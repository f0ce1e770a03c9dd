"""A registered front-end that cannot load is an error that names it, never a quiet fallback to plain output."""
from __future__ import annotations

import os
import pty
import sys
import time
from pathlib import Path

import pytest

from tests.stack import write_demo_config

pytestmark = pytest.mark.functional
DEVSTACK = str(Path(sys.executable).with_name("devstack"))


def run_on_terminal(argv: list[str], env: dict[str, str], cwd: Path, timeout: float = 60) -> tuple[int, str]:
    """Run `argv` with a pseudo-terminal as stdin and stdout (as a person would); (exit code, output)."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.chdir(cwd)
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            try:
                data = os.read(fd, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            out += data
        else:
            os.kill(pid, 9)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(fd)
    return os.waitstatus_to_exitcode(status), out.decode("utf-8", "replace")


def test_a_tui_that_cannot_import_is_an_error_naming_it(tmp_path):
    """A stand-in `textual` that raises at import, as a Textual release that moved a module would."""
    broken = tmp_path / "broken"
    (broken / "textual").mkdir(parents=True)
    (broken / "textual" / "__init__.py").write_text("raise ImportError('simulated: textual moved a module')\n")
    config = write_demo_config(tmp_path / "project")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(broken), os.environ.get("PYTHONPATH", "")]),
               TERM="xterm-256color")
    code, output = run_on_terminal([DEVSTACK, "up", "--config", str(config)], env, tmp_path)
    assert code == 1, output
    assert "the tui front-end" in output and "failed to load" in output, output
    assert "simulated: textual moved a module" in output and "devstack up --no-tui" in output, output
    assert "Traceback" not in output, output
    assert "\x1b[?1049h" not in output and "ready" not in output  # neither the TUI nor the headless stack ran
