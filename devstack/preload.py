"""What a service's warm spare imports ahead of its next start: the modules the previous generation loaded
from outside the project (engine side; the child writes the list, see module_report_site/sitecustomize.py).

One home, kept across `devstack up` runs (the next cold start uses it too): `<state dir>/preload/<service>.json`
is `{"modules": [...]}` as the service last reported it; `<service>.dropped.json` lists the modules devstack
took out because a spare failed on them. `preload_exclude` reaches the child as DEVSTACK_PRELOAD_EXCLUDE,
which filters the list where it is written.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

PRELOAD_VAR = "DEVSTACK_PRELOAD_REPORT"  # the same names as in the sitecustomize (stdlib only, no import of ours)
EXCLUDE_VAR = "DEVSTACK_PRELOAD_EXCLUDE"


def preload_dir(state_dir: Path) -> Path:
    return Path(state_dir) / "preload"


def report_env(service: str, state_dir: Path, exclude: list[str] | tuple[str, ...] = ()) -> dict[str, str]:
    """The variables that make a reporting service write its preload list (see module_report.child_env)."""
    env = {PRELOAD_VAR: str(preload_dir(state_dir) / f"{service}.json")}
    if exclude:
        env[EXCLUDE_VAR] = ",".join(exclude)
    return env


ARG_LIMIT = 4096  # longer lists go through a file: Linux caps one argv string at 128 KiB, and `ps` stays readable


def guard_arg(env: dict[str, str], modules: tuple[str, ...]) -> str:
    """The guard's `--preload` value: the names, or `@FILE` (the guard reads and deletes it) for a long list."""
    joined = ",".join(modules)
    report = env.get(PRELOAD_VAR)
    if len(joined) <= ARG_LIMIT or not report:
        return joined
    folder = Path(report).parent
    folder.mkdir(parents=True, exist_ok=True)
    fd, path = tempfile.mkstemp(prefix=Path(report).stem + "-", suffix=".spare", dir=folder)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(joined)
    return "@" + path


def excluded(name: str, patterns: list[str]) -> bool:
    """`pandas` excludes pandas and every pandas.* submodule."""
    return any(name == p or name.startswith(p + ".") for p in patterns)


def _read(path: Path, key: str) -> list[str] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))[key]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return [n for n in value if isinstance(n, str)] if isinstance(value, list) else None


def _dropped_path(report: Path) -> Path:
    return report.with_name(report.stem + ".dropped.json")


def modules_for(env: dict[str, str], fallback: tuple[str, ...]) -> tuple[tuple[str, ...], bool]:
    """(modules to preload, learned): the service's recorded list less what was dropped or excluded, or
    `fallback` (the libraries every such process loads) until it has reported one."""
    patterns = [p for p in env.get(EXCLUDE_VAR, "").split(",") if p]
    report = env.get(PRELOAD_VAR)
    learned = _read(Path(report), "modules") if report else None
    if learned:
        dropped = set(_read(_dropped_path(Path(report)), "modules") or ())
        return tuple(n for n in learned if n not in dropped and not excluded(n, patterns)), True
    return tuple(n for n in fallback if not excluded(n, patterns)), False


def written_since(env: dict[str, str], since: float) -> bool:
    """The service's list was written at `since` or later (its current generation reported), or it never
    will be (not a reporting service)."""
    report = env.get(PRELOAD_VAR)
    if not report:
        return True
    try:
        return os.stat(report).st_mtime >= since
    except OSError:
        return False


def drop(env: dict[str, str], names: list[str]) -> None:
    """Never preload `names` again for this service (a spare failed on them); the list itself is the
    child's to rewrite, so the drops are kept beside it."""
    report = env.get(PRELOAD_VAR)
    if not report or not names:
        return
    path = _dropped_path(Path(report))
    merged = sorted(set(_read(path, "modules") or ()) | set(names))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"modules": merged}), encoding="utf-8")
        os.replace(tmp, path)
    except OSError:
        pass  # this run still drops them (the spare is discarded); only the next run may try them again


class Progress:
    """What a spare's child says on its progress pipe while it preloads (see guard.py `_preload`):
    `try NAME` before an import that loads something new, `fail NAME<TAB>why`, `taint NAME` (importing it
    loaded a project module: the spare must not be used), `ready` once done."""

    def __init__(self) -> None:
        self.current: str | None = None
        self.failed: dict[str, str] = {}
        self.tainted: list[str] = []
        self.ready = False
        self.closed = False  # the pipe reached EOF
        self._partial = b""

    def feed(self, data: bytes) -> None:
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            word, _, rest = raw.decode(errors="replace").partition(" ")
            if word == "try":
                self.current = rest
            elif word == "fail":
                name, _, why = rest.partition("\t")
                self.failed[name] = why
                self.current = None
            elif word == "taint":
                self.tainted.append(rest)
            elif word == "ready":
                self.ready, self.current = True, None

    def culprits(self, died: bool) -> dict[str, str]:
        """Modules to drop, each with why: failed imports, imports that loaded project code, and (`died`)
        the import the spare was in when it died."""
        out = dict(self.failed)
        out.update((n, "it imports the project's own modules") for n in self.tainted)
        if died and not self.ready and self.current:
            out[self.current] = "the spare died while importing it"
        return out
