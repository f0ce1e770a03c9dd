"""The tasks panel: one row per task, newest first, updated in place from the Celery task events.

Enter opens a task's detail (tui/screens/task.py); `/` filters by name or state; `b` opens beat's schedule.
"""
from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from devstack.api import TaskEvent

MAX_EVENTS = 200
"""Events kept for the feed's own bookkeeping (the history of record is the engine's task store)."""
MAX_TASKS = 200
"""Rows the panel holds; older tasks stay in `devstack tasks`."""
KIND_STYLE = {"received": "dim", "started": "cyan", "succeeded": "green", "failed": "bold red",
              "retried": "yellow", "revoked": "magenta", "rejected": "red"}
FINAL = {"succeeded", "failed", "revoked", "rejected"}
COLUMNS = ("time", "state", "task", "id", "worker", "result")
REBUILD_EVERY = 0.5
"""Seconds between two re-orderings of the table. In a flood every flush (12 a second) brought new tasks, and
each rebuild re-measured and re-rendered the whole table: most of the event loop's time (py-spy, bench/task_flood.py),
so key presses waited seconds. Rows already shown are still updated at every flush."""


@dataclass
class TaskRow:
    """What the panel shows of one task: its newest state wins, a late non-final event never undoes a final one."""

    uuid: str
    name: str = "?"
    state: str = "received"
    first_seen: float = 0.0
    hostname: str = ""
    runtime: float | None = None
    exception: str | None = None

    def apply(self, event: TaskEvent) -> None:
        if event.name:
            self.name = event.name
        if event.hostname:
            self.hostname = event.hostname
        if event.runtime is not None:
            self.runtime = event.runtime
        if event.exception:
            self.exception = event.exception
        if not (self.state in FINAL and event.kind not in FINAL):
            self.state = event.kind

    def cells(self) -> tuple:
        result = Text(no_wrap=True, overflow="ellipsis")
        if self.state == "succeeded" and self.runtime is not None:
            result.append(f"in {self.runtime * 1000:.0f} ms", style="green")
        elif self.exception:
            result.append(self.exception, style="red")
        return (Text(time.strftime("%H:%M:%S", time.localtime(self.first_seen)), style="dim"),
                Text(self.state, style=KIND_STYLE.get(self.state, "")), Text(self.name),
                Text(self.uuid[:8], style="dim"), Text(self.hostname.split("@")[0], style="dim"), result)

    def matches(self, text: str) -> bool:
        return not text or text in self.name.lower() or text == self.state


class TaskFeed(DataTable):
    """`add()` is cheap and called for every event; the table changes on `flush()` (once per frame at most)."""

    BINDINGS = [Binding("slash", "filter", "Filter tasks"), Binding("b", "beat", "Beat schedule")]
    DEFAULT_CSS = """
    TaskFeed { height: 10; border: round $primary; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)
        self.events: deque[TaskEvent] = deque(maxlen=MAX_EVENTS)
        self.tasks: OrderedDict[str, TaskRow] = OrderedDict()
        self.filter_text = ""
        self._changed: set[str] = set()
        self._reorder = False
        self._rebuilt_at = float("-inf")
        self._rebuild_timer = None

    def on_mount(self) -> None:
        self.border_title = "tasks"
        self.border_subtitle = "no task events yet (the worker sends them with -E)"
        for column in COLUMNS:
            self.add_column(column, key=column)

    def add(self, event: TaskEvent) -> None:
        self.events.appendleft(event)
        if not event.uuid:
            return
        row = self.tasks.get(event.uuid)
        if row is None:
            row = self.tasks[event.uuid] = TaskRow(event.uuid, first_seen=event.timestamp)
            self._reorder = True
            while len(self.tasks) > MAX_TASKS:
                self.tasks.popitem(last=False)
        row.apply(event)
        self._changed.add(event.uuid)

    @property
    def selected(self) -> str | None:
        """The task id under the cursor."""
        if not self.row_count:
            return None
        return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)

    def flush(self) -> None:
        wait = self._rebuilt_at + REBUILD_EVERY - time.monotonic()
        if self._reorder and wait <= 0:  # a new task goes on top: rebuild (a few hundred rows at most)
            self._rebuild()
        else:
            for uuid in self._changed:
                if uuid in self.rows:
                    for column, value in zip(COLUMNS, self.tasks[uuid].cells()):
                        self.update_cell(uuid, column, value)
            if self._reorder and self._rebuild_timer is None:  # the new tasks show at the next rebuild
                self._rebuild_timer = self.set_timer(wait, self._deferred_rebuild)
        self._changed.clear()

    def _deferred_rebuild(self) -> None:
        self._rebuild_timer = None
        if self._reorder:
            self._rebuild()

    def _rebuild(self) -> None:
        self._reorder = False
        self._rebuilt_at = time.monotonic()
        keep = self.selected
        self.clear()
        for row in reversed(self.tasks.values()):
            if row.matches(self.filter_text):
                self.add_row(*row.cells(), key=row.uuid)
        if keep is not None and keep in self.rows:
            self.move_cursor(row=self.get_row_index(keep))
        shown = self.row_count
        self.border_subtitle = (f"{shown} of {len(self.tasks)} · filter {self.filter_text!r}" if self.filter_text
                                else f"{shown} task(s) · Enter detail · / filter")

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip().lower()
        self._rebuild()

    def action_filter(self) -> None:
        from .screens.task import FilterScreen

        self.app.push_screen(FilterScreen(self.filter_text), lambda text: self.set_filter(text or ""))

    def action_beat(self) -> None:
        from .beat import BeatScreen

        self.app.push_screen(BeatScreen(self.app.source))
