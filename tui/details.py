"""The lower-left panel on a tall terminal: the selected process in full (command line, pool, last error), or
for `all`, where the stack's things are (the API's URL, Redis, the app's Python)."""
from __future__ import annotations

import shlex

from rich.style import Style
from rich.text import Text
from textual.widgets import Static

from .source import HeaderInfo, ServiceRow
from .titles import set_titles

MIN_SCREEN_HEIGHT = 40
"""Rows the terminal needs before the panel shows: below that the left column has no free space."""


class ProcessDetails(Static):
    """What the process list has no room for. Shown only when the terminal is tall enough
    (see `fits`); the app calls `show` with the selection and each second's rows."""

    DEFAULT_CSS = """
    ProcessDetails { height: auto; max-height: 16; border: round $primary; padding: 0 1; color: $text-muted; }
    """

    _shown: Text | None = None

    @staticmethod
    def fits(screen_height: int) -> bool:
        return screen_height >= MIN_SCREEN_HEIGHT

    def show(self, selected: str, rows: list[ServiceRow], header: HeaderInfo) -> None:
        """Called every second: the row's uptime and usage change, what the panel shows mostly does not. The
        screen is laid out only when the panel's height changes (its height is `auto`): a `Static.update`
        lays out the whole screen, 20-30 ms at 160x48, once a second while a process was selected."""
        row = next((r for r in rows if r.name == selected), None)
        set_titles(self, f"details · {selected}" if row else "where things are")
        # Text, not markup: commands and errors are the user's and may contain "[...]".
        text = _row_text(row) if row else _stack_text(header)
        if text == self._shown:
            return
        before, after = (self._height(self._shown) if self._shown is not None else None), self._height(text)
        layout = before is None or after is None or before != after
        self._shown = text
        self.update(text, layout=layout)

    def _height(self, text: Text) -> int | None:
        """Lines `text` takes at the panel's width (None before the first layout: unknown)."""
        width = self.content_region.width
        return len(text.wrap(self.app.console, width)) if width > 0 else None


def _row_text(row: ServiceRow) -> Text:
    text = Text()
    if row.detail:
        text.append(f"pool {row.detail}\n")
    if row.command:
        text.append("command ", style="bold")
        text.append(shlex.join(row.command) + "\n")
    if row.last_error:
        text.append("last error ", style="bold red")
        text.append(row.last_error + "\n")
    text.append(f"devstack logs {row.name}", style="italic")
    return text


def _stack_text(header: HeaderInfo) -> Text:
    text = Text()
    if header.api_url:
        text.append("API ", style="bold")
        text.append(header.api_url + "\n", Style(link=header.api_url))
    text.append("Redis ", style="bold")
    text.append(f"{header.redis}\n")
    if header.python:
        text.append("Python ", style="bold")
        text.append(f"{header.python}\n")
    text.append("devstack status · devstack env · ? for keys", style="italic")
    return text

