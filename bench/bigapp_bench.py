"""The big app (bench/bigapp/generate.py, shaped like Dify's API): devstack against the usual recipes, in one run.

  - worker reload after saving a task module only the worker imports: devstack (`devstack up --no-tui`)
    versus `watchfiles --filter python 'celery -A app.celery worker ...' .`; clock: write -> new `ready.` line
    + the node answers a ping through the broker (as bench/reload_bench.py).
  - API reload after saving a view only the API imports: devstack versus `flask run --debug`; clock:
    write -> GET of the view answers the new version.
  - which services devstack restarted for each save (pids from `devstack status --json` before and
    after), and for one save of a service module both API and worker import.
  - cold start to all ready (bench/startup_bench.py's conditions): devstack versus honcho running
    (a) the exact argv devstack runs, (b) what a user writes in a Procfile.
  - the import time of the app alone, in its own environment.
The app runs in its own virtualenv (requirements.txt + requirements-anchors.txt), created once and
cached in ~/.cache/devstack-bench/bigapp-venv (BIGAPP_VENV overrides); devstack runs from this checkout.

Usage: python bench/bigapp_bench.py [--reloads 5] [--runs 3] [--no-write] [--cold-only]
Writes the figures into docs/benchmarks.md under "## Big app" (that section only); `--cold-only` runs and
prints the cold starts alone (and writes nothing).
"""
from __future__ import annotations

import argparse
import hashlib
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as `python bench/bigapp_bench.py`
from bench.bigapp.generate import (BENCH_ENDPOINT, BENCH_SERVICE, BENCH_TASK, BENCH_VIEW, QUEUES,  # noqa: E402
                                   generate, shape, write_probe)
from bench.common import (DEVSTACK, LOAD_BEFORE, PASSWORD, ROOT, free_port, poll_until, spawn,  # noqa: E402
                          stop_tree, update_doc)
from bench.reload_bench import Launched, measure, start_redis, worker_back  # noqa: E402
from bench.startup_bench import Readiness, honcho_procfile  # noqa: E402
from devstack.redis_server import RedisEndpoint  # noqa: E402

HERE = ROOT / "bench" / "bigapp"
REQUIREMENTS = (HERE / "requirements.txt", HERE / "requirements-anchors.txt")
VENV = Path(os.environ.get("BIGAPP_VENV", Path.home() / ".cache" / "devstack-bench" / "bigapp-venv"))
TIMEOUT = 120.0
COMMAND = ".venv/bin/python bench/bigapp_bench.py --reloads {reloads} --runs {runs}"
APP_SERVICES = ("api", "worker", "beat")


# ----- the app and its environment ----------------------------------------------------------------------
def bench_venv() -> Path:
    """The bin folder of the app's own virtualenv, (re)built when the requirement files changed."""
    digest = hashlib.sha256(b"".join(p.read_bytes() for p in REQUIREMENTS)).hexdigest()
    stamp = VENV / "requirements.sha256"
    if not (stamp.exists() and stamp.read_text() == digest):
        shutil.rmtree(VENV, ignore_errors=True)
        base = Path(sys.base_prefix) / "bin" / "python3"  # not this venv's: the app's is its own
        print(f"creating {VENV} (pip install, ~2 min)...", flush=True)
        subprocess.run([str(base), "-m", "venv", str(VENV)], check=True)
        argv = [str(VENV / "bin" / "pip"), "install", "-q", "--disable-pip-version-check"]
        for req in REQUIREMENTS:
            argv += ["-r", str(req)]
        subprocess.run(argv, check=True)
        stamp.write_text(digest)
    return VENV / "bin"


def app_env(bindir: Path, endpoint: RedisEndpoint | None = None) -> dict[str, str]:
    """The environment of an anchor: the app's venv activated, devstack's Redis wiring when given."""
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
           "VIRTUAL_ENV": str(bindir.parent), "PYTHONUNBUFFERED": "1", "NO_COLOR": "1"}
    env.pop("FLASK_APP", None)
    return {**env, **endpoint.wiring()} if endpoint else env


def import_times(app: Path, bindir: Path, runs: int = 3) -> dict[str, list[float]]:
    """Seconds to import the app as the API does, and as the worker does (plus its task modules)."""
    probes = {"api": "import app",
              "worker": "import sys; sys.argv = ['celery', 'worker']; import app; app.celery.loader.import_default_modules()"}
    out: dict[str, list[float]] = {}
    for name, code in probes.items():
        timer = f"import time; t = time.perf_counter(); {code}; print(time.perf_counter() - t)"
        for _ in range(runs):
            started = time.monotonic()
            done = subprocess.run([str(bindir / "python"), "-c", timer], cwd=app, capture_output=True, text=True,
                                  env=app_env(bindir), check=True)
            out.setdefault(f"{name} import", []).append(float(done.stdout.split()[-1]))
            out.setdefault(f"{name} process", []).append(time.monotonic() - started)
    return out


# ----- devstack -------------------------------------------------------------------------------------------
def status(config: Path) -> dict:
    done = subprocess.run([DEVSTACK, "status", "--json", "--config", str(config)], capture_output=True, text=True,
                          cwd=config.parent)
    return json.loads(done.stdout)


def pids(config: Path) -> dict[str, int]:
    return {name: s["pid"] for name, s in status(config)["services"].items() if name in APP_SERVICES}


def answers(port: int, key: str, value: str, started: float) -> float:
    """Seconds from `started` until GET BENCH_ENDPOINT has `value` under `key`."""
    def check() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{BENCH_ENDPOINT}", timeout=1) as resp:
                return json.load(resp).get(key) == value
        except (OSError, ValueError, http.client.HTTPException):  # the old generation stopped mid-answer
            return False

    if not poll_until(check, started + TIMEOUT - time.monotonic(), interval=0.01):
        raise TimeoutError(f"{BENCH_ENDPOINT} never answered {key}={value}")
    return time.monotonic() - started


class Restarts:
    """Which of api/worker/beat got a new pid across each save, from `devstack status --json`."""

    def __init__(self, config: Path):
        self.config, self.before, self.seen = config, pids(config), []

    def after(self) -> None:
        now = pids(self.config)
        self.seen.append(sorted(n for n in APP_SERVICES if now.get(n) != self.before.get(n)))
        self.before = now


def devstack_reloads(app: Path, config: Path, reloads: int) -> dict:
    endpoint = RedisEndpoint("bench", "127.0.0.1", _toml_port(config, "redis"), PASSWORD)
    api_port = _toml_port(config, "api")
    launched = Launched([DEVSTACK, "up", "--no-tui", "--config", str(config)], app, {**os.environ, "NO_COLOR": "1"})
    try:
        launched.wait_line(re.compile(r"all services ready"), time.monotonic() + TIMEOUT)
        out: dict = {"python": status(config)["python"]}
        # Warm reloads are measured: a save before the services' spares have imported restarts cold (on 2 cores
        # the spares import one at a time once all are ready; the figure says how long that takes).
        after_ready = time.monotonic()
        poll_until(lambda: all(status(config)["services"][n]["spare_ready"] for n in ("api", "worker")), 60, 0.5)
        out["spares ready"] = time.monotonic() - after_ready
        launched.drain()
        restarts = Restarts(config)

        def worker_wait(version, started):
            took = worker_back(launched, endpoint.url(1), started)
            restarts.after()
            return took

        def api_wait(version, started):
            took = answers(api_port, "version", version, started)
            time.sleep(1.0)  # let a wrongly planned worker restart show its new pid
            restarts.after()
            return took

        out["worker"] = measure(reloads, lambda v: write_probe(app, BENCH_TASK, v), worker_wait)
        out["worker restarted"], restarts.seen = restarts.seen, []
        out["worker ready in"] = _ready_in(launched.log, "worker")
        time.sleep(1.5)
        out["api"] = measure(reloads, lambda v: write_probe(app, BENCH_VIEW, v), api_wait)
        out["api restarted"], restarts.seen = restarts.seen, []
        out["api ready in"] = _ready_in(launched.log, "api")
        time.sleep(1.5)
        version, started = f"s-{time.monotonic_ns()}", time.monotonic()
        write_probe(app, BENCH_SERVICE, version)
        launched.drain()
        out["shared"] = max(worker_back(launched, endpoint.url(1), started),
                            answers(api_port, "service", version, started))
        restarts.after()
        out["shared restarted"] = restarts.seen
        return out
    except TimeoutError:
        print("\n".join(line for line in launched.log if "GET /" not in line)[-6000:], file=sys.stderr)
        raise
    finally:
        launched.stop()


def _ready_in(log: list[str], service: str) -> list[float]:
    """devstack's own figure for each start of `service` ("worker ready — ready in 4.21 s")."""
    found = []
    for line in log:
        if f"devstack | {service} ready" in line and "ready in " in line:
            found.append(float(line.rsplit("ready in ", 1)[1].split()[0]))
    return found


def _toml_port(config: Path, table: str) -> int:
    import tomllib

    return tomllib.loads(config.read_text())[table]["port"]


# ----- the anchors ----------------------------------------------------------------------------------------
def worker_argv(bindir: Path) -> str:
    return (f"{bindir / 'celery'} -A app.celery worker -P prefork -c 2 -Q {','.join(QUEUES)} -l INFO -n bench@%h")


def watchfiles_reloads(app: Path, bindir: Path, endpoint: RedisEndpoint, reloads: int) -> list[float]:
    launched = Launched([str(bindir / "watchfiles"), "--filter", "python", worker_argv(bindir), str(app)], app,
                        app_env(bindir, endpoint))
    try:
        worker_back(launched, endpoint.url(1), time.monotonic())
        launched.drain()
        return measure(reloads, lambda v: write_probe(app, BENCH_TASK, v),
                       lambda v, s: worker_back(launched, endpoint.url(1), s))
    finally:
        launched.stop()


def flask_reloads(app: Path, bindir: Path, endpoint: RedisEndpoint, reloads: int) -> list[float]:
    port = free_port()
    write_probe(app, BENCH_VIEW, "f0")
    launched = Launched([str(bindir / "flask"), "--app", "app", "run", "--debug", "--port", str(port)], app,
                        app_env(bindir, endpoint))
    try:
        answers(port, "version", "f0", time.monotonic())
        return measure(reloads, lambda v: write_probe(app, BENCH_VIEW, v), lambda v, s: answers(port, "version", v, s))
    finally:
        launched.stop()


# ----- cold start -----------------------------------------------------------------------------------------
def cold_devstack(app: Path, config: Path, folder: Path, want_status: bool = False) -> tuple[float, dict, dict]:
    """Spawn to all ready; with want_status, also `devstack status --json` of the running stack."""
    out = folder / "devstack.out"
    env = {k: v for k, v in os.environ.items() if k != "FLASK_APP"}
    started = time.monotonic()
    proc = spawn([DEVSTACK, "up", "--no-tui", "--config", str(config)], app, out, env)
    ready = Readiness(out, _toml_port(config, "redis"), _toml_port(config, "api"))
    try:
        took = ready.wait(started, proc)
        if want_status:  # the warm-up: the services' preload lists (written once imports settle) serve ZYGOTE
            lists = [app / ".devstack" / "preload" / f"{name}.json" for name in APP_SERVICES]
            poll_until(lambda: all(p.exists() for p in lists), 30)
        return took, {**ready.done, "cpu": ready.cpu}, status(config) if want_status else {}
    finally:
        stop_tree(proc, signal.SIGTERM)


def _ports(status_json: dict) -> tuple[int, int]:
    """Free ports for an anchor's Redis and API, never devstack's own: those are free between runs too, and
    the next devstack run would find its API port taken by an anchor that is still stopping."""
    taken = {int(b) for s in status_json["services"].values() for a, b in zip(s["command"], s["command"][1:])
             if a == "--port"} | {status_json["redis"]["port"]}
    ports: list[int] = []
    while len(ports) < 2:
        port = free_port()
        if port not in taken and port not in ports:
            ports.append(port)
    return ports[0], ports[1]


def user_procfile(folder: Path, exact: Path, bindir: Path, api_port: int) -> Path:
    """What a user writes (same Redis line as the exact Procfile; a free port instead of Flask's 5000).

    `-A app.celery` as Dify's README has it: `-A app` finds the module's Flask `app` first and fails.
    beat gets `-l INFO`: at its default level it never logs `beat: Starting...`, the readiness condition.
    """
    redis_line = next(line for line in exact.read_text().splitlines() if line.startswith("redis:"))
    procfile = folder / "Procfile.user"
    procfile.write_text(f"""{redis_line}
api: {bindir / 'flask'} --app app run --port {api_port}
worker: {bindir / 'celery'} -A app.celery worker -l INFO
beat: {bindir / 'celery'} -A app.celery beat -l INFO
""")
    return procfile


def cold_honcho(app: Path, bindir: Path, folder: Path, status_json: dict, user: bool) -> tuple[float, dict, str]:
    redis_port, api_port = _ports(status_json)
    procfile = honcho_procfile(folder, status_json, redis_port, api_port)
    if user:
        procfile = user_procfile(folder, procfile, bindir, api_port)
        for stale in app.glob("celerybeat-schedule*"):
            stale.unlink()  # `celery -A app.celery beat` keeps its schedule in the app's folder
    endpoint = RedisEndpoint("bench", "127.0.0.1", redis_port, PASSWORD)
    out = folder / "honcho.out"
    started = time.monotonic()
    proc = spawn([str(bindir / "honcho"), "-f", str(procfile), "-d", str(app), "start"], app, out,
                 app_env(bindir, endpoint))
    ready = Readiness(out, redis_port, api_port)
    try:
        took = ready.wait(started, proc)
        return took, {**ready.done, "cpu": ready.cpu}, procfile.read_text()
    finally:
        stop_tree(proc, signal.SIGINT)


# The floor a fork server could reach (issue 10 item 3), measured without devstack: one process in the app's
# interpreter imports the union of the services' recorded preload lists, checks that no thread runs, then
# forks api, worker and beat, each running its console script's main with the exact argv. OpenBLAS (numpy)
# starts one thread per core at import: OPENBLAS_NUM_THREADS=1 in this process only keeps it single-threaded
# (the forked services then compute BLAS on one thread: the same results, slower on big matrices).
ZYGOTE = r"""
import ctypes, importlib, json, os, runpy, shlex, signal, sys, threading
os.environ["OPENBLAS_NUM_THREADS"] = "1"
state, lines = sys.argv[1], sys.argv[2:]
names = []
for service in ("api", "worker", "beat"):
    with open(os.path.join(state, "preload", service + ".json")) as f:
        names += [n for n in json.load(f)["modules"] if n not in names]
for name in names:
    try:
        importlib.import_module(name)
    except Exception:
        pass
del os.environ["OPENBLAS_NUM_THREADS"]
tasks = len(os.listdir("/proc/self/task"))
print(f"zygote: {len(names)} modules, {tasks} task(s), {threading.active_count()} thread(s)", flush=True)
if tasks != 1 or threading.active_count() != 1:
    sys.exit("zygote: a thread runs, forking is not safe")
children = []


def stop(signum, frame):  # each service in its own group: stop them all, then the waits below end
    for pid in children:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)
for line in lines:
    argv = shlex.split(line)
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.setsid()
        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: dies with this process
        sys.argv = argv
        sys.path[0] = os.path.dirname(argv[0])
        runpy.run_path(argv[0], run_name="__main__")
        sys.exit(0)
    children.append(pid)
while children:
    try:
        pid, _ = os.wait()
    except ChildProcessError:
        break
    if pid in children:
        children.remove(pid)
"""


def cold_zygote(app: Path, bindir: Path, folder: Path, status_json: dict) -> tuple[float, dict]:
    """honcho runs Redis and ZYGOTE (given the exact argv of api, worker and beat); the same poller."""
    redis_port, api_port = _ports(status_json)
    exact = honcho_procfile(folder, status_json, redis_port, api_port).read_text().splitlines()
    argvs = [line.split(": exec ", 1)[1] for line in exact if not line.startswith("redis:")]
    script = folder / "zygote.py"
    script.write_text(ZYGOTE)
    procfile = folder / "Procfile.zygote"
    procfile.write_text(f"{exact[0]}\nzygote: exec {bindir / 'python'} {script} {status_json['state_dir']} "
                        + " ".join(shlex.quote(a) for a in argvs) + "\n")
    out = folder / "honcho.out"
    started = time.monotonic()
    proc = spawn([str(bindir / "honcho"), "-f", str(procfile), "-d", str(app), "start"], app, out,
                 app_env(bindir, RedisEndpoint("bench", "127.0.0.1", redis_port, PASSWORD)))
    ready = Readiness(out, redis_port, api_port)
    try:
        took = ready.wait(started, proc)
        return took, {**ready.done, "cpu": ready.cpu}
    finally:
        stop_tree(proc, signal.SIGINT)


def cold_starts(app: Path, config: Path, bindir: Path, base: Path, runs: int, zygote: bool = False) -> dict:
    (base / "warmup").mkdir()
    # Uncounted: page cache, pyc files, the state folder; and the argv devstack runs.
    _, _, status_json = cold_devstack(app, config, base / "warmup", want_status=True)
    out: dict = {"devstack": [], "honcho exact": [], "honcho user": [], "parts": {}, "procfiles": {}}
    kinds = ["devstack", "honcho exact", "honcho user", *(["zygote"] if zygote else [])]
    for i in range(runs):
        for kind in kinds[i % len(kinds):] + kinds[:i % len(kinds)]:
            folder = base / f"{kind.replace(' ', '-')}-{i}"
            folder.mkdir()
            if kind == "devstack":
                took, parts, _ = cold_devstack(app, config, folder)
            elif kind == "zygote":
                took, parts = cold_zygote(app, bindir, folder, status_json)
            else:
                took, parts, procfile = cold_honcho(app, bindir, folder, status_json, kind == "honcho user")
                out["procfiles"][kind] = procfile
            out.setdefault(kind, []).append(took)
            out["parts"].setdefault(kind, []).append(parts)
            print(f"cold run {i + 1} {kind:<13} {took:6.2f} s  "
                  + " ".join(f"{k}={v:.2f}" for k, v in sorted(parts.items(), key=lambda kv: kv[1])), flush=True)
    return out


# ----- report ---------------------------------------------------------------------------------------------
def med(values: list[float]) -> float:
    return statistics.median(values)


def _restart_counts(seen: list[list[str]]) -> str:
    return ", ".join(f"{n} {sum(n in s for s in seen)}/{len(seen)}" for n in APP_SERVICES)


def _parts(rows: list[dict]) -> str:
    return ", ".join(f"{k} {med([r[k] for r in rows]):.2f} s" for k in ("redis", "api", "worker", "beat"))


def _cpu(cold: dict, kind: str) -> str:
    return f"{med([r['cpu'] for r in cold['parts'][kind]]):.2f} s"


def cold_table(args, cold: dict) -> list[str]:
    cd, che, chu = med(cold["devstack"]), med(cold["honcho exact"]), med(cold["honcho user"])

    def runs(values: list[float]) -> str:
        return ", ".join(f"{v:.2f}" for v in values)

    return [
        f"Cold start to all ready (bench/startup_bench.py's four conditions, polled every 20 ms), median of "
        f"{args.runs} runs each, alternating; devstack keeps its state folder between runs (as a user's project "
        "does), each honcho run gets a fresh Redis.",
        "",
        "| launcher | median | runs (s) | median per condition | CPU until all ready | devstack / it |",
        "|---|---|---|---|---|---|",
        f"| devstack up --no-tui | **{cd:.2f} s** | {runs(cold['devstack'])} | {_parts(cold['parts']['devstack'])} | "
        f"{_cpu(cold, 'devstack')} | |",
        f"| honcho, the exact argv devstack runs | **{che:.2f} s** | {runs(cold['honcho exact'])} | "
        f"{_parts(cold['parts']['honcho exact'])} | {_cpu(cold, 'honcho exact')} | **{cd / che:.2f}×** "
        f"(target ≤ 1.0: {verdict(cd / che, 1.0)}) |",
        f"| honcho, a user's Procfile | **{chu:.2f} s** | {runs(cold['honcho user'])} | "
        f"{_parts(cold['parts']['honcho user'])} | {_cpu(cold, 'honcho user')} | **{cd / chu:.2f}×** "
        f"(target ≤ 0.5: {verdict(cd / chu, 0.5)}) |",
        *([f"| fork-server floor (ZYGOTE in bench/bigapp_bench.py, not devstack) | **{med(cold['zygote']):.2f} s** | "
           f"{runs(cold['zygote'])} | {_parts(cold['parts']['zygote'])} | {_cpu(cold, 'zygote')} | it / honcho exact: "
           f"**{med(cold['zygote']) / che:.2f}×** |"] if cold.get("zygote") else []),
        "",
        "CPU until all ready: user + system seconds of the launcher's whole process tree at that moment (median): "
        "unlike the wall times it hardly depends on what else the machine runs, and on 2 cores a start takes at "
        "least half of it.",
        "",
    ]


def verdict(ratio: float, target: float) -> str:
    return "met" if ratio <= target else "**not met**"


def report(args, modules: int, imports: dict, dev: dict, anchors: dict, cold: dict, python: dict) -> str:
    w, wf = med(dev["worker"]), med(anchors["watchfiles"])
    a, fl = med(dev["api"]), med(anchors["flask"])

    def runs(values: list[float]) -> str:
        return ", ".join(f"{v:.2f}" for v in values)

    imp = " · ".join(f"{k} {med(v):.2f} s" for k, v in imports.items())
    lines = [
        "## Big app",
        "",
        f"Command: `{COMMAND.format(reloads=args.reloads, runs=args.runs)}{' --zygote' if args.zygote else ''}` (from the repository root; "
        f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; load average "
        f"before the run {LOAD_BEFORE:.2f}, after {os.getloadavg()[0]:.2f}: other engineers' tests share the "
        "machine, so the ratios within this run are what counts).",
        "",
        f"The app: `bench/bigapp/generate.py` writes {modules} modules shaped like Dify's API (create_app() with 11 "
        f"extensions, FlaskTask, {shape()}) importing SQLAlchemy, pandas, numpy, pydantic, "
        f"requests; its own virtualenv ({python['path']}, which `devstack status --json` reports as the services' "
        f"interpreter: {python['source']}). devstack runs the generated devstack.toml: api, worker prefork -c 2 "
        f"-Q {','.join(QUEUES)}, beat, `[reload] storm_limit = 1000`. Import of the app alone, median of 3 "
        f"(in-process import · whole `python -c` process): {imp}.",
        "",
        f"Reloads: median of {args.reloads} saves, 1–2 s apart, after one uncounted warm-up, once the warm spares of "
        f"api and worker have imported their libraries (`spare_ready` in `devstack status --json`: "
        f"{dev['spares ready']:.1f} s after all ready; a save before that restarts cold). Worker: save "
        f"`{BENCH_TASK}` → a new `ready.` line and a broker ping answered. API: save `{BENCH_VIEW}` → "
        f"`GET {BENCH_ENDPOINT}` answers the new version.",
        "",
        "| reload | devstack | anchor | ratio | target |",
        "|---|---|---|---|---|",
        f"| worker, save of a task module | {w:.2f} s ({runs(dev['worker'])}) | `watchfiles --filter python "
        f"'celery -A app.celery worker -P prefork -c 2 -Q …'`: {wf:.2f} s ({runs(anchors['watchfiles'])}) | "
        f"**{w / wf:.2f}×** | ≤ 0.2×: {verdict(w / wf, 0.2)} |",
        f"| API, save of a view | {a:.2f} s ({runs(dev['api'])}) | `flask run --debug`: {fl:.2f} s "
        f"({runs(anchors['flask'])}) | **{a / fl:.2f}×** | ≤ 0.3×: {verdict(a / fl, 0.3)} |",
        "",
        "Which services devstack restarted (new pid in `devstack status --json`, warm-up save included): "
        f"task module: {_restart_counts(dev['worker restarted'])}; view: {_restart_counts(dev['api restarted'])}; "
        f"`{BENCH_SERVICE}` (imported by API and worker), one save: {', '.join(dev['shared restarted'][0]) or 'none'}"
        f" ({dev['shared']:.2f} s until both serve it). devstack's own \"ready in\" of the restarted service "
        f"(spawn → ready, median): worker {med(dev['worker ready in'] or [0]):.2f} s, api "
        f"{med(dev['api ready in'] or [0]):.2f} s.",
        "",
        *cold_table(args, cold),
        "The user's Procfile (folders and ports vary per run; `--port` added to keep off Flask's 5000):",
        "",
        "```",
        cold["procfiles"]["honcho user"].strip(),
        "```",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reloads", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3, help="cold starts of each launcher")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--cold-only", action="store_true", help="only the cold starts, printed (implies --no-write)")
    parser.add_argument("--zygote", action="store_true", help="also time the fork-server floor (ZYGOTE) at cold start")
    args = parser.parse_args()
    # A user's project keeps its .pyc files: without them every process of both launchers compiles the
    # app's few hundred modules at each start, which is not what anyone's cold start looks like.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    bindir = bench_venv()
    base = Path(tempfile.mkdtemp(prefix="bigapp-bench-"))
    app = base / "app"
    config = generate(app, str(bindir / "python"), free_port(), free_port())
    config.write_text(config.read_text().replace("[redis]\n", f'[redis]\npassword = "{PASSWORD}"\n'))
    modules = sum(1 for _ in app.rglob("*.py"))
    redis_proc, redis_port = start_redis(base)
    endpoint = RedisEndpoint("bench", "127.0.0.1", redis_port, PASSWORD)
    try:
        if args.cold_only:
            cold = cold_starts(app, config, bindir, base, args.runs, args.zygote)
            print("\n".join(cold_table(args, cold)))
            return 0
        imports = import_times(app, bindir)
        print("import:", {k: round(med(v), 2) for k, v in imports.items()}, flush=True)
        dev = devstack_reloads(app, config, args.reloads)
        print("devstack:", {k: v for k, v in dev.items()}, flush=True)
        if dev["python"]["path"] != str(bindir / "python"):
            raise SystemExit(f"devstack ran the app with {dev['python']}, not {bindir / 'python'}")
        anchors = {"watchfiles": watchfiles_reloads(app, bindir, endpoint, args.reloads)}
        print("watchfiles:", anchors["watchfiles"], flush=True)
        anchors["flask"] = flask_reloads(app, bindir, endpoint, args.reloads)
        print("flask --debug:", anchors["flask"], flush=True)
        cold = cold_starts(app, config, bindir, base, args.runs, args.zygote)
    finally:
        redis_proc.terminate()
        redis_proc.wait()
        shutil.rmtree(base, ignore_errors=True)
    text = report(args, modules, imports, dev, anchors, cold, dev["python"])
    print()
    print(text)
    if not args.no_write:
        print(f"wrote {update_doc(text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
