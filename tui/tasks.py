"""The live task feed from Celery events: newest first, bounded."""
from __future__ import annotations

import time
from collections import deque

from rich.text import Text
from textual.widgets import Static

from devstack.api import TaskEvent

MAX_EVENTS = 200
KIND_STYLE = {"received": "dim", "started": "cyan", "succeeded": "green", "failed": "bold red",
              "retried": "yellow", "revoked": "magenta", "rejected": "red"}


def event_text(event: TaskEvent) -> Text:
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append(time.strftime("%H:%M:%S", time.localtime(event.timestamp)) + " ", style="dim")
    text.append(f"{event.kind:<9} ", style=KIND_STYLE.get(event.kind, ""))
    text.append(f"{event.name or '?'} ")
    text.append(f"{(event.uuid or '')[:8]} ", style="dim")
    if event.kind == "succeeded" and event.runtime is not None:
        text.append(f"in {event.runtime * 1000:.0f} ms", style="green")
    elif event.exception:
        text.append(event.exception, style="red")
    return text


class TaskFeed(Static):
    DEFAULT_CSS = """
    TaskFeed { height: 10; border: round $primary; padding: 0 1; overflow: hidden; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(Text("no task events yet (the worker sends them with -E)", style="dim"), **kwargs)
        self.events: deque[TaskEvent] = deque(maxlen=MAX_EVENTS)
        self._dirty = False

    def on_mount(self) -> None:
        self.border_title = "tasks"

    def add(self, event: TaskEvent) -> None:
        """Cheap: called for every event; the screen refreshes on `flush()`."""
        self.events.appendleft(event)
        self._dirty = True

    def flush(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        lines = list(self.events)[: max(self.size.height, 20)]
        self.update(Text("\n").join(event_text(e) for e in lines), layout=False)  # its height is fixed by CSS
