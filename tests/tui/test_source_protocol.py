"""The TUI's `Source` protocol is what both the running stack (`devstack.api.Stack`) and the snapshot tests'
`FakeSource` implement: same members, same kind (coroutine or not), so the fake cannot drift from the real one."""
from __future__ import annotations

import inspect

import pytest

from devstack.api import Stack
from tests.tui.fake_source import FakeSource
from tui.source import Source

MEMBERS = sorted({name for name in dir(Source) if not name.startswith("_")} | set(Source.__annotations__))


def test_the_protocol_is_not_empty():
    assert {"services", "broker_poll", "restart", "task_events", "start", "shutdown"} <= set(MEMBERS)


@pytest.mark.parametrize("implementation", [Stack, FakeSource], ids=["Stack", "FakeSource"])
@pytest.mark.parametrize("name", MEMBERS)
def test_implements(implementation, name):
    assert hasattr(implementation, name), f"{implementation.__name__} lacks {name}"
    if name in Source.__annotations__:  # a plain attribute
        return
    wanted = inspect.getattr_static(Source, name)
    if callable(wanted) and not isinstance(wanted, property):
        got = inspect.getattr_static(implementation, name)
        assert inspect.iscoroutinefunction(got) == inspect.iscoroutinefunction(wanted), \
            f"{implementation.__name__}.{name}: async in one, not in the other"
        assert list(inspect.signature(got).parameters)[:2] == list(inspect.signature(wanted).parameters)[:2], name
