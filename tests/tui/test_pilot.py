"""The TUI over the real demo stack (redis-server, flask, celery worker and beat), driven by keys."""
from __future__ import annotations

import asyncio

import pytest
import redis

from devstack.events import State
from tui.debug_input import DebugInput
from tui.header import StackHeader
from tui.redis_panel import RedisPanel
from tui.screens.confirm import ConfirmScreen
from tui.screens.messages import QueueMessagesScreen
from tui.screens.rdb import RdbScreen
from tui.tasks import TaskFeed

from tests.stack import free_port
from tests.waiting import wait_until_async

from .helpers import cell, demo_tui, select_row, send_tasks

pytestmark = pytest.mark.functional


def worker(engine):
    return engine.services["worker"]


async def test_w_restarts_the_worker_with_a_new_pid(tmp_path):
    async with demo_tui(tmp_path) as (app, pilot, engine):
        old = worker(engine).pid
        await pilot.press("w")
        await wait_until_async(lambda: worker(engine).pid not in (None, old) and worker(engine).state == State.READY,
                               30, "a new worker pid, ready")
        new = worker(engine).pid
        await wait_until_async(lambda: cell(app, "processes", "worker", "pid") == str(new)
                               and cell(app, "processes", "worker", "state") == "ready",
                               5, "the new pid, ready, in the list")


async def test_s_toggles_the_solo_pool_and_the_badge(tmp_path):
    async with demo_tui(tmp_path) as (app, pilot, engine):
        header = app.query_one(StackHeader)
        assert not header.has_class("-solo")
        await pilot.press("s")
        await wait_until_async(lambda: "-P solo" in " ".join(worker(engine).spec.argv)
                               and worker(engine).state == State.READY, 30, "a solo worker, ready")
        await wait_until_async(lambda: header.has_class("-solo"), 5, "the SOLO badge")
        await pilot.press("s")
        await wait_until_async(lambda: "-P solo" not in " ".join(worker(engine).spec.argv)
                               and worker(engine).state == State.READY, 30, "a prefork worker again")
        await wait_until_async(lambda: not header.has_class("-solo"), 5, "the badge gone")


async def test_x_stops_and_starts_the_selected_process(tmp_path):
    async with demo_tui(tmp_path) as (app, pilot, engine):
        await select_row(pilot, "processes", "beat")
        await pilot.press("x")
        await wait_until_async(lambda: cell(app, "processes", "beat", "state") == "stopped",
                               20, "beat stopped on screen")
        assert engine.services["beat"].pid is None
        await pilot.press("x")
        await wait_until_async(lambda: cell(app, "processes", "beat", "state") == "ready", 20, "beat ready again")


async def test_queue_counts_messages_screen_and_purge(tmp_path):
    async with demo_tui(tmp_path) as (app, pilot, engine):
        await engine.stop(["worker"])
        await asyncio.to_thread(send_tasks, engine, *[("demo.send_mail", (f"u{i}@example.com",),
                                                       {"queue": "mail"}) for i in range(3)])
        await wait_until_async(lambda: cell(app, "queues", "mail", "ready") == "3", 10, "3 ready messages in mail")
        assert cell(app, "queues", "mail", "reserved") == "0"

        await select_row(pilot, "queues", "mail")
        await pilot.press("enter")
        screen = await wait_until_async(lambda: isinstance(app.screen, QueueMessagesScreen) and app.screen,
                                        5, "messages screen")
        table = screen.query_one("#messages")
        await wait_until_async(lambda: table.row_count == 3, 10, "3 decoded messages")
        assert str(table.get_row_at(0)[1]) == "demo.send_mail"
        assert "u0@example.com" in str(table.get_row_at(0)[3])

        # `p` on the messages screen purges the queue shown.
        await pilot.press("p")
        confirm = await wait_until_async(lambda: isinstance(app.screen, ConfirmScreen) and app.screen,
                                         5, "the purge modal")
        assert "3 ready message(s)" in confirm.question and "'mail'" in confirm.question
        await pilot.press("y")
        await wait_until_async(lambda: app.screen is screen and table.row_count == 0, 10, "the messages screen empty")
        await wait_until_async(lambda: cell(app, "queues", "mail", "ready") == "0", 10, "the mail queue empty")
        await pilot.press("escape")

        # `p` on the main screen purges the queue selected in the panel.
        await asyncio.to_thread(send_tasks, engine, *[("demo.send_mail", (f"v{i}@example.com",),
                                                       {"queue": "mail"}) for i in range(2)])
        await wait_until_async(lambda: cell(app, "queues", "mail", "ready") == "2", 10, "2 ready messages in mail")
        await select_row(pilot, "queues", "mail")
        await pilot.press("p")
        confirm = await wait_until_async(lambda: isinstance(app.screen, ConfirmScreen) and app.screen,
                                         5, "the purge modal")
        assert "2 ready message(s)" in confirm.question and "'mail'" in confirm.question
        await pilot.press("y")
        await wait_until_async(lambda: cell(app, "queues", "mail", "ready") == "0", 10, "the mail queue empty")


def event_feed_listens(engine) -> bool:
    """Whether a message on Celery's event channels reaches a subscriber: the TUI's feed once subscribed.

    The message is junk the feed ignores, on a channel no worker subscribes to."""
    client = redis.Redis.from_url(engine.endpoint.url(1))
    try:
        return client.publish("/1.celeryev/devstack-test.probe", b"null") > 0
    finally:
        client.close()


async def test_task_feed_and_redis_panel(tmp_path):
    async with demo_tui(tmp_path) as (app, pilot, engine):
        feed = app.query_one(TaskFeed)
        await wait_until_async(lambda: app._feed_started, 5, "the event feed")
        # events sent before its PSUBSCRIBE is done are gone (pub/sub)
        await wait_until_async(lambda: event_feed_listens(engine), 5, "the event feed subscribed", interval=0.1)
        await asyncio.to_thread(send_tasks, engine, ("demo.add", (1, 2), None), ("demo.fail", ("kaput",), None))

        def seen(kind, name):
            return any(e.kind == kind and e.name == name for e in feed.events)
        await wait_until_async(lambda: seen("succeeded", "demo.add") and seen("failed", "demo.fail"), 20,
                               "a succeeded and a failed task in the feed")
        await wait_until_async(lambda: "kaput" in app.export_screenshot(), 2, "the exception on screen")
        # One row per task, not per event (the panel shows its changes at most twice a second: wait for that).
        await wait_until_async(lambda: feed.row_count == len({e.uuid for e in feed.events}) == 2, 2,
                               "one row per task")
        assert list(feed.events)[0].timestamp >= list(feed.events)[-1].timestamp  # newest first
        # What the started stack holds left the collector's generations (once per process: in a run of many
        # tests an earlier app may have done it).
        import gc

        from tui.app import FULL_COLLECTION_AFTER
        assert gc.get_freeze_count() > 0 and gc.get_threshold()[2] == FULL_COLLECTION_AFTER

        panel = app.query_one(RedisPanel)
        await wait_until_async(lambda: panel.stats and panel.stats.keys_per_db.get(1), 10, "keys in db 1")
        text = str(panel.query_one("#redis-stats").render())
        assert "PONG" in text and "db1 broker/results:" in text and "db0 cache:" in text


async def test_log_text_is_verbatim_not_markup(tmp_path):
    async with demo_tui(tmp_path) as (app, pilot, engine):
        await select_row(pilot, "processes", "worker")
        await asyncio.to_thread(send_tasks, engine, ("demo.echo", ("[bold]x[/bold]",), None))
        pane = app.logs.pane("worker")
        await wait_until_async(lambda: any("[bold]x[/bold]" in line for line in pane.lines), 20, "the echo line")
        # On screen too, as typed (the SVG keeps it in one run: no style was applied inside it).
        await wait_until_async(lambda: "[bold]x[/bold]" in app.export_screenshot(), 5, "the line rendered verbatim")


async def test_pdb_in_solo_mode_through_the_input_line(tmp_path):
    async with demo_tui(tmp_path, solo=True) as (app, pilot, engine):
        await select_row(pilot, "processes", "worker")
        await asyncio.to_thread(send_tasks, engine, ("demo.debug", (21,), None))
        debug = app.query_one(DebugInput)
        await wait_until_async(lambda: debug.has_class("-active") and debug.has_focus, 20, "the pdb input line")
        await pilot.press("p", "space", "x", "enter")
        pane = app.logs.pane("worker")
        await wait_until_async(
            lambda: any(line.rstrip().endswith(" 21") or line.strip() == "21" for line in pane.lines),
            10, "pdb printing 21")
        await pilot.press("c", "enter")
        await wait_until_async(lambda: not debug.has_class("-active"), 5, "the input line hidden after c")
        await wait_until_async(lambda: any("succeeded" in line and "42" in line for line in pane.lines), 10,
                               "the task finishing with 42")


async def test_rdb_session_through_the_d_screen(tmp_path):
    """A real task calls celery.contrib.rdb.set_trace(); `d` connects to its port, `p x` answers 21, `c` ends it."""
    port = free_port()
    async with demo_tui(tmp_path, worker=f'env = {{ CELERY_RDB_PORT = "{port}" }}') as (app, pilot, engine):
        await asyncio.to_thread(send_tasks, engine, ("demo.rdb", (21,), None))
        await wait_until_async(lambda: app.rdb_offers, 20, "the rdb banner in the worker's log")
        await wait_until_async(lambda: any("Press d" in n.message for n in app._notifications), 2, "the offer")
        await pilot.press("d")
        screen = await wait_until_async(lambda: isinstance(app.screen, RdbScreen) and app.screen, 5, "the rdb screen")
        log = screen.query_one("#rdb-log")
        await wait_until_async(lambda: any(line.startswith("(Pdb)") for line in log.lines), 10, "the (Pdb) prompt")
        await pilot.press("p", "space", "x", "enter")
        await wait_until_async(lambda: "21" in log.lines, 10, "pdb printing 21")
        await pilot.press("c", "enter")
        await wait_until_async(lambda: not isinstance(app.screen, RdbScreen), 10, "the screen closed when rdb hung up")
        await wait_until_async(
            lambda: any("succeeded" in line and "42" in line for line in app.logs.lines("worker")), 10,
            "the task finishing with 42")
