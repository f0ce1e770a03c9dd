"""Fast pilot tests of log-pane behaviour (search, follow/pause, clear, solo badge, pdb line) on FakeSource."""
from __future__ import annotations

import asyncio

import pytest

from devstack.events import LogLine
from tui.app import DevstackApp
from tui.debug_input import DebugInput
from tui.header import StackHeader
from tui.screens.confirm import ConfirmScreen
from tui.screens.help import HelpScreen
from tui.screens.messages import QueueMessagesScreen
from tui.screens.rdb import RdbScreen

from tests.waiting import wait_until_async

from .fake_source import FakeSource
from .helpers import SIZE, select_row

pytestmark = pytest.mark.functional  # no child process, but the whole app for seconds a test


async def test_search_follow_and_clear():
    source = FakeSource()
    app = DevstackApp(source, max_lines=500)
    async with app.run_test(size=SIZE) as pilot:
        await select_row(pilot, "processes", "api")
        for i in range(300):
            source.emit(LogLine("api", f"line {i}" + (" needle" if i in (10, 200) else "")))
        pane = app.logs.pane("api")
        await wait_until_async(lambda: pane.line_count >= 300, 5, "300 lines flushed")
        assert pane.is_vertical_scroll_end  # following

        await pilot.press("slash", *"needle", "enter")
        await wait_until_async(lambda: "search: 'needle'" in str(app.logs.query_one("#log-status").render()),
                               2, "search status")
        def match() -> str:
            return pane.lines[app.logs._match["api"]]
        assert match() == "line 10 needle"
        await pilot.press("n")
        assert match() == "line 200 needle"
        await pilot.press("N")
        assert match() == "line 10 needle"
        await pilot.pause()
        await wait_until_async(lambda: "PAUSED" in str(app.logs.query_one("#log-status").render()),
                               2, "paused indicator")

        source.emit(LogLine("api", "late line"))
        await wait_until_async(lambda: pane.lines[-1] == "late line", 2, "the late line")
        assert not pane.is_vertical_scroll_end  # a reader who scrolled up is not yanked down
        await pilot.press("f")
        await wait_until_async(lambda: "following" in str(app.logs.query_one("#log-status").render()),
                               2, "following again")

        await pilot.press("c")
        assert pane.line_count == 0


async def test_max_lines_bounds_a_pane():
    source = FakeSource()
    app = DevstackApp(source, max_lines=100)
    async with app.run_test(size=SIZE) as pilot:
        await select_row(pilot, "processes", "worker")
        for i in range(5000):
            source.emit(LogLine("worker", f"flood {i}"))
        pane = app.logs.pane("worker")
        await wait_until_async(lambda: pane.lines and pane.lines[-1] == "flood 4999", 5, "the last line")
        assert pane.line_count <= 100


async def test_pdb_line_appears_only_in_solo_mode():
    source = FakeSource()
    app = DevstackApp(source)
    async with app.run_test(size=SIZE) as pilot:
        debug = app.query_one(DebugInput)
        source.emit(LogLine("worker", "[... WARNING/MainProcess] (Pdb) "))
        await pilot.pause(0.3)  # time for an input line that must not come
        assert not debug.has_class("-active")  # prefork: pdb cannot read stdin, no input line
        await pilot.press("s")
        await wait_until_async(lambda: app.query_one(StackHeader).has_class("-solo"), 2, "the SOLO badge")
        source.emit(LogLine("worker", "[... WARNING/MainProcess] (Pdb) "))
        await wait_until_async(lambda: debug.has_class("-active") and debug.has_focus, 2, "the pdb line")
        await pilot.press("p", "space", "x", "enter", "c", "enter")
        assert source.sent == [("worker", "p x"), ("worker", "c")]
        assert not debug.has_class("-active")


async def test_pdb_prompt_selects_the_worker_pane_and_follows():
    source = FakeSource()
    app = DevstackApp(source)
    async with app.run_test(size=SIZE) as pilot:
        for i in range(300):
            source.emit(LogLine("worker", f"worker line {i}"))
        await select_row(pilot, "processes", "worker")
        pane = app.logs.pane("worker")
        await wait_until_async(lambda: pane.line_count >= 300, 5, "300 worker lines")
        pane.scroll_home(animate=False)  # the reader scrolled up: following is paused
        await wait_until_async(lambda: "PAUSED" in str(app.logs.query_one("#log-status").render()), 2, "paused")
        await select_row(pilot, "processes", "api")
        await pilot.press("s")
        await wait_until_async(lambda: app.query_one(StackHeader).has_class("-solo"), 2, "the SOLO badge")
        source.emit(LogLine("worker", "> /app/tasks.py(42)debug()"))
        source.emit(LogLine("worker", "(Pdb) "))
        debug = app.query_one(DebugInput)
        await wait_until_async(lambda: debug.has_class("-active"), 2, "the pdb line")
        assert app.processes.selected == "worker" and app.logs.current == "worker"
        await wait_until_async(lambda: pane.is_vertical_scroll_end and pane.lines[-1] == "(Pdb) ", 2,
                               "the worker pane following, the prompt visible")
        await wait_until_async(lambda: "following" in str(app.logs.query_one("#log-status").render()), 2, "following")


async def test_q_on_the_help_screen_quits():
    app = DevstackApp(FakeSource())
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("question_mark")
        await wait_until_async(lambda: isinstance(app.screen, HelpScreen), 2, "the help screen")
        await pilot.press("q")
        await wait_until_async(lambda: app._stopping, 2, "the stack stopping")
    assert app.return_code == 0


async def test_p_on_the_messages_screen_purges_the_queue_shown():
    source = FakeSource()
    app = DevstackApp(source)
    async with app.run_test(size=SIZE) as pilot:
        await select_row(pilot, "queues", "celery")  # the panel's selection is another queue
        app.push_screen(QueueMessagesScreen(source, "mail"))
        screen = await wait_until_async(lambda: isinstance(app.screen, QueueMessagesScreen) and app.screen,
                                        2, "messages")
        await wait_until_async(lambda: screen.query("#messages") and screen.query_one("#messages").row_count == 3, 5,
                               "three messages")
        await pilot.press("p")
        confirm = await wait_until_async(lambda: isinstance(app.screen, ConfirmScreen) and app.screen,
                                         2, "the confirmation")
        assert "'mail'" in confirm.question and "2 ready message(s)" in confirm.question
        await pilot.press("y")
        await wait_until_async(lambda: source.purged == ["mail"], 2, "mail purged")
        assert isinstance(app.screen, QueueMessagesScreen)


async def test_rdb_banner_offers_d_and_the_screen_talks_to_the_port():
    """A stand-in for celery.contrib.rdb: one TCP client, a (Pdb) prompt, answers, hangs up after `c`."""
    received: list[str] = []

    async def debugger(reader, writer):
        writer.write(b"> /app/tasks.py(9)rdb()\n-> return x * 2\n(Pdb) ")
        while line := (await reader.readline()).decode().strip():
            received.append(line)
            if line == "c":
                break
            writer.write(b"21\n(Pdb) " if line == "p x" else b"*** unknown\n(Pdb) ")
        writer.close()

    server = await asyncio.start_server(debugger, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    source = FakeSource()
    app = DevstackApp(source)
    try:
        async with app.run_test(size=SIZE) as pilot:
            await pilot.press("d")  # nothing waits yet: a warning, no screen
            assert not isinstance(app.screen, RdbScreen)
            source.emit(LogLine("worker", f"[... WARNING/ForkPoolWorker-1] Remote Debugger:{port}: Ready to "
                                          f"connect: telnet 127.0.0.1 {port}"))
            await wait_until_async(lambda: port in app.rdb_offers, 2, "the offer")
            await wait_until_async(lambda: any("Press d" in n.message for n in app._notifications),
                                   2, "the notification")
            await pilot.press("d")
            screen = await wait_until_async(lambda: isinstance(app.screen, RdbScreen) and app.screen,
                                            2, "the rdb screen")
            log = screen.query_one("#rdb-log")
            await wait_until_async(lambda: "(Pdb) " in log.lines, 5, "the prompt")
            await pilot.press("p", "space", "x", "enter")
            await wait_until_async(lambda: "21" in log.lines, 5, "21 from the debugger")
            await pilot.press("c", "enter")
            await wait_until_async(lambda: not isinstance(app.screen, RdbScreen), 5, "the screen closed on hang-up")
            assert received == ["p x", "c"]
            assert not app.rdb_offers
    finally:
        server.close()


async def test_hidden_panes_buffer_and_catch_up_when_selected():
    source = FakeSource()
    app = DevstackApp(source, max_lines=100)
    async with app.run_test(size=SIZE) as pilot:
        await select_row(pilot, "processes", "api")
        for i in range(500):
            source.emit(LogLine("worker", f"hidden {i}"))
        await wait_until_async(lambda: app.logs.lines("worker")[-1:] == ["hidden 499"], 2, "the last hidden line")
        assert app.logs.lines("worker")[-1] == "hidden 499"  # buffered while the api pane is shown
        await select_row(pilot, "processes", "worker")
        pane = app.logs.pane("worker")
        await wait_until_async(lambda: pane.lines and pane.lines[-1] == "hidden 499", 2, "the worker pane caught up")
        assert pane.line_count <= 100


async def test_a_burst_larger_than_one_flush_drains_without_new_lines():
    from tui.logs import BATCH_MAX

    total = BATCH_MAX * 5 // 2  # 2.5 writes' worth, then silence
    source = FakeSource()
    app = DevstackApp(source, max_lines=total + 1000)
    async with app.run_test(size=SIZE) as pilot:
        await select_row(pilot, "processes", "worker")
        for i in range(total):
            source.emit(LogLine("worker", f"burst {i}"))
        pane = app.logs.pane("worker")
        await wait_until_async(lambda: pane.line_count >= total and pane.lines[-1] == f"burst {total - 1}", 3,
                               "the whole burst")


async def test_a_flood_is_written_at_most_every_write_every_seconds_and_nothing_is_lost(monkeypatch):
    """Lines arriving every 10 ms for over a second reach the pane in batches at least WRITE_EVERY apart, all of
    them and in order; a line after a quiet moment is written at the first flush."""
    import time

    from tui.logs import WRITE_EVERY

    source = FakeSource()
    app = DevstackApp(source, max_lines=5000)
    async with app.run_test(size=SIZE) as pilot:
        await select_row(pilot, "processes", "worker")
        pane = app.logs.pane("worker")
        writes: list[tuple[float, int]] = []
        write_lines = pane.write_lines
        monkeypatch.setattr(pane, "write_lines", lambda lines, *a: (writes.append((time.monotonic(), len(lines))),
                                                                   write_lines(lines, *a))[1])
        await asyncio.sleep(WRITE_EVERY)  # what the selection wrote is behind us
        writes.clear()
        n = 0
        began = time.monotonic()
        while time.monotonic() - began < 1.2:
            for _ in range(5):
                source.emit(LogLine("worker", f"flood {n}"))
                n += 1
            await asyncio.sleep(0.01)
        await wait_until_async(lambda: pane.lines[-1:] == [f"flood {n - 1}"], 3, "the last flood line")
        lines = [line for line in pane.lines if line.startswith("flood ")]
        assert lines == [f"flood {i}" for i in range(n)]  # all of them, in order
        gaps = [b[0] - a[0] for a, b in zip(writes, writes[1:])]
        assert len(writes) >= 4 and min(gaps) >= WRITE_EVERY - 0.01, gaps
        await asyncio.sleep(WRITE_EVERY)
        writes.clear()
        source.emit(LogLine("worker", "after a quiet moment"))
        t0 = time.monotonic()
        await wait_until_async(lambda: writes, 2, "the lone line written")
        assert writes[0][0] - t0 < WRITE_EVERY, "a lone line waited for the flood's pace"


async def test_u_requeues_unacked_and_shows_the_count_or_the_error():
    from devstack.errors import DevstackError

    source = FakeSource()
    app = DevstackApp(source)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("u")
        await wait_until_async(lambda: any(n.message == "requeued 3 message(s)" for n in app._notifications),
                               2, "the count")
        source.requeue_count = 0
        await pilot.press("u")
        await wait_until_async(lambda: any("nothing to requeue" in n.message for n in app._notifications), 2, "nothing")
        source.requeue_error = DevstackError("worker#1 [draining] is still draining; run `devstack requeue` again", 1)
        await pilot.press("u")
        await wait_until_async(lambda: any(n.message.startswith("worker#1 [draining]") and n.severity == "error"
                                           for n in app._notifications), 2, "the engine's message, as typed")
        assert not any(n.markup for n in app._notifications if n.severity == "error")
        assert source.requeue_calls == 3
        assert any(c.help == "key u" for c in app.get_system_commands(app.screen) if c.title.startswith("Requeue unacked"))
