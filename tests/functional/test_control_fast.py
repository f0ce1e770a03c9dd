"""The console script's fast path (devstack/control_commands.py) against a real running stack: the same
bytes as the click CLI (`python -m devstack`), without importing click, asyncio or pydantic, and the
click CLI for everything else (help, usage errors, no stack running)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.functional.test_cli import stack  # noqa: F401  (the fixture)
from tests.stack import write_demo_config
from tests.waiting import wait_until

pytestmark = [pytest.mark.functional, pytest.mark.timeout(180)]
SCRIPT = str(Path(sys.executable).with_name("devstack"))


def fast(*args: str, cwd: Path, importtime: bool = False) -> subprocess.CompletedProcess:
    argv = [sys.executable, *(["-X", "importtime"] if importtime else []), SCRIPT, *args]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, env=os.environ.copy())


def click(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """What the console script ran before: devstack.cli:main, named `devstack`."""
    code = "import sys; sys.argv[0] = 'devstack'; from devstack.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env=os.environ.copy())


def _stable(text: str) -> str:
    return re.sub(r" up \d+s ", " up Ns ", text)  # the click CLI starts ~0.3 s slower: a second may tick


def same_output(*args: str, cwd: Path) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    """Both CLIs, retried while something volatile (a new log line) moved between them."""
    for _ in range(5):
        a, b = fast(*args, cwd=cwd), click(*args, cwd=cwd)
        if (_stable(a.stdout), a.stderr, a.returncode) == (_stable(b.stdout), b.stderr, b.returncode):
            return a, b
    raise AssertionError(f"{args}: fast {a!r} != click {b!r}")


def test_fast_control_commands_match_the_click_cli(stack, tmp_path):
    s = stack()
    s.wait_ready(90)
    cfg = ("--config", str(s.config))

    done = fast("status", "--json", *cfg, cwd=tmp_path, importtime=True)
    assert done.returncode == 0, done.stderr
    loaded = {line.split("|")[-1].strip().split(".")[0] for line in done.stderr.splitlines() if "|" in line}
    assert not loaded & {"click", "asyncio", "pydantic", "psutil", "redis", "devstack.cli", "json"}, sorted(loaded)
    status = json.loads(done.stdout)
    assert done.stdout == json.dumps(status, indent=2) + "\n"
    assert set(status["services"]) == {"redis", "api", "worker", "beat"}

    # From the project folder the config is found by searching upwards, as the click CLI does.
    sub = tmp_path / "deep" / "er"
    sub.mkdir(parents=True)
    text, _ = same_output("status", cwd=sub)
    assert text.returncode == 0 and text.stdout.startswith("testdemo  ·  Redis"), text
    same_output("logs", "api", "-n", "3", *cfg, cwd=tmp_path)
    same_output("logs", "nosuch", *cfg, cwd=tmp_path)

    old_pid = status["services"]["worker"]["pid"]
    done = fast("restart", "worker", *cfg, cwd=tmp_path)
    assert (done.returncode, done.stdout) == (0, "restart: worker (ready)\n"), done
    after = s.status()["services"]
    assert after["worker"]["state"] == "ready" and after["worker"]["pid"] != old_pid
    assert not [n for n in after if n.startswith("worker#")], "the old generation was left draining"
    assert fast("stop", "beat", *cfg, cwd=tmp_path).stdout == "stop: beat\n"
    assert s.status()["services"]["beat"]["state"] == "stopped"
    assert fast("start", "beat", *cfg, cwd=tmp_path).stdout == "start: beat\n"
    wait_until(lambda: s.status()["services"]["beat"]["state"] == "ready", 30, "beat ready")

    # Not the fast path's to answer: the click CLI does, with its own words.
    for args in (("status", "--help"), ("restart",), ("solo", "maybe"), ("status", "--jsn"), ("restart", "nosuch")):
        same_output(*args, *cfg, cwd=tmp_path)


def test_without_a_stack_the_answer_is_the_click_clis(tmp_path):
    write_demo_config(tmp_path)
    for args in (("status",), ("restart", "worker"), ("logs", "worker")):
        a, b = same_output(*args, cwd=tmp_path)
        assert a.returncode == 1 and a.stderr.startswith("devstack: "), a
    (tmp_path / "devstack.toml").write_text('[worker]\nconcurency = 3\n')
    a, _ = same_output("status", cwd=tmp_path)
    assert a.returncode == 2 and "concurency" in a.stderr
