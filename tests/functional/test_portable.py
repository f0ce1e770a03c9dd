"""The code paths of a system without prctl and /proc (macOS), run on Linux by the test hook
DEVSTACK_FORCE_PORTABLE=1: guards that learn of devstack's death from the lifeline pipe alone and find
what is left through `ps`, and process trees from psutil's process table."""
from __future__ import annotations

import os
import signal
import subprocess

import psutil
import pytest

from devstack.usage import UsageMonitor

from tests.functional.test_orphans import DevstackRun, alive, describe
from tests.stack import write_demo_config
from tests.waiting import poll_until, wait_until

pytestmark = pytest.mark.functional

# [process.tree] ignores SIGTERM, so its guard's 2 s grace runs out before the KILL: on a loaded 2-core
# machine everything was gone 2.4-3.6 s after devstack's death with /proc, 3.2-4.3 s with `ps`.
KILL_WAIT = 6.0

# A tree that does not make it easy: both shells and both sleeps ignore SIGTERM, so the guard must see the
# group is still there (through `ps`) and KILL it; the inner subshell exits, orphaning its sleep.
TREE = """
[process.tree]
command = "sh -c 'trap \\"\\" TERM; (sleep 301 &); sleep 302 & echo tree-up; wait'"
ready_log = 'tree-up'
"""


def orphan_sleep(run: DevstackRun) -> psutil.Process:
    def find():
        for p in run.tree():
            try:
                if p.cmdline() == ["sleep", "301"]:
                    return p
            except psutil.Error:
                pass
        return None

    return run.wait_for(find, 10, "the orphaned `sleep 301` of [process.tree]")


def test_sigkill_with_portable_guards_leaves_no_survivors(tmp_path):
    env = dict(os.environ, DEVSTACK_FORCE_PORTABLE="1")
    run = DevstackRun(write_demo_config(tmp_path, extra=TREE), env=env).start()
    try:
        run.wait_ready()
        orphan = orphan_sleep(run)
        guards = [p for p in run.tree() if "guard.py" in " ".join(p.cmdline())]
        # Proof the hook took effect: no guard made itself a child subreaper, so the orphan went elsewhere.
        assert orphan.ppid() not in {g.pid for g in guards}, "a guard adopted the orphan: prctl ran"
        tree = run.tree()
        assert len(tree) >= 14, describe(tree)  # 5 guards, redis, api, beat, worker + 2 pool, sh + 2 sleeps
        run.kill()
        poll_until(lambda: not alive(tree), KILL_WAIT)
        survivors = alive(tree)
        for p in survivors:  # never leave them for the next test, but still fail this one
            p.kill()
        assert not survivors, f"{len(survivors)} process(es) outlived devstack by {KILL_WAIT} s:\n{describe(survivors)}"
    finally:
        run.stop()


def test_usage_reads_the_process_table_under_the_hook(monkeypatch):
    monkeypatch.setenv("DEVSTACK_FORCE_PORTABLE", "1")
    monitor = UsageMonitor()
    assert monitor.children_files is False
    shell = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"])
    try:
        kids = wait_until(lambda: len(psutil.Process(shell.pid).children()) == 2 and psutil.Process(shell.pid).children(),
                          5, "the shell's two sleeps")
        expected = sum(p.memory_info().rss for p in (psutil.Process(shell.pid), *kids))
        # Only the shell's own memory if the table walk missed its children: about a third of this.
        assert monitor.sample({"tree": shell.pid})["tree"].rss == pytest.approx(expected, rel=0.2)
    finally:
        for child in psutil.Process(shell.pid).children():
            child.kill()
        shell.kill()
        shell.wait()


def test_ps_finds_the_same_group_as_proc():
    """The guard's table without /proc (`ps`, as on macOS) names the same members of a real process group."""
    from devstack import guard

    shell = subprocess.Popen(["sh", "-c", "sleep 30 & sleep 30 & wait"], start_new_session=True)
    try:
        wait_until(lambda: len(psutil.Process(shell.pid).children()) == 2, 5, "the shell's two sleeps")
        via_proc = {pid for pid, _ppid, pgrp in guard._proc_table() if pgrp == shell.pid}
        via_ps = {pid for pid, _ppid, pgrp in guard._ps_table() if pgrp == shell.pid}
        assert via_ps == via_proc and len(via_ps) == 3
    finally:
        os.killpg(shell.pid, signal.SIGKILL)
        shell.wait()
