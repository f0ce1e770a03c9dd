"""A task's lines in the worker's log file (`.devstack/logs/worker.log`): every line naming the task id
(Celery's `Task name[id] received/succeeded`, the task's own logger lines) and the lines that continue
one (a traceback), found from the end of the file and bounded."""
from __future__ import annotations

import re
from pathlib import Path

MAX_LINES = 200
"""The newest matching lines kept (continuations included)."""
MAX_CONTINUATION = 100
"""Lines after a matching one that may continue it (a long traceback is cut there)."""
# A new log record starts with a clock time near its start ("[2024-01-01 12:00:00,123: INFO/..."); a
# traceback's lines do not.
RECORD_START = re.compile(rb"^.{0,40}?\d\d:\d\d:\d\d")


def log_path(state_dir: Path, service: str = "worker") -> Path:
    return Path(state_dir) / "logs" / f"{service}.log"


def task_log_lines(path: Path, task_id: str, limit: int = MAX_LINES) -> list[str]:
    """The last `limit` lines of `path` about `task_id`, oldest first; [] without a file or an id."""
    if len(task_id) < 8:
        return []
    try:
        data = path.read_bytes()  # at most one rotation's worth (10 MB, see supervisor/output.py)
    except OSError:
        return []
    needle = task_id.encode()
    records: list[list[bytes]] = []
    end, count = len(data), 0
    while count < limit:
        at = data.rfind(needle, 0, end)
        if at < 0:
            break
        start = data.rfind(b"\n", 0, at) + 1
        record = _record(data, start)
        records.append(record)
        count += len(record)
        end = start
    lines = [line for record in reversed(records) for line in record][-limit:]
    return [line.decode("utf-8", "replace") for line in lines]


def _record(data: bytes, start: int) -> list[bytes]:
    """The line at `start` and the lines continuing it (up to the next record start)."""
    lines = []
    pos = start
    while pos < len(data) and len(lines) <= MAX_CONTINUATION:
        stop = data.find(b"\n", pos)
        stop = len(data) if stop < 0 else stop
        line = data[pos:stop]
        if lines and (RECORD_START.match(line) or not line.strip()):
            break
        lines.append(line)
        pos = stop + 1
    return lines
