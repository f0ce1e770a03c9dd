"""TUI benchmarks: log ingestion under a flood, key-press latency, memory, and idle CPU/memory.

(a) Flood. Four child processes each print short numbered lines as fast as they can for --seconds, then
    print `FLOOD-END <name> <count>` and sleep. The same children run under, in one run:
      - the TUI, headless: `DevstackApp(Stack.from_config(config)).run_test()` in this process, the
        real engine and supervisor (Redis too); lines that reached the Log widgets are counted by
        wrapping `ProcessLog.write_lines`; every 0.25 s a key is pressed with the Pilot (alternately
        `down`/`up` on the process list, which switches the log pane, and `c`, which clears it) and the
        time from the key event being handed to the app, as `pilot.press` does, to the action having run (LogView.select / LogView.clear called) is the
        latency; the event loop's worst stall and this process's RSS are sampled;
      - `devstack up --no-tui` with stdout into a pipe drained by this process; RSS of the devstack
        process sampled;
      - `honcho start` of a Procfile with the same four children, stdout drained the same way.
    Throughput = lines the children managed to print / seconds (a launcher that reads slowly blocks its
    children on a full pipe, so their own count measures it). After the run every log file
    (.devstack/logs/floodN.log, with its rotations) is counted line by line against what was printed.
(b) Idle. The demo stack (Redis, Flask API, prefork worker, beat; beat's demo.tick every 10 s is the
    only activity) runs for --idle seconds after all is ready; devstack's own process (not its children)
    is sampled with psutil: CPU time over the window and RSS every second. Once with the TUI on a
    pseudo-terminal (TERM=xterm-256color, 160x48), once with `--no-tui` (stdout to /dev/null).

(c) Overrides of Textual internals (`--overrides`): (b)'s TUI run for every configuration of
    bench/tui_overrides.py (all on, all off, each off alone), several rounds interleaved.

Usage: python bench/tui_bench.py [--seconds 10] [--idle 60] [--no-write] [--without NAME,...]
       python bench/tui_bench.py --overrides 3 [--idle 30] [--parallel 4]
Writes the figures into docs/benchmarks.md under "## TUI" (that section only). `--overrides` prints its table
and writes it as JSON beside the run's files; docs/benchmarks.md "TUI: Textual overrides" is written by hand
from it (with the decisions).
"""
from __future__ import annotations

import argparse
import asyncio
import fcntl
import itertools
import json
import os
import platform
import pty
import re
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import tui_overrides  # noqa: E402  (beside this script)
from common import DEVSTACK, HONCHO, demo_config, free_port  # noqa: E402
FLOODERS = [f"flood{i}" for i in range(1, 5)]
END = re.compile(r"FLOOD-END (\S+) (\d+)")
COMMAND = ".venv/bin/python bench/tui_bench.py --seconds {seconds} --idle {idle}"
KEY_EVERY = 0.25

FLOODER = r'''
import sys, time
name, seconds = sys.argv[1], float(sys.argv[2])
write = sys.stdout.write
end = time.monotonic() + seconds
n = 0
while time.monotonic() < end:
    for _ in range(500):
        write(f"{name} line {n} the quick brown fox\n")
        n += 1
write(f"FLOOD-END {name} {n}\n")
sys.stdout.flush()
time.sleep(3600)
'''


def mib(n: float) -> str:
    return f"{n / 2**20:.1f} MiB"


# ----- configs ---------------------------------------------------------------------------------------
def flood_folder(base: Path, label: str, seconds: float) -> Path:
    folder = base / label
    folder.mkdir(parents=True)
    script = folder / "flooder.py"
    script.write_text(FLOODER)
    procs = "\n".join(f'[process.{name}]\ncommand = ["{sys.executable}", "{script}", "{name}", "{seconds}"]\n'
                      for name in FLOODERS)
    (folder / "devstack.toml").write_text(f"""
[project]
name = "flood"

[redis]
port = {free_port()}

[api]
enabled = false

[worker]
enabled = false

[beat]
enabled = false

{procs}
""")
    (folder / "Procfile").write_text("".join(f"{name}: exec {sys.executable} {script} {name} {seconds}\n"
                                             for name in FLOODERS))
    return folder


def demo_folder(base: Path, label: str) -> Path:
    folder = base / label
    folder.mkdir(parents=True)
    demo_config(folder, free_port(), free_port())
    return folder


def log_file_counts(folder: Path) -> tuple[dict[str, int], bool]:
    """Flood lines per process in its log file and rotations; True if the oldest rotation slot is used."""
    logs = folder / ".devstack" / "logs"
    counts, full = {}, False
    for name in FLOODERS:
        total = 0
        for path in [logs / f"{name}.log"] + [logs / f"{name}.log.{i}" for i in range(1, 4)]:
            if path.exists():
                with open(path, "rb") as f:
                    total += sum(1 for line in f if line.startswith(name.encode() + b" line ")
                                 or line.startswith(b"FLOOD-END"))
        full = full or (logs / f"{name}.log.3").exists()
        counts[name] = total
    return counts, full


# ----- (a) flood through the TUI, headless -------------------------------------------------------------
async def flood_tui(folder: Path, seconds: float, without: tuple[str, ...] = ()) -> dict:
    from devstack.api import Stack
    from devstack.config import load_config
    from textual import events

    from tui import logs as logs_module
    from tui.app import DevstackApp

    tui_overrides.without(without)
    stack = Stack.from_config(load_config(folder / "devstack.toml"))
    engine = stack.engine
    app = DevstackApp(stack)
    displayed: Counter[str] = Counter()
    printed: dict[str, int] = {}
    effect: dict[str, float] = {}

    original_write = logs_module.ProcessLog.write_lines
    original_select = logs_module.LogView.select
    original_clear = logs_module.LogView.clear

    def write_lines(self, lines, *args, **kwargs):
        displayed[self.id] += len(lines)
        return original_write(self, lines, *args, **kwargs)

    def select(self, name):
        effect["select"] = time.perf_counter()
        return original_select(self, name)

    def clear(self):
        effect["clear"] = time.perf_counter()
        return original_clear(self)

    def ended() -> None:
        """FLOOD-END lines, read from the tails of the log files (no per-line subscriber: it would slow the run)."""
        for name in FLOODERS:
            path = folder / ".devstack" / "logs" / f"{name}.log"
            if name in printed or not path.exists():
                continue
            with open(path, "rb") as f:
                f.seek(max(0, path.stat().st_size - 200))
                m = END.search(f.read().decode(errors="replace"))
            if m:
                printed[m.group(1)] = int(m.group(2)) + 1

    logs_module.ProcessLog.write_lines, logs_module.LogView.select, logs_module.LogView.clear = (
        write_lines, select, clear)
    me = psutil.Process()
    rss: list[int] = []
    stalls: list[float] = []
    latencies: dict[str, list[float]] = {"switch pane (down/up)": [], "clear pane (c)": []}
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            started = time.monotonic()
            while not all(n in engine.services and engine.services[n].pid for n in FLOODERS):
                await asyncio.sleep(0.01)
            flood_began = time.monotonic()
            app.processes.focus()
            await pilot.pause()
            presses = 0
            stop_sampling = False

            async def sample() -> None:
                while not stop_sampling:
                    t = time.perf_counter()
                    await asyncio.sleep(0.01)
                    stalls.append(time.perf_counter() - t - 0.01)
                    if len(stalls) % 25 == 0:
                        rss.append(me.memory_info().rss)
            sampler = asyncio.get_running_loop().create_task(sample())
            while ended() or len(printed) < len(FLOODERS):
                if time.monotonic() - flood_began > seconds + 60:
                    raise RuntimeError(f"the flood did not end: {printed}")
                if time.monotonic() - flood_began < seconds:
                    key = ("down", "c", "up", "c")[presses % 4]
                    kind = "clear" if key == "c" else "select"
                    effect.pop(kind, None)
                    t0 = time.perf_counter()
                    # What pilot.press does, without its wait for idle (never idle in a flood).
                    event = events.Key(key, "c" if key == "c" else None)
                    event.set_sender(app)
                    app._driver.send_message(event)
                    while kind not in effect and time.perf_counter() - t0 < 5:
                        await asyncio.sleep(0.001)
                    if kind in effect:
                        latencies["clear pane (c)" if kind == "clear" else "switch pane (down/up)"].append(
                            effect[kind] - t0)
                    presses += 1
                await asyncio.sleep(KEY_EVERY)
            drained_at = time.monotonic()
            # What the panes had to show is flushed within a few flush intervals.
            await asyncio.sleep(0.5)
            stop_sampling = True
            await sampler
            await app.source.shutdown()
    finally:
        logs_module.ProcessLog.write_lines, logs_module.LogView.select, logs_module.LogView.clear = (
            original_write, original_select, original_clear)
        await app.source.shutdown()
    total = sum(printed.values())
    shown = sum(displayed.values())
    files, rotated_out = log_file_counts(folder)
    return {
        "printed": total, "per_child": printed, "lines_per_s": total / seconds,
        "displayed": shown,
        "files": files, "file_total": sum(files.values()), "rotated_out": rotated_out,
        "drain_s": drained_at - flood_began - seconds, "startup_s": flood_began - started,
        "latencies": latencies, "worst_stall_ms": max(stalls) * 1000 if stalls else 0.0,
        "p99_stall_ms": statistics.quantiles(stalls, n=100)[98] * 1000 if len(stalls) > 100 else 0.0,
        "rss_max": max(rss) if rss else me.memory_info().rss, "rss_end": me.memory_info().rss,
    }


# ----- (a) flood through `devstack up --no-tui` and `honcho start` -------------------------------------
def flood_subprocess(folder: Path, argv: list[str], seconds: float, sample_pid_of_launcher: bool = True) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "FLASK_APP"}
    env["NO_COLOR"] = "1"
    proc = subprocess.Popen(argv, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    printed: dict[str, int] = {}
    received = 0

    def drain() -> None:
        """Big reads, newlines counted in C: the drain must not be what slows the launcher down."""
        nonlocal received
        tail = b""
        while True:
            chunk = proc.stdout.read1(1 << 20)
            if not chunk:
                return
            received += chunk.count(b"\n")
            if b"FLOOD-END" in tail + chunk:
                for m in END.finditer((tail + chunk).decode(errors="replace")):
                    printed[m.group(1)] = int(m.group(2)) + 1
            tail = chunk[-200:]
    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    me = psutil.Process(proc.pid)
    rss: list[int] = []
    began = time.monotonic()
    in_window = None
    honcho = argv[0] == HONCHO
    while len(printed) < len(FLOODERS):
        elapsed = time.monotonic() - began
        if in_window is None and elapsed >= seconds:
            in_window = received  # lines that came out of the launcher during the flood window
        # honcho does not push back on its children: it queues their lines (multiprocessing queues) and
        # prints them far slower, so its FLOOD-END lines come minutes later. Stop it after the window.
        if honcho and elapsed > seconds + 5:
            break
        if elapsed > seconds + 120:
            print(f'timed out waiting for FLOOD-END lines: {printed}', flush=True)
            break
        try:
            tree = [me] + [c for c in me.children(recursive=True) if "flooder.py" not in " ".join(c.cmdline())]
            rss.append(sum(c.memory_info().rss for c in tree))
        except psutil.Error:
            pass
        time.sleep(0.25)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    reader.join(5)
    total = sum(printed.values())
    result = {"printed": total, "per_child": printed, "lines_per_s": total / seconds,
              "received": received, "rss_max": max(rss) if rss else 0,
              "out_per_s": (in_window if in_window is not None else received) / seconds}
    if argv[0] == DEVSTACK:
        result["files"], result["rotated_out"] = log_file_counts(folder)
        result["file_total"] = sum(result["files"].values())
    return result


# ----- (b) idle -----------------------------------------------------------------------------------------
def wait_demo_ready(folder: Path, alive, timeout: float = 120) -> None:
    import tomllib

    api = f"http://127.0.0.1:{tomllib.loads((folder / 'devstack.toml').read_text())['api']['port']}/"
    logs = folder / ".devstack" / "logs"

    def has(name: str, marker: str) -> bool:
        path = logs / f"{name}.log"
        return path.exists() and marker in path.read_text(errors="replace")

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ok = has("redis", "Ready to accept connections") and has("worker", " ready.") and \
            has("beat", "beat: Starting...")
        if ok:
            try:
                urllib.request.urlopen(api, timeout=2).read()
                return
            except OSError:
                pass
        if not alive():
            raise RuntimeError("devstack exited before the demo stack was ready")
        time.sleep(0.2)
    raise RuntimeError("the demo stack was not ready in time")


FIRST_WINDOW = 30.0
STEADY_AFTER = 60.0


def _window(proc: psutil.Process, seconds: float) -> dict:
    t0, c0 = time.monotonic(), proc.cpu_times()
    rss = []
    while time.monotonic() - t0 < seconds:
        rss.append(proc.memory_info().rss)
        time.sleep(1)
    t1, c1 = time.monotonic(), proc.cpu_times()
    cpu = (c1.user - c0.user + c1.system - c0.system) / (t1 - t0) * 100
    return {"cpu_pct": cpu, "rss_max": max(rss), "rss_median": statistics.median(rss), "seconds": t1 - t0}


def measure_idle(pid: int, seconds: float) -> dict:
    """Two windows: the first FIRST_WINDOW s after "all ready" + 3 s (the process list's uptimes still count
    seconds), then `seconds` from STEADY_AFTER s after ready (uptimes count minutes)."""
    proc = psutil.Process(pid)
    ready = time.monotonic()
    time.sleep(3)  # let start-up work (first polls, imports) settle
    first = _window(proc, FIRST_WINDOW)
    time.sleep(max(0.0, STEADY_AFTER - (time.monotonic() - ready)))
    steady = _window(proc, seconds)
    steady["first"] = first
    return steady


def idle_tui(folder: Path, seconds: float, without: tuple[str, ...] = ()) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "FLASK_APP"}
    env.update(TERM="xterm-256color", COLUMNS="160", LINES="48")
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.chdir(folder)
            argv = tui_overrides.devstack_argv(without, ["up", "--config", str(folder / "devstack.toml")])
            os.execve(argv[0], argv, env)
        finally:
            os._exit(127)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 48, 160, 0, 0))
    screen = bytearray()

    def drain() -> None:
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                return
            if not data:
                return
            screen.extend(data)
    threading.Thread(target=drain, daemon=True).start()

    exit_status: list[int] = []

    def alive() -> bool:
        if exit_status:
            return False
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return False
        if done:
            exit_status.append(os.waitstatus_to_exitcode(status))
        return not done
    try:
        try:
            wait_demo_ready(folder, alive)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc} (exit {exit_status}); its terminal said: "
                               f"{bytes(screen[-1500:]).decode(errors='replace')!r}") from None
        if b"\x1b[?1049h" not in screen:
            raise RuntimeError("devstack did not open the TUI")
        result = measure_idle(pid, seconds)
        result["screen_bytes_per_s"] = None
        before = len(screen)
        time.sleep(5)
        result["screen_bytes_per_s"] = (len(screen) - before) / 5
        return result
    finally:
        if alive():
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and alive():
            time.sleep(0.1)
        if alive():
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        os.close(fd)


def idle_headless(folder: Path, seconds: float) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "FLASK_APP"}
    proc = subprocess.Popen([DEVSTACK, "up", "--no-tui", "--config", str(folder / "devstack.toml")], cwd=folder,
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_demo_ready(folder, lambda: proc.poll() is None)
        return measure_idle(proc.pid, seconds)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ----- report -------------------------------------------------------------------------------------------
def ms(values: list[float]) -> str:
    if not values:
        return "-"
    values = sorted(v * 1000 for v in values)
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return f"median {statistics.median(values):.0f} ms · p95 {p95:.0f} ms · max {values[-1]:.0f} ms ({len(values)} presses)"


def render(args, tui: dict, headless: dict, honcho: dict, idle_t: dict, idle_h: dict) -> str:
    cpu = os.cpu_count()
    model = platform.processor() or platform.machine()
    try:
        model = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    all_lat = [v for vs in tui["latencies"].values() for v in vs]
    key_ok = bool(all_lat) and max(all_lat) <= 0.1
    idle_ok = all(r["cpu_pct"] <= 1.0 and r["rss_max"] <= 150 * 2**20 for r in (idle_t, idle_h))

    def lost(r):
        return f"{r['printed'] - r['file_total']}" if "file_total" in r else "-"
    lines = [
        "## TUI",
        "",
        f"Command: `{COMMAND.format(seconds=args.seconds, idle=args.idle)}` (from the repository root; measured "
        f"{time.strftime('%Y-%m-%d')}, {cpu} CPUs, {model}, Python {platform.python_version()}; load average "
        f"before the run {LOAD_BEFORE:.2f}). The script's docstring says exactly what is measured.",
        "",
        f"### Log ingestion: 4 children printing as fast as they can for {args.seconds:g} s",
        "",
        "Lines/s = lines the four children managed to print in their window (a launcher that reads slowly blocks",
        "them on a full pipe). Lost = printed minus lines found in `.devstack/logs/floodN.log` (and rotations).",
        "",
        "| launcher | lines/s printed by the 4 children | lines/s out of the launcher's stdout | printed | "
        "in the log files | lost | launcher RSS max |",
        "|---|---|---|---|---|---|---|",
        f"| TUI (`App.run_test`, real engine) | **{tui['lines_per_s']:,.0f}** | (screen) | {tui['printed']:,} | "
        f"{tui['file_total']:,} | {lost(tui)} | {mib(tui['rss_max'])} (bench process: engine + TUI) |",
        f"| `devstack up --no-tui` (stdout → pipe, drained) | **{headless['lines_per_s']:,.0f}** | "
        f"{headless['out_per_s']:,.0f} | {headless['printed']:,} | {headless['file_total']:,} | {lost(headless)} | "
        f"{mib(headless['rss_max'])} |",
        f"| `honcho start` (stdout → pipe, drained) | {honcho['lines_per_s']:,.0f} (see below) | "
        f"**{honcho['out_per_s']:,.0f}** | {honcho['printed']:,} | (no log files) | - | "
        f"{mib(honcho['rss_max'])} (honcho and its reader processes) |",
        "",
        "honcho does not push back on its children: their lines go into its per-process queues as fast as they",
        "print and come out of its stdout far slower, so its children's own count says nothing about honcho; what",
        "it delivered in the window is the column to compare (stopped 5 s after the window, the rest of its",
        "queues is dropped: its 'printed' is 0 when the FLOOD-END lines had not come out yet). devstack reads",
        "each child as fast as it can handle the lines and writes every one to the log file before reading more.",
        "",
        f"TUI details: {tui['displayed']:,} lines were written into the pane on screen (`all` and `redis`, "
        "alternately, by the key presses; hidden panes only buffer their last 5,000 lines and catch up when "
        "selected; the pane on screen takes at most 2,000 lines per 80 ms flush, so in a flood faster than "
        "that the oldest undisplayed lines are skipped on screen, while the log files keep everything); the last line "
        f"reached the engine {max(tui['drain_s'], 0):.1f} s after the flood window ended (checked every {KEY_EVERY} s); "
        f"event-loop stall p99 {tui['p99_stall_ms']:.0f} ms, worst {tui['worst_stall_ms']:.0f} ms; RSS at the "
        f"end {mib(tui['rss_end'])}.",
        "",
        f"Key press under the flood (time from the key event being handed to the app, as `pilot.press` does, to the action having run; a press every "
        f"{KEY_EVERY} s during the flood window):",
        "",
        *[f"- {what}: {ms(vals)}" for what, vals in tui["latencies"].items()],
        "",
        f"Target ≤ 100 ms: **{'met' if key_ok else 'not met'}** (max over every press "
        f"{max(all_lat) * 1000 if all_lat else float('nan'):.0f} ms).",
        "",
        f"### Idle: the demo stack running, nothing happening but beat's demo.tick every 10 s ({args.idle:g} s)",
        "",
        "devstack's own process only (not Redis, Flask, Celery), psutil: CPU time over the window, RSS every second.",
        "",
        f"Steady state: {args.idle:g} s starting {STEADY_AFTER:g} s after all services were ready. First minute: "
        f"{FIRST_WINDOW:g} s starting 3 s after ready, while the process list's uptimes still count seconds "
        "(from one minute on they count minutes).",
        "",
        "| front-end | CPU, steady (% of one core) | RSS max | RSS median | CPU, first minute |",
        "|---|---|---|---|---|",
        f"| TUI on a pseudo-terminal (160x48) | **{idle_t['cpu_pct']:.2f}%** | {mib(idle_t['rss_max'])} | "
        f"{mib(idle_t['rss_median'])} | {idle_t['first']['cpu_pct']:.2f}% |",
        f"| `--no-tui` (stdout → /dev/null) | **{idle_h['cpu_pct']:.2f}%** | {mib(idle_h['rss_max'])} | "
        f"{mib(idle_h['rss_median'])} | {idle_h['first']['cpu_pct']:.2f}% |",
        "",
        f"The idle TUI wrote {idle_t['screen_bytes_per_s']:,.0f} bytes/s to its terminal (steady state: nobody touches it, so it is "
        "calm (tui/cadence.py): Redis latency, ops/s and its sparkline move every 2 s, CPU and memory columns every "
        "3 s; the first minute is lively, every second). Target ≤ 1% of a core and ≤ 150 MB: "
        f"**{'met' if idle_ok else 'not met'}**.",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    path = ROOT / "docs" / "benchmarks.md"
    doc = path.read_text() if path.exists() else "# Benchmarks\n"
    pattern = re.compile(r"^## TUI\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(doc):
        doc = pattern.sub(lambda _: text + "\n", doc)
    else:
        doc = doc.rstrip("\n") + "\n\n" + text
    path.write_text(doc.rstrip("\n") + "\n")


LOAD_BEFORE = os.getloadavg()[0]
KEEP_AT = 0.05
"""Least idle CPU (% of one core) an override of Textual internals must save to be kept."""


def overrides_matrix(args, base: Path) -> None:
    runs = itertools.count()

    def measure(without: tuple[str, ...]) -> dict:
        return idle_tui(demo_folder(base, f"idle-{next(runs)}"), args.idle, without)
    results = tui_overrides.run_matrix(measure, args.overrides, args.parallel)
    command = f".venv/bin/python bench/tui_bench.py --overrides {args.overrides} --idle {args.idle:g} " \
              f"--parallel {args.parallel}"
    text = tui_overrides.render_matrix(results, command, (LOAD_BEFORE, os.getloadavg()[0]), KEEP_AT)
    print(text)
    (base / "overrides.json").write_text(json.dumps(results, default=str))
    print(f"wrote {base / 'overrides.json'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0, help="flood window per child")
    parser.add_argument("--idle", type=float, default=60.0, help="idle measurement window")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch docs/benchmarks.md")
    parser.add_argument("--only", choices=["flood", "idle"], help="run one half (figures are not written)")
    parser.add_argument("--without", type=tui_overrides.parse, default=(),
                        help=f"overrides of Textual internals to turn off: {','.join(tui_overrides.OVERRIDES)}")
    parser.add_argument("--overrides", type=int, metavar="ROUNDS",
                        help="idle TUI CPU with all overrides on, all off and each off alone, ROUNDS times")
    parser.add_argument("--parallel", type=int, default=4, help="stacks at a time for --overrides")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="devstack-tui-bench-"))
    print(f"working in {base}", flush=True)
    if args.overrides:
        return overrides_matrix(args, base)
    tui = headless = honcho = idle_t = idle_h = None
    if args.only != "idle":
        tui = asyncio.run(flood_tui(flood_folder(base, "tui", args.seconds), args.seconds, args.without))
        print("TUI flood:", {k: v for k, v in tui.items() if k != "per_child"}, flush=True)
        folder = flood_folder(base, "headless", args.seconds)
        headless = flood_subprocess(folder, [DEVSTACK, "up", "--no-tui", "--config", str(folder / "devstack.toml")],
                                    args.seconds)
        print("--no-tui flood:", headless, flush=True)
        folder = flood_folder(base, "honcho", args.seconds)
        honcho = flood_subprocess(folder, [HONCHO, "start", "-f", str(folder / "Procfile")], args.seconds)
        print("honcho flood:", honcho, flush=True)
    if args.only != "flood":
        idle_t = idle_tui(demo_folder(base, "idle-tui"), args.idle, args.without)
        print("TUI idle:", idle_t, flush=True)
        idle_h = idle_headless(demo_folder(base, "idle-headless"), args.idle)
        print("--no-tui idle:", idle_h, flush=True)
    if args.only is None:
        text = render(args, tui, headless, honcho, idle_t, idle_h)
        print(text)
        if not args.no_write:
            write_section(text)
            print("wrote docs/benchmarks.md (## TUI)")


if __name__ == "__main__":
    main()
