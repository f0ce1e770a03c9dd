"""Shown after `q`: the stack stopping, service by service; a second `q` stops waiting."""
from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Static

from ..processes import STATE_STYLE


class StoppingScreen(ModalScreen):
    DEFAULT_CSS = """
    StoppingScreen { align: center middle; }
    StoppingScreen > Vertical { width: 64; height: auto; border: thick $warning; background: $surface; padding: 1 2; }
    """

    def __init__(self) -> None:
        super().__init__()
        self._text = Text("The worker finishes its running tasks first. Press q again to stop waiting.\n")

    def compose(self) -> ComposeResult:
        with Vertical() as box:
            box.border_title = "stopping the stack"
            yield Static(self._text, id="progress")

    def show(self, rows) -> None:
        """Called as states change, from the moment the screen is pushed: before it is composed (a signal
        can push it and report states in the same turn) the text is kept for compose."""
        text = Text("The worker finishes its running tasks first. Press q again to stop waiting.\n\n")
        for row in rows:
            text.append(f"  {row.name:<10}")
            text.append(row.state.value + "\n", style=STATE_STYLE.get(row.state, ""))
        self._text = text
        for progress in self.query("#progress").results(Static):
            progress.update(text)
