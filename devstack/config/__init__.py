"""Configuration: find, read and validate the devstack configuration.

Where each part lives:

    ==============  ==========================================================================
    ``discovery``   finding the file (the discovery order is a table there), reading TOML and
                    ``[tool.devstack]``, the bundled demo stack
    ``parse``       validating a parsed table into a :class:`Config`
    ``models``      one pydantic model per table, and the names tables may use
    ``rules``       rules across tables: Redis mode and URL, apps, beat defaults, ``depends_on``
    ``messages``    pydantic errors turned into messages naming the key and the nearest valid one
    ``errors``      :class:`ConfigError`
    ``schema``      the JSON Schema of the file (``devstack schema``), generated from ``models``
    ==============  ==========================================================================

Every path in the file is resolved relative to the folder that holds the config file (``root``).

Errors in the file are user errors: they raise :class:`ConfigError` (the CLI exits with code 2 and
prints ``str(error)``, never a traceback). Each message is one paragraph naming the file, the table
and key, what was wrong and how to fix it, e.g.::

    devstack.toml: [worker] concurency: unknown key. Did you mean "concurrency"? Valid keys: ...

The Redis password is never included in an error message or in ``repr(config)``.
"""
from __future__ import annotations

from .discovery import DEMO_APP, DEMO_CELERY, DEMO_QUEUES, demo_config, demo_root, find_config, load_config
from .errors import ConfigError
from .models import (
    BUILTIN_SERVICES,
    LOGLEVELS,
    PROCESS_NAME_RE,
    REDIS_URL_SCHEMES,
    RESERVED_NAMES,
    SECRET_KEYS,
    TABLES,
    ApiConfig,
    BeatConfig,
    Config,
    ProcessConfig,
    ProjectConfig,
    RedisConfig,
    ReloadConfig,
    ServiceConfig,
    WorkerConfig,
)
from .parse import parse_config
from .schema import SCHEMA_ID, config_schema

from . import discovery, errors, models, parse, schema

# every public name of the parts; importers use ``devstack.config``, never a part
__all__ = [*errors.__all__, *models.__all__, *parse.__all__, *discovery.__all__, *schema.__all__]
