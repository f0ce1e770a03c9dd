"""The demo's tasks. Each has an explicit ``name=`` (stable across refactors) and a queue in ``TASK_QUEUES``.

Queues mirror Dify's: ``dataset`` (indexing), ``generation``, ``mail``, plus Celery's default ``celery``.
"""
from __future__ import annotations

import time
from datetime import datetime, timezone

from celery import shared_task
from celery.utils.log import get_task_logger
from flask import current_app

logger = get_task_logger(__name__)

DEFAULT_QUEUE = "celery"
QUEUES = ("celery", "dataset", "generation", "mail")

# task name -> queue; turned into Celery's ``task_routes`` by the app factory.
TASK_QUEUES: dict[str, str] = {
    "demo.add": "celery",
    "demo.sleep": "dataset",
    "demo.fail": "generation",
    "demo.send_mail": "mail",
    "demo.tick": "celery",
    "demo.echo": "celery",
    "demo.debug": "celery",
    "demo.rdb": "celery",
}

LAST_TICK_KEY = "demo:last_tick"


@shared_task(name="demo.add")
def add(x, y):
    return x + y


@shared_task(name="demo.sleep")
def sleep(seconds):
    time.sleep(float(seconds))
    return seconds


@shared_task(name="demo.fail")
def fail(message="boom"):
    raise ValueError(message)


@shared_task(name="demo.send_mail")
def send_mail(to):
    # Pretend: a real app would talk to SMTP / Resend here.
    logger.info("pretend mail sent to %s", to)
    return {"to": to, "sent": True}


@shared_task(name="demo.tick")
def tick():
    """Run by beat: write the current time into the cache (Redis db 0, REDIS_URL)."""
    now = datetime.now(timezone.utc).isoformat()
    current_app.extensions["demo_cache"]().set(LAST_TICK_KEY, now)
    return now


@shared_task(name="demo.echo")
def echo(text):
    # Verbatim to stdout: the worker redirects it to its log, and the TUI must not interpret markup.
    print(text, flush=True)
    return text


@shared_task(name="demo.debug")
def debug(x):
    # Under `-P solo` pdb reads the worker's stdin (devstack keeps a pipe to it); under prefork: BdbQuit.
    breakpoint()
    return x * 2


@shared_task(name="demo.rdb")
def rdb(x):
    # Celery's remote debugger: works under any pool; prints "Remote Debugger:<port>: Ready to connect: ..."
    # and waits for one TCP client (the TUI's `d`, or telnet). CELERY_RDB_PORT sets the base port.
    from celery.contrib import rdb as remote

    remote.set_trace()
    return x * 2
