"""Fast pilot tests of log-pane behaviour (search, follow/pause, clear, solo badge, pdb line) on FakeSource."""
from __future__ import annotations

import pytest

from devstack.events import LogLine
from tui.app import DevstackApp
from tui.debug_input import DebugInput
from tui.header import StackHeader

from .fake_source import FakeSource
from .helpers import SIZE, select_row, until

pytestmark = pytest.mark.functional


async def test_search_follow_and_clear():
    source = FakeSource()
    app = DevstackApp(source, max_lines=500)
    async with app.run_test(size=SIZE) as pilot:
        await select_row(pilot, "processes", "api")
        for i in range(300):
            source.emit(LogLine("api", f"line {i}" + (" needle" if i in (10, 200) else "")))
        pane = app.logs.pane("api")
        await until(lambda: pane.line_count >= 300, 5, "300 lines flushed")
        assert pane.is_vertical_scroll_end  # following

        await pilot.press("slash", *"needle", "enter")
        await until(lambda: "search: 'needle'" in str(app.logs.query_one("#log-status").render()), 2, "search status")
        def match() -> str:
            return pane.lines[app.logs._match["api"]]
        assert match() == "line 10 needle"
        await pilot.press("n")
        assert match() == "line 200 needle"
        await pilot.press("N")
        assert match() == "line 10 needle"
        await pilot.pause()
        await until(lambda: "PAUSED" in str(app.logs.query_one("#log-status").render()), 2, "paused indicator")

        source.emit(LogLine("api", "late line"))
        await until(lambda: pane.lines[-1] == "late line", 2, "the late line")
        assert not pane.is_vertical_scroll_end  # a reader who scrolled up is not yanked down
        await pilot.press("f")
        await until(lambda: "following" in str(app.logs.query_one("#log-status").render()), 2, "following again")

        await pilot.press("c")
        assert pane.line_count == 0


async def test_max_lines_bounds_a_pane():
    source = FakeSource()
    app = DevstackApp(source, max_lines=100)
    async with app.run_test(size=SIZE) as pilot:
        for i in range(5000):
            source.emit(LogLine("worker", f"flood {i}"))
        pane = app.logs.pane("worker")
        await until(lambda: pane.lines and pane.lines[-1] == "flood 4999", 5, "the last line")
        assert pane.line_count <= 100


async def test_pdb_line_appears_only_in_solo_mode():
    source = FakeSource()
    app = DevstackApp(source)
    async with app.run_test(size=SIZE) as pilot:
        debug = app.query_one(DebugInput)
        source.emit(LogLine("worker", "[... WARNING/MainProcess] (Pdb) "))
        await pilot.pause(0.3)
        assert not debug.has_class("-active")  # prefork: pdb cannot read stdin, no input line
        await pilot.press("s")
        await until(lambda: app.query_one(StackHeader).has_class("-solo"), 2, "the SOLO badge")
        source.emit(LogLine("worker", "[... WARNING/MainProcess] (Pdb) "))
        await until(lambda: debug.has_class("-active") and debug.has_focus, 2, "the pdb line")
        await pilot.press("p", "space", "x", "enter", "c", "enter")
        assert source.sent == [("worker", "p x"), ("worker", "c")]
        assert not debug.has_class("-active")
