"""A panel's border title and subtitle, set only when they change: Textual repaints a widget on every
assignment, same value or not (the details panel, shown every second, was drawn in every frame: 51 ms a minute
of an idle TUI)."""
from __future__ import annotations

from textual.widget import Widget


def set_titles(widget: Widget, title: str | None = None, subtitle: str | None = None) -> None:
    """Plain-text titles (None: leave it). A title with markup characters reads back escaped, so it is assigned
    again each time: a repaint, never a wrong title."""
    if title is not None and widget.border_title != title:
        widget.border_title = title
    if subtitle is not None and widget.border_subtitle != subtitle:
        widget.border_subtitle = subtitle
