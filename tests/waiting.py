"""Waiting in tests: poll a condition until it holds or a deadline passes, never a fixed sleep."""
from __future__ import annotations

import asyncio
import time
from typing import Callable, TypeVar

T = TypeVar("T")
Message = str | Callable[[], str]


def poll_until(condition: Callable[[], T], timeout: float, interval: float = 0.05) -> T:
    """The condition's first truthy value within `timeout` seconds, else its last (falsy) one.

    For a caller that decides itself what a timeout means; `wait_until` fails the test instead.
    The condition is always evaluated once more at the deadline, so a slow poll is not a false failure.
    """
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        time.sleep(interval)
    return value


def wait_until(condition: Callable[[], T], timeout: float, message: Message, interval: float = 0.05) -> T:
    """The condition's first truthy value; AssertionError naming `message` and the last value after `timeout` s.

    `message` says what was awaited; a callable is called only on a timeout (e.g. to append a log's tail).
    """
    value = poll_until(condition, timeout, interval)
    if not value:
        raise AssertionError(_timed_out(timeout, message, value))
    return value


async def wait_until_async(condition: Callable[[], T], timeout: float, message: Message,
                           interval: float = 0.05) -> T:
    """`wait_until` for a test running in the event loop: sleeps with asyncio, so the loop keeps running."""
    deadline = time.monotonic() + timeout
    while not (value := condition()) and time.monotonic() < deadline:
        await asyncio.sleep(interval)
    if not value:
        raise AssertionError(_timed_out(timeout, message, value))
    return value


def _timed_out(timeout: float, message: Message, value: object) -> str:
    text = message() if callable(message) else message
    return f"timed out after {timeout:g} s waiting for {text} (last value: {value!r})"
