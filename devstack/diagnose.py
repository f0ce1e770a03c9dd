"""In-context diagnosis: a log line a child printed mapped to what it means and the fix.

:func:`diagnose_line` maps one line to a :class:`Diagnosis`; :class:`LogDiagnoser` subscribes to the
engine bus and emits one ``Notice`` per distinct diagnosis per service. :class:`ExceptionTracker` keeps
the last exception a process printed and :func:`explain_exception` turns it into the reason and fix
of an exit. Passwords are masked.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from typing import Callable

from .broker_url import SHAPE
from .events import LogLine
from .secrets import mask


@dataclass(frozen=True)
class Diagnosis:
    """What a log line means and how to fix it; ``key`` identifies it for de-duplication."""

    key: str
    text: str


_HOSTPORT = re.compile(r"connecting to ([\w.\-\[\]:]+?):(\d+)")
_CANNOT_CONNECT = re.compile(r"Cannot connect to ((?:redis|rediss|sentinel)://\S+?)(?::? Error|: |\.?\s*$)")
_UNREGISTERED = re.compile(r"Received unregistered task of type '?([^'\s.]+(?:\.[^'\s]+)*)'?")
_NO_MODULE = re.compile(r"(?:ModuleNotFoundError: No module named|ImportError: cannot import name) '([^']+)'")
_APP_NOT_FOUND = re.compile(r"The module (\S+) was not found")
_PORT_IN_USE = re.compile(r"[Pp]ort (\d+) is in use|bind.*?:(\d+).*Address already in use")
DOCTOR = "Run `devstack doctor` for details."


def _refused(line: str) -> Diagnosis | None:
    low = line.lower()
    if "error 111 connecting to" not in low and not ("connection refused" in low and re.search("redis|kombu", low)) \
            and "cannot connect to redis" not in low:
        return None
    m = _HOSTPORT.search(line)
    where = f" at {m.group(1)}:{m.group(2)}" if m else ""
    if not m:
        c = _CANNOT_CONNECT.search(line)
        where = f" at {mask(c.group(1))}" if c else ""
    return Diagnosis("redis-refused", f"Redis{where} refused the connection (Error 111): nothing listens there. "
                                      "Fix: check that the Redis service runs and that CELERY_BROKER_URL / "
                                      f"REDIS_HOST / REDIS_PORT point to devstack's Redis. {DOCTOR}")


def _noauth(line: str) -> Diagnosis | None:
    if "NOAUTH" not in line and "Authentication required" not in line:
        return None
    return Diagnosis("redis-noauth", "Redis requires a password but this process sent none (NOAUTH). Fix: set "
                                     f"REDIS_PASSWORD, and CELERY_BROKER_URL as {SHAPE} "
                                     f"(mind the ':' before the password). {DOCTOR}")


def _wrongpass(line: str) -> Diagnosis | None:
    if "WRONGPASS" not in line and "invalid username-password pair" not in line:
        return None
    return Diagnosis("redis-wrongpass", "the Redis password this process sent is wrong (WRONGPASS). Fix: make "
                                        "REDIS_PASSWORD and the password in CELERY_BROKER_URL match the Redis's "
                                        f"(check the env file and [env]). {DOCTOR}")


def _operational(line: str) -> Diagnosis | None:
    if "kombu.exceptions.OperationalError" not in line:
        return None
    return Diagnosis("kombu-operational", "Celery could not talk to its broker (kombu OperationalError). Fix: "
                                          f"check that Redis runs and that CELERY_BROKER_URL has the shape {SHAPE}. "
                                          f"{DOCTOR}")


def _unregistered(line: str) -> Diagnosis | None:
    m = _UNREGISTERED.search(line)
    if not m:
        return None
    return Diagnosis(f"unregistered:{m.group(1)}",
                     f"the worker received task {m.group(1)!r} but does not know it. Fix: make the worker import "
                     "the module that defines it (Celery(include=[...]) or autodiscover_tasks), and check that "
                     "the name the sender uses matches @task(name=...); then restart the worker.")


def _import_error(line: str) -> Diagnosis | None:
    m = _NO_MODULE.search(line)
    if m:
        what = m.group(1)
        return Diagnosis(f"import:{what}", f"the app failed to import: {line.strip()[:160]}. Fix: install the "
                         f"missing package ({what.split('.')[0]}) in the environment devstack runs the app with, "
                         "or correct the module path in [api] app / [worker] app and the service's cwd.")
    m = _APP_NOT_FOUND.search(line)
    if m:
        return Diagnosis("import:app", f"the app module {m.group(1)!r} was not found. Fix: check [api] app / "
                                       "[worker] app (module:attribute) and the service's cwd.")
    if "Unable to load celery application" in line or re.search(r"Could not import '[^']+'", line):
        # Celery says this for a syntax error or a failing import inside the app as well: the exception
        # that follows (repeated in the exit notice) is the cause, the setting only when the module is missing.
        return Diagnosis("import:app", f"the app could not be loaded: {line.strip()[:160].rstrip('.')}. Fix: the "
                                       "exception printed after this line names the cause (devstack repeats it "
                                       "if the process exits); if the module itself is not found, check "
                                       "[api] app / [worker] app (module:attribute) and the service's cwd.")
    return None


def _port_in_use(line: str) -> Diagnosis | None:
    if "Address already in use" not in line and not re.search(r"[Pp]ort \d+ is in use", line):
        return None
    m = _PORT_IN_USE.search(line)
    port = next((g for g in m.groups() if g), None) if m else None
    which = f"port {port}" if port else "its port"
    return Diagnosis("port-in-use", f"{which} is already in use by another process. Fix: stop that process "
                                    "(`lsof -i :PORT` shows it), or set a free port for this service in devstack.toml.")


DETECTORS: tuple[Callable[[str], Diagnosis | None], ...] = (
    _wrongpass, _noauth, _refused, _operational, _unregistered, _import_error, _port_in_use)
_PREFILTER = re.compile(r"Error 111|refused|NOAUTH|Authentication required|WRONGPASS|username-password|"
                        r"OperationalError|Cannot connect|unregistered task|ModuleNotFoundError|ImportError|"
                        r"Unable to load celery|Could not import|was not found|already in use|is in use")
# Case-sensitive on purpose: this runs on every log line, and re.I made it ~15x slower (16 µs a line),
# the largest cost of log ingestion. The phrases are matched as the libraries print them.


def diagnose_line(line: str) -> Diagnosis | None:
    """The diagnosis for one log line, or None. The most specific detector wins; passwords are masked."""
    if not _PREFILTER.search(line):
        return None
    for detect in DETECTORS:
        found = detect(line)
        if found is not None:
            return Diagnosis(found.key, mask(found.text))
    return None


class LogDiagnoser:
    """Bus subscriber: one notice per distinct diagnosis per service, so a reconnect loop is one message."""

    def __init__(self, notify: Callable[[str, str, str | None], None]):
        self.notify = notify
        self.seen: set[tuple[str, str]] = set()

    def __call__(self, event) -> None:
        if not isinstance(event, LogLine):
            return
        found = diagnose_line(event.text)
        if found is None or (event.service, found.key) in self.seen:
            return
        self.seen.add((event.service, found.key))
        service = event.service
        key = f"[{service}] app" if service in ("api", "worker", "beat") else f"[process.{service}] command"
        text = found.text.replace("[api] app / [worker] app", key).replace("[api] app /[worker] app", key)
        self.notify(f"{service}: {text}", "warning", service)


# ----- why a process exited ------------------------------------------------------------------------
_FILE_LINE = re.compile(r'^\s*File "([^"]+)", line (\d+)')
_EXCEPTION = re.compile(r"^([A-Za-z_][\w.]*): (.*)$")
_CHAIN = ("During handling of the above exception", "The above exception was the direct cause")
_VERSION = re.compile(r"requires ([\w.-]+?) versions? ([\d.]+)")
_CANNOT_IMPORT = re.compile(r"cannot import name '([^']+)' from '([^']+)'")
_NO_MODULE_NAMED = re.compile(r"No module named '([^']+)'")
_PIP_WRAPPER = "'''exec' "  # pip's /bin/sh wrapper for interpreter paths too long for a shebang
PIP_NAMES = {"redis-py": "redis", "py-amqp": "amqp"}


class ExceptionTracker:
    """Fed a process's output line by line: remembers the exception line its last traceback ended with,
    the last file:line that traceback named, and, without any traceback, the last error-looking line."""

    __slots__ = ("exception", "where", "error_line", "_in_traceback", "_file")

    def __init__(self) -> None:
        self.exception: str | None = None
        self.where: str | None = None
        self.error_line: str | None = None
        self._in_traceback = False
        self._file: str | None = None

    def feed(self, line: str) -> None:
        if line.startswith("Traceback (most recent call last)"):
            self._in_traceback, self._file = True, None
        elif self._in_traceback:
            if line[:1] in (" ", "\t", "") or line.startswith(_CHAIN):
                m = _FILE_LINE.match(line)
                if m and not m.group(1).startswith("<"):
                    self._file = f"{m.group(1)}:{m.group(2)}"
            else:
                self._in_traceback = False
                self.exception, self.where = line.strip(), self._file
        elif "ERROR" in line or "CRITICAL" in line or line.startswith("Error:"):
            self.error_line = line.strip()

    @property
    def last(self) -> str | None:
        """The line that best says why the process failed."""
        return self.exception or self.error_line


def interpreter_for(argv: list[str], path: str | None = None) -> str | None:
    """The Python that runs `argv`: a python executable itself, or the shebang of a `celery`/`flask` script."""
    exe = argv[0] if argv else ""
    if os.sep not in exe:
        exe = shutil.which(exe, path=path) or exe
    if os.path.basename(exe).startswith("python"):
        return exe
    try:
        with open(exe, "rb") as f:
            head = f.read(512).decode(errors="replace").splitlines()
    except OSError:
        return None
    if not head or not head[0].startswith("#!"):
        return None
    words = head[0][2:].split()
    if words and words[0].endswith("/sh") and len(head) > 1 and head[1].startswith(_PIP_WRAPPER):
        words = head[1][len(_PIP_WRAPPER):].split()
    if words and os.path.basename(words[0]) == "env":
        words = words[1:]
    return words[0] if words else None


def explain_exception(line: str, where: str | None, interpreter: str | None) -> str:
    """`line` (the last exception or error line a process printed), then the fix when devstack knows it."""
    python = interpreter or "python"
    m = _EXCEPTION.match(line)
    kind = m.group(1).rsplit(".", 1)[-1] if m else ""
    if kind == "VersionMismatch":
        fix = _version_fix(line, python)
    elif kind in ("ModuleNotFoundError", "ImportError"):
        fix = _import_fix(line, python) + (f"; imported at {where}" if where else "")
    elif kind in ("SyntaxError", "IndentationError", "TabError"):
        fix = f"Fix: the syntax at {where}" if where else "Fix: the syntax in the file the traceback names"
    else:
        known = diagnose_line(line)
        fix = known.text if known is not None else (f"raised at {where}" if where else "")
    return mask(line[:300] + (f". {fix}" if fix else ""))


def _version_fix(line: str, python: str) -> str:
    v = _VERSION.search(line)
    if v is None:
        return f"Fix: install versions that go together in the app's environment: `{python} -m pip install -U celery kombu redis`"
    package = PIP_NAMES.get(v.group(1), v.group(1))
    return (f"Fix: install a {package} that kombu accepts, in the app's environment: "
            f"`{python} -m pip install '{package}>={v.group(2)}'`")


def _is_devstacks_own(python: str) -> bool:
    """`python` is the interpreter devstack runs on (its bin folder: two venvs share a resolved binary)."""
    return os.path.dirname(os.path.abspath(python)) == os.path.dirname(os.path.abspath(sys.executable))


def _import_fix(line: str, python: str) -> str:
    named, cannot = _NO_MODULE_NAMED.search(line), _CANNOT_IMPORT.search(line)
    if named:
        module = named.group(1)
        install = f"`{python} -m pip install {module.split('.')[0]}`"
        if _is_devstacks_own(python):  # likely the app's virtualenv was not found, not a missing package
            return (f"Fix: module {module!r} is not installed for {python}, devstack's own Python, which runs the "
                    "app because devstack found no other (no [project] python, no VIRTUAL_ENV, no .venv or venv "
                    "in the project): if the app has its own virtualenv, set [project] python to its bin/python; "
                    f"else {install} (if it is a module of your project, check the service's cwd)")
        return (f"Fix: module {module!r} is not installed for {python}: {install} "
                "(if it is a module of your project, check the service's cwd)")
    if cannot:
        return (f"Fix: module {cannot.group(2)!r} has no {cannot.group(1)!r} in {python}'s environment; "
                "correct the import, or install the version that has it")
    return f"Fix: the import failed in {python}'s environment"
