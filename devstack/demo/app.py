"""The demo stack devstack runs when no ``devstack.toml`` is found.

``devstack up`` in a directory without a ``devstack.toml`` starts a Redis server and this small
Flask + Celery application, so that every panel of the TUI (API, worker, beat, Redis, queues) has
something real to show. It is shaped like a real application, Dify being the reference:

==========================  ==========================================================
demo                        real application (Dify)
==========================  ==========================================================
``create_app()`` factory    ``app_factory.create_app()``
``app`` / ``celery``        ``app:app`` for ``flask run``, ``app.celery`` for the worker/beat
``FlaskTask``               ``extensions/ext_celery.py``: ``__call__`` in ``app.app_context()``
``CELERY_BROKER_URL``       same name; Redis db 1 (``redis://:pw@host:6379/1``)
``CELERY_RESULT_BACKEND``   ``CELERY_BACKEND`` (Redis db 1 or the database)
``REDIS_URL`` (db 0)        ``REDIS_HOST`` / ``REDIS_PORT`` / ``REDIS_PASSWORD`` / ``REDIS_DB``: the cache
queues ``dataset``,         ``dataset``, ``generation``, ``mail``, ... (``-Q`` of the worker)
``generation``, ``mail``
``demo.tick`` every 10 s    beat-scheduled jobs
(and daily at 03:00)        (``schedule/*`` tasks)
==========================  ==========================================================

Command lines (what devstack runs, with the environment above set)::

    flask --app devstack.demo.app:app run --port 5001
    celery -A devstack.demo.app:celery worker -Q celery,dataset,generation,mail -E
    celery -A devstack.demo.app:celery beat -s <state dir>/celerybeat-schedule

Configuration: ``CELERY_BROKER_URL`` (required), ``CELERY_RESULT_BACKEND`` (default: the broker),
``REDIS_URL`` (default: the broker URL with db 0), ``DEMO_TICK_SECONDS`` (default 10), and any
``FLASK_*`` variable through ``app.config.from_prefixed_env()`` (``FLASK_CELERY__broker_url`` sets
``app.config["CELERY"]["broker_url"]``).

Only flask, celery and redis are imported here, so the worker starts fast.
"""
from __future__ import annotations

import os
from typing import Any, Mapping
from urllib.parse import urlsplit, urlunsplit

from celery import Celery
from celery.result import AsyncResult
from celery.schedules import crontab
from flask import Blueprint, Flask, current_app, jsonify, request

from .celery_app import celery_init_app
from . import tasks as demo_tasks

DEFAULT_TICK_SECONDS = 10.0


class DemoConfigError(RuntimeError):
    """The demo was started without the environment devstack provides."""


def _cache_url_from_broker(broker_url: str) -> str | None:
    parts = urlsplit(broker_url)
    if parts.scheme not in ("redis", "rediss"):
        return None
    return urlunsplit((parts.scheme, parts.netloc, "/0", parts.query, ""))


def _tick_seconds() -> float:
    raw = os.environ.get("DEMO_TICK_SECONDS", "")
    try:
        value = float(raw) if raw else DEFAULT_TICK_SECONDS
    except ValueError:
        raise DemoConfigError(f"DEMO_TICK_SECONDS must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise DemoConfigError(f"DEMO_TICK_SECONDS must be positive, got {raw!r}")
    return value


def create_app(test_config: Mapping[str, Any] | None = None) -> Flask:
    app = Flask(__name__)
    broker_url = os.environ.get("CELERY_BROKER_URL") or None
    app.config.from_mapping(
        REDIS_URL=os.environ.get("REDIS_URL") or None,
        CELERY=dict(
            broker_url=broker_url,
            result_backend=os.environ.get("CELERY_RESULT_BACKEND") or broker_url,
            task_default_queue=demo_tasks.DEFAULT_QUEUE,
            task_routes={name: {"queue": q} for name, q in demo_tasks.TASK_QUEUES.items()},
            task_track_started=True,
            result_expires=3600,
            broker_connection_retry_on_startup=True,
            task_ignore_result=False,
            beat_schedule={
                "demo-tick": {"task": "demo.tick", "schedule": _tick_seconds()},
                # A crontab entry (rarely due) so that `devstack beat` shows both kinds of schedule.
                "demo-nightly-tick": {"task": "demo.tick", "schedule": crontab(minute=0, hour=3)},
            },
        ),
    )
    app.config.from_prefixed_env()  # FLASK_SECRET_KEY, FLASK_CELERY__broker_url, ...
    if test_config:
        app.config.from_mapping(test_config)

    celery_conf = app.config["CELERY"]
    if not celery_conf.get("broker_url"):
        raise DemoConfigError(
            "CELERY_BROKER_URL is not set: the devstack demo needs a Redis broker "
            "(e.g. redis://:password@127.0.0.1:6379/1). Run it with `devstack up`, "
            "which starts Redis and sets CELERY_BROKER_URL, CELERY_RESULT_BACKEND and REDIS_URL."
        )
    if not celery_conf.get("result_backend"):
        celery_conf["result_backend"] = celery_conf["broker_url"]
    if _truthy(os.environ.get("CELERY_USE_SENTINEL")):
        # Dify (extensions/ext_celery.py): kombu finds the master through the sentinels by this name.
        options = {"master_name": os.environ.get("CELERY_SENTINEL_MASTER_NAME", ""),
                   "sentinel_kwargs": {"password": os.environ.get("CELERY_SENTINEL_PASSWORD") or None}}
        celery_conf.setdefault("broker_transport_options", options)
        celery_conf.setdefault("result_backend_transport_options", options)
    if not app.config.get("REDIS_URL"):
        app.config["REDIS_URL"] = _cache_url_from_broker(celery_conf["broker_url"])

    _init_cache(app)
    celery_init_app(app)
    app.register_blueprint(api)
    return app


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _sentinel_cache_client():
    """Dify's ext_redis with REDIS_USE_SENTINEL: the master named REDIS_SENTINEL_SERVICE_NAME."""
    from redis.sentinel import Sentinel

    sentinels = []
    for item in filter(None, (os.environ.get("REDIS_SENTINELS") or "").split(",")):
        host, _, port = item.strip().rpartition(":")
        sentinels.append((host, int(port)))
    if not sentinels:
        raise DemoConfigError("REDIS_USE_SENTINEL is true but REDIS_SENTINELS (host:port,host:port) is empty")
    sentinel_kwargs = {"socket_timeout": 1.0, "password": os.environ.get("REDIS_SENTINEL_PASSWORD") or None}
    return Sentinel(sentinels, socket_timeout=1.0, sentinel_kwargs=sentinel_kwargs).master_for(
        os.environ.get("REDIS_SENTINEL_SERVICE_NAME", ""), password=os.environ.get("REDIS_PASSWORD") or None,
        db=int(os.environ.get("REDIS_DB") or 0), decode_responses=True)


def _init_cache(app: Flask) -> None:
    """A lazily created Redis client for the cache (db 0), like Dify's ``ext_redis``."""
    client = None

    def get_cache():
        nonlocal client
        if client is None:
            if _truthy(os.environ.get("REDIS_USE_SENTINEL")):
                client = _sentinel_cache_client()
            else:
                url = app.config.get("REDIS_URL")
                if not url:
                    raise DemoConfigError("REDIS_URL is not set (the cache, Redis db 0)")
                import redis

                client = redis.Redis.from_url(url, decode_responses=True)
        return client

    app.extensions["demo_cache"] = get_cache


# ---------------------------------------------------------------- HTTP API

api = Blueprint("demo_api", __name__)


class BadArgument(ValueError):
    pass


def _arg(name: str, default: Any = None, convert=str):
    body = request.get_json(silent=True) if request.is_json else None
    value = None
    if isinstance(body, dict) and name in body:
        value = body[name]
    elif name in request.values:
        value = request.values[name]
    if value is None:
        if default is None:
            raise BadArgument(f"missing parameter {name!r}")
        return default
    try:
        return convert(value)
    except (TypeError, ValueError):
        raise BadArgument(f"bad value for {name!r}: {value!r}") from None


def _number(value):
    if isinstance(value, (int, float)):
        return value
    try:
        return int(value)
    except ValueError:
        return float(value)


@api.errorhandler(BadArgument)
def _bad_argument(exc):
    return jsonify(error=str(exc)), 400


def _enqueue(task, *args):
    result = task.apply_async(args=args)
    return jsonify(id=result.id, task=task.name, queue=demo_tasks.TASK_QUEUES[task.name]), 202


@api.get("/")
def index():
    return jsonify(status="ok", tasks=sorted(demo_tasks.TASK_QUEUES))


@api.route("/tasks/add", methods=["GET", "POST"])
def enqueue_add():
    return _enqueue(demo_tasks.add, _arg("x", convert=_number), _arg("y", convert=_number))


@api.route("/tasks/sleep", methods=["GET", "POST"])
def enqueue_sleep():
    return _enqueue(demo_tasks.sleep, _arg("seconds", 1, _number))


@api.route("/tasks/fail", methods=["GET", "POST"])
def enqueue_fail():
    return _enqueue(demo_tasks.fail, _arg("message", "boom"))


@api.route("/tasks/mail", methods=["GET", "POST"])
def enqueue_mail():
    return _enqueue(demo_tasks.send_mail, _arg("to", "someone@example.com"))


@api.route("/tasks/echo", methods=["GET", "POST"])
def enqueue_echo():
    return _enqueue(demo_tasks.echo, _arg("text", "[bold]x[/bold]"))


@api.route("/tasks/debug", methods=["GET", "POST"])
def enqueue_debug():
    return _enqueue(demo_tasks.debug, _arg("x", 21, _number))


@api.route("/tasks/rdb", methods=["GET", "POST"])
def enqueue_rdb():
    return _enqueue(demo_tasks.rdb, _arg("x", 21, _number))


@api.get("/tasks/<task_id>")
def task_status(task_id: str):
    res = AsyncResult(task_id, app=current_app.extensions["celery"])
    state = res.state
    if state == "FAILURE":
        result = repr(res.result)
    elif state == "SUCCESS":
        result = res.result
    else:
        result = None
    try:
        return jsonify(id=task_id, state=state, result=result)
    except TypeError:
        return jsonify(id=task_id, state=state, result=repr(result))


@api.get("/cache/last_tick")
def last_tick():
    value = current_app.extensions["demo_cache"]().get(demo_tasks.LAST_TICK_KEY)
    return jsonify(key=demo_tasks.LAST_TICK_KEY, value=value), (200 if value is not None else 404)


app = create_app()
celery: Celery = app.extensions["celery"]
