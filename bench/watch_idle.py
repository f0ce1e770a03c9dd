"""Idle CPU of the reloader's watchers on this checkout's devstack/ folder, nothing changing.

devstack runs two watchers (flat and recursive paths) with `step` = reloader.WATCH_STEP_MS and empty yields every
`rust_timeout` ms (reloader.WATCH_ARMED_MS: the first proves the watcher runs). Two ways of running them:
  - `awatch`: each empty yield wakes the event loop and hands the Rust watcher to a thread again (anyio's
    to_thread and a task group per yield);
  - `thread`: watchfiles' synchronous `watch()` in a thread of its own, which hands nothing to the event loop
    while nothing changes (what devstack runs since 2026-12-04).
This prints this process's CPU over --seconds for each setting given, while an event loop runs beside them.

Usage: .venv/bin/python bench/watch_idle.py [--seconds 15] [--watchers 2] [MODE:STEP:TIMEOUT ...]
       (default awatch:50:1000 thread:50:1000)
"""
from __future__ import annotations

import argparse
import asyncio
import threading
import time
from pathlib import Path

from watchfiles import awatch, watch

FOLDER = Path(__file__).resolve().parent.parent / "devstack"


async def measure(mode: str, step: int, timeout: int, watchers: int, seconds: float) -> float:
    stop = asyncio.Event()
    halt = threading.Event()

    async def one() -> None:
        async for _ in awatch(FOLDER, step=step, debounce=75, rust_timeout=timeout, yield_on_timeout=True,
                              stop_event=stop):
            pass

    def threaded() -> None:
        for _ in watch(FOLDER, step=step, debounce=75, rust_timeout=timeout, yield_on_timeout=True,
                       stop_event=halt):
            pass

    if mode == "awatch":
        tasks = [asyncio.create_task(one()) for _ in range(watchers)]
    else:
        threads = [threading.Thread(target=threaded, daemon=True) for _ in range(watchers)]
        for thread in threads:
            thread.start()
        tasks = [asyncio.to_thread(thread.join) for thread in threads]
    await asyncio.sleep(2)  # the watchers are set up
    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    share = 100 * (time.process_time() - cpu) / (time.monotonic() - wall)
    stop.set()
    halt.set()
    await asyncio.gather(*tasks)
    return share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="*", default=["awatch:50:1000", "thread:50:1000"])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--watchers", type=int, default=2)
    args = parser.parse_args()
    for setting in args.settings:
        mode, step, timeout = setting.split(":")
        share = asyncio.run(measure(mode, int(step), int(timeout), args.watchers, args.seconds))
        print(f"{mode}: step {step} ms, empty yield every {timeout} ms, {args.watchers} watcher(s): "
              f"{share:.2f}% of a core")


if __name__ == "__main__":
    main()
