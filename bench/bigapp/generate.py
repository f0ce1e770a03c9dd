"""Write a Flask + Celery app shaped like Dify's API into a folder, for benchmarking devstack on a big app.

Layout (Dify's names): `app.py` (the entry point `flask --app app` and `celery -A app` both import),
`app_factory.py` (`create_app()`: extensions, then blueprints for the API only), `configs/` (pydantic
settings from REDIS_HOST, REDIS_PORT, REDIS_PASSWORD, REDIS_DB, CELERY_BROKER_URL...), `extensions/`
(`ext_redis`, `ext_celery` with a `FlaskTask` that pushes an app context, `ext_database` with
Flask-SQLAlchemy, `ext_login`, ...), `models/`, `core/`, `libs/`, `services/` (shared by API and
worker), `controllers/` (blueprints, the API only), `tasks/` (the worker only, through Celery's
`include`), `schedule/` (periodic tasks, worker and beat). Three files exist for the benchmark to save:
BENCH_TASK (worker only), BENCH_VIEW (API only, served at BENCH_ENDPOINT) and BENCH_SERVICE (both).

Usage: python bench/bigapp/generate.py DEST [--python PATH] [--redis-port N] [--api-port N]
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Sized so that importing the API takes over 3 s on the 2-core machine the figures come from (issue 10). The same
# machine is not equally fast every day: with 0.83x these counts the API process took 3.04 s on 2026-12-02 and
# 2.41 s the next session (bench/bigapp_bench.py's figure); with 0.42x, 2.05 s. Most of it is the project's own
# modules (Dify's API has ~1,500).
N_FEATURE_CONFIGS, N_LIBS, N_MODELS, N_ENTITIES, N_SERVICES = 10, 36, 72, 96, 144
N_TASKS, N_SCHEDULES = 144, 4
BLUEPRINTS = {"console": 96, "service_api": 38, "web": 38, "files": 10, "inner_api": 10}  # view modules each
VIEWS_PER_MODULE = 8
QUEUES = ["dataset", "generation", "mail", "ops_trace", "app_deletion"]
BENCH_TASK = "tasks/bench_probe_task.py"
BENCH_VIEW = "controllers/console/bench_version.py"
BENCH_SERVICE = "services/bench_probe_service.py"
BENCH_ENDPOINT = "/console/api/bench-version"

__all__ = ["BENCH_ENDPOINT", "BENCH_SERVICE", "BENCH_TASK", "BENCH_VIEW", "QUEUES", "generate", "shape",
           "write_config", "write_probe"]


APP = '''\
"""Entry point: `flask --app app run` serves `app`; `celery -A app worker|beat` finds `celery`."""
from app_factory import create_app

app = create_app()
celery = app.extensions["celery"]
'''

APP_FACTORY = '''\
"""create_app(): configuration, extensions, and (for the API only) the blueprints."""
import os
import sys
import time

from flask import Flask

from configs import dify_config


def celery_command() -> str | None:
    """`worker`, `beat`... when this process is the `celery` program, else None (Dify checks argv too)."""
    script = os.path.basename(sys.argv[0]) if sys.argv else ""
    if script != "celery" and not sys.argv[0].endswith(os.path.join("celery", "__main__.py")):
        return None
    return next((a for a in sys.argv[1:] if a in ("worker", "beat", "inspect", "call", "shell")), "other")


def create_app() -> Flask:
    started = time.perf_counter()
    app = Flask(__name__)
    app.config.from_mapping(dify_config.flask_settings())
    from extensions import (ext_blueprints, ext_celery, ext_compress, ext_cors, ext_database, ext_json,
                            ext_logging, ext_login, ext_redis, ext_storage, ext_timezone)
    steps = [ext_timezone, ext_logging, ext_json, ext_database, ext_redis, ext_storage, ext_celery, ext_login,
             ext_cors, ext_compress]
    if celery_command() is None:
        steps.append(ext_blueprints)
    for ext in steps:
        ext.init_app(app)
    app.logger.debug("create_app took %.2f s", time.perf_counter() - started)
    return app
'''

CONFIGS_INIT = '''\
"""dify_config: every setting, read from the environment."""
from .app_config import DifyConfig

dify_config = DifyConfig()
'''

APP_CONFIG = '''\
from pydantic_settings import SettingsConfigDict

from .middleware import CeleryConfig, DatabaseConfig, RedisConfig
{imports}


class DifyConfig(RedisConfig, CeleryConfig, DatabaseConfig, {bases}):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    SECRET_KEY: str = "bench-secret"

    def flask_settings(self) -> dict:
        return {{"SECRET_KEY": self.SECRET_KEY, "SQLALCHEMY_DATABASE_URI": self.SQLALCHEMY_DATABASE_URI,
                 "SQLALCHEMY_TRACK_MODIFICATIONS": False}}
'''

MIDDLEWARE = '''\
"""Settings of the services the app talks to: Redis, Celery's broker, the database."""
from pydantic import Field
from pydantic_settings import BaseSettings


class RedisConfig(BaseSettings):
    REDIS_HOST: str = "localhost"
    REDIS_PORT: int = 6379
    REDIS_PASSWORD: str | None = None
    REDIS_DB: int = 0
    REDIS_USE_SSL: bool = False


class CeleryConfig(BaseSettings):
    CELERY_BROKER_URL: str = "redis://localhost:6379/1"
    CELERY_RESULT_BACKEND: str | None = None
    CELERY_TASK_ANNOTATIONS: dict | None = None


class DatabaseConfig(BaseSettings):
    SQLALCHEMY_DATABASE_URI: str = Field(default="sqlite:///bench.db")
    SQLALCHEMY_POOL_SIZE: int = 30
'''

FEATURE_CONFIG = '''\
from pydantic import Field, PositiveInt
from pydantic_settings import BaseSettings


class Feature{i:02d}Config(BaseSettings):
{fields}
'''

EXT_REDIS = '''\
"""redis_client: one client for the whole app, from REDIS_HOST/PORT/PASSWORD/DB (connects lazily)."""
import redis

from configs import dify_config

redis_client = redis.Redis(host=dify_config.REDIS_HOST, port=dify_config.REDIS_PORT,
                           password=dify_config.REDIS_PASSWORD, db=dify_config.REDIS_DB, ssl=dify_config.REDIS_USE_SSL)


def init_app(app):
    app.extensions["redis"] = redis_client
'''

EXT_CELERY = '''\
"""The Celery app, its FlaskTask (each task runs in an app context), beat's schedule; task modules are
included for the worker only: the API sends tasks by name, beat needs only the schedule."""
from celery import Celery, Task

from configs import dify_config

TASK_MODULES = {tasks!r}
SCHEDULE_MODULES = {schedules!r}
QUEUES = {queues!r}


def init_app(app):
    from app_factory import celery_command

    class FlaskTask(Task):
        def __call__(self, *args, **kwargs):
            with app.app_context():
                return self.run(*args, **kwargs)

    include = SCHEDULE_MODULES + (TASK_MODULES if celery_command() == "worker" else [])
    celery_app = Celery(app.name, task_cls=FlaskTask, broker=dify_config.CELERY_BROKER_URL,
                        backend=dify_config.CELERY_RESULT_BACKEND, include=include)
    celery_app.conf.update(
        task_default_queue="dataset", broker_connection_retry_on_startup=True, timezone="UTC",
        beat_schedule={{name.rsplit(".", 1)[-1]: {{"task": f"{{name}}.run", "schedule": 3600.0}}
                       for name in SCHEDULE_MODULES}},
    )
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
'''

EXT_DATABASE = '''\
"""db: Flask-SQLAlchemy, with every model imported (as Dify's models package does)."""
from models.base import db


def init_app(app):
    import models  # noqa: F401  (registers every table on db.metadata)

    db.init_app(app)
'''

EXT_LOGIN = '''\
"""Flask-Login: the account of a request, loaded by id."""
import flask_login

login_manager = flask_login.LoginManager()


def init_app(app):
    from models.model_00 import Account00A

    @login_manager.user_loader
    def load_user(user_id):
        return Account00A.query.get(user_id)

    login_manager.init_app(app)
'''

EXT_SIMPLE = {
    "ext_cors": "from flask_cors import CORS\n\n\ndef init_app(app):\n    CORS(app, resources={r\"/*\": {\"origins\": \"*\"}})\n",
    "ext_timezone": "import os\nimport time\n\n\ndef init_app(app):\n    os.environ['TZ'] = 'UTC'\n    if hasattr(time, 'tzset'):\n        time.tzset()\n",
    "ext_logging": "import logging\n\n\ndef init_app(app):\n    logging.getLogger('bench').setLevel(logging.INFO)\n",
    "ext_json": "import json\n\nfrom flask.json.provider import DefaultJSONProvider\n\n\nclass JSONProvider(DefaultJSONProvider):\n    sort_keys = False\n\n\ndef init_app(app):\n    app.json = JSONProvider(app)\n",
    "ext_compress": "import gzip  # noqa: F401\n\n\ndef init_app(app):\n    app.config.setdefault('COMPRESS_LEVEL', 6)\n",
    "ext_storage": "import requests\nimport yaml  # noqa: F401\n\nsession = requests.Session()\n\n\ndef init_app(app):\n    app.extensions['storage'] = session\n",
}

EXT_BLUEPRINTS = '''\
"""Register every blueprint (the API only: the worker and beat never import a view)."""


def init_app(app):
{imports}
{registers}
'''

MODELS_BASE = '''\
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=Base)
'''

MODEL = '''\
import datetime
import uuid

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .base import db

{classes}
'''

MODEL_CLASS = '''\
class {name}(db.Model):
    __tablename__ = "{table}"
    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True, default=lambda: str(uuid.uuid4()))
    tenant_id: Mapped[str] = mapped_column(sa.String(36), index=True)
    name: Mapped[str] = mapped_column(sa.String(255))
    description: Mapped[str | None] = mapped_column(sa.Text)
    status: Mapped[str] = mapped_column(sa.String(32), default="normal")
    position: Mapped[int] = mapped_column(sa.Integer, default=0)
    payload: Mapped[dict | None] = mapped_column(sa.JSON)
    created_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime, default=datetime.datetime.utcnow)
    updated_at: Mapped[datetime.datetime] = mapped_column(sa.DateTime, default=datetime.datetime.utcnow)
{fk}
'''

ENTITY = '''\
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field
{dep}


class Kind{i:02d}(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    ARCHIVED = "archived"

{classes}
'''

ENTITY_CLASS = '''\
class {name}(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    kind: Kind{i:02d} = Kind{i:02d}.DRAFT
    title: str = Field(default="", max_length=255)
    score: float = 0.0
    tags: list[str] = Field(default_factory=list)
    meta: dict[str, str] = Field(default_factory=dict)
    parent_id: str | None = None
'''

LIB = '''\
import hashlib
import json
import re

import numpy as np

PATTERN_{i} = re.compile(r"[a-z]+_{i}")


def digest_{i}(value: str) -> str:
    return hashlib.sha256(f"{i}:{{value}}".encode()).hexdigest()


def normalise_{i}(values):
    arr = np.asarray(values, dtype=float)
    return (arr - arr.mean()) / (arr.std() or 1.0)


def dumps_{i}(obj) -> str:
    return json.dumps(obj, sort_keys=True, default=str)
'''

SERVICE = '''\
import pandas as pd

from core.entities.entity_{e:02d} import {entity}
from libs.helper_{lib:02d} import digest_{lib}, normalise_{lib}
from models.model_{m:02d} import {model}
from models.base import db


class {name}:
    """Business logic over {model}, shared by the API and the worker."""

    @staticmethod
    def get(item_id: str) -> "{model} | None":
        return db.session.get({model}, item_id)

    @staticmethod
    def summarise(rows: list[dict]) -> dict:
        frame = pd.DataFrame(rows)
        if frame.empty:
            return {{"count": 0}}
        return {{"count": len(frame), "score": float(normalise_{lib}(frame["score"]).sum())}}

    @staticmethod
    def to_entity(row: dict) -> {entity}:
        return {entity}(id=digest_{lib}(row.get("id", "")), **{{k: v for k, v in row.items() if k != "id"}})
'''

PROBE_SERVICE = '''\
"""Saved by the benchmark: imported by a view (the API) and by a task (the worker)."""
VERSION = "{version}"


def version() -> str:
    return VERSION
'''

BLUEPRINT_INIT = '''\
from flask import Blueprint

bp = Blueprint("{name}", __name__, url_prefix="/{prefix}")

from . import {modules}  # noqa: E402,F401  (the views register themselves on bp)
'''

VIEW = '''\
from flask import jsonify, request
from flask.views import MethodView
from pydantic import BaseModel

from . import bp
{service_imports}


class Query{i:02d}(BaseModel):
    page: int = 1
    limit: int = 20
    keyword: str | None = None

{views}
'''

VIEW_FUNC = '''\

@bp.route("/{path}/<item_id>", methods=["GET", "POST"])
def {func}(item_id):
    query = Query{i:02d}.model_validate(request.args.to_dict())
    if request.method == "POST":
        return jsonify({svc}.summarise(request.get_json(silent=True) or []))
    return jsonify({{"id": item_id, "page": query.page, "limit": query.limit}})


class {cls}(MethodView):
    def get(self):
        return jsonify({{"items": [], "view": "{func}"}})


bp.add_url_rule("/{path}", view_func={cls}.as_view("{func}_list"))
'''

PROBE_VIEW = '''\
"""Saved by the benchmark: a view only the API imports; GET {endpoint} answers VERSION."""
from flask import jsonify

from services import bench_probe_service

from . import bp

VERSION = "{version}"


@bp.get("/bench-version")
def bench_version():
    return jsonify({{"version": VERSION, "service": bench_probe_service.version()}})
'''

TASK = '''\
import logging
import time

from celery import shared_task

{service_imports}

logger = logging.getLogger(__name__)

{tasks}
'''

TASK_FUNC = '''\

@shared_task(queue="{queue}")
def {func}(item_id: str, rows: list | None = None):
    started = time.perf_counter()
    result = {svc}.summarise(rows or [])
    logger.info("{func} %s done in %.3f s", item_id, time.perf_counter() - started)
    return result
'''

PROBE_TASK = '''\
"""Saved by the benchmark: a task module only the worker imports."""
from celery import shared_task

from services import bench_probe_service

VERSION = "{version}"


@shared_task(queue="dataset")
def bench_probe():
    return {{"task": VERSION, "service": bench_probe_service.version()}}
'''

SCHEDULE = '''\
"""A periodic task (beat sends it, the worker runs it)."""
import logging

from celery import shared_task

from extensions.ext_redis import redis_client


@shared_task(queue="dataset", name="schedule.{name}.run")
def run():
    logging.getLogger(__name__).info("{name}: %s keys", redis_client.dbsize())
'''


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _package(root: Path, rel: str, doc: str) -> None:
    _write(root, f"{rel}/__init__.py", f'"""{doc}"""\n')


def _configs(root: Path) -> None:
    _write(root, "configs/__init__.py", CONFIGS_INIT)
    _write(root, "configs/middleware/__init__.py", MIDDLEWARE)
    _package(root, "configs/feature", "Feature flags and limits, one settings class per area.")
    for i in range(N_FEATURE_CONFIGS):
        fields = "\n".join(f'    FEATURE_{i:02d}_{k}: PositiveInt = Field(default={k + 1}, description="limit {k}")'
                           for k in range(12))
        fields += f"\n    FEATURE_{i:02d}_ENABLED: bool = True"
        _write(root, f"configs/feature/feature_{i:02d}.py", FEATURE_CONFIG.format(i=i, fields=fields))
    imports = "\n".join(f"from .feature.feature_{i:02d} import Feature{i:02d}Config" for i in range(N_FEATURE_CONFIGS))
    bases = ", ".join(f"Feature{i:02d}Config" for i in range(N_FEATURE_CONFIGS))
    _write(root, "configs/app_config.py", APP_CONFIG.format(imports=imports, bases=bases))


def _extensions(root: Path, blueprints: list[str]) -> None:
    _package(root, "extensions", "Flask extensions, each with init_app(app), called by app_factory.create_app.")
    tasks = [f"tasks.task_{i:02d}" for i in range(N_TASKS)] + ["tasks.bench_probe_task"]
    schedules = [f"schedule.clean_{i:02d}_task" for i in range(N_SCHEDULES)]
    _write(root, "extensions/ext_celery.py", EXT_CELERY.format(tasks=tasks, schedules=schedules, queues=QUEUES))
    _write(root, "extensions/ext_redis.py", EXT_REDIS)
    _write(root, "extensions/ext_database.py", EXT_DATABASE)
    _write(root, "extensions/ext_login.py", EXT_LOGIN)
    for name, text in EXT_SIMPLE.items():
        _write(root, f"extensions/{name}.py", text)
    imports = "\n".join(f"    from controllers.{bp} import bp as {bp}_bp" for bp in blueprints)
    registers = "\n".join(f"    app.register_blueprint({bp}_bp)" for bp in blueprints)
    _write(root, "extensions/ext_blueprints.py", EXT_BLUEPRINTS.format(imports=imports, registers=registers))


def _models(root: Path) -> list[tuple[int, str]]:
    _write(root, "models/base.py", MODELS_BASE)
    names = []
    for m in range(N_MODELS):
        classes = []
        for k in range(3):
            name = f"{'Account' if m == 0 else 'Model'}{m:02d}{'ABC'[k]}"
            fk = '    account_id: Mapped[str | None] = mapped_column(sa.ForeignKey("account00a.id"))' if m and not k else ""
            classes.append(MODEL_CLASS.format(name=name, table=name.lower(), fk=fk))
            names.append((m, name))
        _write(root, f"models/model_{m:02d}.py", MODEL.format(classes="\n\n".join(classes)))
    lines = [f"from .model_{m:02d} import {name}" for m, name in names]
    _write(root, "models/__init__.py", '"""Every table (Dify imports them all here)."""\n'
           + "\n".join(lines) + "\n\n__all__ = [" + ", ".join(f'"{n}"' for _, n in names) + "]\n")
    return names


def _core_and_libs(root: Path) -> None:
    _package(root, "core", "Domain entities and helpers shared by services.")
    _package(root, "core/entities", "Pydantic entities.")
    for i in range(N_ENTITIES):
        dep = f"from core.entities.entity_{i - 1:02d} import Entity{i - 1:02d}A  # noqa: F401" if i else ""
        classes = "\n\n".join(ENTITY_CLASS.format(name=f"Entity{i:02d}{c}", i=i) for c in "ABC")
        _write(root, f"core/entities/entity_{i:02d}.py", ENTITY.format(i=i, dep=dep, classes=classes))
    _package(root, "libs", "Small helpers.")
    for i in range(N_LIBS):
        _write(root, f"libs/helper_{i:02d}.py", LIB.format(i=i))


def _services(root: Path, models: list[tuple[int, str]]) -> None:
    _package(root, "services", "Business logic, imported by views (the API) and tasks (the worker).")
    for s in range(N_SERVICES):
        m, model = models[(s * 3) % len(models)]
        _write(root, f"services/service_{s:02d}.py", SERVICE.format(
            e=s % N_ENTITIES, entity=f"Entity{s % N_ENTITIES:02d}B", lib=s % N_LIBS, m=m, model=model,
            name=f"Service{s:02d}"))
    write_probe(root, BENCH_SERVICE, "v0")


def _service_imports(picks: list[int]) -> tuple[str, list[str]]:
    names = [f"Service{s:02d}" for s in picks]
    return "\n".join(f"from services.service_{s:02d} import Service{s:02d}" for s in picks), names


def _controllers(root: Path) -> list[str]:
    _package(root, "controllers", "Blueprints: the API's views (the worker and beat never import them).")
    count = 0
    for bp, n in BLUEPRINTS.items():
        modules = [f"views_{i:02d}" for i in range(n)]
        if bp == "console":
            modules.append("bench_version")
        _write(root, f"controllers/{bp}/__init__.py", BLUEPRINT_INIT.format(
            name=bp, prefix=bp.replace("_", "-") if bp != "console" else "console/api", modules=", ".join(modules)))
        for i in range(n):
            picks = sorted({count % N_SERVICES, (count * 7 + 3) % N_SERVICES})
            imports, svcs = _service_imports(picks)
            views = "".join(VIEW_FUNC.format(path=f"r{i:02d}-{v}", func=f"{bp}_{i:02d}_{v}", cls=f"View{i:02d}{v}",
                                             i=i, svc=svcs[v % len(svcs)]) for v in range(VIEWS_PER_MODULE))
            _write(root, f"controllers/{bp}/views_{i:02d}.py", VIEW.format(service_imports=imports, i=i, views=views))
            count += 1
    write_probe(root, BENCH_VIEW, "v0")
    return list(BLUEPRINTS)


def _tasks(root: Path) -> None:
    _package(root, "tasks", "Celery tasks (the worker imports them through the Celery app's include).")
    for t in range(N_TASKS):
        picks = sorted({(t * 5 + 1) % N_SERVICES, (t * 11 + 2) % N_SERVICES})
        imports, svcs = _service_imports(picks)
        body = "".join(TASK_FUNC.format(queue=QUEUES[(t + k) % len(QUEUES)], func=f"task_{t:02d}_{k}",
                                        svc=svcs[k % len(svcs)]) for k in range(3))
        _write(root, f"tasks/task_{t:02d}.py", TASK.format(service_imports=imports, tasks=body))
    write_probe(root, BENCH_TASK, "v0")
    _package(root, "schedule", "Periodic tasks: beat sends them, the worker runs them.")
    for i in range(N_SCHEDULES):
        _write(root, f"schedule/clean_{i:02d}_task.py", SCHEDULE.format(name=f"clean_{i:02d}_task"))


def write_probe(root: Path, rel: str, version: str) -> None:
    """(Re)write one of the three files the benchmark saves, with `version` in it."""
    template = {BENCH_TASK: PROBE_TASK, BENCH_VIEW: PROBE_VIEW, BENCH_SERVICE: PROBE_SERVICE}[rel]
    _write(root, rel, template.format(version=version, endpoint=BENCH_ENDPOINT))


def write_config(root: Path, python: str, redis_port: int, api_port: int, password: str | None = None) -> Path:
    """devstack.toml: api, a prefork -c 2 worker on the app's queues, beat; the app's own interpreter."""
    secret = f'password = "{password}"\n' if password else ""
    path = root / "devstack.toml"
    path.write_text(f"""[project]
name = "bigapp"
python = "{python}"

[redis]
port = {redis_port}
{secret}
[api]
app = "app:app"
port = {api_port}

[worker]
app = "app:celery"
pool = "prefork"
concurrency = 2
queues = {QUEUES!r}

[beat]
app = "app:celery"

[reload]
# The benchmark saves a file every 1-2 s: more than the default storm guard allows in a minute.
storm_limit = 1000
""".replace("'", '"'))
    return path


def shape() -> str:
    """The app's parts in words, for docs/benchmarks.md."""
    return (f"{sum(BLUEPRINTS.values())} blueprint modules with {VIEWS_PER_MODULE} views each, {N_SERVICES} services, "
            f"{N_MODELS * 3} SQLAlchemy models, {N_TASKS + 1} task modules the worker alone imports through Celery's "
            "include")


def generate(dest: Path, python: str, redis_port: int = 6379, api_port: int = 5001) -> Path:
    """Write the whole app into `dest` (emptied first); returns its devstack.toml."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    _write(dest, "app.py", APP)
    _write(dest, "app_factory.py", APP_FACTORY)
    _configs(dest)
    models = _models(dest)
    _core_and_libs(dest)
    _services(dest, models)
    blueprints = _controllers(dest)
    _extensions(dest, blueprints)
    _tasks(dest)
    shutil.copy(HERE / "requirements.txt", dest / "requirements.txt")
    return write_config(dest, python, redis_port, api_port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path)
    parser.add_argument("--python", default="python3", help="the interpreter devstack runs the app with")
    parser.add_argument("--redis-port", type=int, default=6379)
    parser.add_argument("--api-port", type=int, default=5001)
    args = parser.parse_args()
    config = generate(args.dest.resolve(), args.python, args.redis_port, args.api_port)
    count = sum(1 for _ in args.dest.rglob("*.py"))
    print(f"wrote {count} modules and {config}")


if __name__ == "__main__":
    main()
