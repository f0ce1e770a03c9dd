"""Which project files each Python service imported, as the services report them (engine side).

A service started with `child_env` runs devstack/module_report_site/sitecustomize.py, which writes the
project files of its `sys.modules` to `<state dir>/modules/<service>.json` once imports settle and
again whenever new modules appear. The reload planner reads them back with `ModuleReports`. The same
start-up hook freezes a prefork worker's heap before its pool forks (`freeze_before_fork`) and runs a
service's start-up without the cyclic collector (`collector_off_at_start`).
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from .preload import EXCLUDE_VAR, PRELOAD_VAR, report_env

SITE_DIR = str(Path(__file__).resolve().parent / "module_report_site")
REPORT_VAR = "DEVSTACK_MODULES_REPORT"  # the same names as in the sitecustomize (stdlib only, no import of ours)
ROOT_VAR = "DEVSTACK_MODULES_ROOT"
FREEZE_VAR = "DEVSTACK_FREEZE_BEFORE_FORK"
COLLECTOR_VAR = "DEVSTACK_COLLECTOR_OFF_AT_START"
REPORTING_SERVICES = ("api", "worker", "beat")


def reports_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "modules"


def child_env(env: dict[str, str], service: str, state_dir: Path, root: Path,
              preload: bool = True, preload_exclude: list[str] | tuple[str, ...] = ()) -> dict[str, str]:
    """`env` plus what makes the service report its imports (PYTHONPATH gets our folder in front) and,
    with `preload`, the libraries its next spare will import (devstack/preload.py)."""
    return {**with_site(env), REPORT_VAR: str(reports_dir(state_dir) / f"{service}.json"), ROOT_VAR: str(Path(root).resolve()),
            **(report_env(service, state_dir, preload_exclude) if preload else {})}


def with_site(env: dict[str, str]) -> dict[str, str]:
    """`env` with our sitecustomize's folder first on PYTHONPATH (once), so the child runs it at start-up."""
    path = env.get("PYTHONPATH")
    if path and path.split(os.pathsep)[0] == SITE_DIR:
        return dict(env)
    return {**env, "PYTHONPATH": SITE_DIR + (os.pathsep + path if path else "")}


def freeze_before_fork(env: dict[str, str]) -> dict[str, str]:
    """`env` making a prefork worker freeze its heap before each pool fork (the sitecustomize's
    `freeze_before_forks`: why, and what it costs)."""
    return {**with_site(env), FREEZE_VAR: "1"}


def collector_off_at_start(env: dict[str, str]) -> dict[str, str]:
    """`env` making a Python service import and start without the cyclic collector until its imports
    settle (the sitecustomize's `collector_off_while_starting`: why, and what it saves)."""
    return {**with_site(env), COLLECTOR_VAR: "1"}


def app_view(env: dict[str, str]) -> dict[str, str]:
    """The environment the app itself sees in a reporting service: `child_env`'s additions are removed by
    the child's sitecustomize at start-up, before the app runs (so /proc/<pid>/environ still shows them)."""
    view = {k: v for k, v in env.items() if k not in (REPORT_VAR, ROOT_VAR, PRELOAD_VAR, EXCLUDE_VAR, FREEZE_VAR,
                                                        COLLECTOR_VAR)}
    rest = [p for p in view.get("PYTHONPATH", "").split(os.pathsep) if p and p != SITE_DIR]
    if rest:
        view["PYTHONPATH"] = os.pathsep.join(rest)
    else:
        view.pop("PYTHONPATH", None)
    return view


class ModuleReports:
    """The reports in a state folder, re-read only when a file changed (the planner asks per change)."""

    def __init__(self, state_dir: Path):
        self.folder = reports_dir(state_dir)
        self._cache: dict[str, tuple[int, frozenset[Path]]] = {}

    def clear(self) -> None:
        """A new `devstack up`: the last run's lists describe code that may have changed since."""
        shutil.rmtree(self.folder, ignore_errors=True)
        self._cache.clear()

    def files(self, service: str) -> frozenset[Path] | None:
        """The files `service` reported, None when it has not reported (yet, or cannot: not Python)."""
        path = self.folder / f"{service}.json"
        try:
            stamp = path.stat().st_mtime_ns
        except OSError:
            return None
        cached = self._cache.get(service)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        try:
            files = frozenset(Path(f) for f in json.loads(path.read_text(encoding="utf-8"))["files"])
        except (OSError, ValueError, KeyError, TypeError):
            return cached[1] if cached else None  # caught mid-replace: the previous list still holds
        self._cache[service] = (stamp, files)
        return files
