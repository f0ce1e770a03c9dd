"""Installing devstack into an app's virtualenv changes no version the app pinned (issue 12, item 1).

Slow on purpose (about 30-60 s, most of it pip): a real `pip install` into a fresh venv, from the package
index (pip's own wheel cache makes later runs faster). It must fail, never skip, when pip moves a pin:
that is the regression it exists for (kombu 5.7's redis extra wanted redis>=6.4 while apps pin redis<6).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.functional, pytest.mark.timeout(600)]

ROOT = Path(__file__).resolve().parents[2]
# What a Flask + Celery app of 2024 pins (Dify-like), installed before devstack, as an app would.
APP_PINS = ["redis==5.*", "celery==5.4.*", "kombu==5.6.*", "greenlet==3.1.1"]


def _pip(venv: Path, *args: str, cwd: Path | None = None) -> str:
    done = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", *args],
                          capture_output=True, text=True, cwd=cwd, timeout=540)
    assert done.returncode == 0, f"pip {' '.join(args)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


def _freeze(venv: Path) -> dict[str, str]:
    """name -> version, or "@ URL" for a package installed from a folder (devstack's own line)."""
    found = {}
    for line in _pip(venv, "freeze", "--all").splitlines():
        name, sep, version = line.partition("==") if "==" in line else line.partition(" @ ")
        if sep:
            found[name.strip().lower()] = version.strip() if sep == "==" else "@ " + version.strip()
    return found


def _source_copy(dest: Path) -> Path:
    """The checkout without its venv, git data and state: pip builds in the source tree, not in ours."""
    shutil.copytree(ROOT, dest, ignore=shutil.ignore_patterns(
        ".venv*", ".git", ".devstack", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache"))
    return dest


def test_pip_install_keeps_the_apps_pins_and_leaves_out_the_demo(tmp_path):
    venv = tmp_path / "app-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    _pip(venv, "install", "-q", *APP_PINS)
    before = _freeze(venv)
    pinned = {name: before[name] for name in ("redis", "celery", "kombu", "greenlet")}
    assert pinned["redis"].startswith("5.") and pinned["kombu"].startswith("5.6.")

    _pip(venv, "install", "-q", str(_source_copy(tmp_path / "src")))
    after = _freeze(venv)

    assert {name: after.get(name) for name in pinned} == pinned, "pip install devstack moved an app's pin"
    changed = {name: (v, after.get(name)) for name, v in before.items() if after.get(name) != v}
    assert not changed, f"pip install devstack changed these versions of the app's environment: {changed}"
    assert after.get("devstack", "").startswith("@ file:"), after
    # Flask and gevent belong to the demo extra: a plain install brings neither.
    assert "flask" not in after and "gevent" not in after

    # Without the extra, `devstack up` on the demo says what to install, with no traceback.
    empty = tmp_path / "nowhere"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}  # the demo runs with that venv's Python
    done = subprocess.run([str(venv / "bin" / "devstack"), "up", "--no-tui"], cwd=empty, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL, env=env)
    assert done.returncode == 1, done.stderr
    assert 'pip install "devstack[demo]"' in done.stderr and "flask" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert not (empty / ".devstack").exists()  # stopped before anything started


def test_the_readmes_demo_install_runs_the_demo(tmp_path):
    """The README's first command on a fresh venv: `pip install ".[demo]"` then `devstack up`, every service
    ready. pytest's own dependencies are not there to hide a missing one (kombu's Redis transport imports
    `packaging`, which kombu declares only in its redis extra since celery/kombu#2524)."""
    venv = tmp_path / "tool-venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    _pip(venv, "install", "-q", f"{_source_copy(tmp_path / 'src')}[demo]")
    folder = tmp_path / "demo"
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    proc = subprocess.Popen([str(venv / "bin" / "devstack"), "up", "--no-tui"], cwd=folder, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    lines: list[str] = []
    try:
        for line in proc.stdout:
            lines.append(line)
            if "all services ready" in line or "crashed" in line or "exited with code" in line:
                break
        assert any("all services ready" in ln for ln in lines), "".join(lines[-40:])
    finally:
        proc.send_signal(2)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
