"""While `devstack run` holds the project's lock for its command (with a Redis started for it), `up` and a
second `run` are refused with a message that names the running command, its pid and the fix."""
from __future__ import annotations

import subprocess
import sys

import pytest

from devstack.state import is_locked

from tests.functional.test_cli import DEVSTACK, run_cli
from tests.stack import write_demo_config
from tests.waiting import wait_until

pytestmark = pytest.mark.functional

# Says it started, then waits for the test to let it go, and exits with a code of its own.
HOLD = ("import os, pathlib, sys, time; pathlib.Path('started').touch()\n"
        "while not pathlib.Path('release').exists(): time.sleep(0.05)\n"
        "sys.exit(5)")


def test_up_and_a_second_run_are_refused_while_a_run_holds_the_lock(tmp_path):
    config = write_demo_config(tmp_path)
    holder = subprocess.Popen([*DEVSTACK, "run", "--config", str(config), "--", sys.executable, "-c", HOLD],
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until(lambda: (tmp_path / "started").exists() or holder.poll() is not None, 30, "the one-off to start")
        assert holder.poll() is None, holder.stdout.read()
        up = run_cli("up", "--no-tui", "--config", str(config), cwd=tmp_path)
        assert up.returncode == 1
        assert "`devstack run` (pid " in up.stderr and f"is running `{sys.executable} -c" in up.stderr, up.stderr
        assert "migration never races" in up.stderr and "Fix: wait until it has finished" in up.stderr
        assert "Traceback" not in up.stderr + up.stdout
        for command in (("status",), ("status", "--json"), ("down",)):
            res = run_cli(*command, "--config", str(config), cwd=tmp_path)
            assert res.returncode == 1 and "No stack is running: `devstack run` (pid " in res.stderr, res.stderr
            assert f"holds this project for `{sys.executable} -c" in res.stderr and "Traceback" not in res.stderr
        second = run_cli("run", "--config", str(config), "--", "true", cwd=tmp_path)
        assert second.returncode == 1 and "another `devstack run` (pid " in second.stderr, second.stderr
        (tmp_path / "release").touch()
        assert holder.wait(30) == 5
    finally:
        (tmp_path / "release").touch()
        if holder.poll() is None:
            holder.terminate()
            holder.wait(30)
    assert not is_locked(tmp_path / ".devstack") and not (tmp_path / ".devstack" / "run.json").exists()
