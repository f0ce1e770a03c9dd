"""How often the TUI polls Redis and the queues and moves its clock: every second while someone is at it, every
CALM_SECONDS once nobody is.

An idle stack's screen changes once a second only because of this poll (the Redis panel's latency, ops/s and
sparkline); the poll, its frame and the loop's share of it were most of an idle TUI's CPU (a demo stack in tmux,
per thread over 90 s: 0.97% of a core polling every second, 0.73% every 2 s). Calm means: no key press, click or
scroll for CALM_AFTER seconds (or the terminal says it lost focus), the queues' counts the same as at the last
poll, and every service settled (ready, stopped, crashed, failed or blocked: no start, stop, backoff or drain in
progress). Anything else is lively, and the first sign of it brings the next poll at once; a blurred terminal stays
calm until it has the focus again (nobody looks at it). Log lines and task events are not polled: they show as
they come, calm or not."""
from __future__ import annotations

import threading
import time

from devstack.events import State

CALM_SECONDS = 2.0
"""The poll's period once calm (the sparkline gets one bar per second still: the sample is repeated)."""
CALM_AFTER = 30.0
"""Seconds without input (or anything lively) before the poll slows down."""
SETTLED = frozenset({State.READY, State.STOPPED, State.CRASHED, State.FAILED, State.BLOCKED})


class Cadence:
    """Read by the poll thread (`period`, `wait`), told by the app's loop (`touched`, `blurred`, `saw_queues`,
    `saw_states`). The float and bool it shares are written whole: no lock is needed for them."""

    def __init__(self, lively_seconds: float, *, clock=time.monotonic) -> None:
        self.lively_seconds = lively_seconds
        self.clock = clock
        self._lively_until = clock() + CALM_AFTER
        self._blurred = False
        self._queues: tuple | None = None
        self._nudge = threading.Event()

    @property
    def calm(self) -> bool:
        return self._blurred or self.clock() >= self._lively_until

    def period(self) -> float:
        return max(self.lively_seconds, CALM_SECONDS) if self.calm else self.lively_seconds

    def touched(self) -> None:
        """Input (a key, a click, the mouse, the wheel): someone is at it, in a terminal that has the focus."""
        self._liven(focused=True)

    def lively(self) -> None:
        """Something changing (queues, a service's state): every second for a while, unless the terminal is blurred."""
        self._liven(focused=False)

    def blurred(self, blurred: bool) -> None:
        """The terminal lost (True) or got back (False) the focus, where it reports it (Textual's AppBlur/AppFocus)."""
        if blurred:
            self._blurred = True
        else:
            self._liven(focused=True)

    def _liven(self, *, focused: bool) -> None:
        was_calm = self.calm
        if focused:
            self._blurred = False
        self._lively_until = self.clock() + CALM_AFTER
        if was_calm and not self.calm:
            self._nudge.set()  # the poll thread's sleep is cut short: a poll at once

    def saw_queues(self, queues) -> None:
        counts = tuple((q.name, q.ready, q.reserved) for q in queues)
        if self._queues is not None and counts != self._queues:
            self.lively()
        self._queues = counts

    def saw_states(self, states) -> None:
        if any(state not in SETTLED for state in states):
            self.lively()

    def wait(self, seconds: float) -> bool:
        """The poll thread's sleep until its next round; True if the end of a calm spell (or `wake()`) cut it short:
        the next round then polls at once."""
        nudged = self._nudge.wait(seconds)
        self._nudge.clear()
        return nudged

    def wake(self) -> None:
        self._nudge.set()
