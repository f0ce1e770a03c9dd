"""`devstack init`: find a project's Flask app, Celery app, queues, pool and beat from its files and
start scripts, and write a commented devstack.toml that says what was found where (each guess marked)."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from .errors import DevstackError

__all__ = ["Finding", "Scan", "scan_project", "render", "write_config"]

SKIP = {".git", ".venv", "venv", "node_modules", ".devstack", "__pycache__", "site-packages", "dist", "build",
        ".tox", ".mypy_cache", ".pytest_cache", "tests", "test", "migrations"}
MAX_DEPTH, MAX_FILES = 5, 3000
SCRIPT_DIRS = {"dev", "bin", "scripts", "docker"}

FLASK_OBJECT = re.compile(r"^(\w+)\s*(?::\s*[\w.]+\s*)?=\s*Flask\(", re.M)
FLASK_MADE = re.compile(r"^(\w+)\s*(?::\s*[\w.]+\s*)?=\s*create_app\(", re.M)
FLASK_FACTORY = re.compile(r"^def create_app\(", re.M)
APP_MODULES = ("app", "wsgi", "main", "application")  # where `flask run` itself looks, and the usual names
CELERY_OBJECT = re.compile(
    r"^(\w+)\s*(?::\s*[\w.]+\s*)?=\s*(?:Celery\(|make_celery\(|celery_init_app\(|\w+\.extensions\[[\"']celery[\"']\])", re.M)
CELERY_CMD = re.compile(r"\bcelery\b[^\n]*?(?:-A|--app)[ =]([\w.:]+)[^\n]*")
QUEUE_LITERAL = re.compile(r"""(?:["']queue["']\s*:\s*|\bQueue\(\s*|\bqueue\s*=\s*)["']([\w.-]+)["']""")
"""A queue named in a route (`"queue": "x"`), a `Queue("x")`, or a keyword (`@shared_task(queue="x")`, Dify's
way, and `apply_async(queue="x")`)."""
DEFAULT_QUEUE = re.compile(
    r"""\b(?:task_default_queue|CELERY_TASK_DEFAULT_QUEUE|CELERY_DEFAULT_QUEUE)["']?\s*[=:]\s*["']([\w.-]+)["']""")
CELERY_DEFAULT = "celery"  # where a task that names no queue goes when no default queue is set
BEAT_SCHEDULE = re.compile(r"\b(?:beat_schedule|CELERYBEAT_SCHEDULE)\b")


@dataclass
class Finding:
    """One value for the config, where it came from, and whether it is only a guess."""

    value: object
    why: str
    guess: bool = False

    def comment(self) -> str:
        return f"# {'guess' if self.guess else 'found'}: {self.why}"


@dataclass
class Scan:
    root: Path
    api_app: Finding | None = None
    api_cwd: Finding | None = None
    worker_app: Finding | None = None
    worker_cwd: Finding | None = None
    queues: Finding | None = None
    pool: Finding | None = None
    concurrency: Finding | None = None
    beat: Finding | None = None
    env_file: Finding | None = None
    notes: list[str] = field(default_factory=list)


def _files(root: Path):
    count = 0
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            entries = sorted(folder.iterdir())
        except OSError:
            continue
        for entry in entries:
            if entry.is_dir():
                if entry.name not in SKIP and not entry.name.startswith(".") and depth < MAX_DEPTH:
                    stack.append((entry, depth + 1))
            elif entry.is_file():
                count += 1
                if count > MAX_FILES:
                    return
                yield entry


def _is_script(path: Path) -> bool:
    name = path.name
    return (name == "Procfile" or name.startswith("docker-compose") or name in ("compose.yaml", "compose.yml", "Makefile")
            or path.suffix == ".sh" or (path.suffix == "" and path.parent.name in SCRIPT_DIRS))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")[:200_000]
    except OSError:
        return ""


def _import_root(path: Path, root: Path) -> tuple[Path, str]:
    """(the folder to run from, the dotted module name) of a .py file: above its topmost package."""
    parts = [path.stem] if path.stem != "__init__" else []
    folder = path.parent
    while (folder / "__init__.py").exists() and folder != root:
        parts.insert(0, folder.name)
        folder = folder.parent
    return folder, ".".join(parts)


def _rel(path: Path, root: Path) -> str:
    return str(path.relative_to(root)) if path != root else "."


def scan_project(root: Path) -> Scan:
    root = root.resolve()
    scan = Scan(root)
    modules: dict[str, Path] = {}
    flask_hits: list[tuple[Path, str, str]] = []
    celery_hits: list[tuple[Path, str, str]] = []
    queues: dict[str, str] = {}
    default_set = False
    for path in _files(root):
        if path.suffix == ".py":
            text = _read(path)
            folder, module = _import_root(path, root)
            modules.setdefault(module.split(".")[0], folder)
            where = _rel(path, root)
            flask_hits += _flask_candidates(text, folder, module, where)
            if m := CELERY_OBJECT.search(text):
                celery_hits.append((len(path.parts), folder, f"{module}:{m.group(1)}", f"`{m.group(0).strip()}` in {where}"))
            for q in QUEUE_LITERAL.findall(text):
                queues.setdefault(q, where)
            for q in DEFAULT_QUEUE.findall(text):
                queues.setdefault(q, f"the default queue, {where}")
                default_set = True
            if BEAT_SCHEDULE.search(text) and scan.beat is None:
                scan.beat = Finding(True, f"a beat schedule in {where}")
        elif _is_script(path):
            _scan_script(scan, path, _read(path).replace("\\\n", " "), modules, root)
        elif path.name in (".flaskenv", ".env") and scan.api_app is None:
            if m := re.search(r"^\s*(?:export\s+)?FLASK_APP\s*=\s*[\"']?([^\"'\s#]+)", _read(path), re.M):
                scan.api_app = Finding(m.group(1), f"FLASK_APP in {_rel(path, root)}")
                scan.api_cwd = Finding(_rel(path.parent, root), f"the folder of {path.name}")
    if queues and not default_set:  # tasks that name no queue still go to Celery's default one
        queues.setdefault(CELERY_DEFAULT, "the default queue of tasks that name none")
    _choose(scan, flask_hits, celery_hits, queues, modules, root)
    api_dir = root / str(scan.api_cwd.value) if scan.api_cwd else root
    for folder in dict.fromkeys((root, api_dir)):
        if (folder / ".env").is_file():
            scan.env_file = Finding(_rel(folder / ".env", root), f"a .env file in {_rel(folder, root)}")
            break
    return scan


def _flask_candidates(text: str, folder: Path, module: str, where: str) -> list[tuple]:
    """(rank, folder, app, why): a `Flask(...)` object first, then an app made by create_app() in an
    app/wsgi module, then the factory itself, then any other module-level create_app() call."""
    found = []
    if m := FLASK_OBJECT.search(text):
        found.append((0, folder, f"{module}:{m.group(1)}", f"`{m.group(0).strip()}` in {where}"))
    if m := FLASK_MADE.search(text):
        rank = 1 if module.split(".")[-1] in APP_MODULES else 3
        found.append((rank, folder, f"{module}:{m.group(1)}", f"`{m.group(0).strip()}` in {where}"))
    if FLASK_FACTORY.search(text):
        found.append((2, folder, f"{module}:create_app()", f"a create_app() factory in {where}"))
    return found


def _scan_script(scan: Scan, path: Path, text: str, modules: dict[str, Path], root: Path) -> None:
    where = _rel(path, root)
    for m in CELERY_CMD.finditer(text):
        line = m.group(0)
        if re.search(r"\bbeat\b", line):
            scan.beat = Finding(True, f"`celery beat` in {where}")
            continue
        if scan.worker_app is None or scan.worker_app.guess:
            scan.worker_app = Finding(m.group(1), f"`-A {m.group(1)}` in {where}")
        if q := re.search(r"(?:-Q|--queues)[ =]([\w.,-]+)", line):
            scan.queues = Finding(q.group(1).split(","), f"`-Q {q.group(1)}` in {where}")
        if p := re.search(r"(?:-P|--pool)[ =](\w+)", line):
            scan.pool = Finding(p.group(1), f"`-P {p.group(1)}` in {where}")
        if c := re.search(r"(?:-c|--concurrency)[ =](\d+)", line):
            scan.concurrency = Finding(int(c.group(1)), f"`-c {c.group(1)}` in {where}")


def _choose(scan: Scan, flask_hits, celery_hits, queues: dict[str, str], modules: dict[str, Path], root: Path) -> None:
    flask_hits.sort(key=lambda hit: hit[0])
    celery_hits.sort(key=lambda hit: hit[0])
    if scan.api_app is None and flask_hits:
        _rank, folder, app, why = flask_hits[0]
        others = len(flask_hits) - 1
        scan.api_app = Finding(app, why + (f" (preferred over {others} other candidate(s))" if others else ""),
                               guess=_tied(flask_hits))
        scan.api_cwd = Finding(_rel(folder, root), "where that module imports from")
    if scan.worker_app is not None and not scan.worker_app.guess:
        top = str(scan.worker_app.value).replace(":", ".").split(".")[0]
        if top in modules:
            scan.worker_cwd = Finding(_rel(modules[top], root), f"where `{top}` imports from")
    elif celery_hits:
        _depth, folder, app, why = celery_hits[0]
        scan.worker_app = Finding(app, why, guess=_tied(celery_hits))
        scan.worker_cwd = Finding(_rel(folder, root), "where that module imports from")
    if scan.queues is None and queues:
        names = sorted(queues)
        scan.queues = Finding(names, "queue names in the code (task routes, Queue(...), queue=...): "
                              + ", ".join(f"{q} ({w})" for q, w in sorted(queues.items())), guess=True)
    if scan.api_app is None:
        scan.notes.append("no Flask app found (no `Flask(...)`, `create_app`, or FLASK_APP): set [api] app.")
    if scan.worker_app is None:
        scan.notes.append("no Celery app found (no `Celery(...)`, `-A` in a start script): set [worker] app.")


def _tied(hits: list[tuple]) -> bool:
    """Several candidates of the best rank: the one taken is a guess."""
    return sum(1 for hit in hits if hit[0] == hits[0][0]) > 1


def _toml(value: object) -> str:
    return json.dumps(value) if not isinstance(value, bool) else ("true" if value else "false")


def render(scan: Scan) -> str:
    """The commented devstack.toml for what `scan` found."""
    out = ["# Written by `devstack init`: what it found in this project, and where. Lines marked",
           "# `guess` are worth a look. Every key: config/devstack.example.toml in devstack's repository.", ""]
    out += [f"# note: {n}" for n in scan.notes] + ([""] if scan.notes else [])
    out += ["[project]", f"name = {_toml(scan.root.name)}"]
    out += _python_lines(scan.root)
    if scan.env_file:
        out += [scan.env_file.comment(), f"env_file = {_toml(scan.env_file.value)}"]
    out += ["", "[api]"]
    out += _keys(("app", scan.api_app), ("cwd", scan.api_cwd)) if scan.api_app else ["enabled = false  # no Flask app found"]
    out += ["", "[worker]"]
    if scan.worker_app:
        out += _keys(("app", scan.worker_app), ("cwd", scan.worker_cwd), ("queues", scan.queues),
                     ("pool", scan.pool), ("concurrency", scan.concurrency))
    else:
        out.append("enabled = false  # no Celery app found")
    out += ["", "[beat]"]
    if scan.beat and scan.worker_app:
        out += [scan.beat.comment(), "enabled = true"]
    else:
        out.append("enabled = false  # no beat schedule or `celery beat` found")
    return "\n".join(out) + "\n"


def _python_lines(root: Path) -> list[str]:
    """Which Python `devstack up` would run the app with, from here; when none but devstack's own, the key to
    name the app's virtualenv (its dependencies are not in devstack's environment)."""
    from .app_specs import choose_interpreter

    chosen = choose_interpreter(None, root, os.environ)
    if not chosen.own:
        return [f"# found: the app runs with {chosen.python} ({chosen.source}; `devstack up` looks again each time)"]
    return ["# note: no virtualenv found (no .venv or venv here, no VIRTUAL_ENV), so devstack would run the app with",
            "# its own Python. If the app has one elsewhere, name its interpreter:",
            '# python = "/path/to/the/app/venv/bin/python"']


def _keys(*pairs: tuple[str, Finding | None]) -> list[str]:
    lines = []
    for key, finding in pairs:
        if finding is not None and not (key == "cwd" and finding.value == "."):
            lines += [finding.comment(), f"{key} = {_toml(finding.value)}"]
    return lines


def write_config(root: Path) -> tuple[Path, Scan]:
    """Scan `root` and write root/devstack.toml; never overwrites one."""
    target = root / "devstack.toml"
    if target.exists():
        raise DevstackError(f"{target} already exists; `devstack init` never overwrites a config. Fix: edit it, or "
                            "move it away and run `devstack init` again.", 1)
    scan = scan_project(root)
    target.write_text(render(scan))
    return target, scan
