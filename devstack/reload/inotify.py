"""Linux's inotify watch limit: how many folders one user may watch, and how many the reloader needs.

Each watched folder costs one inotify watch, and a recursive watch registers every folder below its
root. Past the limit watchfiles sees nothing more in the folders left out, and with
`ignore_permission_denied` (which the reloader needs for unreadable folders) it does not even say so:
hot reload would silently miss changes. The reloader watches by polling instead, and says why.
"""
from __future__ import annotations

import os
from fnmatch import fnmatchcase
from pathlib import Path

# The system-wide limit, and the one of the user namespace (containers, `unshare`): the smaller applies.
# Each as (file, its sysctl name).
LIMIT_FILES = ((Path("/proc/sys/fs/inotify/max_user_watches"), "fs.inotify.max_user_watches"),
               (Path("/proc/sys/user/max_inotify_watches"), "user.max_inotify_watches"))
RAISE_IT = ("`echo fs.inotify.max_user_watches=524288 | sudo tee /etc/sysctl.d/60-inotify.conf && "
            "sudo sysctl --system`")


def watch_limit(files: tuple[tuple[Path, str], ...] = LIMIT_FILES) -> tuple[int, str] | None:
    """(limit, the sysctl that sets it): the smallest readable one; None where there is no such limit."""
    found = []
    for path, name in files:
        try:
            found.append((int(path.read_text().strip()), name))
        except (OSError, ValueError):
            continue
    return min(found) if found else None


def count_watched_dirs(root: Path, ignore: set[str], stop_at: int) -> int:
    """Folders under root (root included) a recursive watcher would register, stopping past stop_at.

    ``ignore`` holds folder names and globs on a name ("*.egg-info"), as in watch_ignore.
    """
    names = {p for p in ignore if not any(c in p for c in "*?[")}  # a set lookup for most, globs apart
    globs = [p for p in ignore if p not in names]
    count = 0
    for _dir, dirs, _files in os.walk(root):
        count += 1
        if count > stop_at:
            break
        dirs[:] = [d for d in dirs if d not in names and not any(fnmatchcase(d, g) for g in globs)]
    return count


def watches_needed(flat: list[Path], deep: list[Path], stop_at: int) -> int:
    """Watches the reloader's targets take: one per flat folder, every folder below a deep one (a
    recursive watch skips nothing, the ignore rules apply to events only), counted up to stop_at + 1."""
    count = len(flat)
    for root in deep:
        if count > stop_at:
            break
        count += count_watched_dirs(root, set(), stop_at - count)
    return count


def over_limit(flat: list[Path], deep: list[Path], files: tuple[tuple[Path, str], ...] = LIMIT_FILES) -> str | None:
    """Why inotify cannot watch these targets (to watch by polling instead), or None when it can."""
    limit = watch_limit(files)
    if limit is None:
        return None
    value, source = limit
    needed = watches_needed(flat, deep, value)
    if needed <= value:
        return None
    return (f"the project has more than {value} folders to watch, above the inotify limit ({source} = {value}): "
            f"watching by polling instead, which takes more CPU and sees a save up to ~0.3 s later. Fix: raise "
            f"the limit, {RAISE_IT}, or narrow `watch` / add big folders to `watch_ignore`")
