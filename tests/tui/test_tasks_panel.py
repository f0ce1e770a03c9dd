"""The tasks panel on FakeSource: one row per task updated in place, newest first; `/` filters; Enter opens
the detail (traceback shown); R replays, K revokes after a confirmation."""
from __future__ import annotations

import time
from contextlib import asynccontextmanager

import pytest

from devstack.api import TaskEvent
from tui.app import DevstackApp
from tui.screens.confirm import ConfirmScreen
from tui.screens.task import TaskScreen
from tui.tasks import TaskFeed

from tests.waiting import wait_until_async

from .fake_source import T0, FakeSource
from .helpers import SIZE, select_row

pytestmark = pytest.mark.functional  # no child process, but the whole app for seconds a test


@asynccontextmanager
async def tasks_app(monkeypatch):
    """The app on FakeSource, every showing of the tasks at once (SHOW_EVERY 0), once its first two tasks show."""
    monkeypatch.setattr("tui.tasks.SHOW_EVERY", 0)
    app = DevstackApp(FakeSource())
    async with app.run_test(size=SIZE) as pilot:
        feed = app.query_one(TaskFeed)
        await wait_until_async(lambda: feed.row_count == 2, 5, "the first tasks")
        yield app, pilot, feed


async def test_one_row_per_task_newest_first_updated_in_place():
    source = FakeSource()
    app = DevstackApp(source)
    async with app.run_test(size=SIZE) as pilot:
        feed = app.query_one(TaskFeed)
        await wait_until_async(lambda: feed.row_count == 2, 5, "two tasks from three events")
        assert [str(k.value) for k in feed.rows] == ["bbbbbbbb-2", "aaaaaaaa-1"]  # newest first
        assert str(feed.get_cell("aaaaaaaa-1", "state")) == "succeeded"
        assert "ValueError('boom')" in str(feed.get_cell("bbbbbbbb-2", "result"))

        app._on_task_event(TaskEvent("received", "dddddddd-4", "demo.slow", "worker@demo", T0 + 3))
        await wait_until_async(lambda: feed.row_count == 3 and str(next(iter(feed.rows)).value) == "dddddddd-4",
                               2, "a new task on top")
        app._on_task_event(TaskEvent("started", "dddddddd-4", None, "worker@demo", T0 + 4))
        await wait_until_async(lambda: str(feed.get_cell("dddddddd-4", "state")) == "started", 2, "updated in place")
        assert feed.row_count == 3 and str(feed.get_cell("dddddddd-4", "task")) == "demo.slow"
        app._on_task_event(TaskEvent("received", "aaaaaaaa-1", None, "worker@demo", T0 + 5))  # late, out of order
        await pilot.pause()
        assert str(feed.get_cell("aaaaaaaa-1", "state")) == "succeeded"  # a final state is never undone

        feed.focus()
        await pilot.press("slash", *"fail", "enter")
        await wait_until_async(lambda: feed.row_count == 1, 2, "the filter")
        assert str(next(iter(feed.rows)).value) == "bbbbbbbb-2"
        await pilot.press("slash", "ctrl+a", "ctrl+k", "enter")
        await wait_until_async(lambda: feed.row_count == 3, 2, "the filter cleared")


async def test_detail_replay_and_revoke():
    source = FakeSource()
    app = DevstackApp(source)
    async with app.run_test(size=SIZE) as pilot:
        feed = app.query_one(TaskFeed)
        await wait_until_async(lambda: feed.row_count == 2, 5, "the tasks")
        await select_row(pilot, "tasks", "bbbbbbbb-2")
        await pilot.press("enter")
        await wait_until_async(lambda: isinstance(app.screen, TaskScreen) and app.screen.detail, 5, "the detail")
        text = str(app.screen.query_one("#detail").render())
        assert "ValueError: boom" in text and "done: failed" in text and "(1, 2)" in text
        assert "worker log" in text and "Task demo.fail[bbbbbbbb-2] received" in text and "[red]not markup[/red]" in text
        assert "timeline" in text and f"received {time.strftime('%H:%M:%S', time.localtime(T0))}" in text and "done: done" not in text
        await pilot.press("R")
        await wait_until_async(lambda: source.replayed == ["bbbbbbbb-2"], 2, "the replay")
        await pilot.press("K")
        await wait_until_async(lambda: isinstance(app.screen, ConfirmScreen), 2, "the confirmation")
        await pilot.press("y")
        await wait_until_async(lambda: source.revoked == [("bbbbbbbb-2", False, "TERM")], 2, "the revoke")


async def test_beat_screen_lists_entries_and_runs_one_now():
    """`b` on the tasks panel: beat's entries with schedule in words, last and next run; Enter sends one."""
    from tui.beat import BeatScreen

    source = FakeSource()
    app = DevstackApp(source)
    async with app.run_test(size=SIZE) as pilot:
        app.query_one(TaskFeed).focus()
        await pilot.press("b")
        await wait_until_async(lambda: isinstance(app.screen, BeatScreen) and app.screen.schedule, 5, "the schedule")
        table = app.screen.query_one("#beat-table")
        assert [str(k.value) for k in table.rows] == ["demo-tick", "demo-nightly-tick"]
        assert str(table.get_cell("demo-tick", "schedule")) == "every 10 s"
        assert "(in 6 s)" in str(table.get_cell("demo-tick", "next run"))
        assert "(4 s ago)" in str(table.get_cell("demo-tick", "last run"))
        assert "(in 2 h)" in str(table.get_cell("demo-nightly-tick", "next run"))
        assert str(table.get_cell("demo-nightly-tick", "last run")) == "-"
        await pilot.press("down", "enter")
        await wait_until_async(lambda: source.beat_runs == ["demo-nightly-tick"], 2, "run now")
        await pilot.press("escape")
        assert not isinstance(app.screen, BeatScreen)


async def test_debug_key_on_the_process_list():
    """D on the worker row asks for debugpy; on a row that is neither worker nor api it only says so."""
    source = FakeSource()
    app = DevstackApp(source)
    async with app.run_test(size=SIZE) as pilot:
        await select_row(pilot, "processes", "worker")
        await pilot.press("D")
        await wait_until_async(lambda: source.debugged == [("worker", True)], 2, "debug on")
        await select_row(pilot, "processes", "redis")
        await pilot.press("D")
        await pilot.pause()
        assert source.debugged == [("worker", True)]


async def test_a_flood_keeps_the_newest_tasks_on_top_within_the_bound(monkeypatch):
    """New tasks are placed on top without re-adding the table: after bursts that overflow MAX_TASKS, the table
    holds the newest MAX_TASKS, newest first, and a shown row still updates."""
    from tui.tasks import MAX_TASKS

    async with tasks_app(monkeypatch) as (app, _, feed):  # every burst placed at once: the add/remove/sort path
        ids = [f"{n:08d}-flood" for n in range(MAX_TASKS + 50)]
        for burst in range(0, len(ids), 10):  # small bursts: the incremental path, then evictions
            for n, task_id in enumerate(ids[burst:burst + 10], start=burst):
                app._on_task_event(TaskEvent("received", task_id, "demo.add", "worker@demo", T0 + 10 + n))
            feed.flush()
        newest_first = list(reversed(ids))[:MAX_TASKS]
        await wait_until_async(lambda: [str(k.value) for k in feed.rows] == newest_first, 5, "newest first, bounded")
        assert [str(feed.get_row_at(i)[3]) for i in (0, 1)] == [ids[-1][:8], ids[-2][:8]]  # shown in that order
        app._on_task_event(TaskEvent("succeeded", ids[-3], None, "worker@demo", T0 + 999, runtime=0.01))
        await wait_until_async(lambda: str(feed.get_cell(ids[-3], "state")) == "succeeded", 2, "updated in place")


async def test_a_re_add_shows_the_newest_rows_first_and_the_rest_on_scroll_or_when_quiet(monkeypatch):
    """A burst past SHOW_FIRST re-adds the table with only the newest SHOW_FIRST rows; moving to the last row shown
    adds the others (in order), and so does the first showing that brings no new task. An event changes only the
    cells that differ."""
    from tui.tasks import MAX_TASKS, SHOW_FIRST

    async with tasks_app(monkeypatch) as (app, pilot, feed):

        def burst(first: int, count: int) -> list[str]:
            ids = [f"{n:08d}-burst" for n in range(first, first + count)]
            for n, task_id in enumerate(ids, start=first):
                app._on_task_event(TaskEvent("received", task_id, "demo.add", "worker@demo", T0 + 10 + n))
            return ids

        def shown() -> list[str]:
            return [str(k.value) for k in feed.rows]

        ids = burst(0, 150)
        monkeypatch.setattr("tui.tasks.SHOW_EVERY", 600)  # no later showing while the scroll path is checked
        feed._shown_at = float("-inf")
        feed.flush()
        assert shown() == list(reversed(ids))[:SHOW_FIRST]
        feed.focus()
        await pilot.press("ctrl+end")  # the cursor to the last row shown: the rest below it
        everything = list(reversed(ids)) + ["bbbbbbbb-2", "aaaaaaaa-1"]
        await wait_until_async(lambda: shown() == everything, 2, "the rest of the rows after moving to the end")
        assert [str(feed.get_row_at(i)[3]) for i in (0, SHOW_FIRST)] == [ids[-1][:8], ids[-1 - SHOW_FIRST][:8]]

        more = burst(150, 60)  # past MAX_TASKS: the oldest leave
        feed._shown_at = float("-inf")
        feed.flush()
        newest = list(reversed(ids + more))[:MAX_TASKS]
        assert shown() == newest[:SHOW_FIRST]
        feed.scroll_end(animate=False)  # scrolled (wheel, scrollbar) to the end of what is shown
        await wait_until_async(lambda: shown() == newest, 2, "the rest of the rows after scrolling to the end")

        more += burst(210, 60)
        monkeypatch.setattr("tui.tasks.SHOW_EVERY", 0)
        feed.flush()
        newest = list(reversed(ids + more))[:MAX_TASKS]
        assert shown() == newest[:SHOW_FIRST]
        feed.flush()  # a showing with no new task: the rest now
        assert shown() == newest

        calls = []
        update_cell = feed.update_cell
        monkeypatch.setattr(feed, "update_cell", lambda *a, **k: (calls.append(a[1]), update_cell(*a, **k)))
        app._on_task_event(TaskEvent("succeeded", more[-1], None, "worker@demo", T0 + 999, runtime=0.01))
        feed.flush()
        assert sorted(calls) == ["result", "state"]  # time, task, id and worker did not change
        assert str(feed.get_cell(more[-1], "state")) == "succeeded"


async def test_at_the_top_the_panel_follows_the_newest_task_elsewhere_the_cursor_stays_on_its_task(monkeypatch):
    """Tasks arriving one at a time, more than the panel shows: with the cursor on the top row the newest task is
    the top row on screen (the cursor stayed on the first task and the view scrolled down with it, newer tasks
    out of sight above); with the cursor moved down to a task, it stays on that task."""
    async with tasks_app(monkeypatch) as (app, pilot, feed):
        visible = feed.scrollable_content_region.height - 1  # the header row
        ids = [f"{n:08d}-tick" for n in range(visible * 2)]
        for n, task_id in enumerate(ids):
            app._on_task_event(TaskEvent("received", task_id, "demo.tick", "worker@demo", T0 + 10 + n))
            feed.flush()
            await pilot.pause()
            assert (feed.cursor_row, feed.scroll_y) == (0, 0), f"after task {n}"
            assert feed.selected == task_id
        assert str(feed.get_row_at(0)[3]) == ids[-1][:8]

        feed.focus()
        await pilot.press("down", "down")
        chosen = feed.selected
        assert chosen == ids[-3]
        for n, task_id in enumerate(f"m{n:07d}-more" for n in range(visible)):
            app._on_task_event(TaskEvent("received", task_id, "demo.tick", "worker@demo", T0 + 100 + n))
            feed.flush()
            await pilot.pause()
            assert feed.selected == chosen, f"after task {n}"
        assert feed.cursor_row == 2 + visible
