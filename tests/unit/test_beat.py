"""devstack/beat.py's ScheduleCache: one read of beat's schedule (which imports the app) is reused until its
first entry is due, for the same beat process only; a read without a schedule file, or a failed one, is not
kept. The reads here are plain functions standing in for the app probe (tests/functional/test_beat.py runs
the real one against the demo's beat)."""
from __future__ import annotations

import threading

import pytest

from devstack.beat import CACHE_AT_MOST, ScheduleCache
from devstack.errors import DevstackError


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def schedule(*next_runs, file_error=None) -> dict:
    return {"entries": [{"name": f"e{i}", "next_run": at, "total_run_count": 0} for i, at in enumerate(next_runs)],
            "file": "celerybeat-schedule", "file_error": file_error}


class Reads:
    def __init__(self, *answers) -> None:
        self.answers, self.count = list(answers), 0

    def __call__(self) -> dict:
        self.count += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_a_read_is_reused_until_the_first_entry_is_due():
    clock, reads = Clock(), Reads(schedule(1010.0, 1005.0, None), schedule(1015.0, 1010.0, None))
    cache = ScheduleCache(clock)
    first = cache.get("beat-1", reads)
    clock.now = 1004.9
    assert cache.get("beat-1", reads) == first and reads.count == 1
    clock.now = 1005.0  # e1 is due: beat sends it and rewrites its file
    assert cache.get("beat-1", reads)["entries"][1]["next_run"] == 1010.0 and reads.count == 2


def test_another_beat_process_reads_again():
    reads = Reads(schedule(2000.0))
    cache = ScheduleCache(Clock())
    cache.get(("pid", 1), reads)
    cache.get(("pid", 2), reads)
    cache.get(("pid", 2), reads)
    assert reads.count == 2


def test_no_entry_due_is_kept_at_most_a_while():
    clock, reads = Clock(), Reads(schedule(None))
    cache = ScheduleCache(clock)
    cache.get("k", reads)
    clock.now += CACHE_AT_MOST - 1
    cache.get("k", reads)
    assert reads.count == 1
    clock.now += 1
    cache.get("k", reads)
    assert reads.count == 2


def test_a_read_before_beat_wrote_its_file_is_not_kept():
    reads = Reads(schedule(5000.0, file_error="not written yet (beat has not run)"), schedule(5000.0))
    cache = ScheduleCache(Clock())
    assert cache.get("k", reads)["file_error"]
    assert cache.get("k", reads)["file_error"] is None and reads.count == 2
    cache.get("k", reads)
    assert reads.count == 2


def test_a_failed_read_raises_and_keeps_nothing():
    reads = Reads(schedule(5000.0), DevstackError("could not load the Celery app", 1), schedule(6000.0))
    clock = Clock()
    cache = ScheduleCache(clock)
    cache.get("k", reads)
    clock.now = 5000.0
    with pytest.raises(DevstackError):
        cache.get("k", reads)
    assert cache.get("k", reads)["entries"][0]["next_run"] == 6000.0 and reads.count == 3


def test_callers_get_their_own_copy():
    cache = ScheduleCache(Clock())
    mine = cache.get("k", Reads(schedule(5000.0)))
    mine["entries"][0]["every"] = "changed by a caller"
    assert "every" not in cache.get("k", Reads(schedule(7000.0)))["entries"][0]


def test_callers_at_once_share_one_read():
    started, release = threading.Event(), threading.Event()

    def slow_read() -> dict:
        started.set()
        release.wait(5)
        return schedule(5000.0)

    reads = Reads(schedule(5000.0))
    cache = ScheduleCache(Clock())
    results = []
    first = threading.Thread(target=lambda: results.append(cache.get("k", slow_read)))
    first.start()
    assert started.wait(5)
    second = threading.Thread(target=lambda: results.append(cache.get("k", reads)))
    second.start()
    release.set()
    first.join(5)
    second.join(5)
    assert len(results) == 2 and results[0] == results[1] and reads.count == 0
