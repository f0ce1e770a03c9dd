"""`devstack init` round trip: init in a copy of the demo project, `devstack up`, a task through the API."""
from __future__ import annotations

import shutil

import pytest

from tests.conftest import ROOT
from tests.functional.test_cli import run_cli, wait_for
from tests.functional.test_oneoff import stacks  # noqa: F401  (the fixture)
from tests.functional.test_ports import api_port
from tests.stack import http_get

pytestmark = pytest.mark.functional


def test_init_then_up_then_a_task_through_the_api(tmp_path, stacks):
    shutil.copytree(ROOT / "devstack" / "demo", tmp_path / "demo", ignore=shutil.ignore_patterns("__pycache__"))
    res = run_cli("init", cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    assert 'app = "demo.app:app"' in res.stdout and (tmp_path / "devstack.toml").exists()
    s = stacks(tmp_path / "devstack.toml")
    s.wait_ready()
    base = f"http://127.0.0.1:{api_port(s)}"
    task = http_get(f"{base}/tasks/add?x=20&y=22")
    wait_for(lambda: (http_get(f"{base}/tasks/{task['id']}") or {}).get("result") == 42, 30, what="the task result")
    assert run_cli("init", cwd=tmp_path).returncode == 1  # never overwrites
