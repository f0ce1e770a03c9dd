"""The top line: project, the API's URL (a link where the terminal supports OSC 8), where Redis runs (never
its password), the app's Python, and the SOLO badge."""
from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import Static

from .source import HeaderInfo


class StackHeader(Horizontal):
    """Project name, the API's URL, Redis mode and host:port, the interpreter running the app, and a badge
    while the worker runs `-P solo`."""

    DEFAULT_CSS = """
    StackHeader { height: 1; background: $primary-darken-2; color: $text; }
    StackHeader #title { width: auto; text-style: bold; padding: 0 1; }
    StackHeader #api { width: auto; padding: 0 1; display: none; }
    StackHeader.-api #api { display: block; }
    StackHeader #redis { width: 1fr; padding: 0 1; color: $text-muted; }
    StackHeader #python { width: auto; max-width: 60%; padding: 0 1; color: $text-muted; display: none; }
    StackHeader.-python #python { display: block; }
    StackHeader #solo { width: auto; display: none; background: $warning; color: $background;
                        text-style: bold; padding: 0 1; }
    StackHeader.-solo #solo { display: block; }
    """

    def compose(self) -> ComposeResult:
        yield Static(id="title")
        yield Static(id="api")
        yield Static(id="redis")
        yield Static(id="python")
        yield Static("SOLO: -P solo -c 1, breakpoint() works", id="solo")

    _shown: HeaderInfo | None = None

    def show(self, info: HeaderInfo) -> None:
        if info == self._shown:
            return
        self._shown = info
        # Text, not markup: a project called "[x]" must show as typed.
        self.query_one("#title", Static).update(Text(f"devstack · {info.project}"))
        # A Style link, not [link=...] markup: the URL comes from the config, and a terminal with OSC 8
        # makes it clickable (others show the plain text).
        api = Text("API ")
        api.append(info.api_url, Style(link=info.api_url, underline=True))
        self.query_one("#api", Static).update(api)
        self.set_class(bool(info.api_url), "-api")
        self.query_one("#redis", Static).update(Text(f"Redis {info.redis}"))
        self.query_one("#python", Static).update(Text(f"Python {info.python}"))
        self.set_class(bool(info.python), "-python")
        self.set_class(info.solo, "-solo")
