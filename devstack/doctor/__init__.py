"""`devstack doctor`: the errors people hit with Flask + Celery + Redis, checked and explained.

:func:`run_doctor` gathers a :class:`Context` (``context``), runs every check (``checks``) against
the configured stack, running or not, and returns :class:`Check` lines (``report``). No password is
ever part of a message: sources are named ("REDIS_PASSWORD in .env"), never quoted, URLs are shown
as ``redis://:***@host``, and the report is scrubbed of every known secret once more.

The log-line detectors the engine runs live in :mod:`devstack.diagnose`, masking in
:mod:`devstack.secrets`; both are re-exported here, where their callers found them before.
"""
from ..broker_url import SHAPE, broker_url_problems
from ..diagnose import DETECTORS, Diagnosis, LogDiagnoser, diagnose_line
from ..secrets import mask
from .checks import CHECKS, DEFAULT_VISIBILITY_TIMEOUT, count_watched_dirs, visibility_timeout
from .context import Context, Target, build_context, expected_endpoint
from .report import FAIL, OK, WARN, Check, format_report
from .run import run_doctor

__all__ = [
    "CHECKS", "DEFAULT_VISIBILITY_TIMEOUT", "DETECTORS", "FAIL", "OK", "SHAPE", "WARN",
    "Check", "Context", "Diagnosis", "LogDiagnoser", "Target",
    "broker_url_problems", "build_context", "count_watched_dirs", "diagnose_line", "expected_endpoint",
    "format_report", "mask", "run_doctor", "visibility_timeout",
]
