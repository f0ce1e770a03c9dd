"""Where a project's config file and state folder are, found with tomllib alone (no validation, no pydantic): what the
control commands need to reach a running stack. `devstack.config` validates; this only locates. Paths are str
(os.path, no pathlib: its import is a third of a control command's own time)."""
from __future__ import annotations

import os

STATE_FOLDER = ".devstack"


def default_state_dir(root: str | os.PathLike) -> str:
    """`[project] state_dir` when unset: beside the config file (the bundled demo: the current folder)."""
    return os.path.realpath(os.path.join(root, STATE_FOLDER))


def _parse(text: str) -> dict:
    import tomllib  # only when needed: a third of a control command's own time

    return tomllib.loads(text)


def _devstack_table(path: str) -> dict | None:
    """The devstack table of a devstack.toml or pyproject.toml (None: a pyproject.toml without one)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if os.path.basename(path) != "pyproject.toml":
        # No state_dir key means the default: no need to parse. A file broken since `up` is the
        # reloader's to report; the running stack still answers.
        return _parse(text) if "state_dir" in text else {}
    if "devstack" not in text:
        return None
    tool = _parse(text).get("tool")
    table = tool.get("devstack") if isinstance(tool, dict) else None
    return table if isinstance(table, dict) else None


def _folders_up(folder: str):
    """folder, then each parent up to the root."""
    while True:
        yield folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return
        folder = parent


def _config(cwd: str, explicit: str | None) -> tuple[str, dict | None] | None:
    """(file, its devstack table) as config discovery finds it (devstack/config/discovery.py)."""
    if explicit is not None:
        path = os.path.realpath(os.path.join(cwd, os.path.expanduser(explicit)))
        return (path, _devstack_table(path)) if os.path.isfile(path) else None
    for folder in _folders_up(cwd):
        for name in ("devstack.toml", "pyproject.toml"):
            candidate = os.path.join(folder, name)
            table = _devstack_table(candidate) if os.path.isfile(candidate) else None
            if table is not None:
                return candidate, table
    return None


def state_dir(cwd: str | os.PathLike, explicit: str | None = None) -> str | None:
    """The state folder the config names, or None when that takes more than reading TOML (no file at
    --config, a TOML error, a state_dir that is not a string): the full CLI then says what is wrong."""
    cwd = os.path.realpath(cwd)
    try:
        found = _config(cwd, explicit)
    except (OSError, ValueError):  # tomllib.TOMLDecodeError and UnicodeDecodeError are ValueErrors
        return None
    if found is None:
        return None if explicit is not None else default_state_dir(cwd)
    path, table = found
    project = table.get("project", {}) if table is not None else None
    value = project.get("state_dir") if isinstance(project, dict) else None
    if not isinstance(project, dict) or not isinstance(value, (str, type(None))):
        return None
    if value is None:
        return default_state_dir(os.path.dirname(path))
    return os.path.realpath(os.path.join(os.path.dirname(path), os.path.expanduser(value)))
