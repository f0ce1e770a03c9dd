"""The task history: one row per Celery task id in `.devstack/tasks.sqlite3`, bounded, written in batches.

`record(event)` is cheap and safe on the event loop (an append to a deque); a writer thread merges what
arrived every `flush_seconds` and writes it with one `executemany` upsert, so a flood of events never
waits on the disk. Readers open their own connection (WAL mode: reading never blocks the writer).
"""
from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from pathlib import Path

DEFAULT_KEEP = 10_000
STORE_FILE = "tasks.sqlite3"
TERMINAL = ("succeeded", "failed", "revoked")
STATES = ("sent", "received", "started", "retried", *TERMINAL)

# Columns an event may fill; a later non-NULL value replaces an earlier one.
COLUMNS = ("name", "args", "kwargs", "queue", "routing_key", "exchange", "hostname", "pid", "runtime", "retries",
           "eta", "expires", "exception", "traceback", "result", "parent_id", "root_id", "replay_of", "body",
           *(f"t_{s}" for s in STATES))

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS tasks (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    state TEXT NOT NULL,
    state_at REAL NOT NULL,
    updated REAL NOT NULL,
    {", ".join(f"{c} {'REAL' if c.startswith('t_') or c == 'runtime' else 'TEXT'}" for c in COLUMNS)}
);
CREATE INDEX IF NOT EXISTS tasks_state ON tasks(state);
CREATE INDEX IF NOT EXISTS tasks_name ON tasks(name);
"""

# The newest state wins (`state_at`: the event's time; 0 for a row without a state, e.g. a captured message),
# but a terminal state is never replaced by a late non-terminal event (prefork batches can arrive out of
# order); `retried` is not terminal: the retry arrives again as received/started under the same id.
UPSERT = f"""
INSERT INTO tasks (id, state, state_at, updated, {", ".join(COLUMNS)})
VALUES (?, ?, ?, ?, {", ".join("?" for _ in COLUMNS)})
ON CONFLICT(id) DO UPDATE SET
    state = CASE WHEN tasks.state IN {TERMINAL} AND excluded.state NOT IN {TERMINAL} THEN tasks.state
                 WHEN excluded.state_at >= tasks.state_at THEN excluded.state ELSE tasks.state END,
    state_at = max(tasks.state_at, excluded.state_at),
    updated = excluded.updated,
    {", ".join(f"{c} = COALESCE(excluded.{c}, tasks.{c})" for c in COLUMNS)}
"""


def store_path(state_dir: Path) -> Path:
    return Path(state_dir) / STORE_FILE


def row_from_event(event) -> dict | None:
    """The columns a `devstack.broker.TaskEvent` sets (None for an event without a task id)."""
    if not event.uuid:
        return None
    raw = event.fields or {}
    state = event.kind if event.kind in STATES else None
    row = {"id": event.uuid, "state": state, "name": event.name, "hostname": event.hostname,
           "runtime": event.runtime, "exception": event.exception, "args": event.args, "kwargs": event.kwargs}
    for key in ("pid", "retries", "eta", "expires", "traceback", "result", "parent_id", "root_id"):
        value = raw.get(key)
        if value is not None and value != "":
            row[key] = str(value)
    if "routing_key" in raw:  # task-sent carries the routing (only with task_send_sent_event)
        row["queue"] = raw.get("queue") or raw.get("routing_key")
        row["routing_key"] = raw.get("routing_key")
        row["exchange"] = raw.get("exchange")
    if state:
        row[f"t_{state}"] = row["state_at"] = event.timestamp
    return row


def _merge(into: dict, row: dict) -> None:
    """Fold `row` into `into` as the upsert would."""
    old_state, old_at = into.get("state"), into.get("state_at") or 0
    for key, value in row.items():
        if value is not None and key not in ("state", "state_at"):
            into[key] = value
    state, at = row.get("state"), row.get("state_at") or 0
    if state and not (old_state in TERMINAL and state not in TERMINAL) and (old_state is None or at >= old_at):
        into["state"], into["state_at"] = state, at


class TaskStore:
    """The bounded task history (`keep` newest tasks). `start()` runs the writer thread; `close()` flushes."""

    def __init__(self, path: Path, keep: int = DEFAULT_KEEP, flush_seconds: float = 0.1):
        self.path = Path(path)
        self.keep = keep
        self.flush_seconds = flush_seconds
        self._pending: deque[dict] = deque(maxlen=500_000)  # bounded: a stalled disk drops the oldest events
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()  # one writer at a time: the thread, `flush()`, `clear()`
        self._thread: threading.Thread | None = None
        self._conn = self._open()
        self._since_prune = 0
        self.written = 0
        """Rows upserted so far (for benchmarks)."""

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, check_same_thread=False, timeout=5)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")  # history, not money: a power cut may lose the last batch
        conn.executescript(SCHEMA)
        return conn

    # ----- writing -------------------------------------------------------------------------------
    def record(self, event) -> None:
        """Queue one TaskEvent for the next batch (never blocks)."""
        row = row_from_event(event)
        if row is not None:
            self._pending.append(row)
            self._wake.set()

    def put(self, row: dict) -> None:
        """Queue a partial row (`id` required), e.g. the message body captured from the broker."""
        self._pending.append(row)
        self._wake.set()

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="devstack-task-store", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        """Sleeps while nothing is queued (an idle stack wakes no thread); after the first new row, waits
        `flush_seconds` so a flood is written in batches."""
        while True:
            self._wake.wait()
            if self._stop.wait(self.flush_seconds):
                return  # close() flushes what is left
            self._wake.clear()
            self.flush()

    def flush(self) -> int:
        """Write everything queued now, in one transaction; how many rows were written."""
        with self._lock:
            merged: dict[str, dict] = {}
            while self._pending:
                row = self._pending.popleft()
                _merge(merged.setdefault(row["id"], {}), row)
            if not merged:
                return 0
            now = time.time()
            values = [(task_id, row.get("state") or "sent", row.get("state_at") or 0, now,
                       *(row.get(c) for c in COLUMNS))
                      for task_id, row in merged.items()]
            with self._conn:
                self._conn.executemany(UPSERT, values)
                self._since_prune += len(values)
                if self._since_prune >= max(self.keep // 10, 100):
                    self._prune()
            self.written += len(values)
            return len(values)

    def _prune(self) -> None:
        self._since_prune = 0
        cut = self._conn.execute("SELECT seq FROM tasks ORDER BY seq DESC LIMIT 1 OFFSET ?", (self.keep,)).fetchone()
        if cut:
            self._conn.execute("DELETE FROM tasks WHERE seq <= ?", (cut[0],))

    def clear(self) -> int:
        """Forget every task (queued events too); how many rows were deleted."""
        with self._lock:
            self._pending.clear()
            with self._conn:
                return self._conn.execute("DELETE FROM tasks").rowcount

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.flush()
        with self._lock:
            with self._conn:
                self._prune()
            self._conn.close()


class TaskHistory:
    """Read-only queries on a store file, from any thread or process (the CLI when no stack runs)."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def _query(self, sql: str, params: tuple = ()) -> list[dict]:
        if not self.path.exists():
            return []
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(sql, params)]
        except sqlite3.OperationalError:  # no table yet: a store created but never written
            return []
        finally:
            conn.close()

    def list(self, state: str | None = None, name: str | None = None, limit: int = 100) -> list[dict]:
        """Newest first. `name` matches a substring of the task name."""
        where, params = [], []
        if state:
            where.append("state = ?")
            params.append(state)
        if name:
            where.append("instr(name, ?) > 0")
            params.append(name)
        sql = ("SELECT * FROM tasks" + (" WHERE " + " AND ".join(where) if where else "")
               + " ORDER BY seq DESC LIMIT ?")
        return [_public(r) for r in self._query(sql, (*params, limit))]

    def matches(self, task_id: str) -> list[dict]:
        """The rows whose id is `task_id` or starts with it (the TUI and `devstack tasks` show short ids)."""
        exact = self._query("SELECT * FROM tasks WHERE id = ?", (task_id,))
        if exact:
            return [_public(exact[0])]
        return [_public(r) for r in self._query("SELECT * FROM tasks WHERE substr(id, 1, ?) = ? LIMIT 5",
                                                 (len(task_id), task_id))]

    def known_queue(self, name: str) -> str | None:
        """The queue of the newest captured message of task `name` (tasks are routed by name as a rule)."""
        rows = self._query("SELECT queue FROM tasks WHERE name = ? AND body IS NOT NULL AND queue IS NOT NULL "
                           "ORDER BY seq DESC LIMIT 1", (name,))
        return rows[0]["queue"] if rows else None

    def body(self, task_id: str) -> str | None:
        """The original message (kombu's JSON envelope) captured from the broker, if it was seen there."""
        rows = self._query("SELECT body FROM tasks WHERE id = ?", (task_id,))
        return rows[0]["body"] if rows else None


def _public(row: dict) -> dict:
    """A row as the CLI and the API give it: timestamps grouped, no internal sequence number."""
    row.pop("seq", None)
    row.pop("state_at", None)
    row["times"] = {s: row.pop(f"t_{s}") for s in STATES if row.get(f"t_{s}") is not None}
    for s in STATES:
        row.pop(f"t_{s}", None)
    row["message_captured"] = bool(row.pop("body", None))
    return row
