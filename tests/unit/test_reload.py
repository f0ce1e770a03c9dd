"""ReloadPlanner: which services a changed file concerns, and which folders get a watch."""
from __future__ import annotations

from pathlib import Path

from devstack.config import parse_config
from devstack.reload import ReloadPlanner, describe_files, glob_regex


def planner(root: Path, **tables) -> ReloadPlanner:
    data = {"project": {"env_file": ""}, "api": {"app": "app:app"}, "worker": {"app": "app:celery"}, **tables}
    (root / "devstack.toml").write_text("")
    config = parse_config(data, root=root, path=root / "devstack.toml", source="devstack.toml", cwd=root)
    return ReloadPlanner.from_config(config)


def tree(root: Path, *paths: str) -> None:
    for p in paths:
        f = root / p
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("")


def test_glob_regex():
    assert glob_regex("*.py").match("a.py") and not glob_regex("*.py").match("x/a.py")
    assert glob_regex("app/**/*.html").match("app/t/x/a.html")
    assert glob_regex("app/**/*.html").match("app/a.html")
    assert glob_regex("a?c").match("abc") and not glob_regex("a?c").match("a/c")


def test_defaults_python_only_everything_but_ignored(tmp_path):
    tree(tmp_path, "app/tasks.py", ".venv/lib/x.py", "node_modules/m/x.py", "docs/a.md")
    p = planner(tmp_path)
    assert p.services_for(tmp_path / "app" / "tasks.py") == ["api", "worker", "beat"]
    assert p.services_for(tmp_path / "top.py") == ["api", "worker", "beat"]
    for ignored in (".venv/lib/x.py", "node_modules/m/x.py", "app/__pycache__/t.py", ".git/x.py",
                    ".devstack/logs/x.py", "docs/a.md", "app/.#tasks.py", "app/tasks.py~", "pkg.egg-info/x.py"):
        assert p.services_for(tmp_path / ignored) == [], ignored


def test_redis_and_processes_watch_nothing_by_default(tmp_path):
    p = planner(tmp_path, process={"web": {"command": "npm run dev"}})
    assert "web" not in p.services_for(tmp_path / "x.py")
    assert "redis" not in p.services_for(tmp_path / "x.py")


def test_targets_skip_ignored_folders(tmp_path):
    tree(tmp_path, "app/a.py", "lib/b.py", ".venv/lib/x.py", "node_modules/m/x.js", ".git/HEAD")
    flat, deep = planner(tmp_path).targets()
    assert flat == [tmp_path]
    assert deep == [tmp_path / "app", tmp_path / "lib"]


def test_explicit_watch_folders_globs_and_extensions(tmp_path):
    tree(tmp_path, "api/views.py", "api/templates/i.html", "worker/tasks.py", "settings.yaml")
    p = planner(tmp_path, api={"app": "app:app", "watch": ["api", "settings.yaml"], "watch_extensions": ["html"]},
                worker={"app": "app:celery", "watch": ["worker/**/*.py"]}, beat={"enabled": False})
    assert p.services_for(tmp_path / "api" / "views.py") == ["api"]
    assert p.services_for(tmp_path / "api" / "templates" / "i.html") == ["api"]
    assert p.services_for(tmp_path / "settings.yaml") == ["api"]
    assert p.services_for(tmp_path / "worker" / "tasks.py") == ["worker"]
    assert p.services_for(tmp_path / "worker" / "deep" / "x.py") == ["worker"]
    assert p.services_for(tmp_path / "other.py") == []
    flat, deep = p.targets()
    assert tmp_path / "api" in flat + deep and tmp_path / "worker" in flat + deep


def test_watch_ignore_names_and_paths(tmp_path):
    tree(tmp_path, "app/a.py", "app/generated/g.py", "scratch/s.py")
    p = planner(tmp_path, worker={"app": "app:celery", "watch_ignore": ["generated", "scratch/*"]})
    assert "worker" not in p.services_for(tmp_path / "app" / "generated" / "g.py")
    assert "worker" not in p.services_for(tmp_path / "scratch" / "s.py")
    assert "worker" in p.services_for(tmp_path / "app" / "a.py")
    assert "api" in p.services_for(tmp_path / "scratch" / "s.py")  # ignore is per service


def test_empty_watch_disables_a_service(tmp_path):
    p = planner(tmp_path, beat={"app": "app:celery", "watch": []})
    assert p.services_for(tmp_path / "x.py") == ["api", "worker"]


def test_missing_watch_entry_is_a_warning(tmp_path):
    p = planner(tmp_path, api={"app": "app:app", "watch": ["nope"]})
    assert any("'nope'" in w and "Fix:" in w for w in p.warnings)


def test_config_and_env_files_are_special(tmp_path):
    (tmp_path / ".env").write_text("A=1\n")
    data = {"project": {"env_file": ".env"}, "api": {"app": "a:app"}, "worker": {"app": "a:celery"}}
    (tmp_path / "devstack.toml").write_text("")
    config = parse_config(data, root=tmp_path, path=tmp_path / "devstack.toml", source="devstack.toml", cwd=tmp_path)
    p = ReloadPlanner.from_config(config)
    assert p.special(tmp_path / "devstack.toml") == "config"
    assert p.special(tmp_path / ".env") == "env"
    assert p.relevant(tmp_path / ".env") and not p.relevant(tmp_path / "x.txt")


def test_describe_files(tmp_path):
    files = [tmp_path / f"m{i}.py" for i in range(5)]
    assert describe_files(files, tmp_path) == "m0.py, m1.py, m2.py and 2 more"


def stack_config(root: Path, **worker):
    data = {"project": {"env_file": ""}, "api": {"app": "app:app"}, "worker": {"app": "app:celery", **worker}}
    return parse_config(data, root=root, path=root / "devstack.toml", source="devstack.toml", cwd=root)


def test_engine_applies_a_config_and_names_the_services_it_changes(tmp_path):
    from devstack.engine import Engine
    from devstack.redis_server import RedisEndpoint

    engine = Engine(stack_config(tmp_path), environ={"PATH": "/usr/bin:/bin"})
    engine.endpoint = RedisEndpoint("binary", "127.0.0.1", 6379, "pw")
    engine.services = {"redis": None, "api": None, "worker": None}  # only the names count here
    new = stack_config(tmp_path, concurrency=3)
    assert engine.apply_config(new, {"X": "1"}) == ["api", "worker"]  # X reaches every app's env
    assert engine.config is new and engine.env_file_vars == {"X": "1"}
    assert engine.apply_config(stack_config(tmp_path, concurrency=3), {"X": "1"}) == []


def test_engine_keeps_its_config_when_the_new_one_cannot_be_applied(tmp_path, monkeypatch):
    import pytest

    from devstack.engine import Engine
    from devstack.redis_server import RedisEndpoint

    old = stack_config(tmp_path)
    engine = Engine(old, environ={"PATH": "/usr/bin:/bin"})
    engine.endpoint = RedisEndpoint("binary", "127.0.0.1", 6379, "pw")
    engine.services = {"redis": None, "worker": None}
    new = stack_config(tmp_path, concurrency=3)
    real = engine.spec_for

    def spec_for(name):
        if engine.config is new:
            raise ValueError("cannot apply")
        return real(name)

    monkeypatch.setattr(engine, "spec_for", spec_for)
    with pytest.raises(ValueError):
        engine.apply_config(new, {"X": "1"})
    assert engine.config is old and engine.env_file_vars == {}


class FakeTarget:
    """A ReloadTarget with no engine behind it: the reloader needs nothing more."""

    def __init__(self, config):
        self.config = config
        self.notices: list[tuple[str, str]] = []

    def service_names(self):
        return ["redis", "api", "worker"]

    def service_state(self, name):
        return None

    async def reload_service(self, name, timeout):
        return 0.1

    def apply_config(self, config, env_file_vars):
        raise ValueError("a setting the stack cannot apply")

    def notice(self, text, level="info", service=None):
        self.notices.append((text, level))


def test_reloader_reports_a_config_the_target_rejects(tmp_path):
    from devstack.reload import Reloader

    (tmp_path / "devstack.toml").write_text('[api]\napp = "app:app"\n[worker]\napp = "app:celery"\n')
    target = FakeTarget(stack_config(tmp_path))
    reloader = Reloader(target)
    assert reloader._reload_config() == []
    assert reloader._reload_env() == []
    assert [level for _, level in target.notices] == ["error", "error"]
    assert "cannot apply the new configuration" in target.notices[0][0]


def test_the_engine_is_a_reload_target():
    from devstack.engine import Engine
    from devstack.reload import ReloadTarget

    wanted = [n for n in vars(ReloadTarget) if not n.startswith("_") and n != "config"]
    assert wanted and all(callable(getattr(Engine, n, None)) for n in wanted), wanted


def test_imports_narrow_the_default_watch(tmp_path):
    """A file some service imported restarts only its importers (and services without a report); a file
    nobody imported falls back to the watch paths; an explicit `watch` wins."""
    tree(tmp_path, "tasks.py", "views.py", "shared.py", "new.py")
    p = planner(tmp_path)
    t, v, s, new = (tmp_path / n for n in ("tasks.py", "views.py", "shared.py", "new.py"))
    loaded = {"api": frozenset({v, s}), "worker": frozenset({t, s}), "beat": frozenset({s})}
    assert p.services_for(t, loaded) == ["worker"]
    assert p.services_for(v, loaded) == ["api"]
    assert p.services_for(s, loaded) == ["api", "worker", "beat"]
    assert p.services_for(new, loaded) == ["api", "worker", "beat"]
    assert p.why(t, loaded) == "imported by worker"
    assert p.why(new, loaded) == "imported by no service yet: watch paths"
    # beat has not reported (starting, crashed): it restarts as before, since what it imports is unknown
    assert p.services_for(t, {"api": frozenset({v}), "worker": frozenset({t})}) == ["worker", "beat"]
    explicit = planner(tmp_path, api={"app": "app:app", "watch": ["."]})
    assert explicit.services_for(t, loaded) == ["api", "worker"]
    assert p.services_for(tmp_path / ".venv" / "x.py", loaded) == []
