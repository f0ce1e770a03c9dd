"""The files in `.devstack/` that say who holds a project: the lock (its holder's pid) and, while
`devstack run` holds it, `run.json` (its pid and command). No psutil: the control client reads them."""
from __future__ import annotations

import json
import os
from pathlib import Path

LOCK, RECORD = "devstack.lock", "processes.json"
RUN = "run.json"  # while `devstack run` holds the lock for its command (see oneoff.py): its pid and command


def held_by_run(state_dir: Path, pid: int | None) -> str | None:
    """The command a `devstack run` holds the lock for (from its RUN file), None if not a run's lock."""
    try:
        run = json.loads((state_dir / RUN).read_text())
    except (OSError, ValueError):
        return None
    return run.get("command", "?") if pid and run.get("pid") == pid else None  # else a killed run's file


def running_run(state_dir: Path) -> tuple[int, str] | None:
    """(pid, command) of a live `devstack run` holding this project, else None."""
    try:
        pid = int((state_dir / LOCK).read_text().strip() or 0)
        if pid:
            os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    command = held_by_run(state_dir, pid)
    return (pid, command) if command is not None else None
