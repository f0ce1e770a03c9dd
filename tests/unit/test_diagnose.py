"""Why a process exited: the last exception line of its output, and the fix devstack knows for it."""
from __future__ import annotations

import os
import stat
import sys

from devstack.diagnose import ExceptionTracker, diagnose_line, explain_exception, interpreter_for

CELERY_SYNTAX_ERROR = """\
Usage: celery [OPTIONS] COMMAND [ARGS]...
Error: Invalid value for '-A' / '--app':
Unable to load celery application.
While trying to load the module app the following error occurred:
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/celery/bin/celery.py", line 137, in celery
    app = find_app(app)
  File "<frozen importlib._bootstrap>", line 1204, in _gcd_import
  File "/proj/app.py", line 3, in <module>
    import tasks
  File "/proj/tasks.py", line 12
    def f(:
          ^
SyntaxError: invalid syntax
"""


def track(text: str) -> ExceptionTracker:
    t = ExceptionTracker()
    for line in text.splitlines():
        t.feed(line)
    return t


def test_the_last_traceback_line_and_its_file_line_are_kept():
    t = track(CELERY_SYNTAX_ERROR)
    assert t.last == "SyntaxError: invalid syntax"
    assert t.where == "/proj/tasks.py:12"
    assert "Fix: the syntax at /proj/tasks.py:12" in explain_exception(t.last, t.where, "/venv/bin/python")


def test_a_chained_traceback_ends_with_its_last_exception():
    t = track("Traceback (most recent call last):\n  File \"a.py\", line 1, in <module>\nKeyError: 'x'\n\n"
              "During handling of the above exception, another exception occurred:\n\n"
              "Traceback (most recent call last):\n  File \"b.py\", line 7, in <module>\n"
              "kombu.exceptions.OperationalError: Error 111 connecting to 127.0.0.1:6379. Connection refused.\n")
    assert t.last.startswith("kombu.exceptions.OperationalError: Error 111") and t.where == "b.py:7"
    assert "refused the connection" in explain_exception(t.last, t.where, None)


def test_without_a_traceback_the_last_error_line_counts():
    t = track("[INFO/MainProcess] starting\n[2026-01-01 10:00:00: CRITICAL/MainProcess] Unrecoverable error: boom\n")
    assert t.last.endswith("Unrecoverable error: boom")
    assert track("all fine\n").last is None


def test_version_mismatch_names_the_package_and_the_install_command_for_the_app_interpreter():
    line = "kombu.exceptions.VersionMismatch: Redis transport requires redis-py versions 6.1.0 or later. You have 5.3.1"
    text = explain_exception(line, None, "/app/.venv/bin/python")
    assert text.startswith(line)
    assert "`/app/.venv/bin/python -m pip install 'redis>=6.1.0'`" in text


def test_import_errors_name_the_module_and_the_interpreter():
    text = explain_exception("ModuleNotFoundError: No module named 'flask_sqlalchemy'", "/proj/app.py:2", "/v/bin/python")
    assert "'flask_sqlalchemy' is not installed for /v/bin/python" in text and "pip install flask_sqlalchemy" in text
    assert "imported at /proj/app.py:2" in text
    text = explain_exception("ImportError: cannot import name 'create_app' from 'app'", None, "/v/bin/python")
    assert "'app' has no 'create_app'" in text


def test_a_module_missing_from_devstacks_own_python_points_at_project_python():
    """No venv found: the app ran with devstack's Python, and the likely fix is the app's own virtualenv."""
    line = "ModuleNotFoundError: No module named 'pydantic_settings'"
    own = os.path.join(os.path.dirname(sys.executable), "python3")
    text = explain_exception(line, None, own)
    assert "devstack's own Python" in text and "set [project] python" in text
    assert f"`{own} -m pip install pydantic_settings`" in text
    assert "[project] python" not in explain_exception(line, None, "/app/.venv/bin/python")


def test_passwords_in_the_last_line_are_masked():
    text = explain_exception("redis.exceptions.AuthenticationError: redis://:hunter2@h:6379/1 NOAUTH", None, None)
    assert "hunter2" not in text and "NOAUTH" in text


def test_interpreter_of_a_script_and_of_pips_long_path_wrapper(tmp_path):
    script = tmp_path / "celery"
    script.write_text("#!/opt/app/.venv/bin/python3.11\nimport sys\n")
    assert interpreter_for([str(script)]) == "/opt/app/.venv/bin/python3.11"
    script.write_text("#!/bin/sh\n'''exec' /very/long/path/bin/python3 \"$0\" \"$@\"\n' '''\n")
    assert interpreter_for([str(script)]) == "/very/long/path/bin/python3"
    script.write_text("#!/usr/bin/env python3\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    assert interpreter_for(["celery"], path=str(tmp_path)) == "python3"
    assert interpreter_for([sys.executable, "-m", "celery"]) == sys.executable
    assert interpreter_for([str(tmp_path / "missing")]) is None


def test_celerys_app_not_found_line_points_at_the_setting_and_the_generic_one_at_the_exception():
    found = diagnose_line("The module nosuch_mod was not found.")
    assert found.key == "import:app" and "'nosuch_mod'" in found.text and "[api] app / [worker] app" in found.text
    generic = diagnose_line("Unable to load celery application.")
    assert "the exception printed after this line names the cause" in generic.text
