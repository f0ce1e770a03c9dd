"""A `celery.contrib.rdb` session inside devstack: connect to the debugger's TCP port, show what it
prints, send what the person types. Closes when the debugger hangs up (after `c`, `q` or the task ending).
"""
from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input, Log, Static

RDB_READY = re.compile(r"Remote Debugger:(\d+): Ready to connect: telnet ([\d.]+) (\d+)")
RDB_ENDED = re.compile(r"Remote Debugger:(\d+): Session with \S+ ended")
CONNECT_TIMEOUT = 5.0


@dataclass(frozen=True)
class RdbOffer:
    """A remote debugger waiting for its one client, as announced in a process's log."""

    service: str
    host: str
    port: int


def parse_rdb(service: str, text: str) -> RdbOffer | None:
    match = RDB_READY.search(text)
    if match is None:
        return None
    return RdbOffer(service, match.group(2), int(match.group(3)))


class RdbScreen(Screen[None]):
    """Full screen: the debugger's output above, an input line below; Esc hangs up (the task continues)."""

    BINDINGS = [Binding("escape", "hang_up", "Hang up (the task continues)")]
    DEFAULT_CSS = """
    RdbScreen #rdb-title { height: 1; background: $warning; color: $background; text-style: bold; padding: 0 1; }
    RdbScreen #rdb-log { height: 1fr; border: round $warning; }
    RdbScreen #rdb-input { border: tall $warning; }
    """

    def __init__(self, offer: RdbOffer) -> None:
        super().__init__()
        self.offer = offer
        self.writer: asyncio.StreamWriter | None = None
        self.connected = asyncio.Event()
        self.closed = False

    def compose(self) -> ComposeResult:
        yield Static(Text(f"remote debugger of {self.offer.service} · {self.offer.host}:{self.offer.port} · "
                          "connecting…"), id="rdb-title")
        yield Log(id="rdb-log", max_lines=5000)
        yield Input(placeholder="pdb › p x, n, s, l, c (continue ends the session) · Enter sends", id="rdb-input")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#rdb-input", Input).focus()
        self.run_worker(self._session(), name="rdb", exit_on_error=False)

    async def _session(self) -> None:
        log = self.query_one("#rdb-log", Log)
        title = self.query_one("#rdb-title", Static)
        try:
            reader, self.writer = await asyncio.wait_for(
                asyncio.open_connection(self.offer.host, self.offer.port), CONNECT_TIMEOUT)
        except (OSError, asyncio.TimeoutError) as exc:
            self.app.notify(f"cannot connect to the remote debugger on {self.offer.host}:{self.offer.port}: "
                            f"{exc or 'timed out'}", severity="error")
            self._close()
            return
        self.connected.set()
        title.update(Text(f"remote debugger of {self.offer.service} · {self.offer.host}:{self.offer.port} · "
                          "connected · Esc hangs up"))
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                log.write(data.decode("utf-8", errors="replace"))
        except OSError:
            pass
        self.app.notify(f"remote debugger session on port {self.offer.port} ended", timeout=4)
        self._close()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        text = event.value
        event.input.value = ""
        if self.writer is None or self.writer.is_closing():
            self.app.notify("not connected to the debugger", severity="warning")
            return
        self.query_one("#rdb-log", Log).write(text + "\n")  # pdb over a socket does not echo
        self.writer.write(text.encode() + b"\n")

    def action_hang_up(self) -> None:
        self._close()

    def _close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.writer is not None:
            self.writer.close()
        if self.app.screen is self:
            self.dismiss()
