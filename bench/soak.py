"""Soak test (not run in CI): steady task load through the demo API, `devstack restart worker` every
minute, devstack's memory sampled throughout. Passes when no task is lost and devstack's RSS stays
within 10% (last minute's median against the first minute's).

Usage: python bench/soak.py [--minutes 30] [--rate 4] [--restart-every 60] [--no-write]
`--minutes 2` is a quick check. Writes its figures into docs/benchmarks.md under "## Soak" (that
section only), saying how long the run was.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/soak.py`
from bench.common import (  # noqa: E402
    DEVSTACK, PASSWORD, demo_config, free_port, poll_until, spawn, stop_tree, update_doc)

SLEEP_EVERY = 5  # every 5th task sleeps 0.5 s, so restarts catch tasks mid-run
DRAIN_TIMEOUT = 180.0


def post(url: str) -> dict:
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=10) as resp:
        return json.loads(resp.read())


def wait_ready(out: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    def ready_or_gone() -> bool:
        return "all services ready" in out.read_text(errors="replace") or proc.poll() is not None

    if not poll_until(ready_or_gone, timeout, interval=0.1) or proc.poll() is not None:
        raise SystemExit(f"devstack did not get ready:\n{out.read_text(errors='replace')[-3000:]}")


class Soak:
    def __init__(self, folder: Path, minutes: float, rate: float, restart_every: float):
        self.folder, self.minutes, self.rate, self.restart_every = folder, minutes, rate, restart_every
        self.redis_port, self.api_port = free_port(), free_port()
        self.config = demo_config(folder, self.redis_port, self.api_port)
        self.expected: dict[str, object] = {}  # task id -> expected result
        self.enqueue_errors = 0
        self.restarts_ok = self.restarts_failed = 0
        self.rss: list[tuple[float, int]] = []
        self.proc: subprocess.Popen | None = None

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([DEVSTACK, *args, "--config", str(self.config)], cwd=self.folder,
                              capture_output=True, text=True, timeout=120)

    def run(self) -> dict:
        out = self.folder / "devstack.out"
        self.proc = spawn([DEVSTACK, "up", "--no-tui", "--config", str(self.config)], self.folder, out)
        try:
            wait_ready(out, self.proc)
            me = psutil.Process(self.proc.pid)
            started = time.monotonic()
            end = started + self.minutes * 60
            next_task = next_restart = next_sample = started
            next_restart += self.restart_every
            restarter: threading.Thread | None = None
            i = 0
            while time.monotonic() < end:
                now = time.monotonic()
                if now >= next_sample:
                    self.rss.append((now - started, me.memory_info().rss))
                    next_sample += 5
                if now >= next_restart and (restarter is None or not restarter.is_alive()):
                    restarter = threading.Thread(target=self._restart_worker, daemon=True)
                    restarter.start()
                    next_restart += self.restart_every
                if now >= next_task:
                    self._enqueue(i)
                    i += 1
                    next_task += 1 / self.rate
                time.sleep(max(0.0, min(next_task, next_sample) - time.monotonic()))
            if restarter is not None:
                restarter.join(120)
            lost, wrong, drain = self._drain()
            self.rss.append((time.monotonic() - started, me.memory_info().rss))
        finally:
            stop_tree(self.proc, signal.SIGTERM, timeout=120)
        return self._summary(lost, wrong, drain)

    def _enqueue(self, i: int) -> None:
        base = f"http://127.0.0.1:{self.api_port}"
        try:
            if i % SLEEP_EVERY == 0:
                body = post(f"{base}/tasks/sleep?seconds=0.5")
                self.expected[body["id"]] = 0.5
            else:
                body = post(f"{base}/tasks/add?x={i}&y=1")
                self.expected[body["id"]] = i + 1
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            self.enqueue_errors += 1

    def _restart_worker(self) -> None:
        result = self.cli("restart", "worker")
        if result.returncode == 0:
            self.restarts_ok += 1
        else:
            self.restarts_failed += 1
            print(f"restart failed: {result.stderr.strip()}", file=sys.stderr)

    def _drain(self) -> tuple[list[str], list[str], float]:
        """Wait until every enqueued task has a SUCCESS result (read from the result backend, db 1)."""
        client = redis.Redis(port=self.redis_port, password=PASSWORD, db=1)
        pending = dict(self.expected)
        wrong: list[str] = []
        t0 = time.monotonic()

        def all_done() -> bool:
            ids = list(pending)
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                for task_id, raw in zip(chunk, client.mget([f"celery-task-meta-{t}" for t in chunk])):
                    if raw is None:
                        continue
                    meta = json.loads(raw)
                    if meta.get("status") == "SUCCESS":
                        if meta.get("result") != pending[task_id]:
                            wrong.append(task_id)
                        del pending[task_id]
                    elif meta.get("status") == "FAILURE":
                        wrong.append(task_id)
                        del pending[task_id]
            return not pending

        poll_until(all_done, DRAIN_TIMEOUT, interval=0.5)
        return list(pending), wrong, time.monotonic() - t0

    def _summary(self, lost: list[str], wrong: list[str], drain: float) -> dict:
        first = [rss for t, rss in self.rss if t <= 60] or [self.rss[0][1]]
        last_t = self.rss[-1][0]
        last = [rss for t, rss in self.rss if t >= last_t - 60] or [self.rss[-1][1]]
        base, final = statistics.median(first), statistics.median(last)
        return {
            "minutes": self.minutes, "rate": self.rate, "enqueued": len(self.expected),
            "enqueue_errors": self.enqueue_errors, "lost": len(lost), "wrong": len(wrong),
            "drain_s": round(drain, 1), "restarts_ok": self.restarts_ok, "restarts_failed": self.restarts_failed,
            "rss_first_mib": round(base / 2**20, 1), "rss_last_mib": round(final / 2**20, 1),
            "rss_max_mib": round(max(r for _, r in self.rss) / 2**20, 1),
            "rss_drift_pct": round(100 * (final - base) / base, 1),
            "passed": not lost and not wrong and not self.restarts_failed and abs(final - base) <= 0.1 * base,
        }


def markdown(r: dict, command: str) -> str:
    short = "" if r["minutes"] >= 30 else (f" **This was the short version ({r['minutes']:g} min), not the "
                                           "30-minute soak.**")
    return f"""## Soak

Steady load through the demo API ({r['rate']:g} tasks/s; every {SLEEP_EVERY}th task sleeps 0.5 s), `devstack restart worker`
every minute, devstack's RSS sampled every 5 s. Pass: no task lost and RSS within 10% (median of the last
minute against the first).{short}

Command: `{command}` (measured {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs).

| figure | value |
|---|---|
| duration | {r['minutes']:g} min |
| tasks enqueued | {r['enqueued']} (enqueue errors: {r['enqueue_errors']}) |
| tasks lost / wrong result | {r['lost']} / {r['wrong']} |
| worker restarts | {r['restarts_ok']} ok, {r['restarts_failed']} failed |
| drain after the load stopped | {r['drain_s']} s |
| devstack RSS first minute → last minute (max) | {r['rss_first_mib']} MiB → {r['rss_last_mib']} MiB ({r['rss_max_mib']} MiB) |
| RSS drift | {r['rss_drift_pct']:+.1f}% |
| result | {'PASS' if r['passed'] else 'FAIL'} |
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, default=4, help="tasks per second")
    parser.add_argument("--restart-every", type=float, default=60, help="seconds between worker restarts")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="devstack-soak-") as tmp:
        result = Soak(Path(tmp), args.minutes, args.rate, args.restart_every).run()
    print(json.dumps(result, indent=2))
    if not args.no_write:
        command = ".venv/bin/python bench/soak.py" + (f" --minutes {args.minutes:g}" if args.minutes != 30 else "")
        print(f"wrote {update_doc(markdown(result, command))}")
    return 0 if result["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
