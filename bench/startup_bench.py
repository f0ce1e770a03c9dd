"""Cold start to "all ready": devstack versus the same four commands under honcho, in one run.

"All ready", detected from outside the same way for both (devstack's own "ready" line is not trusted):
  - Redis answers an authenticated PING with PONG;
  - the API answers an HTTP GET of / with a status below 500;
  - the worker printed `<nodename> ready.` and answers a remote-control ping through the broker;
  - beat printed `beat: Starting...`.
The clock starts when the launcher is spawned (`devstack up --no-tui` / `honcho start`). Each run uses
a fresh folder (fresh Redis data, fresh beat schedule) and fresh ports; runs alternate between the two.

The honcho side runs exactly the argv devstack runs (read from `devstack status --json` of an uncounted
warm-up run, which also warms the page cache for both), with the same redis.conf and the same
environment wiring (CELERY_BROKER_URL, REDIS_URL, ...).

Each run also times the floor: the worker's command alone, its Redis already answering, nothing else
starting, from spawn to `ready.` + broker ping. Floor / honcho is the best ratio any launcher that starts
the worker cold could reach here.

Usage: python bench/startup_bench.py [--runs 5] [--no-write]
Writes the figures into docs/benchmarks.md under "## Cold start" (that section only).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil
from celery import Celery

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/startup_bench.py`
from bench.common import (  # noqa: E402
    DEVSTACK, HONCHO, LOAD_BEFORE, PASSWORD, demo_config, free_port, poll_until, redis_answers, spawn, stop_tree,
    update_doc)
from devstack.redis_server import RedisEndpoint, write_conf  # noqa: E402

WORKER_READY = re.compile(r"(\S+@\S+) ready\.")
BEAT_READY = "beat: Starting..."
TIMEOUT = 60.0
COMMAND = ".venv/bin/python bench/startup_bench.py --runs {runs}"


class Readiness:
    """Polls the four conditions from outside; returns the elapsed time when all hold."""

    def __init__(self, output: Path, redis_port: int, api_port: int):
        self.output, self.redis_port, self.api_port = output, redis_port, api_port
        self.broker = RedisEndpoint("bench", "127.0.0.1", redis_port, PASSWORD).url(1)
        self.done: dict[str, float] = {}
        self.cpu: float | None = None  # CPU seconds the launcher's tree used until all ready
        self._text = ""
        self._pos = 0
        self._node: str | None = None
        self._celery = Celery(broker=self.broker, set_as_current=False)

    def _read(self) -> str:
        with open(self.output, "rb") as f:
            f.seek(self._pos)
            data = f.read()
        self._pos += len(data)
        self._text += data.decode("utf-8", errors="replace")
        return self._text

    def _api(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.api_port}/", timeout=0.5) as resp:
                return resp.status < 500
        except urllib.error.HTTPError as exc:
            return exc.code < 500
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def _worker(self, text: str) -> bool:
        if self._node is None:
            match = WORKER_READY.search(text)
            if not match:
                return False
            self._node = match.group(1)
        try:
            replies = self._celery.control.ping(destination=[self._node], timeout=0.5) or []
        except Exception:
            return False
        return any(self._node in reply for reply in replies)

    def wait(self, started: float, proc: subprocess.Popen, only: tuple[str, ...] = ()) -> float:
        checks = {"redis": lambda t: redis_answers(self.redis_port), "api": lambda t: self._api(),
                  "worker": self._worker, "beat": lambda t: BEAT_READY in t}
        if only:
            checks = {name: check for name, check in checks.items() if name in only}

        def all_ready() -> float | None:
            text = self._read()
            for name, check in checks.items():
                if name not in self.done and check(text):
                    self.done[name] = time.monotonic() - started
            if len(self.done) == len(checks):
                took = time.monotonic() - started
                self.cpu = tree_cpu(proc.pid)
                return took
            if proc.poll() is not None:
                raise RuntimeError(f"the launcher exited early:\n{self._text[-3000:]}")
            return None

        elapsed = poll_until(all_ready, TIMEOUT - (time.monotonic() - started), interval=0.02)
        if elapsed is None:
            raise RuntimeError(f"not ready after {TIMEOUT:.0f} s (ready: {sorted(self.done)}):\n{self._text[-3000:]}")
        return elapsed


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of `pid` and every live descendant, each with its reaped children: on 2
    cores the wall time of a start can be no less than half of it, whatever else the machine runs."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return total
    for proc in procs:
        try:
            c = proc.cpu_times()
        except psutil.Error:
            continue
        total += c.user + c.system + c.children_user + c.children_system
    return total


def run_devstack(folder: Path) -> tuple[float, dict, dict]:
    redis_port, api_port = free_port(), free_port()
    config = demo_config(folder, redis_port, api_port)
    out = folder / "devstack.out"
    env = dict(os.environ)
    env.pop("FLASK_APP", None)
    started = time.monotonic()
    proc = spawn([DEVSTACK, "up", "--no-tui", "--config", str(config)], folder, out, env)
    ready = Readiness(out, redis_port, api_port)
    try:
        elapsed = ready.wait(started, proc)
        status = json.loads(subprocess.run([DEVSTACK, "status", "--json", "--config", str(config)], cwd=folder,
                                           capture_output=True, text=True, env=env).stdout)
    finally:
        stop_tree(proc, signal.SIGTERM)
    return elapsed, ready.done, status


def honcho_procfile(folder: Path, status: dict, redis_port: int, api_port: int) -> Path:
    """The argv devstack ran, moved to this folder and these ports."""
    state = status["state_dir"]
    lines = []
    for name in ("redis", "api", "worker", "beat"):
        argv = list(status["services"][name]["command"])
        if name == "redis":
            conf = folder / "redis.conf"
            (folder / "redis").mkdir(mode=0o700)
            write_conf(conf, port=redis_port, password=PASSWORD, data_dir=folder / "redis", persist=True,
                       bind="127.0.0.1 ::1")
            argv = [argv[0], str(conf)]
        elif name == "api":
            argv[argv.index("--port") + 1] = str(api_port)
        argv = [a.replace(state, str(folder)) for a in argv]
        lines.append(f"{name}: exec " + shlex.join(argv))
    procfile = folder / "Procfile"
    procfile.write_text("\n".join(lines) + "\n")
    return procfile


def run_honcho(folder: Path, status: dict) -> tuple[float, dict]:
    redis_port, api_port = free_port(), free_port()
    procfile = honcho_procfile(folder, status, redis_port, api_port)
    endpoint = RedisEndpoint("bench", "127.0.0.1", redis_port, PASSWORD)
    env = dict(os.environ, **endpoint.wiring(), PYTHONUNBUFFERED="1")
    env.pop("FLASK_APP", None)
    out = folder / "honcho.out"
    started = time.monotonic()
    proc = spawn([HONCHO, "-f", str(procfile), "-d", str(folder), "start"], folder, out, env)
    ready = Readiness(out, redis_port, api_port)
    try:
        elapsed = ready.wait(started, proc)
    finally:
        stop_tree(proc, signal.SIGINT)
    return elapsed, ready.done


def run_lone_worker(folder: Path, status: dict) -> float:
    """The floor: the worker alone, Redis already up and answering, nothing else starting.

    No launcher that starts the worker cold can have everything ready sooner than this.
    """
    redis_port = free_port()
    conf = folder / "redis.conf"
    (folder / "redis").mkdir(mode=0o700)
    write_conf(conf, port=redis_port, password=PASSWORD, data_dir=folder / "redis", persist=True,
               bind="127.0.0.1 ::1")
    server = subprocess.Popen([status["services"]["redis"]["command"][0], str(conf)], stdout=subprocess.DEVNULL,
                              start_new_session=True)
    endpoint = RedisEndpoint("bench", "127.0.0.1", redis_port, PASSWORD)
    env = dict(os.environ, **endpoint.wiring(), PYTHONUNBUFFERED="1")
    out = folder / "worker.out"
    try:
        ready = Readiness(out, redis_port, 0)
        out.touch()
        if not poll_until(lambda: redis_answers(redis_port), TIMEOUT, interval=0.01):
            raise RuntimeError(f"the floor's redis-server did not answer within {TIMEOUT:.0f} s")
        started = time.monotonic()
        worker = spawn(status["services"]["worker"]["command"], folder, out, env)
        try:
            return ready.wait(started, worker, only=("worker",))
        finally:
            stop_tree(worker, signal.SIGTERM)
    finally:
        stop_tree(server, signal.SIGTERM)


def write_markdown(runs: int, dev: list[float], hon: list[float], dev_parts: list[dict], hon_parts: list[dict],
                   procfile: str, lone: list[float]) -> str:
    med_d, med_h, med_l = statistics.median(dev), statistics.median(hon), statistics.median(lone)

    def parts(rows: list[dict]) -> str:
        return ", ".join(f"{k} {statistics.median(r[k] for r in rows):.2f} s" for k in ("redis", "api", "worker", "beat"))

    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    return f"""## Cold start

Time from spawning the launcher to "all ready" — Redis answers an authenticated PING, the API answers
HTTP, the worker printed `ready.` **and** answers a ping through the broker, beat printed
`beat: Starting...` — detected from outside by polling every 20 ms, the same way for both. Each run
uses a fresh folder and fresh ports; runs alternate. The honcho side runs the exact argv devstack
runs (taken from `devstack status --json`), the same redis.conf and the same environment.

Command: `{COMMAND.format(runs=runs)}` (from the repository root; measured {time.strftime('%Y-%m-%d')},
{os.cpu_count()} CPUs, {cpu}, Python {platform.python_version()};
load average before the run {LOAD_BEFORE:.2f}: other work on the machine slows both sides and adds noise).

| launcher | median | runs (s) | median per condition |
|---|---|---|---|
| devstack up --no-tui | **{med_d:.2f} s** | {', '.join(f'{x:.2f}' for x in dev)} | {parts(dev_parts)} |
| honcho start | **{med_h:.2f} s** | {', '.join(f'{x:.2f}' for x in hon)} | {parts(hon_parts)} |
| floor: the worker alone, Redis already up | **{med_l:.2f} s** | {', '.join(f'{x:.2f}' for x in lone)} | `ready.` + broker ping, nothing else starting |

Ratio devstack / honcho: **{med_d / med_h:.2f}** (target ≤ 0.5: {"met" if med_d / med_h <= 0.5 else "**not met**"}).
Floor / honcho: **{med_l / med_h:.2f}** — the best ratio any launcher that starts the worker cold can reach
on this machine: the same worker command, alone, with its Redis already answering and no other process
starting, is timed from its spawn to `ready.` + a broker ping, by the same poller.

Where the time goes: honcho's Redis is up ({statistics.median(r["redis"] for r in hon_parts):.2f} s) long before
Celery has finished importing, so the race devstack avoids (start Redis first, the apps the moment an
authenticated PING answers) costs honcho nothing here. devstack pays for its own start-up before it spawns
Redis (Python, click, the pydantic config validation, the state directory: Redis answers at
{statistics.median(r["redis"] for r in dev_parts):.2f} s) and then starts the apps after Redis. Both are dominated by
the worker importing Celery, kombu and the app (the floor row). Since the floor itself is
{med_l / med_h:.2f}× honcho, ≤ 0.5× cannot be reached by starting the worker faster: it would need the
worker's imports done before `devstack up` is typed, i.e. a process kept alive between runs, which the
no-orphans rule forbids.

Procfile used (ports and folder vary per run):

```
{procfile.strip()}
```
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)  # a user's project keeps its .pyc files (see bigapp_bench.py)
    dev, hon, dev_parts, hon_parts, lone = [], [], [], [], []
    with tempfile.TemporaryDirectory(prefix="devstack-bench-") as tmp:
        tmp_path = Path(tmp)
        (tmp_path / "warmup").mkdir()
        _, _, status = run_devstack(tmp_path / "warmup")
        procfile = ""
        for i in range(args.runs):
            order = ("devstack", "honcho", "floor") if i % 2 == 0 else ("honcho", "devstack", "floor")
            for which in order:
                folder = tmp_path / f"{which}-{i}"
                folder.mkdir()
                if which == "floor":
                    elapsed, done = run_lone_worker(folder, status), {}
                    lone.append(elapsed)
                elif which == "devstack":
                    elapsed, done, _ = run_devstack(folder)
                    dev.append(elapsed)
                    dev_parts.append(done)
                else:
                    elapsed, done = run_honcho(folder, status)
                    hon.append(elapsed)
                    hon_parts.append(done)
                    procfile = (folder / "Procfile").read_text()
                print(f"run {i + 1} {which:<8} {elapsed:6.2f} s  "
                      + " ".join(f"{k}={v:.2f}" for k, v in sorted(done.items(), key=lambda kv: kv[1])), flush=True)
    med_d, med_h, med_l = statistics.median(dev), statistics.median(hon), statistics.median(lone)
    print(f"\nmedian devstack {med_d:.2f} s, honcho {med_h:.2f} s, ratio devstack/honcho {med_d / med_h:.2f} "
          f"(target <= 0.5); the worker alone with Redis up {med_l:.2f} s = {med_l / med_h:.2f}x honcho")
    if not args.no_write:
        print(f"wrote {update_doc(write_markdown(args.runs, dev, hon, dev_parts, hon_parts, procfile, lone))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
