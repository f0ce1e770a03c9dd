"""`?`: every key of the TUI in one table."""
from __future__ import annotations

from rich.table import Table
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS: list[tuple[str, str]] = [
    ("w", "restart the worker (from anywhere)"),
    ("s", "toggle the solo pool (-P solo -c 1, breakpoint() works) and back"),
    ("r", "restart the selected process"),
    ("R", "restart every process (Redis stays up)"),
    ("x", "stop / start the selected process"),
    ("D", "run the selected worker or api under debugpy for an IDE (again: back to normal)"),
    ("↑ ↓ / click", "select a process (its log shows) or a queue"),
    ("tab", "move between the process list, the log, the queues and the tasks"),
    ("/", "search the log; Enter finds"),
    ("n / N", "next / previous match"),
    ("f / End", "follow the log again (scrolling up pauses it)"),
    ("c", "clear the shown log pane (the log file keeps everything)"),
    ("Enter", "on a queue: show its messages; on a task: its detail (where it is, args, traceback)"),
    ("/ (tasks)", "on the tasks panel: filter by a part of the name or a state (failed, started…)"),
    ("b (tasks)", "on the tasks panel: beat's schedule (last and next runs); Enter there sends an entry now"),
    ("R K T (task)", "in a task's detail: replay it, revoke it, terminate it (SIGTERM, then SIGKILL: asks twice)"),
    ("p", "purge the selected queue, or on a queue's messages the queue shown (asks first)"),
    ("u", "requeue what a killed worker left in unacked"),
    ("d", "open the waiting celery.contrib.rdb session here (offered when a task calls rdb.set_trace())"),
    ("F", "sentinel topology: fail over to the replica (devstack failover); says the new master and how long"),
    ("Esc", "close a screen, the search box or the pdb line; in a remote debugger: hang up"),
    ("ctrl+p", "command palette (the same actions)"),
    ("?", "this help"),
    ("q", "quit: stop the whole stack (a second q does not wait)"),
]


class HelpScreen(ModalScreen):
    BINDINGS = [("escape", "dismiss", "Close"), ("question_mark", "dismiss", "Close"), ("q", "quit", "Quit")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > Vertical { width: 80; height: auto; border: thick $primary; background: $surface; padding: 1 2; }
    """

    def action_quit(self) -> None:
        """`q` means quit everywhere: close the help, then the same orderly stop as on the main screen."""
        self.dismiss()
        self.app.call_later(self.app.run_action, "quit_stack")

    def compose(self) -> ComposeResult:
        table = Table(show_header=False, box=None, padding=(0, 2))
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for key, what in KEYS:
            table.add_row(key, what)
        with Vertical() as box:
            box.border_title = "devstack keys · Esc closes · q quits"
            yield Static(table)
