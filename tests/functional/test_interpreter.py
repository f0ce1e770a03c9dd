"""The app runs with its own interpreter: a project `.venv` (without devstack in it) runs flask and celery,
while devstack runs from its own environment. Slow: it creates a venv and installs Flask and Celery."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from devstack.app_specs import choose_interpreter, executable
from devstack.config import ConfigError, parse_config
from tests.functional.test_cli import Stack, wait_for
from tests.stack import free_port


APP = '''
import os
from celery import Celery
from flask import Flask

celery = Celery("app", broker=os.environ["CELERY_BROKER_URL"], backend=os.environ["CELERY_RESULT_BACKEND"])
app = Flask(__name__)


@celery.task
def add(x, y):
    return x + y


@app.get("/")
def index():
    return {"ok": True}


@app.get("/tasks/add")
def enqueue():
    return {"id": add.delay(1, 2).id}
'''


def make_venv(folder: Path) -> Path:
    """folder/.venv with flask and celery[redis] from the local wheel cache (PIP_FIND_LINKS), no devstack."""
    # --without-pip and devstack's pip installing into it: ensurepip alone takes ~25 s on a busy machine
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder / ".venv")], check=True, timeout=120)
    python = folder / ".venv" / "bin" / "python"
    res = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q",
                          "--disable-pip-version-check", "flask", "celery[redis]"],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    return python


@pytest.mark.functional
@pytest.mark.timeout(600)
def test_flask_and_celery_run_with_the_projects_venv(tmp_path):
    python = make_venv(tmp_path)
    (tmp_path / "app.py").write_text(APP)
    config = tmp_path / "devstack.toml"
    config.write_text(f"""
[redis]
port = {free_port()}

[api]
app = "app:app"
port = {free_port()}

[worker]
app = "app:celery"
concurrency = 1

[beat]
enabled = false
""")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    s = Stack(tmp_path, config, env=env)
    try:
        s.wait_ready(120)
        assert "Traceback" not in s.output, s.output
        status = s.status()
        assert status["python"] == {"path": str(python), "source": ".venv in the project"}
        for name, script in (("worker", "celery"), ("api", "flask")):
            cmdline = psutil.Process(status["services"][name]["pid"]).cmdline()
            # a console script runs as `<its shebang's python> <script>`: the venv's, not devstack's
            assert cmdline[:2] == [str(python), str(tmp_path / ".venv" / "bin" / script)], cmdline
        task = s.api("/tasks/add")
        assert task["id"]
        res = s.cli("run", "--", "python", "-c", "import sys; print(sys.prefix)")
        assert res.returncode == 0, res.stderr
        assert res.stdout.strip() == str(tmp_path / ".venv")  # `devstack run` gets the app's PATH too
        env_out = json.loads(s.cli("env", "--json").stdout)
        assert env_out["VIRTUAL_ENV"] == str(tmp_path / ".venv")
        wait_for(lambda: "succeeded" in (tmp_path / ".devstack" / "logs" / "worker.log").read_text(), 30,
                 what="the task ran in the venv's worker")
        # doctor checks the packages of the Python that runs the app, not devstack's own
        doctor = s.cli("doctor")
        line = next(ln for ln in doctor.stdout.splitlines() if "app environment" in ln)
        assert line.startswith("OK") and f"{tmp_path / '.venv' / 'bin'}{os.sep}python" in line, line
    finally:
        s.stop()


def fake_venv(folder: Path) -> Path:
    (folder / "bin").mkdir(parents=True)
    (folder / "pyvenv.cfg").write_text("home = /usr/bin\n")
    for name in ("python", "celery"):
        (folder / "bin" / name).write_text("#!/bin/sh\n")
        (folder / "bin" / name).chmod(0o755)
    return folder / "bin" / "python"


def test_the_interpreter_is_chosen_config_then_virtual_env_then_dot_venv_then_venv_then_devstacks(tmp_path):
    root = tmp_path / "app"
    venv, dot_venv, active = fake_venv(root / "venv"), fake_venv(root / ".venv"), fake_venv(tmp_path / "active")
    configured = fake_venv(tmp_path / "configured")
    assert choose_interpreter(configured, root, {"VIRTUAL_ENV": str(active.parent.parent)}).source == "[project] python"
    chosen = choose_interpreter(None, root, {"VIRTUAL_ENV": str(active.parent.parent)})
    assert (chosen.python, chosen.source) == (str(active), "VIRTUAL_ENV")
    assert choose_interpreter(None, root, {}).python == str(dot_venv)
    (dot_venv.parent.parent / "pyvenv.cfg").unlink()
    dot_venv.unlink()
    assert choose_interpreter(None, root, {}).python == str(venv)
    venv.unlink()
    own = choose_interpreter(None, root, {})
    assert own.own and own.python == sys.executable
    assert own.activate({"PATH": "/bin"}) == {"PATH": "/bin"}  # devstack's own changes nothing

    env = choose_interpreter(configured, root, {}).activate({"PATH": "/bin"})
    assert env == {"PATH": f"{configured.parent}:/bin", "VIRTUAL_ENV": str(configured.parent.parent)}
    python = choose_interpreter(configured, root, {})
    assert executable("celery", env, python) == [str(configured.parent / "celery")]
    assert executable("flask", env, python) == [str(configured), "-m", "flask"]  # not installed there as a script


def test_project_python_must_be_an_interpreter_or_a_venv(tmp_path):
    (tmp_path / "empty").mkdir()
    fake_venv(tmp_path / "env")
    base = {"api": {"enabled": False}, "worker": {"enabled": False}}
    cfg = parse_config({**base, "project": {"python": "env"}}, root=tmp_path, path=tmp_path / "devstack.toml",
                       source="devstack.toml", cwd=tmp_path)
    assert cfg.project.python == tmp_path / "env" / "bin" / "python"  # a venv folder means its bin/python
    for value, words in (("empty", "has no bin/python"), ("nope/python", "is not an executable Python")):
        with pytest.raises(ConfigError) as err:
            parse_config({**base, "project": {"python": value}}, root=tmp_path, path=tmp_path / "devstack.toml",
                         source="devstack.toml", cwd=tmp_path)
        assert words in str(err.value) and "[project] python" in str(err.value)
