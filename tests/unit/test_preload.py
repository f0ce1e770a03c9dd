"""The preload list's rules without processes: what a spare imports, what is dropped, how its progress reads."""
from __future__ import annotations

import json
import sys
from pathlib import Path

from devstack.module_report import app_view, child_env
from devstack.module_report_site.sitecustomize import library_modules
from devstack.preload import PRELOAD_VAR, Progress, drop, modules_for, report_env


def test_the_recorded_list_wins_less_what_was_dropped_or_excluded(tmp_path):
    env = report_env("worker", tmp_path, ["pandas"])
    assert modules_for(env, ("celery", "pandas.io")) == (("celery",), False)  # nothing recorded yet
    (tmp_path / "preload").mkdir()
    (tmp_path / "preload" / "worker.json").write_text(json.dumps({"modules": ["sqlalchemy", "pandas", "pandas.io",
                                                                              "pandasx", "yaml"]}))
    assert modules_for(env, ("celery",)) == (("sqlalchemy", "pandasx", "yaml"), True)
    drop(env, ["yaml"])
    drop(env, ["sqlalchemy"])
    assert modules_for(env, ()) == (("pandasx",), True)
    assert json.loads((tmp_path / "preload" / "worker.dropped.json").read_text()) == {"modules": ["sqlalchemy", "yaml"]}


def test_the_app_never_sees_the_preload_variables(tmp_path):
    env = child_env({"PATH": "/bin"}, "api", tmp_path, tmp_path, preload_exclude=["numpy"])
    assert env[PRELOAD_VAR].endswith("preload/api.json")
    assert app_view(env) == {"PATH": "/bin"}
    assert PRELOAD_VAR not in child_env({}, "api", tmp_path, tmp_path, preload=False)


def test_only_modules_from_outside_the_project_are_listed(tmp_path):
    project = tmp_path / "project"
    (project / ".venv" / "lib" / "site-packages").mkdir(parents=True)
    mine = project / "views.py"
    mine.write_text("")
    lib = project / ".venv" / "lib" / "site-packages" / "lib.py"
    lib.write_text("")

    class Spec:
        def __init__(self, name):
            self.name = name

    def module(name, path, spec_name=None):
        m = type(sys)(name)
        m.__file__, m.__spec__ = str(path), Spec(spec_name or name)
        return m

    modules = [("json", sys.modules["json"]), ("views", module("views", mine)), ("lib", module("lib", lib)),
               ("six.moves", module("six.moves", lib, "six")), ("sys", sys), ("json.decoder", sys.modules["json.decoder"])]
    assert library_modules(modules, str(project), []) == ["json", "lib", "json.decoder"]
    assert library_modules(modules, str(project), ["json"]) == ["lib"]


def test_progress_names_what_failed_and_where_a_spare_died():
    p = Progress()
    p.feed(b"try a\nfail a\tImportError: no b\ntry c\ntaint c\ntr")
    p.feed(b"y d\n")
    assert p.culprits(died=False) == {"a": "ImportError: no b", "c": "it imports the project's own modules"}
    assert p.culprits(died=True)["d"] == "the spare died while importing it"
    p.feed(b"ready\n")
    assert "d" not in p.culprits(died=True)


def test_a_long_list_goes_to_the_guard_through_a_file(tmp_path):
    from devstack import guard, preload

    env = preload.report_env("worker", tmp_path)
    short = ("flask", "celery")
    assert preload.guard_arg(env, short) == "flask,celery"
    long = tuple(f"package_{i}.module_{i}" for i in range(2000))  # ~44 KB: past the inline limit
    arg = preload.guard_arg(env, long)
    assert arg.startswith("@") and len(arg) < 300
    assert guard._module_list(arg).split(",") == list(long)
    assert not Path(arg[1:]).exists(), "the guard deletes the file once read"
