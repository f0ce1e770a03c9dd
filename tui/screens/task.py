"""One task in detail (where it is, args, timestamps, result or traceback) and what to do with it:
replay, revoke, terminate. Also the tasks panel's filter prompt."""
from __future__ import annotations

import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, Input, Static

from .confirm import ConfirmScreen

FIELDS = (("name", "task"), ("id", "id"), ("state", "state"), ("queue", "queue"), ("hostname", "worker"),
          ("pid", "process"), ("args", "args"), ("kwargs", "kwargs"), ("eta", "eta"), ("retries", "retries"),
          ("runtime", "runtime"), ("replay_of", "replay of"), ("result", "result"), ("exception", "exception"))


def detail_text(task: dict) -> Text:
    """The detail as text: reprs only, as the queue browser shows them (nothing is ever unpickled)."""
    text = Text()
    where, detail = str(task.get("where", "?")), str((task.get("where_detail") or {}).get("detail", ""))
    text.append(f"{where}: ", style="bold")
    text.append((detail[len(where) + 1:].lstrip() if detail.startswith(f"{where}:") else detail) + "\n\n")
    for key, label in FIELDS:
        value = task.get(key)
        if key == "runtime" and isinstance(value, (int, float)):
            value = f"{value * 1000:.0f} ms"
        if value not in (None, ""):
            text.append(f"{label:>10}  ", style="dim")
            text.append(f"{value}\n", style="red" if key == "exception" else "")
    stamps = sorted((at, name) for name, at in (task.get("times") or {}).items() if isinstance(at, (int, float)))
    if stamps:
        text.append(f"{'timeline':>10}  ", style="dim")
        text.append("  ".join(f"{name} {time.strftime('%H:%M:%S', time.localtime(at))}" for at, name in stamps))
        text.append("\n")
    if task.get("traceback"):
        text.append("\n")
        text.append(str(task["traceback"]), style="red")
    if task.get("log"):
        text.append("\n\nworker log\n", style="bold")
        text.append("\n".join(task["log"]), style="dim")  # plain text: a `[red]` in a log line is data
    return text


class TaskScreen(Screen):
    BINDINGS = [("escape", "app.pop_screen", "Back"), ("g", "reload", "Reload"), ("R", "replay", "Replay"),
                ("K", "revoke", "Revoke"), ("T", "terminate", "Terminate")]
    DEFAULT_CSS = """
    TaskScreen #title { height: 1; background: $primary-darken-2; padding: 0 1; text-style: bold; }
    TaskScreen VerticalScroll { height: 1fr; padding: 0 1; }
    """

    def __init__(self, source, task_id: str) -> None:
        super().__init__()
        self.source, self.task_id = source, task_id
        self.detail: dict | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text(f"task {self.task_id} · loading…"), id="title")
        with VerticalScroll():
            yield Static(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        self.action_reload()

    def action_reload(self) -> None:
        self._run(lambda: self.source.task(self.task_id), self._show)

    @work(thread=True, exclusive=True, group="task")
    def _run(self, call, then) -> None:
        try:
            result = call()
        except Exception as exc:  # DevstackError (unknown id, history not open) or Redis gone: say so
            self.app.call_from_thread(self.app.notify, f"task {self.task_id[:8]}: {exc}", severity="error")
            return
        self.app.call_from_thread(then, result)

    def _show(self, task: dict) -> None:
        self.detail = task
        self.query_one("#detail", Static).update(detail_text(task))
        self.query_one("#title", Static).update(Text(
            f"task {task.get('name') or '?'} {self.task_id[:8]} · {task.get('where', '?')} · "
            "Esc back · g reload · R replay · K revoke · T terminate"))

    def action_replay(self) -> None:
        def replayed(answer: dict) -> None:
            self.app.notify(f"replayed as {answer.get('id')}", title="replay")
        self._run(lambda: self.source.replay(self.task_id), replayed)

    def action_revoke(self) -> None:
        self._confirm(f"Revoke task {self.task_id}? A queued or reserved task will not run.", "Revoke",
                      terminate=False, signal="TERM")

    def action_terminate(self) -> None:
        def second(yes: bool | None) -> None:
            if yes:  # SIGTERM first; SIGKILL only after a second, explicit answer
                self._confirm(f"Also kill it (SIGKILL) if SIGTERM is not enough? {self.task_id}", "SIGKILL",
                              terminate=True, signal="KILL")
        self._confirm(f"Terminate task {self.task_id} (SIGTERM to its pool process)?", "Terminate",
                      terminate=True, signal="TERM", then=second)

    def _confirm(self, question: str, yes: str, *, terminate: bool, signal: str, then=None) -> None:
        def answered(ok: bool | None) -> None:
            if ok:
                self._run(lambda: self.source.revoke(self.task_id, terminate, signal),
                          lambda answer: self._revoked(answer, signal if terminate else None))
            if then is not None:
                then(ok)
        self.app.push_screen(ConfirmScreen(question, yes=yes), answered)

    def _revoked(self, answer: dict, signal: str | None) -> None:
        what = f"terminated with SIG{signal}" if signal else "revoked"
        self.app.notify(f"task {self.task_id[:8]} {what}", title="revoke")
        self.action_reload()


class FilterScreen(ModalScreen[str]):
    """Filter the tasks panel by a part of the task name, or a state (`failed`); empty shows all."""

    BINDINGS = [("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    FilterScreen { align: center bottom; }
    FilterScreen > Vertical { width: 60; height: auto; background: $surface; border: round $primary; }
    """

    def __init__(self, current: str = "") -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Input(self.current, placeholder="task name part, or a state (failed, started…)", id="filter")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(self.current)
