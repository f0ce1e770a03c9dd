"""Replay and revoke a task, through a bare Celery app bound to the broker (never the user's app).

Replay sends the same task name, args, kwargs and queue again under a new id. It reproduces them
exactly when devstack captured the original message from the broker (queue or `unacked`); otherwise
it rebuilds the args from the event's reprs when they are Python literals. It does not reproduce an
ETA/countdown, expiry, links/chains/chords, parent/root ids or custom headers.
"""
from __future__ import annotations

import ast
import json
import uuid
from dataclasses import dataclass, field

from devstack.broker.layout import decode_body
from devstack.errors import DevstackError

SIGNALS = ("TERM", "KILL")


@dataclass
class ReplayPlan:
    name: str
    args: list
    kwargs: dict
    queue: str | None
    routing_key: str | None = None
    exchange: str | None = None
    priority: int | None = None
    exact: bool = True  # False: args rebuilt from reprs
    notes: list[str] = field(default_factory=list)


def _bare_celery(broker_url: str):
    from celery import Celery

    app = Celery("devstack-actions", broker=broker_url, set_as_current=False)
    app.conf.update(broker_connection_retry=False, broker_connection_retry_on_startup=False,
                    broker_connection_max_retries=0, broker_connection_timeout=2.0)
    return app


def plan_replay(row: dict, body: str | None, queue: str | None = None, known_queue: str | None = None) -> ReplayPlan:
    """What to send again for task `row` (a history row) given its captured message `body`; `known_queue`:
    where other tasks of the same name were seen, used when this one's queue was not captured."""
    if not row.get("name"):
        raise DevstackError(f"task {row['id']} has no task name in devstack's history (only some of its events were "
                            "seen), so it cannot be replayed.", 1)
    plan = _from_body(row, body) or _from_reprs(row)
    if queue:
        plan.queue, plan.routing_key, plan.exchange = queue, queue, None
    elif not plan.queue and known_queue:
        plan.queue = plan.routing_key = known_queue
        plan.notes.append(f"queue {known_queue}: where the last captured {row['name']} was (this one's was not seen)")
    if not plan.queue:
        raise DevstackError(f"the queue of task {row['id']} is unknown: its message finished before devstack read it "
                            "from the broker. Say which queue to send it to: `devstack replay "
                            f"{row['id']} --queue QUEUE`.", 1)
    return plan


def _from_body(row: dict, body: str | None) -> ReplayPlan | None:
    try:
        envelope = json.loads(body) if body else None
    except ValueError:
        return None
    if not isinstance(envelope, dict):
        return None
    decoded, ok = decode_body(envelope)
    if not ok:
        return None
    if isinstance(decoded, list) and len(decoded) >= 2:  # protocol 2: [args, kwargs, embed]
        args, kwargs = decoded[0], decoded[1]
    elif isinstance(decoded, dict):  # protocol 1
        args, kwargs = decoded.get("args", []), decoded.get("kwargs", {})
    else:
        return None
    props = envelope.get("properties") if isinstance(envelope.get("properties"), dict) else {}
    info = props.get("delivery_info") if isinstance(props.get("delivery_info"), dict) else {}
    routing_key = info.get("routing_key") or row.get("queue")
    return ReplayPlan(row["name"], list(args or []), dict(kwargs or {}), row.get("queue") or routing_key,
                      routing_key, info.get("exchange") or None,
                      props.get("priority") if isinstance(props.get("priority"), int) else None)


def _from_reprs(row: dict) -> ReplayPlan:
    try:
        args = ast.literal_eval(row.get("args") or "()")
        kwargs = ast.literal_eval(row.get("kwargs") or "{}")
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        args = kwargs = None
    if not isinstance(args, (tuple, list)) or not isinstance(kwargs, dict):
        raise DevstackError(f"task {row['id']} cannot be replayed: its message was not captured from the broker, and "
                            f"its args {row.get('args')!r} / kwargs {row.get('kwargs')!r} are reprs that are not "
                            "Python literals (objects, or cut at 1024 characters).", 1)
    return ReplayPlan(row["name"], list(args), kwargs, row.get("queue"), row.get("routing_key"), exact=False,
                      notes=["args rebuilt from their reprs (the message itself was not captured)"])


def send(plan: ReplayPlan, broker_url: str) -> str:
    """Publish the task; returns the new id. Blocking."""
    new_id = str(uuid.uuid4())
    app = _bare_celery(broker_url)
    try:
        options = {"queue": plan.queue, "routing_key": plan.routing_key or plan.queue}
        if plan.exchange:
            options["exchange"] = plan.exchange
        if plan.priority is not None:
            options["priority"] = plan.priority
        app.send_task(plan.name, args=tuple(plan.args), kwargs=plan.kwargs, task_id=new_id, **options)
    except Exception as exc:
        raise DevstackError(f"could not send {plan.name} to queue {plan.queue}: {type(exc).__name__}: {exc}", 1)
    finally:
        app.close()
    return new_id


def revoke(task_id: str, broker_url: str, *, terminate: bool = False, signal: str = "TERM") -> None:
    """Broadcast a revoke to the live workers (and terminate the task's process with SIGTERM/SIGKILL). Blocking."""
    if signal not in SIGNALS:
        raise DevstackError(f"unknown signal {signal!r}: use one of {', '.join(SIGNALS)}", 2)
    app = _bare_celery(broker_url)
    try:
        app.control.revoke(task_id, terminate=terminate, signal=f"SIG{signal}")
    except Exception as exc:
        raise DevstackError(f"could not broadcast the revoke of {task_id}: {type(exc).__name__}: {exc}", 1)
    finally:
        app.close()
