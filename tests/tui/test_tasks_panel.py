"""The tasks panel on FakeSource: one row per task updated in place, newest first; `/` filters; Enter opens
the detail (traceback shown); R replays, K revokes after a confirmation."""
from __future__ import annotations

import time

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

    monkeypatch.setattr("tui.tasks.SHOW_EVERY", 0)  # every burst placed at once: the add/remove/sort path
    source = FakeSource()
    app = DevstackApp(source)
    async with app.run_test(size=SIZE):
        feed = app.query_one(TaskFeed)
        await wait_until_async(lambda: feed.row_count == 2, 5, "the first tasks")
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
