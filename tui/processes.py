"""The process list: one row per service with its state, pid, uptime, restarts and tree CPU/memory."""
from __future__ import annotations

import time

from rich.text import Text
from textual.binding import Binding
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

from devstack.events import State

from .source import ServiceRow, Usage
from .style_pass import StyleOncePerPass

ALL = "all"
"""Row key of the pseudo-row that selects the interleaved log of every process."""

STATE_STYLE = {
    State.STARTING: "yellow", State.READY: "bold green", State.STOPPING: "magenta",
    State.STOPPED: "dim", State.CRASHED: "bold red", State.BACKOFF: "red", State.DRAINING: "cyan",
    State.FAILED: "bold red", State.BLOCKED: "yellow",
}
COLUMNS = ("service", "state", "pid", "uptime", "restarts", "cpu", "mem")


def human_bytes(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "K", "M", "G"):
        if n < 1024 or unit == "G":
            return f"{n:.0f}{unit}" if unit == "B" or n >= 100 else f"{n:.1f}{unit}"  # 163M: the column is narrow
        n /= 1024
    return "-"


def human_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:  # minutes only: a cell changing every second re-renders its table every second (idle CPU)
        return f"{s // 60}m"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def state_text(row: ServiceRow, now: float) -> Text:
    word = row.state.value + (f" debug :{row.debug}" if row.debug else "")
    if row.state == State.BACKOFF and row.backoff_until:
        word = f"backoff {max(0, row.backoff_until - now):.0f}s"
    return Text(word, style=STATE_STYLE.get(row.state, ""))


class CellUpdates(StyleOncePerPass, DataTable):
    """A DataTable whose `update_cell` renders again only the cell it changed.

    Textual's `update_cell` bumps the table's update counter, which is part of every render cache key:
    one changed cell re-renders every cell of the table (~6 ms for the process list, every second while
    uptimes count seconds, every few seconds for CPU and memory). Here only the changed cell's render and
    its row's renderables and lines are dropped, and only that row is refreshed. A cell that needs a wider
    column still goes through Textual's `update_cell`, as does everything if the caches are not the ones
    this was written against (Textual 8.2)."""

    _IN_PLACE_CACHES = ("_data", "_row_locations", "_cell_render_cache", "_row_render_cache",
                        "_row_renderable_cache", "_line_cache")

    def update_cell(self, row_key, column_key, value, *, update_width: bool = False) -> None:
        if update_width or not all(hasattr(self, name) for name in self._IN_PLACE_CACHES):
            return super().update_cell(row_key, column_key, value, update_width=update_width)
        row_key = RowKey(row_key) if isinstance(row_key, str) else row_key
        column_key = ColumnKey(column_key) if isinstance(column_key, str) else column_key
        if row_key not in self._row_locations or column_key not in self._column_locations:
            return super().update_cell(row_key, column_key, value)  # raises CellDoesNotExist
        self._data[row_key][column_key] = value
        row_index = self._row_locations.get(row_key)
        # Keys start with (row key, column key) for cells, with the row key for rows.
        for key in [key for key in self._cell_render_cache.keys() if key[0] == row_key and key[1] == column_key]:
            self._cell_render_cache.discard(key)
        for key in [key for key in self._row_render_cache.keys() if key[0] == row_key]:
            self._row_render_cache.discard(key)
        for key in [key for key in self._row_renderable_cache.keys() if key[1] == row_index]:
            self._row_renderable_cache.discard(key)
        self._line_cache.clear()  # lines are joined from the row cache: cheap to rebuild
        self.refresh_row(row_index)


class ProcessTable(CellUpdates):
    """Cursor on a row = that process's log is shown; the `all` row interleaves every process."""

    DEFAULT_CSS = """
    ProcessTable { height: auto; max-height: 18; }  /* a sentinel or cluster topology lists up to 11 services */
    """
    BINDINGS = [Binding("D", "debug", "Debug", show=False, tooltip="Run the selected worker or api under debugpy (again: off)")]
    _debugging: frozenset[str] = frozenset()

    on_select = None
    """Called with the selected row's key whenever the cursor moves (keys or mouse): directly from the
    cursor's watcher, not through a bubbling RowHighlighted message, so the log pane switches within the
    same event-loop turn as the key press even while a flood keeps the loop busy."""

    def watch_cursor_coordinate(self, old, new) -> None:
        super().watch_cursor_coordinate(old, new)
        if self.on_select is not None and self.row_count:
            self.on_select(self.selected)

    def on_mount(self) -> None:
        self.cursor_type = "row"
        for column in COLUMNS:
            self.add_column(column, key=column)
        self.add_row(Text("all", style="italic"), *([""] * (len(COLUMNS) - 1)), key=ALL)

    @property
    def selected(self) -> str:
        if self.row_count == 0:
            return ALL
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return str(key.value)

    def action_debug(self) -> None:
        """`devstack debug NAME [off]` for the selected row."""
        name = self.selected
        if name not in ("worker", "api"):
            self.app.notify("D runs the worker or the api under debugpy: select one of them", severity="warning")
            return
        self.app.run_worker(self._debug(name, name not in self._debugging), group="debug")

    async def _debug(self, name: str, on: bool) -> None:
        try:
            port = (await self.app.source.set_debug(name, on)).get("debug")
        except Exception as exc:  # DevstackError: debugpy missing in the app's Python (with the pip command)
            self.app.notify(str(exc), title=f"debug {name}", severity="error", timeout=15, markup=False)
            return
        self.app.notify(f"{name} under debugpy on 127.0.0.1:{port}; `devstack debug {name}` prints the VS Code "
                        "launch.json" if port else f"{name} runs without the debugger", title="debug", markup=False)

    _shown: dict[str, tuple[str, ...]] | None = None

    def show(self, rows: list[ServiceRow], usage: dict[str, Usage], now: float | None = None) -> None:
        """Update in place by row key (keeps the cursor; cheaper than clearing). Called every second: a row
        whose text is what it shows already costs a tuple comparison."""
        self._debugging = frozenset(row.name for row in rows if row.debug)
        now = time.time() if now is None else now
        if self._shown is None:
            self._shown = {}
        selected = self.selected
        for row in rows:
            use = usage.get(row.name)
            state = state_text(row, now)
            if row.name == selected and self.tooltip != row.last_error:
                self.tooltip = row.last_error  # why the selected process last crashed, on hover
            # held: stopped by a command, reloads leave it stopped (the state cell keeps the bare state)
            name = f"{row.name} (held)" if row.held and row.state == State.STOPPED else row.name
            plain = (name, state.plain, str(row.pid) if row.pid else "-", human_duration(row.uptime),
                     str(row.restarts), f"{use.cpu:.0f}%" if use and row.pid else "-",
                     (human_bytes(use.rss) if use and row.pid else "-") + (f"+{human_bytes(sp.rss)}" if (sp := usage.get(f"{row.name} spare")) else ""))  # +its warm spare's
            if self._shown.get(row.name) == plain:
                continue
            self._shown[row.name] = plain
            cells = dict(zip(COLUMNS, plain))
            cells["service"], cells["state"] = Text(name), state
            if row.name not in self.rows:
                self.add_row(*cells.values(), key=row.name)
                continue
            for column, value in cells.items():
                old = self.get_cell(row.name, column)
                if old != value:
                    # Widening re-lays out the screen: only when the new text is wider (idle CPU).
                    self.update_cell(row.name, column, value, update_width=len(str(value)) > len(str(old)))
