"""Textual's Linux driver with an input thread that sleeps while nothing is typed.

`LinuxDriver`'s input thread wakes ten times a second (`select(0.1)`) to see whether the app is
stopping and to time out a lone Escape: about 0.1% of a core on an idle stack, a tenth of devstack's
whole idle budget. Here it waits up to `IDLE_TIMEOUT` while the parser has nothing pending (0.1 s, as
before, while an escape sequence is incomplete), and setting `exit_event` (how Textual stops the thread:
quit, suspend) wakes the `select` at once through a pipe.

Used only when Textual's driver is the one this was written against (`run_input_thread` and the
parser's `_timeout_time`); otherwise `DevstackApp` keeps Textual's own driver.
"""
from __future__ import annotations

import os
import selectors
import threading
from codecs import getincrementaldecoder

from textual.drivers.linux_driver import LinuxDriver

try:
    from textual._loop import loop_last
    from textual._xterm_parser import XTermParser
except ImportError:  # a Textual without these: not compatible
    XTermParser = None

IDLE_TIMEOUT = 1.0
"""Longest sleep of the input thread with no input (a safety net: `exit_event.set()` wakes it)."""
PENDING_TIMEOUT = 0.1
"""Textual's own interval, kept while the parser waits to time out an escape sequence."""


class _WakingEvent(threading.Event):
    """An Event whose `set()` also makes a pipe readable, so a thread in `select()` sees it at once."""

    def __init__(self, wake_fd: int) -> None:
        super().__init__()
        self._wake_fd: int | None = wake_fd

    def set(self) -> None:
        super().set()
        if self._wake_fd is not None:
            try:
                os.write(self._wake_fd, b"x")
            except OSError:  # full: already readable
                pass


def compatible() -> bool:
    return XTermParser is not None and hasattr(LinuxDriver, "run_input_thread") and \
        hasattr(XTermParser(False), "_timeout_time")


class QuietLinuxDriver(LinuxDriver):
    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self.exit_event = _WakingEvent(self._wake_write)

    def run_input_thread(self) -> None:
        """`LinuxDriver.run_input_thread` (Textual 8.2), with the wake pipe and the longer idle timeout."""
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        selector.register(self._wake_read, selectors.EVENT_READ)

        fileno = self.fileno
        wake_read = self._wake_read
        EVENT_READ = selectors.EVENT_READ

        parser = XTermParser(self._debug)
        feed = parser.feed
        tick = parser.tick

        decode = getincrementaldecoder("utf-8")().decode
        read = os.read

        def process_selector_events(selector_events, final: bool = False) -> None:
            events = []
            for key, mask in selector_events:
                if key.fd == wake_read:
                    try:
                        while read(wake_read, 512):
                            pass
                    except OSError:  # drained
                        pass
                else:
                    events.append((key, mask))
            for last, (_selector_key, mask) in loop_last(events):
                if mask & EVENT_READ:
                    unicode_data = decode(read(fileno, 1024 * 4), final=final and last)
                    if not unicode_data:
                        # This can occur if the stdin is piped
                        break
                    for event in feed(unicode_data):
                        self.process_message(event)
            for event in tick():
                self.process_message(event)

        try:
            while not self.exit_event.is_set():
                timeout = IDLE_TIMEOUT if parser._timeout_time is None else PENDING_TIMEOUT
                process_selector_events(selector.select(timeout))
            selector.unregister(self.fileno)
            process_selector_events(selector.select(PENDING_TIMEOUT), final=True)
        finally:
            selector.close()
            try:
                for _event in feed(""):
                    pass
            except Exception:  # EOFError, ParseError, as in Textual
                pass

    def close(self) -> None:
        super().close()
        self.exit_event._wake_fd = None  # a closed descriptor's number may be reused
        for fd in (self._wake_read, self._wake_write):
            try:
                os.close(fd)
            except OSError:
                pass
