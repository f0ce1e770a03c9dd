"""CPU and memory of each service's whole process tree (the process list's CPU and MEM columns)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Iterable

import psutil

from .guard import portable_forced


@dataclass
class Usage:
    """CPU% (of one core, since the previous sample) and resident memory of a service's process tree."""

    cpu: float
    rss: int


def proc_children(pid: int) -> list[int]:
    """Children of `pid`, from the children file of each of its threads (a child belongs to the thread that
    forked it); [] if it is gone."""
    out: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                out.extend(int(child) for child in f.read().split())
        except (OSError, ValueError):  # the thread ended meanwhile
            pass
    return out


def table_children() -> Callable[[int], Iterable[int]]:
    """Children from one pass over the whole process table: where the kernel has no children files
    (macOS, Linux without CONFIG_PROC_CHILDREN)."""
    kids: dict[int, list[int]] = {}
    for proc in psutil.process_iter(["ppid"]):
        kids.setdefault(proc.info["ppid"], []).append(proc.pid)
    return lambda pid: kids.get(pid, ())


def has_children_files() -> bool:
    """Whether the kernel keeps children files; never under the test hook DEVSTACK_FORCE_PORTABLE=1
    (see devstack/guard.py), so the process-table walk macOS needs runs on Linux too."""
    return not portable_forced() and os.path.exists(f"/proc/{os.getpid()}/task/{os.getpid()}/children")


class UsageMonitor:
    """Samples the trees under the services' pids. The trees come from /proc/<pid>/task/*/children (a few
    small reads per process of the stack), or from one pass over the process table where those files do
    not exist (psutil's `children(recursive=True)` would read all of /proc once per service; on a desktop
    with hundreds of processes even one pass is most of the cost). The same `Process` objects are kept
    across samples so `cpu_percent` has a baseline."""

    def __init__(self, children_files: bool | None = None) -> None:
        self.children_files = has_children_files() if children_files is None else children_files
        self._procs: dict[int, psutil.Process] = {}

    def sample(self, roots: dict[str, int]) -> dict[str, Usage]:
        if not roots:
            return {}
        children = proc_children if self.children_files else table_children()
        out: dict[str, Usage] = {}
        seen: dict[int, psutil.Process] = {}
        for name, root in roots.items():
            cpu, rss = 0.0, 0
            for pid in _tree(root, children):
                proc = self._procs.get(pid)
                try:
                    if proc is None:
                        proc = psutil.Process(pid)
                    seen[pid] = proc
                    with proc.oneshot():
                        cpu += proc.cpu_percent(None)
                        rss += proc.memory_info().rss
                except psutil.Error:
                    pass
            out[name] = Usage(cpu, rss)
        self._procs = seen
        return out


def _tree(root: int, children: Callable[[int], Iterable[int]]) -> list[int]:
    stack, tree = [root], []
    while stack:
        pid = stack.pop()
        tree.append(pid)
        stack.extend(children(pid))
    return tree
