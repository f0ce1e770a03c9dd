"""The tasks panel: one row per task, newest first, updated in place from the Celery task events.

Enter opens a task's detail (tui/screens/task.py); `/` filters by name or state; `b` opens beat's schedule.
With the cursor on the top row the panel follows the newest task, as a log pane at its end follows new lines;
anywhere else the cursor stays on the task it is on while newer ones arrive above it.
"""
from __future__ import annotations

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable

from devstack.api import TaskEvent

from .scroll_in_place import TableScrollsInPlace
from .titles import set_titles

MAX_EVENTS = 200
"""Events kept for the feed's own bookkeeping (the history of record is the engine's task store)."""
MAX_TASKS = 200
"""Rows the panel holds; older tasks stay in `devstack tasks`."""
KIND_STYLE = {"received": "dim", "started": "cyan", "succeeded": "green", "failed": "bold red",
              "retried": "yellow", "revoked": "magenta", "rejected": "red"}
FINAL = {"succeeded", "failed", "revoked", "rejected"}
COLUMNS = ("time", "state", "task", "id", "worker", "result")
SHOW_EVERY = 0.5
"""Seconds between two updates of the table. In a flood every flush (12 a second) brought new tasks, and re-adding
and re-rendering the table each time took most of the event loop (py-spy, bench/task_flood.py): key presses waited
for seconds. A lone event after a quiet moment still shows at once."""
MAX_REMOVALS = 20
"""Rows pushed out by newer tasks above which re-adding the table is cheaper (each `remove_row` renumbers all)."""
SHOW_FIRST = 50
"""Rows a re-add puts back at once, the newest; the others when the reader scrolls or moves the cursor near the
last row shown, or at the first showing that brings no new task. In a flood every showing re-added the table:
measuring and rendering 200 rows twice a second where fewer than ten are on screen."""


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
    _cells: tuple | None = field(default=None, repr=False, compare=False)
    """The rendered cells, kept until the next event: a rebuild re-adds every row, most of them unchanged."""
    _stale: bool = field(default=False, repr=False, compare=False)

    def apply(self, event: TaskEvent) -> None:
        self._stale = True
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
        if self._cells is None or self._stale:
            self._cells, self._stale = self._render(), False
        return self._cells

    def changed_cells(self) -> list[tuple[str, Text]]:
        """(column, cell) of the cells that differ from the last rendering (what the table shows)."""
        before = self._cells
        after = self.cells()
        if before is None or before is after:
            return list(zip(COLUMNS, after))
        return [(column, new) for column, old, new in zip(COLUMNS, before, after)
                if old != new or old.style != new.style]

    def _render(self) -> tuple:
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


class TaskFeed(TableScrollsInPlace, DataTable):
    """`add()` is cheap and called for every event; the table changes on `flush()` (once per frame at most).
    A new or removed row updates the scrollbars in place (`TableScrollsInPlace`): its height is set by CSS."""

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
        self._new: list[str] = []
        self._reorder = False
        self._shown_at = float("-inf")
        self._show_timer = None
        self._partial = False  # the table shows only the newest rows of a re-add; the rest when asked

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
            self._new.append(event.uuid)
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
        if not (self._changed or self._reorder or self._partial):
            return  # nothing to show: a lone event after a quiet moment is shown at once
        wait = self._shown_at + SHOW_EVERY - time.monotonic()
        if wait > 0:  # shown a moment ago: the rest at the next showing
            if self._show_timer is None:
                self._show_timer = self.set_timer(wait, self._deferred_flush)
            return
        self._shown_at = time.monotonic()
        for uuid in self._changed:
            if uuid in self.rows and uuid in self.tasks:
                for column, value in self.tasks[uuid].changed_cells():
                    self.update_cell(uuid, column, value)
        self._changed.clear()
        if self._reorder:
            self._place_new()
        elif self._partial:  # a showing with no new task: the rest of the rows now
            self.show_rest()

    def _deferred_flush(self) -> None:
        self._show_timer = None
        self.flush()

    def _place_new(self) -> None:
        """New tasks on top without re-adding the others: `add_row` measures only the new rows, `sort` re-orders
        (by the short id's rank: two tasks sharing 8 hex digits among 200 would only swap places)."""
        new, self._new = self._new, []
        gone = [key for key in self.rows if key.value not in self.tasks]  # pushed out by newer tasks
        if (len(gone) > MAX_REMOVALS or len(new) > SHOW_FIRST
                or (self._partial and self.row_count + len(new) > 2 * SHOW_FIRST)):
            return self._rebuild()
        self._reorder = False
        keep = self._kept()
        for key in gone:
            self.remove_row(key)
        self._add_sorted(uuid for uuid in new if uuid not in self.rows)
        self._keep_cursor_on(keep)
        self._show_count()

    def show_rest(self) -> None:
        """The rows a re-add left out (older tasks), below the ones shown."""
        if not self._partial:
            return
        self._partial = False
        keep = self.selected  # the rows come below: the top row stays the newest
        self._add_sorted(uuid for uuid in self.tasks if uuid not in self.rows)
        self._keep_cursor_on(keep)
        self._show_count()

    def _add_sorted(self, uuids) -> None:
        added = False
        for uuid in list(uuids):
            row = self.tasks.get(uuid)
            if row is not None and row.matches(self.filter_text):
                self.add_row(*row.cells(), key=uuid)
                added = True
        if not added:
            return
        rank = {uuid[:8]: -i for i, uuid in enumerate(self.tasks)}  # the newest, last added, sorts first
        self.sort("id", key=lambda short: rank.get(short.plain, 0))
        # `rows` iterates in insertion order; keep it in the order shown, as after a rebuild (readers rely on it)
        self.rows = dict(sorted(self.rows.items(), key=lambda item: self.get_row_index(item[0])))

    def _rebuild(self) -> None:
        """The table re-added: the newest SHOW_FIRST matching rows now, the others by `show_rest`."""
        self._reorder = False
        self._new.clear()
        keep = self._kept()
        self.clear()
        self._partial = False
        for row in reversed(self.tasks.values()):
            if row.matches(self.filter_text):
                if self.row_count >= SHOW_FIRST:
                    self._partial = True
                    break
                self.add_row(*row.cells(), key=row.uuid)
        self._keep_cursor_on(keep)
        self._show_count()

    def _near_the_end(self) -> bool:
        return self.cursor_row >= self.row_count - 3 or self.scroll_y >= self.max_scroll_y - 1

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if self._partial and new_value > old_value and self._near_the_end():
            self.call_later(self.show_rest)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if self._partial and event.data_table is self and self._near_the_end():
            self.call_later(self.show_rest)

    def _kept(self) -> str | None:
        """The task the cursor stays on through new rows on top; None at the top (cursor on the first row, not
        scrolled), which follows the newest. It used to stay on the first task ever shown, the table scrolling
        down with it: newer tasks went out of sight above, unnoticed while the panel is not focused (its cursor
        is not drawn then)."""
        return None if self.cursor_row == 0 and self.scroll_y == 0 else self.selected

    def _keep_cursor_on(self, uuid: str | None) -> None:
        """None (the top row): the cursor stays on row 0, the newest task after the sort or the re-add."""
        if uuid is not None and uuid in self.rows:
            self.move_cursor(row=self.get_row_index(uuid))

    def _show_count(self) -> None:
        shown = len(self.tasks) if self._partial and not self.filter_text else self.row_count
        set_titles(self, subtitle=f"{shown} of {len(self.tasks)} · filter {self.filter_text!r}" if self.filter_text
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
