"""Switches that put back plain Textual behaviour in place of devstack's overrides of Textual internals,
and the idle-CPU matrix that decides which overrides are worth keeping (all on, all off, each off alone).

Used by `bench/tui_bench.py --without NAME,...` and `bench/tui_bench.py --overrides`.
"""
from __future__ import annotations

import random
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent

OVERRIDES: dict[str, str] = {
    "log-layout": "`ProcessLog`: new lines update the scrollbars in place instead of a screen layout "
                  "(`Log._update_size`, `_update_maximum_width`, `refresh`, `_scroll_update`)",
    "log-line-cache": "`ProcessLog._render_line_strip`: rendered lines kept in `Log._render_line_cache`",
    "datatable-cache": "`CellUpdates.update_cell`: drops one cell's entries from `DataTable`'s private caches",
    "kept-lines": "`KeptLines`: the Redis figures' rendered lines kept by their text (re-implements `Static`)",
    "style-pass": "`StyleOncePerPass`: `rich_style` computed once per `render_lines` pass (Log, DataTable)",
    "fast-sparkline": "`FastSparkline`: the one-line sparkline's strip built directly",
}
"""Switch name -> the override it turns off (the ones still in the TUI; docs/benchmarks.md also lists
the input driver, measured and removed)."""

# What each switch removes: (module, class, attributes defined on that class). With them gone the class
# inherits Textual's own methods, i.e. the TUI runs as with the plain widget.
_REMOVES = {
    "log-layout": ("tui.logs", "ProcessLog", ("write_lines", "_update_size", "_update_maximum_width", "refresh")),
    "log-line-cache": ("tui.logs", "ProcessLog", ("_render_line_strip",)),
    "datatable-cache": ("tui.processes", "CellUpdates", ("update_cell",)),
    "kept-lines": ("tui.redis_panel", "KeptLines", ("render_line", "update")),
    "style-pass": ("tui.style_pass", "StyleOncePerPass", ("render_lines", "rich_style")),
    "fast-sparkline": ("tui.sparkline", "FastSparkline", ("render_line",)),
}


def parse(value: str) -> tuple[str, ...]:
    names = tuple(n for n in value.split(",") if n)
    unknown = [n for n in names if n not in OVERRIDES]
    if unknown:
        raise SystemExit(f"--without: unknown override {', '.join(unknown)} (known: {', '.join(OVERRIDES)})")
    return names


def without(names) -> None:
    """Turn the named overrides off in this process (before the app is built)."""
    import importlib

    for name in names:
        module, cls_name, attributes = _REMOVES[name]
        try:
            cls = getattr(importlib.import_module(module), cls_name)
        except (ImportError, AttributeError):  # the override was removed from the TUI already
            continue
        for attribute in attributes:
            if attribute in vars(cls):
                delattr(cls, attribute)


LAUNCH = ("import sys; sys.path[:0] = [{root!r}, {bench!r}]; import tui_overrides; "
          "tui_overrides.without({names!r}); from devstack.cli import main; sys.exit(main())")


def devstack_argv(names, args: list[str]) -> list[str]:
    """`devstack ARGS` as a `python -c` that first turns the named overrides off (used with none too, so
    every configuration starts the same way)."""
    code = LAUNCH.format(root=str(ROOT), bench=str(ROOT / "bench"), names=tuple(names))
    return [sys.executable, "-c", code, *args]


# ----- the matrix ---------------------------------------------------------------------------------------
def configurations() -> dict[str, tuple[str, ...]]:
    configs = {"all on": (), "all off": tuple(OVERRIDES)}
    configs.update({f"{name} off": (name,) for name in OVERRIDES})
    return configs


def run_matrix(measure: Callable[[tuple[str, ...]], dict], rounds: int, parallel: int) -> dict[str, list[dict]]:
    """Every configuration `rounds` times, each round in a fresh random order, `parallel` stacks at a time:
    load from other work then falls on every configuration alike."""
    configs = configurations()
    order = []
    rnd = random.Random(9)
    for _ in range(rounds):
        names = list(configs)
        rnd.shuffle(names)
        order += names
    results: dict[str, list[dict]] = {name: [] for name in configs}

    def one(label: str) -> None:
        for attempt in range(2):
            try:
                result = measure(configs[label])
            except RuntimeError as exc:
                print(f"{label}: {exc}", flush=True)
                continue
            results[label].append(result)
            print(f"{label}: steady {result['cpu_pct']:.2f}% first {result['first']['cpu_pct']:.2f}% "
                  f"rss {result['rss_max'] / 2**20:.0f} MiB", flush=True)
            return

    with ThreadPoolExecutor(parallel) as pool:
        for i, label in enumerate(order):
            pool.submit(one, label)
            time.sleep(5 if i < parallel else 0)  # stagger start-ups (their CPU burst) a little
    return results


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.2f}% ({min(values):.2f}–{max(values):.2f})"


def render_matrix(results: dict[str, list[dict]], command: str, load: tuple[float, float], keep_at: float) -> str:
    steady = {k: [r["cpu_pct"] for r in v] for k, v in results.items()}
    first = {k: [r["first"]["cpu_pct"] for r in v] for k, v in results.items()}
    base = statistics.median(steady["all on"]) if steady["all on"] else float("nan")
    base_first = statistics.median(first["all on"]) if first["all on"] else float("nan")
    loaded = max(load) > 0.5
    lines = [
        f"Command: `{command}` (from the repository root; measured {time.strftime('%Y-%m-%d')}, "
        f"load average {load[0]:.2f} before and {load[1]:.2f} after the runs"
        + ("; **taken under load**: other engineers' tests ran on the same 2 cores" if loaded else "") + ").",
        "",
        "Idle TUI on a pseudo-terminal, devstack's own process, % of one core: median of the runs (min–max). "
        "Steady = the window from 60 s after ready; first minute = 30 s from 3 s after ready, while uptimes "
        "count seconds. Saves = median with that override off minus median with all on (steady; first minute in "
        f"brackets). Kept if it saves at least {keep_at:.2f}% of a core.",
        "",
        "| configuration | runs | CPU steady | CPU first minute | RSS max | saves |",
        "|---|---|---|---|---|---|",
    ]
    for label, runs in results.items():
        rss = f"{max(r['rss_max'] for r in runs) / 2**20:.0f} MiB" if runs else "-"
        saves = ""
        if label != "all on" and steady[label]:
            saves = (f"{statistics.median(steady[label]) - base:+.2f} "
                     f"({statistics.median(first[label]) - base_first:+.2f})")
        lines.append(f"| {label} | {len(runs)} | {_spread(steady[label])} | {_spread(first[label])} | {rss} | {saves} |")
    return "\n".join(lines) + "\n"
