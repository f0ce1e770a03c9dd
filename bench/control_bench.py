"""Latency of `devstack status --json` on an idle stack: median of N runs of the console script, next to
`python -c pass` (the interpreter's own start-up, same venv) and the click CLI (`python -m devstack`,
what every control command went through before devstack/console.py).

The stack is the bundled demo app (devstack.demo) on free ports in a temporary folder, started with
`devstack up --no-tui`, left idle 3 s after "all services ready", stopped with `devstack down` at the end.

Usage: python bench/control_bench.py [--runs 20] [--no-write]
Writes the figures into docs/benchmarks.md under "## Control commands" (that section only).
"""
from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.stack import write_demo_config  # noqa: E402

BIN = Path(sys.executable).parent
DEVSTACK = str(BIN / "devstack")
SECTION = "## Control commands"


def timed(commands: dict[str, list[str]], cwd: Path, runs: int) -> dict[str, list[float]]:
    """Wall time of each command, `runs` times, interleaved: a burst of load from elsewhere hits every row alike."""
    out: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, argv in commands.items():
            start = time.perf_counter()
            done = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            out[name].append(time.perf_counter() - start)
            if done.returncode != 0:
                raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode()}")
    return out


def run(runs: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="devstack-control-bench-") as tmp:
        folder = Path(tmp)
        config = write_demo_config(folder)
        log = open(folder / "up.out", "w")
        up = subprocess.Popen([DEVSTACK, "up", "--no-tui", "--config", str(config)], cwd=folder, stdout=log,
                              stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 120
            while "all services ready" not in (folder / "up.out").read_text():
                if up.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the stack did not start:\n{(folder / 'up.out').read_text()}")
                time.sleep(0.1)
            time.sleep(3)  # idle: spares prepared, no start-up work left
            load = os.getloadavg()[0]
            rows = timed({
                "python -c pass": [sys.executable, "-c", "pass"],
                "devstack status --json": [DEVSTACK, "status", "--json"],
                "python -m devstack status --json (click CLI)": [sys.executable, "-m", "devstack", "status", "--json"],
            }, folder, runs)
        finally:
            subprocess.run([DEVSTACK, "down", "--config", str(config)], cwd=folder, capture_output=True, timeout=120)
            try:
                up.wait(60)
            except subprocess.TimeoutExpired:
                up.kill()
            log.close()
    return {"rows": rows, "load": load, "runs": runs}


def section(result: dict, command: str) -> str:
    rows = result["rows"]
    med = {k: statistics.median(v) * 1000 for k, v in rows.items()}
    fast, floor = med["devstack status --json"], med["python -c pass"]
    lines = [SECTION, "",
             "`devstack status --json` against an idle demo stack (started with `devstack up --no-tui`, idle 3 s after "
             "all ready): wall time of the whole command, spawn to exit, median of "
             f"{result['runs']} runs, interleaved with the interpreter's own start-up in the same virtualenv "
             "(`python -c pass`; in an editable install it includes setuptools' import finder).", "",
             f"Command: `{command}` (from the repository root; measured {time.strftime('%Y-%m-%d')}, "
             f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, Python {platform.python_version()}; "
             f"load average {result['load']:.2f}: other work on the machine slows every row).", "",
             "| command | median | min | max |", "|---|---|---|---|"]
    for name, values in rows.items():
        lines.append(f"| {name} | **{med[name]:.0f} ms** | {min(values) * 1000:.0f} ms | {max(values) * 1000:.0f} ms |")
    lines += ["", f"devstack's own share (median minus `python -c pass`): **{fast - floor:.0f} ms**; "
              f"the whole command: **{fast:.0f} ms** (target ≤ 50 ms: **{'met' if fast <= 50 else 'not met'}**). "
              f"The target includes the interpreter, which alone took {floor:.0f} ms here: under load from other work "
              "read the difference between the first two rows. The click CLI row is what every control command cost "
              "before (click, asyncio and the pydantic config validation)."]
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    doc = ROOT / "docs" / "benchmarks.md"
    current = doc.read_text()
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(current):
        current = pattern.sub(lambda _: text + "\n", current)
    else:
        current = current.rstrip() + "\n\n" + text
    doc.write_text(current)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    result = run(args.runs)
    text = section(result, f"{Path(sys.executable)} bench/control_bench.py --runs {args.runs}")
    print(text)
    if not args.no_write:
        write_section(text)


if __name__ == "__main__":
    main()
