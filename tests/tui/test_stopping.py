"""The stopping screen takes states from the moment it is pushed, even before Textual composed it: a SIGHUP
pushes it and reports states in the same turn (CI saw `NoMatches: #progress` crash the TUI that way)."""
from __future__ import annotations

import pytest

from tui.app import DevstackApp
from tui.screens.stopping import StoppingScreen

from tests.waiting import wait_until_async

from .fake_source import FakeSource
from .helpers import SIZE

pytestmark = pytest.mark.functional  # no child process, but the whole app


async def test_states_reported_before_compose_are_shown():
    source = FakeSource()
    app = DevstackApp(source)
    async with app.run_test(size=SIZE) as pilot:
        screen = StoppingScreen()
        screen.show(source.services())  # not composed yet: must not raise
        await app.push_screen(screen)
        await wait_until_async(lambda: "crashed" in str(screen.query_one("#progress").render()), 2,
                               "the states given before compose")
        await pilot.pause()
