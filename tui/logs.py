"""The log panes: one `Log` per process plus the interleaved `all` view, fed in batches.

Engine callbacks only append to bounded buffers; `flush()` (on an ~80 ms timer) hands the pane on screen
one `write_lines` call, at most every WRITE_EVERY seconds (a flood's lines wait and go in the next batch).
Lines stay plain text: `Log` never parses markup, so `[red]` is data.
"""
from __future__ import annotations

import re
import time
from collections import deque

from rich.cells import cell_len
from rich.highlighter import Highlighter
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import ContentSwitcher, Input, Log, Static

from .processes import ALL
from .scroll_in_place import ScrollsInPlace
from .style_pass import StyleOncePerPass

BATCH_MAX = 5000
"""Most lines one pane takes per write; bounds the stall a flood can cause (25,000 lines/s at one write per
WRITE_EVERY, what 2,000 per 80 ms flush gave before)."""
WRITE_EVERY = 0.2
"""Seconds between two writes into the pane on screen. Under a flood each write (its size, its scrollbars, the
repaint of the visible lines) came every flush, 12 a second; now the lines are batched for 0.2 s. A line after a
quiet moment is still written at the first flush."""


class SearchHighlighter(Highlighter):
    """Highlights every case-insensitive occurrence of the search term."""

    def __init__(self) -> None:
        self.pattern: re.Pattern | None = None

    def highlight(self, text: Text) -> None:
        if self.pattern is not None:
            text.highlight_regex(self.pattern, "black on yellow")


class ProcessLog(ScrollsInPlace, StyleOncePerPass, Log):
    """A bounded, plain-text log of one process (or of all of them).

    New lines change only the log's virtual (scrollable) size, never its size on screen: the scrollbars are
    updated in place instead of laying out the whole screen (`ScrollsInPlace`; `Log` asks for a layout on
    every write: ~10 ms for each idle log line, several times what a whole frame of the idle screen costs)."""

    DEFAULT_CSS = """
    ProcessLog { height: 1fr; border: none; }
    """

    SIZE_INLINE = 64
    """Batches up to this many lines are measured on the loop; larger ones in `Log`'s thread worker (a
    worker and its call back cost more than measuring a few lines)."""

    def _update_size(self, updates: int, lines: list[str]):
        if len(lines) > self.SIZE_INLINE or not hasattr(self, "_update_maximum_width"):
            return super()._update_size(updates, lines)
        if lines:
            self._update_maximum_width(updates, max(cell_len(self._process_line(line)) for line in lines))

    def _render_line_strip(self, y: int, rich_style):
        """`Log` keeps a cache of rendered lines but (Textual 8.2) stores into it only while text is selected
        (an inverted test), so every repaint ran every visible line through Rich again: with the log
        following, one new line repainted ~44. Stored here when nothing is selected; `Log` already drops
        entries when a line changes, is pruned or cleared, on a style change and on a selection."""
        if self.text_selection is not None:
            return super()._render_line_strip(y, rich_style)
        line = self._render_line_cache.get(y)
        if line is None:
            line = super()._render_line_strip(y, rich_style)
            self._render_line_cache[y] = line
        return line


def pane_id(name: str) -> str:
    return "log-" + re.sub(r"[^A-Za-z0-9_-]", "_", name)


class LogView(Vertical):
    """The log of the selected process, a status line (follow/paused, search) and the search box."""

    DEFAULT_CSS = """
    LogView { height: 1fr; border: round $primary; }
    LogView #panes { height: 1fr; }
    LogView #log-status { height: 1; background: $boost; color: $text-muted; padding: 0 1; }
    LogView #log-status.-paused { color: $warning; text-style: bold; }
    LogView #search { display: none; }
    LogView.-searching #search { display: block; }
    """

    def __init__(self, max_lines: int = 5000, **kwargs) -> None:
        super().__init__(**kwargs)
        self.max_lines = max_lines
        self.pending: dict[str, deque[str]] = {}
        self.pending_all: deque[tuple[str, str]] = deque(maxlen=max_lines)  # formatted only when flushed
        self.highlighter = SearchHighlighter()
        self.term = ""
        self.current = ALL
        self._match: dict[str, int] = {}
        self._status = ""
        self._paused = False
        self._panes: dict[str, ProcessLog] = {}
        self._written_at = float("-inf")
        self._write_timer = None

    def compose(self) -> ComposeResult:
        with ContentSwitcher(initial=pane_id(ALL), id="panes"):
            yield self._make_pane(ALL)
        # Kept: the app's flush may still run while the DOM is torn down (a query would raise).
        self._status_line = Static(id="log-status")
        yield self._status_line
        yield Input(placeholder="search this log (Enter: find, Esc: close; then n / N)", id="search")

    def on_mount(self) -> None:
        self.border_title = "log · all"
        self._update_status()

    def _make_pane(self, name: str) -> ProcessLog:
        pane = ProcessLog(max_lines=self.max_lines, highlight=True, id=pane_id(name))
        pane.highlighter = self.highlighter
        pane.can_focus = True
        return pane

    def pane(self, name: str) -> ProcessLog:
        pane = self._panes.get(name)
        if pane is not None:
            return pane
        found = self.query(f"#{pane_id(name)}")
        if found:
            pane = self._panes[name] = found.first(ProcessLog)
            return pane
        pane = self._panes[name] = self._make_pane(name)
        pane.display = name == self.current  # ContentSwitcher hides only the children it had at mount
        self.query_one("#panes", ContentSwitcher).mount(pane)
        return pane

    # ----- feeding ---------------------------------------------------------------------------------
    def feed(self, service: str, text: str) -> None:
        """Cheap: called from the engine's event callback for every line (two appends, no formatting)."""
        buf = self.pending.get(service)
        if buf is None:
            buf = self.pending[service] = deque(maxlen=self.max_lines)
        buf.append(text)
        self.pending_all.append((service, text))

    def flush(self, limit: int = BATCH_MAX, *, now: bool = False) -> None:
        """Move buffered lines into the pane on screen only. A hidden pane's lines wait in its bounded
        buffer (the same last `max_lines` it would keep) and are written when it is selected: in a flood,
        writing every hidden pane each flush is most of the flush's cost. Written at most every WRITE_EVERY
        seconds (`now`: at once, as when a pane is selected); a write due later is made by a timer."""
        if not now:
            if self._write_timer is not None:  # the next write is already due
                return
            wait = self._written_at + WRITE_EVERY - time.monotonic()
            if wait > 0:
                if self._waiting():
                    self._write_timer = self.set_timer(wait, self._deferred_flush)
                else:
                    self._idle_status()
                return
        name = self.current
        if name == ALL:
            buf_all = self.pending_all
            if not buf_all:
                return self._idle_status()
            popleft = buf_all.popleft
            batch = []
            for _ in range(min(len(buf_all), limit)):
                service, text = popleft()
                batch.append(f"{service:<7}│ {text}")
            self.pane(ALL).write_lines(batch)
        else:
            buf = self.pending.get(name)
            if not buf:
                return self._idle_status()
            popleft = buf.popleft
            self.pane(name).write_lines([popleft() for _ in range(min(len(buf), limit))])
        self._written_at = time.monotonic()
        self._update_status()
        if self._waiting() and self._write_timer is None:  # more than one write takes: the rest next time
            self._write_timer = self.set_timer(WRITE_EVERY, self._deferred_flush)

    def _deferred_flush(self) -> None:
        self._write_timer = None
        if self.is_attached:
            self.flush()

    def _waiting(self) -> bool:
        return bool(self.pending_all if self.current == ALL else self.pending.get(self.current))

    @property
    def backlog(self) -> bool:
        """Lines for the pane on screen are waiting and no write of them is scheduled yet."""
        return self._write_timer is None and self._waiting()

    def lines(self, name: str) -> list[str]:
        """Every line a pane holds, written or still buffered (for tests and tools)."""
        written = list(self.pane(name).lines)
        if name == ALL:
            return written + [f"{service:<7}│ {text}" for service, text in self.pending_all]
        return written + list(self.pending.get(name, ()))

    # ----- selection, follow, clear --------------------------------------------------------------
    def select(self, name: str) -> None:
        self.current = name  # first: a pane created now is mounted visible
        pane = self.pane(name)
        following = pane.line_count == 0 or pane.is_vertical_scroll_end
        self.query_one("#panes", ContentSwitcher).current = pane_id(name)
        self.border_title = f"log · {name}"
        self.flush(self.max_lines, now=True)  # what it buffered while hidden, at once (bounded by max_lines)
        if following:  # the backlog lands while the pane has no size yet: end up at its bottom
            pane.scroll_end(animate=False)
            self.call_after_refresh(pane.scroll_end, animate=False)

    @property
    def active(self) -> ProcessLog:
        return self.pane(self.current)

    def follow(self) -> None:
        self.active.scroll_end(animate=False)
        self._update_status(paused=False)

    def clear(self) -> None:
        self.active.clear()
        self._match.pop(self.current, None)

    def _idle_status(self) -> None:
        """Nothing new: refresh the status line only if the reader scrolled into or out of 'paused'."""
        log = self.active
        if (log.max_scroll_y > 0 and not log.is_vertical_scroll_end) != self._paused:
            self._update_status()

    def _update_status(self, paused: bool | None = None) -> None:
        log = self.active
        if paused is None:
            paused = log.max_scroll_y > 0 and not log.is_vertical_scroll_end
        self._paused = paused
        words = ["PAUSED (scrolled up) · End or f resumes" if paused else "following"]
        words.append(f"{log.line_count} lines")
        if self.term:
            words.append(f"search: {self.term!r} · n next · N previous")
        status = " · ".join(words)
        if status != self._status:
            self._status = status
            widget = self._status_line
            widget.update(Text(status), layout=False)  # one line, its size fixed by CSS
            widget.set_class(paused, "-paused")

    # ----- search ------------------------------------------------------------------------------------
    def open_search(self) -> None:
        self.add_class("-searching")
        search = self.query_one("#search", Input)
        search.value = self.term
        search.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "search":
            return
        event.stop()
        self.set_term(event.value)
        self.remove_class("-searching")
        self.active.focus()
        if self.term:
            self.find(+1)

    def set_term(self, term: str) -> None:
        self.term = term.strip()
        self.highlighter.pattern = re.compile(re.escape(self.term), re.IGNORECASE) if self.term else None
        for pane in self.query(ProcessLog):
            pane._render_line_cache.clear()  # cached strips were rendered without the highlight
            pane.refresh()
        self._match.clear()
        self._update_status()

    def close_search(self) -> None:
        self.remove_class("-searching")
        self.active.focus()

    def find(self, direction: int) -> bool:
        """Scroll to the next (+1) or previous (-1) line containing the term; pauses following."""
        if not self.term:
            return False
        log = self.active
        lines = log.lines
        needle = self.term.lower()
        start = self._match.get(self.current, len(lines) if direction < 0 else -1)
        order = range(start + 1, len(lines)) if direction > 0 else range(min(start, len(lines)) - 1, -1, -1)
        for i in order:
            if needle in lines[i].lower():
                self._match[self.current] = i
                log.scroll_to(y=max(0, i - log.size.height // 2), animate=False)
                self._update_status()
                return True
        self.app.notify(f"no more matches for {self.term!r}", timeout=2, markup=False)
        return False
