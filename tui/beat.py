"""The beat screen (`b` on the tasks panel): each entry of beat's schedule with its task, schedule in
words, last and next run; Enter sends the selected entry's task now. Data from `Source.beat()`."""
from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from devstack.api import when_words

COLUMNS = ("entry", "task", "schedule", "last run", "next run", "runs", "queue")
RELOAD_AFTER_DUE = 2.0
"""Seconds after an entry was due that the schedule is read again (beat has then saved the new run)."""
MIN_RELOAD_SECONDS = 10.0
"""Reading the schedule starts the app's interpreter: never more often than this by itself."""


class BeatScreen(Screen):
    CSS_PATH = "beat.tcss"
    BINDINGS = [("escape", "app.pop_screen", "Back"), ("enter", "run_now", "Run now"), ("g", "reload", "Reload")]

    def __init__(self, source) -> None:
        super().__init__()
        self.source = source
        self.schedule: dict | None = None
        self._loaded_at = 0.0
        self._loading = False

    def compose(self) -> ComposeResult:
        yield Static(Text("beat · loading the schedule…"), id="beat-title")
        yield DataTable(id="beat-table", cursor_type="row", zebra_stripes=False)
        yield Static(id="beat-note")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        table.focus()
        self.action_reload()
        self.set_interval(1.0, self._tick)

    def action_reload(self) -> None:
        self._loading = True
        self._fetch(self.source.beat, self._show)

    @work(thread=True, exclusive=True, group="beat")
    def _fetch(self, call, then) -> None:
        try:
            result = call()
        except Exception as exc:  # DevstackError (no beat, the app does not import) or Redis gone: say so
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(then, result)

    def _failed(self, message: str) -> None:
        self._loading = False
        self.query_one("#beat-title", Static).update(Text("beat · cannot read the schedule"))
        self.query_one("#beat-note", Static).update(Text(message, style="red"))

    def _show(self, schedule: dict) -> None:
        self.schedule, self._loaded_at, self._loading = schedule, self.source.now(), False
        table = self.query_one(DataTable)
        keep = table.cursor_row
        table.clear()
        now = self.source.now()
        for entry in schedule["entries"]:
            table.add_row(*self._cells(entry, now), key=entry["name"])
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))
        self.query_one("#beat-title", Static).update(Text(
            f"beat · {len(schedule['entries'])} entr{'y' if len(schedule['entries']) == 1 else 'ies'} · "
            "Enter run now · g reload · Esc back"))
        note = f"schedule file {schedule['file']}: {schedule['file_error']}" if schedule.get("file_error") else ""
        self.query_one("#beat-note", Static).update(Text(note))

    def _cells(self, entry: dict, now: float) -> tuple:
        return (Text(entry["name"], style="bold"), Text(entry["task"]), Text(entry["every"]),
                Text(when_words(entry["last_run"], now), style="dim"), Text(when_words(entry["next_run"], now)),
                Text(str(entry["total_run_count"])), Text(entry.get("queue") or "?"))

    def _tick(self) -> None:
        """The "in N s" move every second; once an entry has become due, the schedule is read again."""
        if self.schedule is None:
            return
        now = self.source.now()
        table = self.query_one(DataTable)
        for entry in self.schedule["entries"]:
            if entry["name"] in table.rows:
                # update_width: "in 9 s" becomes "in 42 min 59 s"; a column sized for the first text cuts it
                table.update_cell(entry["name"], "next run", Text(when_words(entry["next_run"], now)),
                                  update_width=True)
                table.update_cell(entry["name"], "last run", Text(when_words(entry["last_run"], now), style="dim"),
                                  update_width=True)
        due = any(e["next_run"] is not None and now - e["next_run"] > RELOAD_AFTER_DUE
                  for e in self.schedule["entries"])
        if due and not self._loading and now - self._loaded_at > MIN_RELOAD_SECONDS:
            self.action_reload()

    @property
    def selected(self) -> str | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        return str(table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_run_now()

    def action_run_now(self) -> None:
        name = self.selected
        if name is None:
            return

        def sent(answer: dict) -> None:
            self.app.notify(f"{name}: sent as {answer.get('id')} to {answer.get('queue')}", title="beat run now")
        self._fetch(lambda: self.source.beat_run(name), sent)
