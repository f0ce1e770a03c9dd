"""The Redis panel: PONG and latency (or the error in words), version, uptime, memory, clients,
ops/sec with a sparkline and keys per database labelled with its role; under them, a sentinel group's
master, quorum and replica lag, or a cluster's state and nodes (slots, keys)."""
from __future__ import annotations

import time
from collections import OrderedDict, deque

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.strip import Strip
from textual.visual import Visual, visualize
from textual.widgets import Static

from devstack.api import NodeState, RedisStats, TopologyState

from .processes import human_bytes, human_duration
from .sparkline import FastSparkline

HISTORY = 60
"""Seconds of ops/sec kept for the sparkline (one bar a second)."""
MAX_REPEAT = 3
"""Bars one sample may fill: a poll late by more (a suspended app, a stalled loop) is not a flat line."""


def stats_text(stats: RedisStats | None) -> Text:
    if stats is None:
        return Text("waiting for Redis…", style="dim")
    if not stats.ok:
        return Text(f"✗ {stats.error}", style="bold red")
    text = Text()
    text.append("PONG", style="bold green")
    text.append(f" {stats.latency_ms:.1f} ms · v{stats.version or '?'} · up {human_duration(stats.uptime_s)}\n")
    text.append(f"mem {human_bytes(stats.used_memory)} (peak {human_bytes(stats.peak_memory)})"
                f" · {stats.clients} clients · {stats.ops_per_sec} ops/s\n")
    dbs = [f"db{db} {stats.db_roles.get(db, '')}: {n}".replace(" :", ":") for db, n in stats.keys_per_db.items()]
    text.append("keys " + " · ".join(dbs or ["none"]))
    return text


def topology_text(state: TopologyState) -> Text:
    """The lines about a sentinel group or a cluster, appended under the server's figures."""
    text = Text()
    if state.kind == "sentinel":
        agreed = state.agree == state.sentinels and state.agree >= state.quorum > 0
        where = next((f" {_short(n.address)}" for n in state.nodes if n.name == state.master), "")
        text.append(f"master {state.master or '?'}{where}", style="bold")
        # One line within the left column (58 cells) even for `redis-replica`: no "sentinel ·" prefix.
        text.append(f" · sentinels {state.agree}/{state.sentinels} (quorum {state.quorum or '?'})",
                    style="green" if agreed else "bold yellow")
        for node in state.nodes:
            if node.role == "replica":
                lag = "?" if node.lag_bytes is None else f"{node.lag_bytes} B"
                text.append(f"\n {node.name} {_short(node.address)} replica · lag {lag}")
            elif node.role != "master":
                text.append(f"\n {node.name} {_short(node.address)} says {node.role}", style="bold yellow")
    else:
        text.append("cluster ")
        text.append(state.state or "?", style="bold green" if state.state == "ok" else "bold red")
        masters = sum(1 for n in state.nodes if n.role == "master")
        text.append(f" · {state.slots_covered}/16384 slots · {masters} masters")
        for node in state.nodes:
            text.append("\n")
            text.append_text(_cluster_node(node))
    if state.error:
        text.append(f"\n✗ {state.error}", style="bold red")
    return text


def _cluster_node(node: NodeState) -> Text:
    role = f"replica of {node.master}" if node.role == "replica" and node.master else node.role
    slots = ",".join(f"{a}-{b}" if a != b else str(a) for a, b in node.slots)
    keys = "" if node.keys is None else f" · {node.keys} keys"
    return Text(f" {node.name} {_short(node.address)} {role}{' ' + slots if slots else ''}{keys}",
                style="bold red" if node.role == "down" else "")


def _short(address: str) -> str:
    """`:7000` for a loopback node (every node devstack launches), the whole address otherwise."""
    return address[len("127.0.0.1"):] if address.startswith("127.0.0.1:") else address


async def fail_over(app) -> None:
    """`F`: `devstack failover` on the engine's loop (it only awaits, the screen keeps drawing); the result line."""
    result = await app.source.failover()
    app.notify(f"master {result['old']} → {result['new']}; writable after {result['writable_seconds']:.2f} s "
               f"(sentinels agreed after {result['agreed_seconds']:.2f} s)", title="failover", timeout=10, markup=False)


class KeptLines(Static):
    """A `Static` of a few short lines whose rendered lines are kept by their text: the Redis figures
    change every second but mostly take values they had before (latency 0.2/0.3/0.4 ms, a few ops/s
    values), so a redraw is usually a lookup instead of a trip through the render pipeline (~0.5 ms).
    Lines are rendered one by one exactly as `Static` renders them; when one would wrap, or text is
    selected, `Static` renders the whole."""

    KEPT = 256

    def __init__(self, content: Text, **kwargs) -> None:
        super().__init__(content, **kwargs)
        self._lines = list(content.split("\n"))
        self._kept: OrderedDict[tuple, Strip] = OrderedDict()

    def update(self, content: Text, *, layout: bool = True) -> None:
        self._lines = list(content.split("\n"))
        super().update(content, layout=layout)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        lines = self._lines
        if y >= len(lines) or self.text_selection is not None or \
                any(line.cell_len > width for line in lines):
            return super().render_line(y)
        line = lines[y]
        if y and line.style:  # a base style would not carry over to the line rendered below blank ones
            return super().render_line(y)
        style = self.visual_style
        key = (y, line.plain, tuple(line.spans), str(line.style), width, style)
        strip = self._kept.get(key)
        if strip is None:
            # Rendered as line y (blank lines above it): text selection finds lines by the offsets in the strip.
            text = line
            if y:
                text = Text("\n" * y)
                text.append_text(line)
            strip = Visual.to_strips(self, visualize(self, text), width, y + 1, style)[y]
            self._kept[key] = strip
            if len(self._kept) > self.KEPT:
                self._kept.popitem(last=False)
        else:
            self._kept.move_to_end(key)
        return strip


class RedisPanel(Vertical):
    DEFAULT_CSS = """
    RedisPanel { height: auto; border: round $primary; padding: 0 1; }
    RedisPanel Sparkline { height: 1; margin-top: 1; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.ops: deque[float] = deque(maxlen=HISTORY)
        self.stats: RedisStats | None = None
        self._shown: str | None = None
        self._sampled: float | None = None
        self._lines = KeptLines(stats_text(None), id="redis-stats")
        self._spark = FastSparkline([], id="redis-ops")

    def compose(self) -> ComposeResult:
        yield self._lines
        yield self._spark

    def on_mount(self) -> None:
        self.border_title = "redis"

    def show(self, stats: RedisStats, topology: TopologyState | None = None) -> None:
        self.stats = stats
        if not (self._lines.is_attached and self._spark.is_attached):
            return  # the app is tearing down: its children go before the last poll round is applied
        text = stats_text(stats)
        if topology is not None:
            text.append("\n")
            text.append_text(topology_text(topology))
        plain = text.plain
        if plain != self._shown:
            # Same number of lines: no layout pass (a re-layout every second is most of the idle CPU).
            same_height = self._shown is not None and plain.count("\n") == self._shown.count("\n")
            self._shown = plain
            self._lines.update(text, layout=not same_height)
        if stats.ok and stats.ops_per_sec is not None:
            data = list(self.ops)
            # A bar a second: a calm TUI polls every 2 s (tui/cadence.py), its sample then stands for both.
            now = time.monotonic()
            seconds = 1 if self._sampled is None else max(1, min(MAX_REPEAT, round(now - self._sampled)))
            self._sampled = now
            self.ops.extend([float(stats.ops_per_sec)] * seconds)
            if len(data) < HISTORY or data[1:] != data[:-1] or data[-1] != self.ops[-1]:
                self._spark.data = list(self.ops)  # a flat line that stays flat is not redrawn
