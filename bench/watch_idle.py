"""Idle CPU of the reloader's watchers: watchfiles' `awatch` on this checkout's devstack/ folder, nothing changing.

devstack runs two watchers (flat and recursive paths) with `step` = reloader.WATCH_STEP_MS and empty yields every
`rust_timeout` ms (reloader.WATCH_ARMED_MS: they prove the watcher runs). Each empty yield wakes the event loop and
hands the Rust watcher to a thread again. This prints this process's CPU over --seconds for each setting given.

Usage: .venv/bin/python bench/watch_idle.py [--seconds 15] [--watchers 2] [STEP:TIMEOUT ...]   (default 20:300 20:1000)
"""
from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path

from watchfiles import awatch

FOLDER = Path(__file__).resolve().parent.parent / "devstack"


async def measure(step: int, timeout: int, watchers: int, seconds: float) -> float:
    stop = asyncio.Event()

    async def one() -> None:
        async for _ in awatch(FOLDER, step=step, debounce=75, rust_timeout=timeout, yield_on_timeout=True,
                              stop_event=stop):
            pass

    tasks = [asyncio.create_task(one()) for _ in range(watchers)]
    await asyncio.sleep(2)  # the watchers are set up
    cpu, wall = time.process_time(), time.monotonic()
    await asyncio.sleep(seconds)
    share = 100 * (time.process_time() - cpu) / (time.monotonic() - wall)
    stop.set()
    await asyncio.gather(*tasks)
    return share


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="*", default=["20:300", "20:1000"])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--watchers", type=int, default=2)
    args = parser.parse_args()
    for setting in args.settings:
        step, timeout = (int(x) for x in setting.split(":"))
        share = asyncio.run(measure(step, timeout, args.watchers, args.seconds))
        print(f"step {step} ms, empty yield every {timeout} ms, {args.watchers} watcher(s): {share:.2f}% of a core")


if __name__ == "__main__":
    main()
