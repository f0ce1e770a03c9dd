"""The messages of one queue, decoded (task, id, args/kwargs reprs, ETA, priority, retries)."""
from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from .purge import confirm_purge

COLUMNS = ("state", "task", "id", "args", "kwargs", "eta", "priority", "retries")


class QueueMessagesScreen(Screen):
    BINDINGS = [("escape", "app.pop_screen", "Back"), ("g", "reload", "Reload"), ("p", "purge", "Purge this queue")]
    DEFAULT_CSS = """
    QueueMessagesScreen #title { height: 1; background: $primary-darken-2; padding: 0 1; text-style: bold; }
    QueueMessagesScreen DataTable { height: 1fr; }
    """

    def __init__(self, source, queue: str) -> None:
        super().__init__()
        self.source, self.queue = source, queue
        self.shown: list = []

    def compose(self) -> ComposeResult:
        yield Static(Text(f"queue {self.queue} · loading…"), id="title")
        yield DataTable(id="messages", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in COLUMNS:
            table.add_column(column, key=column)
        self.action_reload()

    def action_reload(self) -> None:
        self._load()

    @work(thread=True, exclusive=True)
    def _load(self) -> None:
        try:
            messages = self.source.messages(self.queue)
        except Exception as exc:  # Redis went away: say so instead of crashing the screen
            self.app.call_from_thread(self._show_error, str(exc))
            return
        self.app.call_from_thread(self._show, messages)

    def _show_error(self, error: str) -> None:
        self.query_one("#title", Static).update(Text(f"queue {self.queue} · cannot read it: {error}"))

    def action_purge(self) -> None:
        ready = sum(1 for m in self.shown if m.state == "ready")
        confirm_purge(self.app, self.source, self.queue, ready, len(self.shown) - ready, after=self.action_reload)

    def _show(self, messages) -> None:
        self.shown = list(messages)
        table = self.query_one(DataTable)
        table.clear()
        for m in messages:
            table.add_row(m.state, m.task or "?", m.id or "?", Text(m.args), Text(m.kwargs), m.eta or "-",
                          "-" if m.priority is None else str(m.priority),
                          "-" if m.retries is None else str(m.retries))
        self.query_one("#title", Static).update(
            Text(f"queue {self.queue} · {len(messages)} message(s) · Esc back · g reload · p purge"))
