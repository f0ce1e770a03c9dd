"""Hot reload: time from a file write until the new code serves, devstack versus the common recipes.

Same small Flask + Celery app for every launcher (the one tests/functional/test_reload.py writes):
  - worker: write tasks.py, stop the clock when the worker printed a new `<nodename> ready.` line AND
    answers a remote-control ping through the broker (nodename taken from that line). devstack
    (`devstack up --no-tui`) versus `watchfiles --filter python 'celery -A app:celery worker ...'`, for
    the solo pool and prefork -c 2. The watchfiles side is run as people run it (mingle and gossip on)
    and, for reference, with `--without-mingle --without-gossip`.
  - API: write views.py with a new version string, stop the clock when GET /version answers it.
    devstack versus `flask run --debug` (Werkzeug's reloader; its stat reloader when watchdog is absent).
Each figure is the median of --reloads writes, 1–2 s apart (random), after an uncounted warm-up.

Usage: python bench/reload_bench.py [--reloads 5] [--no-write]
Writes the figures into docs/benchmarks.md under "## Reload" (that section only).
"""
from __future__ import annotations

import argparse
import os
import platform
import queue
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/reload_bench.py`
from bench.common import BIN, PASSWORD, free_port, poll_until, redis_answers, update_doc  # noqa: E402
from devstack.broker import worker_ping  # noqa: E402
from tests.conftest import redis_server_binary  # noqa: E402
from tests.functional.test_reload import write_app, write_tasks, write_views  # noqa: E402
from tests.stack import http_get  # noqa: E402

READY = re.compile(r"(\S+@\S+) ready\.")
TIMEOUT = 60.0
COMMAND = ".venv/bin/python bench/reload_bench.py --reloads {reloads}"


class Launched:
    """A launcher process whose merged output lines are collected with their arrival time."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]):
        self.proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.log.append(line)
            self.lines.put((time.monotonic(), line))

    def drain(self) -> None:
        while not self.lines.empty():
            self.lines.get_nowait()

    def wait_line(self, pattern: re.Pattern, deadline: float) -> re.Match:
        while True:
            try:
                _, line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError("\n".join(self.log[-30:]))
            m = pattern.search(line)
            if m:
                return m

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def worker_back(launched: Launched, broker: str, started: float) -> float:
    """Seconds from `started` until a new `ready.` line came and that node answers a ping."""
    deadline = started + TIMEOUT
    node = launched.wait_line(READY, deadline).group(1)
    if not poll_until(lambda: worker_ping(broker, [node], timeout=0.3).get(node), deadline - time.monotonic(),
                      interval=0):
        raise TimeoutError(f"{node} never answered a ping")
    return time.monotonic() - started


def api_answers(port: int, version: str, started: float) -> float:
    if not poll_until(lambda: (http_get(f"http://127.0.0.1:{port}/version", timeout=1) or {}).get("version") == version,
                      started + TIMEOUT - time.monotonic(), interval=0.01):
        raise TimeoutError(f"the API never answered version {version}")
    return time.monotonic() - started


def measure(reloads: int, write, wait) -> list[float]:
    """One uncounted warm-up reload, then `reloads` counted ones."""
    times = []
    rng = random.Random(reloads)
    for i in range(reloads + 1):
        # A random gap: a fixed 1 s one phase-locks with Werkzeug's 1 s stat poll and biases its figure.
        time.sleep(1.0 + rng.random())
        version = f"b{i}-{time.monotonic_ns()}"
        started = time.monotonic()
        write(version)
        took = wait(version, started)
        if i:
            times.append(took)
    return times


# ----- launchers ----------------------------------------------------------------------------------------
def devstack_run(folder: Path, pool: str, reloads: int) -> dict[str, list[float]]:
    # One write a second is a restart storm by the default rule (> 10 a minute): lift the limit here.
    config = write_app(folder, concurrency=2 if pool == "prefork" else 1, reload_extra="storm_limit = 1000")
    text = config.read_text().replace("[worker]\n", f'[worker]\npool = "{pool}"\n')
    config.write_text(text.replace("[redis]\n", f'[redis]\npassword = "{PASSWORD}"\n'))
    env = {**os.environ, "NO_COLOR": "1"}
    launched = Launched([str(BIN / "devstack"), "up", "--no-tui", "--config", str(config)], folder, env)
    try:
        launched.wait_line(re.compile(r"all services ready"), time.monotonic() + TIMEOUT)
        from devstack.config import load_config

        cfg = load_config(config)
        broker = f"redis://:{PASSWORD}@127.0.0.1:{cfg.redis.port}/1"
        launched.drain()

        def worker_wait(version, started):
            return worker_back(launched, broker, started)

        out = {"worker": measure(reloads, lambda v: write_tasks(folder, v), worker_wait)}
        if pool == "prefork":
            time.sleep(1.5)
            out["api"] = measure(reloads, lambda v: write_views(folder, v),
                                 lambda v, s: api_answers(cfg.api.port, v, s))
        return out
    except TimeoutError:
        print("\n".join(line for line in launched.log if "GET /version" not in line)[-6000:], file=sys.stderr)
        raise
    finally:
        launched.stop()


def plain_env(folder: Path, redis_port: int) -> dict[str, str]:
    url = f"redis://:{PASSWORD}@127.0.0.1:{redis_port}/1"
    env = {**os.environ, "CELERY_BROKER_URL": url, "CELERY_RESULT_BACKEND": url, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": str(folder), "NO_COLOR": "1"}
    env.pop("FLASK_APP", None)
    return env


def watchfiles_run(folder: Path, redis_port: int, pool: str, fast: bool, reloads: int) -> list[float]:
    write_app(folder)
    env = plain_env(folder, redis_port)
    worker = f"{BIN / 'celery'} -A app:celery worker -P {pool} -c {2 if pool == 'prefork' else 1} -l INFO -n bench@%h"
    if fast:
        worker += " --without-mingle --without-gossip"
    launched = Launched([str(BIN / "watchfiles"), "--filter", "python", worker, str(folder)], folder, env)
    try:
        worker_back(launched, env["CELERY_BROKER_URL"], time.monotonic())
        launched.drain()
        return measure(reloads, lambda v: write_tasks(folder, v),
                       lambda v, s: worker_back(launched, env["CELERY_BROKER_URL"], s))
    finally:
        launched.stop()


def flask_run(folder: Path, redis_port: int, reloads: int) -> list[float]:
    write_app(folder)
    port = free_port()
    env = plain_env(folder, redis_port)
    launched = Launched([str(BIN / "flask"), "--app", "app:app", "run", "--debug", "--port", str(port)], folder, env)
    try:
        api_answers(port, "v1", time.monotonic())
        return measure(reloads, lambda v: write_views(folder, v), lambda v, s: api_answers(port, v, s))
    finally:
        launched.stop()


def start_redis(folder: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    proc = subprocess.Popen([redis_server_binary(), "--port", str(port), "--bind", "127.0.0.1", "--requirepass",
                             PASSWORD, "--save", "", "--appendonly", "no", "--dir", str(folder)],
                            stdout=subprocess.DEVNULL)
    poll_until(lambda: redis_answers(port), 5, interval=0.01)
    return proc, port


# ----- report -------------------------------------------------------------------------------------------
def med(values: list[float]) -> float:
    return statistics.median(values)


def report(results: dict[str, list[float]], reloads: int) -> str:
    rows = [("worker, solo", "devstack solo", "watchfiles solo", "watchfiles solo fast"),
            ("worker, prefork -c 2", "devstack prefork", "watchfiles prefork", "watchfiles prefork fast")]
    lines = [
        "## Reload",
        "",
        f"Command: `{COMMAND.format(reloads=reloads)}` — {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}. "
        f"Median of {reloads} writes each, 1–2 s apart (after one uncounted warm-up), from the write until the new code "
        "serves: for the worker a new `ready.` line and a ping answered through the broker; for the API "
        "`GET /version` answering the new string. devstack runs its defaults (a write restarts the services "
        "that imported the file; this small app's tasks.py and views.py are both imported by API and worker, so "
        "each write restarts both), except `[reload] storm_limit = 1000`: a write every second would otherwise "
        "trip the storm guard.",
        "",
        "| reload | devstack | `watchfiles` recipe | ratio | recipe + `--without-mingle --without-gossip` | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for label, ours, theirs, fast in rows:
        a, b, c = med(results[ours]), med(results[theirs]), med(results[fast])
        lines.append(f"| {label} | {a:.2f} s | {b:.2f} s | **{a / b:.2f}×** | {c:.2f} s | {a / c:.2f}× |")
    a, b = med(results["devstack api"]), med(results["flask --debug"])
    lines.append(f"| API (Flask) | {a:.2f} s | `flask run --debug`: {b:.2f} s | **{a / b:.2f}×** | | |")
    lines += ["", "Targets (issue 4): worker ≤ 0.3× the watchfiles recipe (solo and prefork), API ≤ 1.0× "
              "Werkzeug's reloader.", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reloads", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="reload-bench-"))
    redis_proc, redis_port = start_redis(base)
    results: dict[str, list[float]] = {}
    try:
        for pool in ("solo", "prefork"):
            out = devstack_run(base / f"devstack-{pool}", pool, args.reloads)
            results[f"devstack {pool}"] = out["worker"]
            if "api" in out:
                results["devstack api"] = out["api"]
            results[f"watchfiles {pool}"] = watchfiles_run(base / f"wf-{pool}", redis_port, pool, False, args.reloads)
            results[f"watchfiles {pool} fast"] = watchfiles_run(base / f"wff-{pool}", redis_port, pool, True,
                                                                args.reloads)
        results["flask --debug"] = flask_run(base / "flask", redis_port, args.reloads)
    finally:
        redis_proc.terminate()
        redis_proc.wait()
        shutil.rmtree(base, ignore_errors=True)
    for name, values in results.items():
        print(f"{name:<24} median {med(values):.3f} s   all: {', '.join(f'{v:.3f}' for v in values)}")
    text = report(results, args.reloads)
    print()
    print(text)
    if not args.no_write:
        update_doc(text)


if __name__ == "__main__":
    main()
