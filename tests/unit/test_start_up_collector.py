"""The start-up without the cyclic collector (module_report_site/sitecustomize.py), in this very process: the real
`gc` (and one fork, as a prefork pool makes)."""
from __future__ import annotations

import gc
import os

import pytest

from devstack.module_report_site import sitecustomize as site


@pytest.fixture
def collector():
    was = gc.isenabled()
    yield
    gc.enable() if was else gc.disable()


def test_without_its_variable_the_collector_is_left_alone(collector, monkeypatch):
    monkeypatch.delenv(site.COLLECTOR_VAR, raising=False)
    gc.enable()
    site.collector_off_while_starting()
    assert gc.isenabled()


@pytest.mark.functional  # one fork
def test_with_its_variable_the_collector_is_off_and_back_on_in_a_forked_child(collector, monkeypatch):
    monkeypatch.setenv(site.COLLECTOR_VAR, "1")
    site.collector_off_while_starting()
    assert not gc.isenabled()
    assert site.COLLECTOR_VAR not in os.environ  # taken out: a subprocess of the app does not inherit it
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # a prefork pool process: collecting again at once
        os.write(write, b"1" if gc.isenabled() else b"0")
        os._exit(0)
    os.close(write)
    assert os.read(read, 1) == b"1"
    os.waitpid(pid, 0)
    os.close(read)
    assert not gc.isenabled()  # the parent waits for its imports to settle

