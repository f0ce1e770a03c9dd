"""Import contracts: the engine never imports the TUI; the TUI reaches the engine only through its public
face (`devstack.api`, plus `devstack.events` and `devstack.errors`); nobody imports a library's private module.

The ast tests read every import statement, lazy ones inside functions included, without importing
anything; the functional test imports every engine module for real and looks at `sys.modules`.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

FACE = {"devstack.api", "devstack.events", "devstack.errors"}
"""What a front-end may import from devstack."""


def modules(package: str) -> dict[str, Path]:
    """Dotted name -> file, for every module of `package` under the repository root."""
    out = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports(name: str, path: Path) -> list[tuple[int, str]]:
    """(line, absolute dotted module) of every import in the file; `from X import y` gives X.y when
    X.y is a module of the project, X otherwise."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base[: len(base) - node.level + (1 if is_package else 0)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names
                      if (ROOT / Path(*f"{module}.{alias.name}".split("."))).with_suffix(".py").exists()
                      or (ROOT / Path(*f"{module}.{alias.name}".split("."))).is_dir()]
    return found


def test_the_tui_imports_only_the_engines_public_face():
    leaks = []
    for name, path in modules("tui").items():
        for line, module in imports(name, path):
            if module.split(".")[0] == "devstack" and module not in FACE:
                leaks.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert leaks == [], "the TUI may import only " + ", ".join(sorted(FACE)) + " from devstack:\n" + "\n".join(leaks)


def test_the_engine_imports_neither_textual_nor_tui_even_lazily():
    leaks = [f"{path.relative_to(ROOT)}:{line} imports {module}"
             for name, path in modules("devstack").items() for line, module in imports(name, path)
             if module.split(".")[0] in ("textual", "tui")]
    assert leaks == []


def test_no_private_module_of_a_library_is_imported():
    own = {"devstack", "tui", "tests", "bench"}
    leaks = []
    for package in ("devstack", "tui", "bench"):
        for name, path in modules(package).items():
            for line, module in imports(name, path):
                parts = module.split(".")
                if parts[0] not in own and parts[0] != "__future__" and any(p.startswith("_") for p in parts):
                    leaks.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert leaks == [], "use the library's public API:\n" + "\n".join(leaks)


def test_the_reader_sees_lazy_relative_and_submodule_imports(tmp_path):
    """Else the contracts above could pass while a leak is there."""
    fake = tmp_path / "processes.py"
    fake.write_text("def f():\n    from devstack import engine\n    from devstack.broker import poll\n"
                    "    from . import app\n")
    found = {module for _line, module in imports("tui.processes", fake)}
    assert {"devstack.engine", "devstack.broker.poll", "tui.app"} <= found


SCRIPT = """
import importlib, json, pkgutil, sys
import devstack
names = [m.name for m in pkgutil.walk_packages(devstack.__path__, "devstack.") if not m.name.endswith("__main__")]
for name in names:
    importlib.import_module(name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "tui"))
print(json.dumps({"modules": names, "leaked": leaked}))
"""


@pytest.mark.functional
def test_engine_imports_neither_textual_nor_tui():
    out = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60,
                         # the demo app needs a broker URL to import (it never connects here)
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT),
                              "CELERY_BROKER_URL": "redis://127.0.0.1:9/1"})
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert "devstack.engine" in result["modules"] and "devstack.cli" in result["modules"]
    assert result["leaked"] == [], f"the engine imported {result['leaked']}; only tui/ may import textual"
