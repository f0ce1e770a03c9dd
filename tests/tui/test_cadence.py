"""The TUI's poll cadence: every second while someone is at it or something moves, every CALM_SECONDS once calm.

The rule on a clock of the test's own (no app, no process); then the poll thread of a real DevstackApp on
FakeSource: calm, its polls come CALM_SECONDS apart (the sparkline still gets a bar a second), and a key press
brings one at once."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from devstack.events import State
from tests.waiting import wait_until_async
from tui import cadence as cadence_module
from tui.app import DevstackApp
from tui.cadence import CALM_AFTER, CALM_SECONDS, Cadence

from .fake_source import FakeSource
from .helpers import SIZE


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def queue(name: str, ready: int, reserved: int = 0):
    return SimpleNamespace(name=name, ready=ready, reserved=reserved)


def test_calm_after_a_spell_without_input_and_lively_again_at_a_key_press():
    clock = Clock()
    cadence = Cadence(1.0, clock=clock)
    assert cadence.period() == 1.0  # just started: lively
    clock.now += CALM_AFTER - 0.1
    assert cadence.period() == 1.0
    clock.now += 0.2
    assert cadence.calm and cadence.period() == CALM_SECONDS
    assert not cadence.wait(0)  # nothing pending
    cadence.touched()
    assert cadence.period() == 1.0
    started = time.monotonic()
    assert cadence.wait(5)  # the calm spell ended: the poll thread's sleep is cut short
    assert time.monotonic() - started < 1
    cadence.touched()  # lively already: no extra poll
    assert not cadence.wait(0.2)


def test_changed_queue_counts_and_unsettled_services_keep_it_lively():
    clock = Clock()
    cadence = Cadence(1.0, clock=clock)
    cadence.saw_queues([queue("celery", 0)])
    clock.now += CALM_AFTER + 1
    cadence.saw_queues([queue("celery", 0)])  # the same counts
    assert cadence.calm
    cadence.saw_queues([queue("celery", 3)])
    assert not cadence.calm
    clock.now += CALM_AFTER + 1
    cadence.saw_states([State.READY, State.STOPPED, State.CRASHED])
    assert cadence.calm
    for moving in (State.STARTING, State.BACKOFF, State.STOPPING, State.DRAINING):
        clock.now += CALM_AFTER + 1
        cadence.saw_states([State.READY, moving])
        assert not cadence.calm, moving


def test_a_terminal_that_lost_the_focus_is_calm_at_once_until_it_gets_it_back():
    clock = Clock()
    cadence = Cadence(1.0, clock=clock)
    cadence.saw_queues([queue("celery", 0)])
    cadence.blurred(True)
    assert cadence.calm
    cadence.saw_queues([queue("celery", 5)])  # nobody looks: a change does not bring the second back
    cadence.saw_states([State.STARTING])
    assert cadence.calm and not cadence.wait(0)
    cadence.touched()  # a key can only come from a focused terminal
    assert not cadence.calm and cadence.wait(0)
    cadence.blurred(True)
    cadence.blurred(False)
    assert not cadence.calm and cadence.wait(0)


class CountingSource(FakeSource):
    poll_seconds = 0.1

    def __init__(self) -> None:
        super().__init__()
        self.polled: list[float] = []

    def broker_poll(self):
        self.polled.append(time.monotonic())
        return super().broker_poll()


@pytest.mark.functional  # no child process, but the whole app for seconds
async def test_the_poll_slows_down_once_calm_and_a_key_press_polls_at_once(monkeypatch):
    monkeypatch.setattr(cadence_module, "CALM_AFTER", 1.5)
    monkeypatch.setattr(cadence_module, "CALM_SECONDS", 2.5)
    source = CountingSource()
    app = DevstackApp(source)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until_async(lambda: len(source.polled) >= 2, 5, "the first polls")
        lively = source.polled[-1] - source.polled[-2]
        assert 0.8 < lively < 1.6
        await wait_until_async(lambda: app.cadence.calm and len(source.polled) >= 5, 15, "calm polls")
        calm = source.polled[-1] - source.polled[-2]
        assert calm >= 2.4, source.polled
        polls, bars = len(source.polled), len(app.redis_panel.ops)
        await wait_until_async(lambda: len(source.polled) == polls + 1, 5, "one more calm poll")
        await pilot.pause()
        assert len(app.redis_panel.ops) - bars in (2, 3)  # the sparkline keeps a bar a second
        before = len(source.polled)
        pressed = time.monotonic()
        await pilot.press("down")
        await wait_until_async(lambda: len(source.polled) > before, 2, "a poll after the key press")
        assert source.polled[before] - pressed < 0.5
        assert not app.cadence.calm
