"""Folders no service reloads for: the one list hot reload skips and `devstack doctor` counts without."""
from __future__ import annotations

# A state dir, caches and virtualenvs change all the time (logs, bytecode, pip) and can hold
# thousands of folders (inotify watches are a per-user OS limit).
DEFAULT_IGNORE = (".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__",
                  ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", ".nox", ".hypothesis", ".idea",
                  ".vscode", ".eggs", "*.egg-info", ".devstack")
