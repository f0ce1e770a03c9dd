"""The files in `.devstack/` that say who holds a project: the lock (its holder's pid) and, while
`devstack run` holds it, `run.json` (its pid and command). No psutil: the control client reads them."""
from __future__ import annotations

import os

LOCK, RECORD = "devstack.lock", "processes.json"
RUN = "run.json"  # while `devstack run` holds the lock for its command (see oneoff.py): its pid and command


def held_by_run(state_dir: str | os.PathLike, pid: int | None) -> str | None:
    """The command a `devstack run` holds the lock for (from its RUN file), None if not a run's lock."""
    import json  # only when a lock is held: the control commands' fast path stays without it

    try:
        with open(os.path.join(state_dir, RUN), encoding="utf-8") as f:
            run = json.loads(f.read())
    except (OSError, ValueError):
        return None
    return run.get("command", "?") if pid and run.get("pid") == pid else None  # else a killed run's file


def running_run(state_dir: str | os.PathLike) -> tuple[int, str] | None:
    """(pid, command) of a live `devstack run` holding this project, else None."""
    try:
        with open(os.path.join(state_dir, LOCK), encoding="utf-8") as f:
            pid = int(f.read().strip() or 0)
        if pid:
            os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    command = held_by_run(state_dir, pid)
    return (pid, command) if command is not None else None
