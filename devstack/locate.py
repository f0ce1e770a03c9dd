"""Where a project's config file and state folder are, found with tomllib alone (no validation): what the
control commands need to reach a running stack. `devstack.config` validates; this only locates."""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

STATE_FOLDER = ".devstack"


def default_state_dir(root: Path) -> Path:
    """`[project] state_dir` when unset: beside the config file (the bundled demo: the current folder)."""
    return (Path(root) / STATE_FOLDER).resolve()


def _devstack_table(path: Path) -> dict | None:
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    if path.name != "pyproject.toml":
        return data
    tool = data.get("tool")
    table = tool.get("devstack") if isinstance(tool, dict) else None
    return table if isinstance(table, dict) else None


def _config_file(cwd: Path, explicit: str | None) -> Path | None:
    if explicit is not None:
        path = (cwd / os.path.expanduser(explicit)).resolve()
        return path if path.is_file() else None
    for folder in (cwd, *cwd.parents):
        for name in ("devstack.toml", "pyproject.toml"):
            candidate = folder / name
            if candidate.is_file() and (name == "devstack.toml" or b"devstack" in candidate.read_bytes()):
                if _devstack_table(candidate) is not None:
                    return candidate
    return None


def state_dir(cwd: Path, explicit: str | None = None) -> Path | None:
    """The state folder the config names, or None when that takes more than reading TOML (no file at
    --config, a TOML error, a state_dir that is not a string): the full CLI then says what is wrong."""
    cwd = Path(cwd).resolve()
    try:
        path = _config_file(cwd, explicit)
        if path is None:
            return None if explicit is not None else default_state_dir(cwd)
        table = _devstack_table(path)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    project = table.get("project", {}) if table is not None else None
    value = project.get("state_dir") if isinstance(project, dict) else None
    if not isinstance(project, dict) or not isinstance(value, (str, type(None))):
        return None
    if value is None:
        return default_state_dir(path.parent)
    return (path.parent / os.path.expanduser(value)).resolve()
