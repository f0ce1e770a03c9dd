"""The supervisor with real child processes: output handling, stop escalation, backoff, bad commands."""
from __future__ import annotations

import asyncio
import os
import sys
import time

import psutil
import pytest

from devstack.events import EventBus, LogLine, Notice, State, StateChanged
from devstack.probes import LogProbe
from devstack.supervisor import MAX_LINE, Service, ServiceSpec, clean_line
from tests.waiting import wait_until_async

pytestmark = pytest.mark.functional


class Harness:
    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        self.bus = EventBus()
        self.events: list = []
        self.bus.subscribe(self.events.append)
        self.lifeline_r, self.lifeline_w = os.pipe()
        self.services: list[Service] = []

    def service(self, code: str, **kwargs) -> Service:
        spec = ServiceSpec(kwargs.pop("name", "svc"), [sys.executable, "-c", code], self.tmp_path,
                           dict(os.environ, PYTHONUNBUFFERED="1"), **kwargs)
        svc = Service(spec, self.bus, self.tmp_path / "logs", self.lifeline_r, secrets=("s3cret",))
        self.services.append(svc)
        return svc

    def lines(self, name="svc") -> list[str]:
        return [e.text for e in self.events if isinstance(e, LogLine) and e.service == name]

    async def close(self):
        for svc in self.services:
            await svc.stop()
            svc.log.close()
        os.close(self.lifeline_r)
        os.close(self.lifeline_w)


@pytest.fixture
async def harness(tmp_path):
    h = Harness(tmp_path)
    yield h
    await h.close()


def test_clean_line_strips_ansi_controls_and_masks_secrets():
    raw = b"\x1b[31mred\x1b[0m \x07bell pw=s3cret [bold]x[/bold]\r"
    assert clean_line(raw, ("s3cret",)) == "red \ufffdbell pw=*** [bold]x[/bold]"
    assert clean_line(b"\xff\xfe binary") == "\ufffd\ufffd binary"


async def test_floods_of_garbage_and_endless_lines_are_capped_and_logged(harness):
    code = ("import sys, os; w = sys.stdout.buffer.write; w(os.urandom(5000).replace(b'\\n', b'x') + b'\\n'); "
            f"w(b'y' * {MAX_LINE * 3}); w(b'\\nafter s3cret\\n'); sys.stdout.flush(); import time; time.sleep(30)")
    svc = harness.service(code)
    svc.start()
    await wait_until_async(lambda: any(line.startswith("after") for line in harness.lines()), 15,
                           "the line after the flood")
    lines = harness.lines()
    assert any("[line cut:" in line for line in lines)
    assert all(len(line) <= MAX_LINE + 100 for line in lines)
    assert "after ***" in lines
    logged = (harness.tmp_path / "logs" / "svc.log").read_text()
    assert "after ***" in logged and "s3cret" not in logged
    assert svc.state in (State.STARTING, State.READY) and svc.running


async def test_prompt_without_newline_is_shown(harness):
    svc = harness.service("import sys, time; sys.stdout.write('(Pdb) '); sys.stdout.flush(); time.sleep(30)")
    svc.start()
    await wait_until_async(lambda: "(Pdb) " in harness.lines(), 15, "the prompt as a line")


async def test_stop_escalates_to_sigkill_and_takes_grandchildren(harness):
    code = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "p = subprocess.Popen([sys.executable, '-c', 'import signal,time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)']); "
            "print('child', p.pid, flush=True); time.sleep(60)")
    svc = harness.service(code, stop_timeout=0.5, probe=LogProbe(r"child \d+"))
    svc.start()
    await asyncio.wait_for(svc.wait_ready(), 15)
    child = int(next(line for line in harness.lines() if line.startswith("child")).split()[1])
    main = svc.pid
    began = time.monotonic()
    await svc.stop()
    assert time.monotonic() - began < 5
    assert svc.state == State.STOPPED
    for pid in (main, child):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert any(isinstance(e, Notice) and "did not stop within" in e.text for e in harness.events)


async def test_a_service_that_keeps_exiting_backs_off(harness):
    svc = harness.service("import sys; print('bye'); sys.exit(3)")
    svc.start()
    await wait_until_async(lambda: svc.state == State.BACKOFF, 15, "backoff")
    backoffs = [e for e in harness.events if isinstance(e, StateChanged) and e.state == State.BACKOFF]
    assert "exited with code 3" in backoffs[0].detail and "restarting in 1 s" in backoffs[0].detail
    assert svc.backoff_until and svc.backoff_until > time.time()
    await wait_until_async(lambda: len([e for e in harness.events if isinstance(e, StateChanged)
                                        and e.state == State.BACKOFF]) >= 2, 5, "a second backoff")
    second = [e for e in harness.events if isinstance(e, StateChanged) and e.state == State.BACKOFF][1]
    assert "restarting in 2 s" in second.detail
    # a manual start cuts the backoff wait short
    svc.start()
    await wait_until_async(lambda: svc.restarts >= 2, 2, "the manual start")


async def test_missing_command_is_reported_not_raised(harness, tmp_path):
    spec = ServiceSpec("ghost", ["definitely-not-a-command-xyz"], tmp_path, dict(os.environ), autorestart=False)
    svc = Service(spec, harness.bus, tmp_path / "logs", harness.lifeline_r)
    harness.services.append(svc)
    svc.start()
    await wait_until_async(lambda: svc.state == State.CRASHED, 15, "the crash")
    assert svc.exit_code == 127
    assert any("cannot run 'definitely-not-a-command-xyz'" in line for line in harness.lines("ghost"))


async def test_fail_to_start_shows_crashed_with_the_reason(harness):
    svc = harness.service("pass", name="never")
    svc.fail_to_start("never: command 'x' was not found on PATH")
    assert svc.state == State.CRASHED
    crashed = [e for e in harness.events if isinstance(e, StateChanged) and e.state == State.CRASHED]
    assert [e.detail for e in crashed] == ["never: command 'x' was not found on PATH"]
    assert any(isinstance(e, Notice) and e.level == "error" and e.service == "never" for e in harness.events)


async def test_a_new_generation_continues_the_old_ones_count(harness):
    old, fresh = harness.service("pass", name="old"), harness.service("pass", name="new")
    old.count_restart()
    fresh.continue_from(old)
    assert fresh.restarts == 2 and old.spare is None and fresh.spare is None


async def test_service_and_attached_redis_are_supervised(harness):
    from devstack.attached import AttachedRedis
    from devstack.redis_server import RedisEndpoint
    from devstack.supervised import Supervised

    attached = AttachedRedis(RedisEndpoint("external", "127.0.0.1", 6379, None), harness.bus)
    assert isinstance(harness.service("pass"), Supervised)
    assert isinstance(attached, Supervised)
