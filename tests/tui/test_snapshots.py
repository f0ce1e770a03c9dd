"""SVG snapshots of the main screen, a queue's messages and the help screen, from FakeSource."""
from __future__ import annotations

import os
import time

import pytest

from tui.app import DevstackApp
from tui.screens.messages import QueueMessagesScreen
from tui.tasks import TaskFeed

from .fake_source import FakeSource

pytestmark = pytest.mark.functional
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
    for _ in range(100):
        if app.query_one(TaskFeed).events and app.query_one("#queues").row_count and app.logs.active.line_count:
            break
        await pilot.pause(0.05)
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
        for _ in range(100):
            if pilot.app.screen.query("#messages") and pilot.app.screen.query_one("#messages").row_count == 3:
                break
            await pilot.pause(0.05)
    assert snap_compare(DevstackApp(FakeSource()), terminal_size=SIZE, run_before=open_mail)


def test_help_screen(snap_compare):
    """The help modal listing every key, over the main screen."""
    assert snap_compare(DevstackApp(FakeSource()), terminal_size=SIZE, press=["?"], run_before=settled)
