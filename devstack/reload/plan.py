"""Which services a changed file concerns and which folders to watch: pure, unit-tested (no watching here)."""
from __future__ import annotations

import functools
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from ..watch_ignore import DEFAULT_IGNORE

# Editor droppings that end in .py: emacs lock files `.#x.py`, vim's `4913` probe, JetBrains' `___jb_`.
TEMP_FILE = re.compile(r"^\.#|___jb_|^4913$|\.sw.$|~$")
DEFAULT_EXTENSIONS = (".py",)
RELOADED_SERVICES = ("api", "worker", "beat")  # watch the config folder by default; processes opt in


@functools.lru_cache(maxsize=1024)  # the watch filter runs for every change: compile each pattern once
def glob_regex(pattern: str) -> re.Pattern:
    """A glob over '/'-separated relative paths: `*` and `?` stay inside one folder, `**` spans folders."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


def _has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _relative(path: Path, root: Path) -> str | None:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return None


@dataclass
class ServiceWatch:
    """What one service reloads for: folders (files with a watched extension), single files, globs."""

    service: str
    root: Path
    folders: list[Path] = field(default_factory=list)
    files: list[Path] = field(default_factory=list)
    globs: list[tuple[Path, re.Pattern]] = field(default_factory=list)  # (folder to watch, regex on rel path)
    ignore: list[str] = field(default_factory=list)
    ignore_paths: list[Path] = field(default_factory=list)
    extensions: tuple[str, ...] = DEFAULT_EXTENSIONS
    explicit: bool = False  # `watch` set in the config: it alone decides, whatever the service imported

    _seen: dict[Path, bool] = field(default_factory=dict, repr=False, compare=False)

    def ignored(self, path: Path) -> bool:
        """Memoised: every change asks twice (the watch filter, then the planner), a checkout asks thousands
        of times, and the patterns never change for the life of this object."""
        found = self._seen.get(path)
        if found is None:
            if len(self._seen) > 20000:
                self._seen.clear()
            found = self._seen[path] = self._ignored(path)
        return found

    def _ignored(self, path: Path) -> bool:
        if any(path == p or p in path.parents for p in self.ignore_paths):
            return True
        rel = _relative(path, self.root)
        parts = rel.split("/") if rel else path.parts
        for pattern in self.ignore:
            if "/" in pattern:
                regex = glob_regex(pattern.strip("/"))
                if rel and any(regex.match("/".join(parts[:i])) for i in range(1, len(parts) + 1)):
                    return True
            elif any(glob_regex(pattern).match(part) for part in parts):
                return True
        return False

    def matches(self, path: Path) -> bool:
        """Does a change of `path` (a file) concern this service?"""
        if TEMP_FILE.search(path.name) or self.ignored(path):
            return False
        if path in self.files:
            return True
        if path.suffix in self.extensions and any(f == path.parent or f in path.parents for f in self.folders):
            return True
        rel = _relative(path, self.root)
        return rel is not None and any(regex.match(rel) for _, regex in self.globs)

    def covers(self, folder: Path) -> bool:
        """Could a file under `folder` concern this service (so the folder must be watched)?"""
        if self.ignored(folder):
            return False
        bases = [*self.folders, *(base for base, _ in self.globs)]
        return any(b == folder or b in folder.parents or folder in b.parents for b in bases)

    def watch_roots(self) -> list[Path]:
        """Folders whose whole subtree may matter (single files only need their own folder)."""
        return [*self.folders, *(base for base, _ in self.globs)]


def service_watch(name: str, table, root: Path, state_dir: Path) -> tuple[ServiceWatch | None, list[str]]:
    """Build a service's ServiceWatch from its config table; also return warnings (entries that match nothing)."""
    entries = table.watch
    if entries is None:
        entries = ["."] if name in RELOADED_SERVICES else []
    if not entries:
        return None, []
    sw = ServiceWatch(name, root, ignore=[*DEFAULT_IGNORE, *table.watch_ignore], ignore_paths=[state_dir],
                      extensions=tuple(dict.fromkeys([*DEFAULT_EXTENSIONS, *table.watch_extensions])),
                      explicit=table.watch is not None)
    warnings = []
    for entry in entries:
        if _has_glob(entry):
            static = [p for p in entry.split("/") if p] if not entry.startswith("/") else []
            base_parts = []
            for part in static:
                if _has_glob(part):
                    break
                base_parts.append(part)
            base = (root / "/".join(base_parts)).resolve() if base_parts else root
            rel_pattern = _relative(root / entry, root) or entry
            sw.globs.append((base, glob_regex(rel_pattern)))
            continue
        path = (root / entry).resolve()
        if path.is_dir():
            sw.folders.append(path)
        elif path.is_file():
            sw.files.append(path)
        else:
            warnings.append(f"[{name}] watch: {entry!r} is neither a folder nor a file under {root}. "
                            "Fix: correct the path (relative to the config file) or remove it.")
    return sw, warnings


class ReloadPlanner:
    """Which services a changed file concerns, and which folders to watch (recursive or not)."""

    def __init__(self, root: Path, watches: list[ServiceWatch], config_file: Path | None = None,
                 env_file: Path | None = None, warnings: list[str] | None = None):
        self.root = root
        self.watches = watches
        self.config_file = config_file
        self.env_file = env_file
        self.warnings = warnings or []

    @classmethod
    def from_config(cls, config) -> "ReloadPlanner":
        root = Path(config.root).resolve()
        state_dir = Path(config.project.state_dir).resolve()
        watches, warnings = [], []
        for name in config.services():
            if name == "redis":
                continue
            sw, warn = service_watch(name, config.service(name), root, state_dir)
            warnings += warn
            if sw is not None:
                watches.append(sw)
        env = config.project.env_file
        return cls(root, watches, Path(config.path).resolve() if config.path else None,
                   Path(env).resolve() if env else None, warnings)

    def services_for(self, path: Path, loaded: Mapping[str, frozenset[Path]] | None = None) -> list[str]:
        """The services a change of `path` restarts.

        `loaded`: the project files each service reported importing (only services whose report can be
        trusted: running and ready). A file some service imported restarts, among the services watching
        by default, those that imported it and those without a report; a file nobody imported (a new
        module, a template) restarts every service whose watch paths cover it. An explicit `watch` wins.
        """
        watching = [w for w in self.watches if w.matches(path)]
        loaded = loaded or {}
        if not any(path in files for files in loaded.values()):
            return [w.service for w in watching]
        return [w.service for w in watching if w.explicit or path in loaded.get(w.service, (path,))]

    def why(self, path: Path, loaded: Mapping[str, frozenset[Path]] | None = None) -> str:
        """Why a change of `path` restarts what `services_for` says, for the notice."""
        importers = [w.service for w in self.watches if path in (loaded or {}).get(w.service, ())]
        if importers:
            return f"imported by {', '.join(importers)}"
        return "imported by no service yet: watch paths" if path.suffix == ".py" else "watch paths"

    def special(self, path: Path) -> str | None:
        if path == self.config_file:
            return "config"
        if path == self.env_file:
            return "env"
        return None

    def relevant(self, path: Path) -> bool:
        return self.special(path) is not None or bool(self.services_for(path))

    def wants_folder(self, folder: Path) -> bool:
        return any(w.covers(folder) for w in self.watches)

    def targets(self) -> tuple[list[Path], list[Path]]:
        """(folders watched without recursion, folders watched recursively).

        A watched folder itself is watched flat and only its wanted subfolders recursively, so an
        ignored `.venv` or `node_modules` under it never gets an inotify watch.
        """
        flat: set[Path] = set()
        deep: set[Path] = set()
        for w in self.watches:
            flat.update(f.parent for f in w.files)
            for base in w.watch_roots():
                if base.is_dir():
                    flat.add(base)
                    deep.update(c for c in _subfolders(base) if self.wants_folder(c))
        for special in (self.config_file, self.env_file):
            if special is not None and special.parent.is_dir():
                flat.add(special.parent)
        deep = {d for d in deep if not any(p in deep for p in d.parents)}
        flat = {f for f in flat if not any(f == d or d in f.parents for d in deep)}
        return sorted(flat), sorted(deep)


def files_under(folder: Path, limit: int = 5000) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        found.extend(Path(dirpath) / name for name in filenames)
        if len(found) >= limit:
            break
    return found


def _subfolders(folder: Path) -> list[Path]:
    try:
        return [p for p in folder.iterdir() if p.is_dir() and not p.is_symlink()]
    except OSError:
        return []


def describe_files(paths, root: Path, limit: int = 3) -> str:
    names = sorted(_relative(p, root) or str(p) for p in paths)
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


