"""`devstack debug worker` against a real stack: the worker restarted under debugpy (its port accepts a
connection, its command line shows `-P solo`), still running tasks, and `off` restoring it; without
debugpy in the app's Python, the message names the pip command."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from devstack.debug import check_debugpy, debug_spec
from devstack.errors import DevstackError
from devstack.supervisor import ServiceSpec
from tests.functional.test_cli import stack  # noqa: F401  (stack: the fixture)
from tests.functional.test_tasks import wait_where
from tests.stack import write_demo_config
from tests.waiting import wait_until

pytestmark = pytest.mark.functional


def worker_cmdlines(s) -> list[list[str]]:
    pid = s.status()["services"]["worker"]["pid"]
    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return [p.cmdline() for p in procs]


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def report(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def test_debug_worker_runs_it_under_debugpy_in_solo_and_off_restores_it(stack, tmp_path):
    s = stack(write_demo_config(tmp_path))
    s.wait_ready()

    res = s.cli("debug", "worker")
    assert res.returncode == 0, res.stderr
    status = s.status()["services"]["worker"]
    port = status["debug"]
    assert status["state"] == "ready" and isinstance(port, int), status
    assert f"127.0.0.1:{port}" in res.stdout and '"type": "debugpy"' in res.stdout and "PyCharm" in res.stdout
    launch = json.loads(res.stdout[res.stdout.index("{"):res.stdout.rindex("}") + 1])
    assert launch["connect"] == {"host": "127.0.0.1", "port": port}
    main = next(c for c in worker_cmdlines(s) if "debugpy" in c)
    assert main[main.index("--listen") + 1] == f"127.0.0.1:{port}"
    assert main[main.index("-P") + 1] == "solo" and main[main.index("-m", main.index("--listen")) + 1] == "celery"
    assert wait_until(lambda: accepts(port), 15, f"debugpy listening on {port}")
    done = wait_where(s, s.api("/tasks/add?x=2&y=3")["id"], "done", state="succeeded")
    assert done["result"] == "5"
    # It reports its project files (a save restarts it) but leaves the preload list alone: debugpy's modules
    # in it would make the next plain spare fail on them (`No module named '_pydevd_bundle'`).
    state, pid = Path(s.status()["state_dir"]), status["pid"]
    assert wait_until(lambda: report(state / "modules" / "worker.json").get("pid") == pid, 15,
                      "the debugged worker's module report")
    time.sleep(0.5)  # the preload list would be written right after the module report, in the same step
    preload = report(state / "preload" / "worker.json")
    assert preload.get("pid") != pid, preload.get("pid")
    assert not [m for m in preload.get("modules", []) if "pydevd" in m or m.startswith("debugpy")]

    res = s.cli("debug", "worker", "off")
    assert res.returncode == 0, res.stderr
    assert "without the debugger" in res.stdout
    status = s.status()["services"]["worker"]
    assert "debug" not in status and status["state"] == "ready", status
    lines = worker_cmdlines(s)
    assert not any("debugpy" in c for c in lines) and not any("solo" in c for c in lines), lines
    assert wait_until(lambda: not accepts(port), 10, f"port {port} closed")


def test_missing_debugpy_names_the_pip_command_for_the_apps_python(tmp_path):
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(tmp_path / "venv")], check=True)
    python = str(tmp_path / "venv" / "bin" / "python")
    spec = ServiceSpec("worker", [python, "-m", "celery", "-A", "app", "worker", "-P", "solo"], Path(tmp_path),
                       {"PATH": "/usr/bin:/bin"})
    with pytest.raises(DevstackError) as err:
        check_debugpy(spec)
    assert f"`{python} -m pip install debugpy`" in err.value.message
    wrapped = debug_spec(spec, 5999)
    assert wrapped.argv[:6] == [python, "-m", "debugpy", "--listen", "127.0.0.1:5999", "-m"]
    assert wrapped.argv[6:] == ["celery", "-A", "app", "worker", "-P", "solo"] and wrapped.preload == ()
