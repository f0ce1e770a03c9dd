"""devstack.usage: the process trees behind the CPU and memory columns; /proc children files agree with the
process table (the fallback where those files do not exist)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import psutil
import pytest

from devstack.usage import UsageMonitor, proc_children, table_children
from tests.waiting import wait_until

pytestmark = pytest.mark.functional  # starts a tree of python and sleep processes

TREE = textwrap.dedent("""
    import subprocess, sys, threading, time
    kids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])]
    # a child forked by another thread is listed in that thread's children file
    t = threading.Thread(target=lambda: kids.append(subprocess.Popen(["sleep", "60"])))
    t.start(); t.join()
    kids.append(subprocess.Popen([sys.executable, "-c",
        "import subprocess, time; p = subprocess.Popen(['sleep', '60']); time.sleep(60)"]))
    print("ready", flush=True)
    time.sleep(60)
""")


def tree_of(pid: int) -> set[int]:
    """The process table's answer: pid and all its descendants."""
    return {pid} | {c.pid for c in psutil.Process(pid).children(recursive=True)}


def tree_by(children, root: int) -> set[int]:
    stack, seen = [root], set()
    while stack:
        pid = stack.pop()
        seen.add(pid)
        stack.extend(children(pid))
    return seen


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_children_files_give_the_same_tree_as_the_process_table():
    import os
    if not os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children"):
        pytest.skip("kernel without /proc/<pid>/task/<tid>/children")
    proc = subprocess.Popen([sys.executable, "-c", TREE], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        wait_until(lambda: len(tree_of(proc.pid)) >= 5, 10, "the grandchild's own child to start")
        expected = tree_of(proc.pid)
        assert len(expected) == 5
        assert tree_by(proc_children, proc.pid) == expected
        assert proc_children(2**22 + 12345) == []  # no such process
        assert tree_by(table_children(), proc.pid) == expected  # the fallback without children files
        for children_files in (True, False):
            usage = UsageMonitor(children_files).sample({"tree": proc.pid})["tree"]
            assert usage.rss >= 5 * 1024 * 1024, usage  # five processes, each well over 1 MiB resident
    finally:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        proc.kill()
        proc.wait()
