"""Learned preload lists and the fork-server question, measured on the big app (bench/bigapp) or any project.

  - cold start to all ready, `devstack up --no-tui`, then `devstack restart worker` from its spare:
    without a recorded list (.devstack/preload/ removed before each run) and with the list the previous
    run recorded; each spare's RSS beside its service's (`devstack status --json`) once it settled.
    (Run at 3372d42..8517956, when the spares of a cold start began with the recorded list while Redis
    started, this is what showed that to be slower on 2 cores; see the issue 10 note.)
  - the fork server (issue 10, item 3) without building it: the app's interpreter imports the union of the
    recorded lists once, then forks three children that import the app (`separate`: three processes
    importing list + app at once, as api, worker and beat do). Also whether the union's imports leave a
    thread running (a fork server must not fork then).

Usage: python bench/preload_bench.py [--config path/devstack.toml] [--runs 3]
Without --config the big app is generated (bench/bigapp/generate.py, its venv as bench/bigapp_bench.py).
Prints the figures; writes nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/preload_bench.py`
from bench.common import DEVSTACK, free_port, spawn, stop_tree  # noqa: E402

SERVICES = ("api", "worker", "beat")
PROBE = r'''
import json, os, sys, threading, time
names = json.loads(sys.argv[1]); mode = sys.argv[2]; app = sys.argv[3]
t0 = time.perf_counter()
def load(mods):
    for n in mods:
        try:
            __import__(n)
        except BaseException:
            pass
if mode == "fork":
    load(names)
    union = time.perf_counter() - t0
    threads = threading.active_count(), len(os.listdir("/proc/self/task"))
    pids = []
    for _ in range(3):
        pid = os.fork()
        if pid == 0:
            __import__(app)
            os._exit(0)
        pids.append(pid)
    for pid in pids:
        os.waitpid(pid, 0)
    print(json.dumps({"total": time.perf_counter() - t0, "union": union, "threads": threads}))
else:
    load(names)
    __import__(app)
    print(json.dumps({"total": time.perf_counter() - t0}))
'''


def status(config: Path) -> dict:
    done = subprocess.run([DEVSTACK, "status", "--json", "--config", str(config)], capture_output=True, text=True,
                          cwd=config.parent)
    return json.loads(done.stdout) if done.returncode == 0 else {}


def ready(s: dict) -> bool:
    services = s.get("services", {})
    return bool(services) and all(v.get("ready") for k, v in services.items() if "#" not in k)


def wait(predicate, timeout: float, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise SystemExit("timed out")


def tree_rss(pid: int | None) -> int:
    import psutil

    try:
        proc = psutil.Process(pid)
        return sum(p.memory_info().rss for p in (proc, *proc.children(recursive=True)))
    except (psutil.Error, TypeError):
        return 0


_last: list[dict] = []


def spares_settled(config: Path) -> dict | None:
    """The status once every spare's RSS held still (within 2 %) for one more second: done preloading."""
    st = status(config)
    rss = {n: st["services"][n].get("spare_rss") or 0 for n in SERVICES if n in st.get("services", {})}
    previous, _last[:] = (_last[0] if _last else {}), [rss]
    if all(rss.values()) and rss.keys() == previous.keys() and all(abs(rss[n] - previous[n]) <= 0.02 * rss[n] for n in rss):
        time.sleep(1)
        again = status(config)
        if all(abs((again["services"][n].get("spare_rss") or 0) - rss[n]) <= 0.02 * rss[n] for n in rss):
            return again
    return None


def one_start(config: Path, state: Path, keep_list: bool, out: Path) -> dict:
    if not keep_list:
        shutil.rmtree(state / "preload", ignore_errors=True)
    started = time.monotonic()
    proc = spawn([DEVSTACK, "up", "--no-tui", "--config", str(config)], config.parent, out)
    try:
        wait(lambda: ready(status(config)), 180)
        took = time.monotonic() - started
        s = wait(lambda: spares_settled(config), 90, 0.5)
        mem = {n: (tree_rss(s["services"][n]["pid"]), s["services"][n]["spare_rss"]) for n in SERVICES
               if n in s["services"]}
        before = time.monotonic()
        subprocess.run([DEVSTACK, "restart", "worker", "--config", str(config)], capture_output=True, cwd=config.parent)
        restart = time.monotonic() - before
        return {"ready": took, "mem": mem, "restart_worker": restart}
    finally:
        stop_tree(proc, signal.SIGTERM)


def fork_probe(python: str, app_dir: Path, state: Path, app: str, runs: int) -> dict:
    union: list[str] = []
    for n in SERVICES:
        try:
            union += [m for m in json.loads((state / "preload" / f"{n}.json").read_text())["modules"] if m not in union]
        except OSError:
            pass
    out: dict = {"modules": len(union), "fork": [], "separate": []}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:1/0")
    env.setdefault("CELERY_RESULT_BACKEND", "redis://127.0.0.1:1/0")
    for _ in range(runs):
        done = subprocess.run([python, "-c", PROBE, json.dumps(union), "fork", app], cwd=app_dir, env=env,
                              capture_output=True, text=True, check=True)
        out["fork"].append(json.loads(done.stdout.splitlines()[-1]))
        started = time.monotonic()
        procs = [subprocess.Popen([python, "-c", PROBE, json.dumps(union), "separate", app], cwd=app_dir, env=env,
                                  stdout=subprocess.DEVNULL) for _ in range(3)]
        for p in procs:
            p.wait()
        out["separate"].append(time.monotonic() - started)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--app", default="app", help="the module every service imports")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="preload-bench-"))
    if args.config is None:
        from bench.bigapp.generate import generate
        from bench.bigapp_bench import bench_venv

        python = str(bench_venv() / "python")
        config = generate(base / "app", python, free_port(), free_port())
    else:
        config, python = args.config.resolve(), None
    state = config.parent / ".devstack"
    rows: dict[str, list[dict]] = {"no list": [], "recorded list": []}
    one_start(config, state, True, base / "warmup.out")  # uncounted: page cache, pyc files, the first list
    for i in range(args.runs):
        for kind in (("no list", "recorded list") if i % 2 == 0 else ("recorded list", "no list")):
            row = one_start(config, state, kind == "recorded list", base / f"{kind}-{i}.out")
            rows[kind].append(row)
            print(f"run {i + 1} {kind:<14} ready {row['ready']:.2f} s  restart worker {row['restart_worker']:.2f} s  "
                  + "  ".join(f"{n} {m[0] / 2**20:.0f} MB (spare {m[1] / 2**20:.0f} MB)" for n, m in row["mem"].items()),
                  flush=True)
    for kind, values in rows.items():
        print(f"median {kind:<14} ready {statistics.median(r['ready'] for r in values):.2f} s")
    if python:
        probe = fork_probe(python, config.parent, state, args.app, args.runs)
        fork = [r["total"] for r in probe["fork"]]
        print(f"fork server probe ({probe['modules']} modules in the union): import once + fork 3 x import app: "
              f"median {statistics.median(fork):.2f} s (union alone {statistics.median(r['union'] for r in probe['fork']):.2f} s, "
              f"threads after the union {probe['fork'][0]['threads']}); 3 processes at once: "
              f"median {statistics.median(probe['separate']):.2f} s")
    shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
