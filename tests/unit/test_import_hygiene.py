"""The engine never imports the TUI: every `devstack` module loads without `textual` or `tui`."""
from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = """
import importlib, json, pkgutil, sys
import devstack
names = [m.name for m in pkgutil.walk_packages(devstack.__path__, "devstack.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "tui"))
print(json.dumps({"modules": names, "leaked": leaked}))
"""


def test_engine_imports_neither_textual_nor_tui():
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         # the demo app needs a broker URL to import (it never connects here)
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                              "CELERY_BROKER_URL": "redis://127.0.0.1:9/1"})
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "devstack.engine" in result["modules"] and "devstack.cli" in result["modules"]
    assert result["leaked"] == [], f"the engine imported {result['leaked']}; only tui/ may import textual"
