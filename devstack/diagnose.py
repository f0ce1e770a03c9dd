"""In-context diagnosis: a log line a child printed mapped to what it means and the fix.

:func:`diagnose_line` maps one line to a :class:`Diagnosis`; :class:`LogDiagnoser` subscribes to the
engine bus and emits one ``Notice`` per distinct diagnosis per service. Passwords are masked.
"""
from __future__ import annotations

import re
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
    if "Unable to load celery application" in line or re.search(r"Could not import '[^']+'", line):
        return Diagnosis("import:app", f"the app could not be loaded: {line.strip()[:160].rstrip('.')}. Fix: check "
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
                        r"Unable to load celery|Could not import|already in use|is in use")
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
