"""The idle-CPU shortcuts draw exactly what Textual's own widgets draw.

`FastSparkline` builds its strip itself, `ProcessLog` updates its scrollbars without a screen layout (and
keeps rendered lines, search highlights included, in `Log`'s line cache), so does a `DataTable` with
`TableScrollsInPlace` (the tasks panel) and
`CellUpdates` (the process list, the queues) re-renders only the row a cell changed in, `KeptLines` (the
Redis figures) keeps rendered lines by their text: each is
compared, output for output, with the Textual widget or method it replaces.
"""
from __future__ import annotations

import random
import re

from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.screen import Screen
from rich.text import Text
from textual.widgets import DataTable, Log, Sparkline, Static

from devstack.broker import RedisStats

from tui.logs import ProcessLog, SearchHighlighter
from tui.processes import CellUpdates as ProcessTableBase
from tui.redis_panel import KeptLines, stats_text
from tui.scroll_in_place import TableScrollsInPlace
from tui.sparkline import FastSparkline


class Sparklines(App):
    CSS = "Sparkline { height: 1; margin-top: 1; } .narrow { width: 33; }"

    def compose(self) -> ComposeResult:
        yield Sparkline([], id="textual")
        yield FastSparkline([], id="fast")
        yield Sparkline([], id="textual-narrow", classes="narrow")
        yield FastSparkline([], id="fast-narrow", classes="narrow")


async def test_fast_sparkline_draws_what_textual_draws():
    rnd = random.Random(7)
    app = Sparklines()
    async with app.run_test(size=(58, 10)) as pilot:
        pairs = [(app.query_one("#textual"), app.query_one("#fast")),
                 (app.query_one("#textual-narrow"), app.query_one("#fast-narrow"))]
        for trial in range(120):
            n = rnd.choice([0, 1, 2, 3, 20, 55, 56, 57, 60, 100])
            kind = trial % 4
            if kind == 0:
                data = [float(rnd.randint(0, 30)) for _ in range(n)]
            elif kind == 1:
                data = [5.0] * n  # flat
            elif kind == 2:
                data = [rnd.random() * 1000 for _ in range(n)]
            else:
                data = [float(rnd.choice([0, 0, 0, 1, 14])) for _ in range(n)]
            for reference, fast in pairs:
                reference.data = data
                fast.data = data
            await pilot.pause()
            for reference, fast in pairs:
                expected = reference.render_lines(Region(0, 0, reference.size.width, 1))[0]
                got = fast.render_lines(Region(0, 0, fast.size.width, 1))[0]
                # the same cells and styles; FastSparkline joins runs of one colour into one segment
                assert list(got.simplify()) == list(expected.simplify()), (n, kind, reference.id)
                assert len(list(got)) <= len(list(expected))
                assert got.cell_length == expected.cell_length


def log_app(cls):
    class LogApp(App):
        def compose(self) -> ComposeResult:
            log = cls(max_lines=50, highlight=True, id="log")
            log.highlighter = SearchHighlighter()
            yield log
    return LogApp()


async def log_screens(cls) -> tuple[list[str], int]:
    """Screenshots of a log taking lines (scrollbar appearing, a wider line, scrolled up, cleared, a batch
    over max_lines), and how many screen layouts the writes caused."""
    layouts = 0
    original = Screen._refresh_layout

    def counting(self, *args, **kwargs):
        nonlocal layouts
        if self._layout_required:
            layouts += 1
        return original(self, *args, **kwargs)

    Screen._refresh_layout = counting
    try:
        app = log_app(cls)
        shots = []
        async with app.run_test(size=(60, 12)) as pilot:
            log = app.query_one("#log")
            await pilot.pause()
            layouts = 0
            for i in range(30):
                log.write_lines([f"line {i} " + "x" * (70 if i == 25 else i % 7)])
                await pilot.pause()
                if i in (3, 10, 11, 12, 20, 25, 29):
                    shots.append(app.export_screenshot())
            writes_layouts = layouts
            log.scroll_home(animate=False)
            await pilot.pause()
            log.write_lines(["while scrolled up"])
            await pilot.pause()
            shots.append(app.export_screenshot())
            for term in ("line 1", "x", None):  # what LogView.set_term does to a pane
                log.highlighter.pattern = re.compile(re.escape(term)) if term else None
                log._render_line_cache.clear()
                log.refresh()
                await pilot.pause()
                shots.append(app.export_screenshot())
            log.clear()
            await pilot.pause()
            shots.append(app.export_screenshot())
            log.write_lines([f"again {i}" for i in range(3)])
            await pilot.pause()
            shots.append(app.export_screenshot())
            log.write_lines([f"batch {i}" for i in range(200)])  # over max_lines, and measured in a worker
            await app.workers.wait_for_complete()
            await pilot.pause()
            shots.append(app.export_screenshot())
        return screenshots(shots), writes_layouts
    finally:
        Screen._refresh_layout = original


async def test_process_log_looks_like_log_without_screen_layouts():
    expected, log_layouts = await log_screens(Log)
    got, process_log_layouts = await log_screens(ProcessLog)
    assert len(got) == len(expected)
    for i, (a, b) in enumerate(zip(expected, got)):
        assert a == b, f"screenshot {i} differs"
    assert log_layouts >= 20  # Textual's Log lays the screen out on every write
    assert process_log_layouts <= 3  # only when a scrollbar appears


class LayoutCounter:
    """Counts the screen layouts Textual performs while in the `with` block."""

    def __enter__(self):
        self.layouts = 0
        self._original = original = Screen._refresh_layout
        counter = self

        def counting(screen, *args, **kwargs):
            if screen._layout_required:
                counter.layouts += 1
            return original(screen, *args, **kwargs)

        Screen._refresh_layout = counting
        return self

    def __exit__(self, *exc):
        Screen._refresh_layout = self._original


def screenshots(shots: list[str]) -> list[str]:
    """Exported screenshots, comparable across runs (each names its clip paths after a per-run id)."""
    return [re.sub(r"terminal-\d+", "terminal", shot) for shot in shots]


def assert_same_screens(expected: list[str], got: list[str]) -> None:
    assert len(got) == len(expected)
    for i, (a, b) in enumerate(zip(expected, got)):
        assert a == b, f"screenshot {i} differs"


FIXED_TABLE = "#table { height: 8; } #below { height: 1; }"


class InPlaceTable(TableScrollsInPlace, DataTable):
    pass


def growing_table_app(cls, css: str):
    class GrowingTable(App):
        CSS = css

        def compose(self) -> ComposeResult:
            yield cls(id="table", cursor_type="row")
            yield Static("below", id="below")

        def on_mount(self) -> None:
            for column in ("time", "state", "task"):
                self.query_one("#table").add_column(column, key=column)
    return GrowingTable()


async def growing_table_screens(cls, css: str) -> tuple[list[str], int]:
    """Screenshots of a table taking rows one at a time (a vertical scrollbar appearing, a row wide enough for
    a horizontal one, the cursor moved, cleared and refilled), and the screen layouts the new rows caused."""
    with LayoutCounter() as counter:
        app = growing_table_app(cls, css)
        shots = []
        async with app.run_test(size=(50, 14)) as pilot:
            table = app.query_one("#table")
            await pilot.pause()
            counter.layouts = 0
            for i in range(16):
                task = "demo.sleep" + ("-very-long-name" * 3 if i == 12 else "")
                table.add_row(f"12:00:{i:02}", "received", task, key=str(i))
                await pilot.pause()
                if i in (2, 5, 6, 7, 11, 12, 15):
                    shots.append(app.export_screenshot())
            table.move_cursor(row=9)
            await pilot.pause()
            shots.append(app.export_screenshot())
            table.clear()
            await pilot.pause()
            shots.append(app.export_screenshot())
            for i in range(3):
                table.add_row("12:01:00", "started", f"again {i}", key=f"again{i}")
            await pilot.pause()
            shots.append(app.export_screenshot())
    return screenshots(shots), counter.layouts


async def test_table_scrolling_in_place_looks_like_datatable_without_screen_layouts():
    expected, table_layouts = await growing_table_screens(DataTable, FIXED_TABLE)
    got, in_place_layouts = await growing_table_screens(InPlaceTable, FIXED_TABLE)
    assert_same_screens(expected, got)
    assert table_layouts >= 16  # Textual's DataTable lays the screen out for every new row
    assert in_place_layouts <= 5  # a scrollbar appearing or going: two on the way up, two on clear, one back


async def shrinking_table_screens(cls, css: str) -> tuple[list[str], int]:
    """Screenshots of a full table losing rows (the oldest, as the tasks panel drops tasks pushed out by newer
    ones, the cursor on one that stays; then down to fewer rows than fit: the scrollbar goes), and the layouts."""
    with LayoutCounter() as counter:
        app = growing_table_app(cls, css)
        shots = []
        async with app.run_test(size=(50, 14)) as pilot:
            table = app.query_one("#table")
            for i in range(14):
                table.add_row(f"12:00:{i:02}", "succeeded", f"demo.add {i}", key=str(i))
            await pilot.pause()
            table.move_cursor(row=8)
            await pilot.pause()
            counter.layouts = 0
            for i in range(12):
                table.remove_row(str(i))
                if i % 3 == 2:
                    table.add_row("12:01:00", "received", f"new {i}", key=f"new{i}")
                await pilot.pause()
                shots.append(app.export_screenshot())
    return screenshots(shots), counter.layouts


async def test_rows_removed_in_place_look_like_datatable_without_screen_layouts():
    expected, table_layouts = await shrinking_table_screens(DataTable, FIXED_TABLE)
    got, in_place_layouts = await shrinking_table_screens(InPlaceTable, FIXED_TABLE)
    assert_same_screens(expected, got)
    assert len(got) == 12
    assert table_layouts >= 12  # Textual's remove_row lays the screen out each time
    assert in_place_layouts <= 2, in_place_layouts  # the vertical scrollbar going


async def test_table_sized_by_its_rows_still_lays_out():
    auto = "#table { height: auto; max-height: 8; } #below { height: 1; }"
    expected, table_layouts = await growing_table_screens(DataTable, auto)
    got, in_place_layouts = await growing_table_screens(InPlaceTable, auto)
    for i, (a, b) in enumerate(zip(expected, got)):
        assert a == b, f"screenshot {i} differs"
    assert in_place_layouts >= 16 and table_layouts >= 16  # its box follows its rows: each new row lays out


class Tables(App):
    def __init__(self, cls) -> None:
        super().__init__()
        self.cls = cls

    def compose(self) -> ComposeResult:
        yield self.cls(id="table")

    def on_mount(self) -> None:
        table = self.query_one("#table")
        table.cursor_type = "row"
        for column in ("service", "state", "uptime", "cpu"):
            table.add_column(column, key=column)
        for name in ("redis", "api", "worker", "beat"):
            table.add_row(name, Text("ready", style="bold green"), "1s", "0%", key=name)


async def table_screens(cls) -> list[str]:
    rnd = random.Random(3)
    app = Tables(cls)
    shots = []
    async with app.run_test(size=(50, 8)) as pilot:
        table = app.query_one("#table")
        await pilot.pause()
        for step in range(40):
            row = rnd.choice(["redis", "api", "worker", "beat"])
            column = rnd.choice(["state", "uptime", "cpu"])
            state = Text(rnd.choice(["ready", "backoff", "crashed"]), style=rnd.choice(["red", "bold green"]))
            value = {"state": state, "uptime": f"{rnd.randint(1, 59)}s", "cpu": f"{rnd.randint(0, 9)}%"}[column]
            old = table.get_cell(row, column)
            table.update_cell(row, column, value, update_width=len(str(value)) > len(str(old)))
            if step % 7 == 3:
                table.move_cursor(row=rnd.randint(0, 3))
            if step % 3 == 0:
                await pilot.pause()
                shots.append(app.export_screenshot())
    return screenshots(shots)


async def test_cell_updates_render_like_datatable():
    expected = await table_screens(DataTable)
    got = await table_screens(ProcessTableBase)
    assert len(got) == len(expected)
    for i, (a, b) in enumerate(zip(expected, got)):
        assert a == b, f"screenshot {i} differs"


class StatsApp(App):
    CSS = "Static { padding: 0 1; } #narrow-a, #narrow-b { width: 30; }"

    def compose(self) -> ComposeResult:
        yield Static(stats_text(None), id="static")
        yield KeptLines(stats_text(None), id="kept")
        yield Static(stats_text(None), id="narrow-a")
        yield KeptLines(stats_text(None), id="narrow-b")


async def test_kept_lines_render_like_static():
    rnd = random.Random(5)
    app = StatsApp()
    async with app.run_test(size=(70, 30)) as pilot:
        pairs = [(app.query_one("#static"), app.query_one("#kept")),
                 (app.query_one("#narrow-a"), app.query_one("#narrow-b"))]
        for step in range(60):
            if step % 13 == 5:
                stats = RedisStats(ok=False, error="connection refused" + " (and a long reason)" * (step % 3))
            elif step % 17 == 0:
                stats = None
            else:
                stats = RedisStats(ok=True, latency_ms=rnd.choice([0.2, 0.3, 0.4]), version="7.2.4",
                                   uptime_s=rnd.choice([59, 125]), used_memory=1_200_000, peak_memory=1_500_000,
                                   clients=rnd.randint(8, 10), ops_per_sec=rnd.randint(5, 30),
                                   keys_per_db={0: 3, 1: rnd.choice([12, 13])})
            text = stats_text(stats)
            for static, kept in pairs:
                static.update(text)
                kept.update(text)
            await pilot.pause()
            for static, kept in pairs:
                assert static.size == kept.size
                region = Region(0, 0, static.size.width, static.size.height)
                assert [list(s) for s in kept.render_lines(region)] == \
                    [list(s) for s in static.render_lines(region)], (step, static.id)
