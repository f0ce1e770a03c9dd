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

from tests.functional.test_cli import Stack, wait_for
from tests.stack import free_port

pytestmark = pytest.mark.functional

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
    finally:
        s.stop()
