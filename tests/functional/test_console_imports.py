"""The control commands' fast path imports neither click, pydantic, asyncio nor psutil (the console
script answers `devstack status` in tens of milliseconds: bench/control_bench.py), and no pathlib of its own."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.functional

FAST_PATH = ("devstack.console", "devstack.control_commands", "devstack.control_client", "devstack.locate",
             "devstack.lockfiles")
HEAVY = ("click", "pydantic", "asyncio", "psutil", "textual", "tomllib", "redis", "celery", "json")


def test_the_fast_path_imports_nothing_heavy():
    code = ("import sys; before = set(sys.modules); "
            + "; ".join(f"import {m}" for m in FAST_PATH)
            + "; print(' '.join(sorted(set(sys.modules) - before)))")
    # -S: no site, so no editable-install finder loads pathlib first; devstack from the checkout itself.
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    out = subprocess.run([sys.executable, "-S", "-c", code], capture_output=True, text=True, check=True,
                         env=env).stdout.split()
    assert "devstack.locate" in out, out
    assert not [m for m in out if m.split(".")[0] in HEAVY or m == "pathlib"], out
