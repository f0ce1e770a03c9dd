"""Where the configuration comes from: finding and reading the file, or the bundled demo stack.

Discovery order (the first match wins)::

    +---+-----------------------------------------------+--------------------------------------------+
    | # | Where                                         | Notes                                      |
    +===+===============================================+============================================+
    | 1 | ``--config PATH``                             | explicit; a missing file is an error       |
    +---+-----------------------------------------------+--------------------------------------------+
    | 2 | ``devstack.toml`` in the current folder,      | checked in each folder, walking up from    |
    | 3 | then ``pyproject.toml`` with a                | the current folder to ``/``; a             |
    |   | ``[tool.devstack]`` table                     | pyproject.toml without that table is       |
    |   |                                               | skipped                                    |
    +---+-----------------------------------------------+--------------------------------------------+
    | 4 | the bundled demo stack                        | ``devstack.demo.app:app`` (Flask) and      |
    |   |                                               | ``devstack.demo.app:celery`` (Celery),     |
    |   |                                               | state kept in ``<cwd>/.devstack``          |
    +---+-----------------------------------------------+--------------------------------------------+
"""
from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .models import Config
from .parse import parse_config

__all__ = ["find_config", "load_config", "demo_config", "demo_root", "DEMO_APP", "DEMO_CELERY", "DEMO_QUEUES"]


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: the config file does not exist. Fix: check the path or create it.", path=path) from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a config file. Fix: pass the path of a devstack.toml or pyproject.toml.", path=path) from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc.strerror or exc}). Fix: check its permissions.", path=path) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: is not valid UTF-8 text ({exc.reason} at byte {exc.start}). Fix: save the file as UTF-8.", path=path) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.search(r"\(at line (\d+), column (\d+)\)", msg)
        where = f"line {m.group(1)}, column {m.group(2)}" if m else "somewhere in the file"
        reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", msg)
        if "end of document" in msg:
            where = "end of file"
        raise ConfigError(
            f"{path}: {where}: invalid TOML: {reason}. Fix: correct the syntax at that position "
            "(strings need quotes, tables are written [name], each key once).",
            path=path,
        ) from None


def _has_devstack_table(path: Path) -> bool:
    """Whether a pyproject.toml has [tool.devstack]. A broken one counts only if it mentions it."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return False
    except tomllib.TOMLDecodeError:
        try:
            return "[tool.devstack" in path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return False
    tool = data.get("tool")
    return isinstance(tool, dict) and "devstack" in tool


def find_config(cwd: Path, explicit: Path | None = None) -> tuple[Path, str] | None:
    """Locate the config: ``(path, "devstack.toml" | "pyproject.toml")``, or None (use the demo)."""
    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.is_absolute():
            p = Path(cwd) / p
        if not p.exists():
            raise ConfigError(
                f"{explicit}: --config names a file that does not exist. Fix: check the path, or leave "
                "--config out to search for devstack.toml / pyproject.toml from the current folder.",
                path=p,
            )
        if p.is_dir():
            raise ConfigError(f"{explicit}: --config names a folder. Fix: pass the path of the devstack.toml or pyproject.toml file.", path=p)
        if p.name == "pyproject.toml":
            if not _has_devstack_table(p):
                raise ConfigError(f"{explicit}: has no [tool.devstack] table. Fix: add one, or pass a devstack.toml.", path=p, key="tool.devstack")
            return p.resolve(), "pyproject.toml"
        return p.resolve(), "devstack.toml"
    here = Path(cwd).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "devstack.toml"
        if candidate.is_file():
            return candidate, "devstack.toml"
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and _has_devstack_table(candidate):
            return candidate, "pyproject.toml"
    return None


def load_config(explicit: Path | None = None, cwd: Path | None = None) -> Config:
    """Find, read and validate the configuration (the bundled demo when none is found)."""
    cwd = Path(cwd) if cwd is not None else Path.cwd()
    found = find_config(cwd, explicit)
    if found is None:
        return demo_config(cwd)
    path, source = found
    data = _read_toml(path)
    if source == "pyproject.toml":
        tool = data.get("tool", {})
        data = tool.get("devstack") if isinstance(tool, dict) else None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: [tool.devstack] must be a table. Fix: write it as a [tool.devstack] section.", path=path)
    return parse_config(data, root=path.parent, path=path, source=source, cwd=cwd)


DEMO_APP = "devstack.demo.app:app"
DEMO_CELERY = "devstack.demo.app:celery"
DEMO_QUEUES = ["celery", "dataset", "generation", "mail"]


def demo_root() -> Path:
    """The folder of the bundled demo app (``devstack/demo``)."""
    return Path(__file__).resolve().parent.parent / "demo"


def demo_config(cwd: Path) -> Config:
    """The bundled demo stack: Flask app + Celery worker + beat, state in ``<cwd>/.devstack``."""
    cwd = Path(cwd)
    # The services run from the package's parent, not from inside demo/: `flask --app a.b.c` run
    # inside a package folder would rewrite the module name from the folder's __init__.py files.
    run_dir = str(demo_root().parent.parent)
    data = {
        "project": {"name": "demo", "env_file": "", "state_dir": str((cwd / ".devstack").resolve())},
        "api": {"app": DEMO_APP, "cwd": run_dir},  # the default port, moved up if taken (a second demo stack)
        "worker": {"app": DEMO_CELERY, "queues": list(DEMO_QUEUES), "concurrency": 2, "cwd": run_dir},
        "beat": {"enabled": True, "app": DEMO_CELERY, "cwd": run_dir},
    }
    return parse_config(data, root=demo_root(), path=None, source="demo", cwd=cwd)
