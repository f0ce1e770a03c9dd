"""Celery remote control without the user's app: ping workers, ask which queues they consume.

A bare ``celery.Celery`` bound to the broker URL does it, so the user's app is never imported.
"""
from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger(__name__)


def _bare_app(broker_url: str, timeout: float):
    """A bare Celery app (never the user's) and a private broker connection.

    Everything goes over that one connection: the mailbox's producer pool is switched off, so
    kombu's process-wide pools (shared by every app with the same URL) are never used, and
    closing the connection afterwards cannot break another caller.
    """
    from celery import Celery

    app = Celery("devstack-probe", broker=broker_url, set_as_current=False)
    app.conf.update(
        broker_connection_retry=False,
        broker_connection_retry_on_startup=False,
        broker_connection_max_retries=0,
        broker_connection_timeout=max(timeout, 0.5),
        broker_transport_options={
            "socket_connect_timeout": max(timeout, 0.5),
            "socket_timeout": max(timeout, 0.5) + 2,
            "max_retries": 0,
        },
    )
    app.control.mailbox.producer_pool = None
    return app, app.connection_for_write()


def warm_up(broker_url: str) -> None:
    """Do, without touching the network, the one-off work of the first `worker_ping`: importing
    celery's app, control and kombu's Redis transport, and building a bare app. Run in a thread while
    the worker imports, it takes ~70 ms off the moment the worker is confirmed ready."""
    app, conn = _bare_app(broker_url, 1.0)
    try:
        conn.transport  # imports kombu.transport.redis and its channel classes
        app.control.mailbox  # celery.app.control, kombu.pidbox
    finally:
        _close_app(app, conn)


def worker_ping(broker_url: str, nodenames: list[str] | None = None, timeout: float = 1.0) -> dict[str, bool]:
    """Which workers answer a remote-control ping within ``timeout`` seconds.

    With ``nodenames``, every asked node is in the result (True/False); without, the nodes that
    answered. Broker errors give all-False (the caller checks Redis separately).
    """
    result: dict[str, bool] = {n: False for n in nodenames or []}
    app, conn = _bare_app(broker_url, timeout)
    try:
        replies = app.control.ping(
            destination=list(nodenames) if nodenames else None, timeout=timeout, connection=conn
        ) or []
        for reply in replies:
            for node, answer in (reply or {}).items():
                result[node] = isinstance(answer, dict) and answer.get("ok") == "pong"
    except Exception as exc:  # broker down, auth error...
        log.debug("worker_ping failed: %s", exc)
    finally:
        _close_app(app, conn)
    return result


def active_queues(broker_url: str, timeout: float = 1.0) -> dict[str, list[str]]:
    """nodename -> names of the queues that worker consumes ({} if none answered)."""
    app, conn = _bare_app(broker_url, timeout)
    try:
        replies = app.control.inspect(timeout=timeout, connection=conn).active_queues() or {}
        return {
            node: sorted(q.get("name") for q in (queues or []) if isinstance(q, dict) and q.get("name"))
            for node, queues in replies.items()
        }
    except Exception as exc:
        log.debug("active_queues failed: %s", exc)
        return {}
    finally:
        _close_app(app, conn)


def _close_app(app: Any, conn: Any) -> None:
    try:
        conn.close()
    except Exception:
        pass
    try:
        app.close()
    except Exception:
        pass
