"""SVG snapshots of the main screen, a queue's messages and the help screen, from FakeSource."""
from __future__ import annotations

import time

import pytest

from tui.app import DevstackApp
from tui.screens.messages import QueueMessagesScreen
from tui.tasks import TaskFeed

from tests.waiting import wait_until_async

from .fake_source import FakeSource

pytestmark = pytest.mark.functional  # no child process, but the whole app for seconds a test
SIZE = (140, 45)


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    """Task feed times are local times: pin the zone so the snapshot is the same everywhere."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


async def settled(pilot) -> None:
    app = pilot.app
    await wait_until_async(
        lambda: app.query_one(TaskFeed).events and app.query_one("#queues").row_count and app.logs.active.line_count,
        5, "task events, queues and log lines on screen")
    await pilot.pause(0.2)


def test_main_screen(snap_compare):
    """Header without SOLO; processes (beat crashed, in red); the `all` log with name prefixes and
    `[bold]x[/bold]` verbatim; Redis PONG, keys per db with roles; queues celery/mail; three task events."""
    assert snap_compare(DevstackApp(FakeSource()), terminal_size=SIZE, run_before=settled)


def test_queue_messages_screen(snap_compare):
    """The mail queue: two ready messages (one with an ETA and `[red]b[/red]` verbatim) and one reserved."""
    async def open_mail(pilot):
        await settled(pilot)
        pilot.app.push_screen(QueueMessagesScreen(pilot.app.source, "mail"))
        await wait_until_async(lambda: pilot.app.screen.query("#messages")
                               and pilot.app.screen.query_one("#messages").row_count == 3, 5, "3 messages listed")
    assert snap_compare(DevstackApp(FakeSource()), terminal_size=SIZE, run_before=open_mail)


def test_help_screen(snap_compare):
    """The help modal listing every key, over the main screen."""
    assert snap_compare(DevstackApp(FakeSource()), terminal_size=SIZE, press=["?"], run_before=settled)
