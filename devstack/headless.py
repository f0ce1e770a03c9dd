"""The headless front-end (`devstack up --no-tui`): every line prefixed with time and service name.

Writes are buffered and flushed once per event-loop turn, so a flooding child costs one write
syscall per batch instead of one per line.
"""
from __future__ import annotations

import asyncio
import os
import sys
import time

from .events import Event, LogLine, Notice, State, StateChanged

COLOURS = ["36", "33", "32", "35", "34", "96", "93", "92", "95", "94"]
FIXED = {"devstack": "1;37", "redis": "31"}


class HeadlessPrinter:
    def __init__(self, stream=None, colour: bool | None = None, width: int = 8):
        self.stream = stream or sys.stdout
        if colour is None:
            colour = self.stream.isatty() and "NO_COLOR" not in os.environ
        self.colour = colour
        self.width = width
        self._buffer: list[str] = []
        self._scheduled = False
        self._colours: dict[str, str] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, LogLine):
            self._add(event.time, event.service, event.text)
        elif isinstance(event, StateChanged):
            text = _state_text(event)
            if text:
                self._add(time.time(), "devstack", text)
        elif isinstance(event, Notice):
            prefix = {"warning": "warning: ", "error": "error: "}.get(event.level, "")
            self._add(event.time, "devstack", prefix + event.text)

    def _add(self, when: float, name: str, text: str) -> None:
        stamp = time.strftime("%H:%M:%S", time.localtime(when))
        label = name.ljust(self.width)
        if self.colour:
            code = FIXED.get(name) or self._colours.setdefault(name, COLOURS[len(self._colours) % len(COLOURS)])
            label = f"\x1b[{code}m{label} |\x1b[0m"
        else:
            label += " |"
        self._buffer.append(f"{stamp} {label} {text}\n")
        if not self._scheduled:
            self._scheduled = True
            try:
                asyncio.get_running_loop().call_soon(self.flush)
            except RuntimeError:
                self.flush()

    def flush(self) -> None:
        self._scheduled = False
        if self._buffer:
            data, self._buffer = "".join(self._buffer), []
            try:
                self.stream.write(data)
                self.stream.flush()
            except (BrokenPipeError, ValueError):
                pass


def _state_text(event: StateChanged) -> str:
    name = event.service
    if event.state == State.STARTING:
        return f"{name} starting" + (f" (pid {event.pid})" if event.pid else "")
    if event.state == State.READY:
        return f"{name} ready" + (f" — {event.detail}" if event.detail else "")
    if event.state == State.STOPPED:
        return f"{name} stopped" + (f" ({event.detail})" if event.detail else "")
    if event.state == State.CRASHED:
        return f"{name} crashed: {event.detail}"
    if event.state == State.STOPPING:
        return f"{name} stopping"
    if event.state == State.DRAINING:
        return f"{name} draining: {event.detail}"
    return ""  # BACKOFF is announced by the supervisor's own notice
