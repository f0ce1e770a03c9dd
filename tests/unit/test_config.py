"""Unit tests for devstack.config: discovery, validation messages, secrets, the example file."""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import BaseModel

import devstack
from devstack import config as cfgmod
from devstack.config import discovery
from devstack.config import (
    Config,
    ConfigError,
    demo_config,
    find_config,
    load_config,
    parse_config,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "config" / "devstack.example.toml"
MINIMAL = '[api]\napp = "app:app"\n[worker]\napp = "app.celery"\n'


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def parse(tmp_path: Path, data: dict, source: str = "devstack.toml") -> Config:
    base = {"api": {"app": "app:app"}, "worker": {"app": "app.celery"}}
    for k, v in data.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            base[k] = {**base[k], **v}
        else:
            base[k] = v
    return parse_config(base, root=tmp_path, path=tmp_path / source, source=source, cwd=tmp_path)


def error(tmp_path: Path, data: dict, source: str = "devstack.toml") -> str:
    with pytest.raises(ConfigError) as ei:
        parse(tmp_path, data, source)
    msg = str(ei.value)
    assert "\n" not in msg and "Traceback" not in msg
    assert ei.value.exit_code == 2
    return msg


# ---------------------------------------------------------------- discovery


def test_explicit_config_wins(tmp_path):
    write(tmp_path / "devstack.toml", MINIMAL)
    other = write(tmp_path / "elsewhere" / "my.toml", MINIMAL.replace("app:app", "other:app"))
    cfg = load_config(explicit=other, cwd=tmp_path)
    assert cfg.path == other.resolve() and cfg.api.app == "other:app"
    assert cfg.source == "devstack.toml"
    assert cfg.root == other.parent.resolve()


def test_explicit_missing_is_config_error(tmp_path):
    with pytest.raises(ConfigError, match="nope.toml"):
        load_config(explicit=Path("nope.toml"), cwd=tmp_path)


def test_devstack_toml_found_in_parent(tmp_path):
    write(tmp_path / "devstack.toml", MINIMAL)
    sub = tmp_path / "a" / "b"
    sub.mkdir(parents=True)
    found = find_config(sub)
    assert found == ((tmp_path / "devstack.toml").resolve(), "devstack.toml")
    cfg = load_config(cwd=sub)
    assert cfg.root == tmp_path.resolve()
    assert cfg.project.name == tmp_path.name
    assert cfg.project.state_dir == (tmp_path / ".devstack").resolve()


def test_devstack_toml_before_pyproject_in_same_folder(tmp_path):
    write(tmp_path / "devstack.toml", MINIMAL)
    write(tmp_path / "pyproject.toml", '[tool.devstack.api]\napp = "x:app"\n')
    assert find_config(tmp_path)[1] == "devstack.toml"


def test_pyproject_tool_devstack(tmp_path):
    write(tmp_path / "pyproject.toml", '[project]\nname="x"\n[tool.devstack.api]\napp = "p:app"\n[tool.devstack.worker]\napp = "p.celery"\n')
    cfg = load_config(cwd=tmp_path)
    assert cfg.source == "pyproject.toml" and cfg.api.app == "p:app"


def test_pyproject_without_table_is_skipped(tmp_path):
    write(tmp_path / "devstack.toml", MINIMAL)
    write(tmp_path / "sub" / "pyproject.toml", '[project]\nname = "x"\n')
    found = find_config(tmp_path / "sub")
    assert found == ((tmp_path / "devstack.toml").resolve(), "devstack.toml")


def test_demo_fallback(tmp_path):
    cfg = demo_config(tmp_path)
    assert cfg.is_demo and cfg.source == "demo" and cfg.path is None
    assert cfg.project.name == "demo"
    assert cfg.root == Path(devstack.__file__).resolve().parent / "demo"
    assert cfg.project.state_dir == (tmp_path / ".devstack").resolve()
    assert cfg.api.app == "devstack.demo.app:app" and cfg.api.port == 5000
    assert cfg.worker.app == "devstack.demo.app:celery"
    assert cfg.worker.queues == ["celery", "dataset", "generation", "mail"]
    assert cfg.worker.concurrency == 2
    assert cfg.beat.enabled and cfg.beat.app == "devstack.demo.app:celery"
    assert cfg.services() == ["redis", "api", "worker", "beat"]


def test_load_config_falls_back_to_demo(tmp_path, monkeypatch):
    # load_config looks find_config up in its own module, so that is where the stand-in goes
    monkeypatch.setattr(discovery, "find_config", lambda cwd, explicit=None: None)
    assert load_config(cwd=tmp_path).is_demo


def test_toml_syntax_error_names_line(tmp_path):
    write(tmp_path / "devstack.toml", '[api]\napp = "x"\nport = = 5\n')
    with pytest.raises(ConfigError) as ei:
        load_config(cwd=tmp_path)
    msg = str(ei.value)
    assert "devstack.toml" in msg and "line 3" in msg and "column" in msg


def test_pyproject_errors_use_tool_prefix(tmp_path):
    write(tmp_path / "pyproject.toml", '[tool.devstack.redis]\nport = "abc"\n[tool.devstack.api]\napp="a:b"\n[tool.devstack.worker]\napp="a.c"\n')
    with pytest.raises(ConfigError, match=r"pyproject.toml: \[tool.devstack.redis\] port"):
        load_config(cwd=tmp_path)


# ---------------------------------------------------------------- defaults & conversions


def test_defaults_and_conversions(tmp_path):
    (tmp_path / ".env").write_text("A=1\n")
    (tmp_path / "srv").mkdir()
    cfg = parse(tmp_path, {
        "env": {"N": 3, "B": True, "S": "x"},
        "api": {"args": "--debug --reload", "command": "gunicorn 'a b'", "cwd": "srv"},
        "worker": {"queues": "a, b,c", "loglevel": "DEBUG"},
        "process": {"web": {"command": "npm run dev", "watch_extensions": ["html"]}},
    })
    assert cfg.env == {"N": "3", "B": "true", "S": "x"}
    assert cfg.api.args == ["--debug", "--reload"] and cfg.api.command == ["gunicorn", "a b"]
    assert cfg.api.cwd == (tmp_path / "srv").resolve()
    assert cfg.worker.cwd == tmp_path.resolve()
    assert cfg.worker.queues == ["a", "b", "c"] and cfg.worker.loglevel == "debug"
    assert cfg.worker.stop_timeout == 30 and cfg.api.stop_timeout == 5
    assert cfg.project.env_file == (tmp_path / ".env").resolve()
    assert cfg.process["web"].command == ["npm", "run", "dev"]
    assert cfg.process["web"].depends_on == ["redis"]
    assert cfg.process["web"].watch_extensions == [".html"]
    assert cfg.api.watch is None
    assert cfg.redis.mode == "auto" and cfg.redis.port == 6379 and cfg.redis.persist
    assert cfg.reload.debounce_ms == 150 and cfg.reload.storm_limit == 10
    assert cfg.services() == ["redis", "api", "worker", "beat", "web"]


def test_beat_defaults(tmp_path):
    assert parse(tmp_path, {}).beat.enabled is True
    assert parse(tmp_path, {}).beat.app == "app.celery"
    cfg = parse(tmp_path, {"beat": {"enabled": False}})
    assert cfg.beat.enabled is False
    cfg = parse_config({"api": {"app": "a:b"}, "worker": {"command": "celery -A x worker"}},
                       root=tmp_path, path=None, source="devstack.toml", cwd=tmp_path)
    assert cfg.beat.enabled is False and cfg.services() == ["redis", "api", "worker"]


def test_env_file_empty_disables_default(tmp_path):
    (tmp_path / ".env").write_text("A=1\n")
    assert parse(tmp_path, {"project": {"env_file": ""}}).project.env_file is None


def test_sentinel_and_external(tmp_path):
    cfg = parse(tmp_path, {"redis": {"mode": "external", "url": "sentinel://h1:26379;sentinel://h2:26379", "master_name": "m"}})
    assert cfg.redis.is_sentinel
    cfg = parse(tmp_path, {"redis": {"url": "redis://localhost:6380/0"}})
    assert cfg.redis.mode == "external"


# ---------------------------------------------------------------- malformed configurations

MALFORMED = [
    ({"worker": {"concurency": 2}}, ["[worker] concurency", 'Did you mean "concurrency"', "Valid keys"]),
    ({"redis": {"port": "abc"}}, ["[redis] port", "between 1 and 65535", '"abc"', "Fix"]),
    ({"redis": {"port": 70000}}, ["[redis] port", "65535"]),
    ({"redsi": {"port": 1}}, ["[redsi]", 'Did you mean "[redis]"']),
    ({"redis": {"mode": "dokcer"}}, ["[redis] mode", 'Did you mean "docker"']),
    ({"worker": {"pool": "gevnt"}}, ["[worker] pool", "gevent"]),
    ({"worker": {"loglevel": "loud"}}, ["[worker] loglevel", "debug"]),
    ({"worker": {"concurrency": 0}}, ["[worker] concurrency", "at least 1"]),
    ({"api": {"app": None, "port": 5000}}, ["[api] app"]),
    ({"worker": {"app": None}}, ["[worker] app"]),
    ({"api": {"cwd": "does-not-exist"}}, ["[api] cwd", "does-not-exist"]),
    ({"api": {"stop_timeout": -1}}, ["[api] stop_timeout", "greater than 0"]),
    ({"project": {"env_file": "missing.env"}}, ["[project] env_file", "missing.env"]),
    ({"redis": {"mode": "external"}}, ["[redis] url"]),
    ({"redis": {"port": 5000}}, ["[api] port", "5000 is also [redis] port", "[api] port = 5001"]),
    ({"redis": {"port": 6390}, "api": {"port": 6390}}, ["[api] port", "6390", "[api] port = 5000"]),
    ({"redis": {"url": "http://example.com"}}, ["[redis] url", "redis://"]),
    ({"redis": {"url": "sentinel://h:26379"}}, ["[redis] master_name"]),
    ({"process": {"web": {"depends_on": ["api"]}}}, ["[process.web] command", "missing"]),
    ({"process": {"web": {"command": ""}}}, ["[process.web] command", "empty"]),
    ({"process": {"web": {"command": "x", "depends_on": ["apii"]}}}, ["[process.web] depends_on", '"apii"', 'Did you mean "api"']),
    ({"process": {"web": {"command": "x", "ready_log": "(unclosed"}}}, ["[process.web] ready_log", "missing )"]),
    ({"process": {"web": {"command": "x", "ready_http": "localhost:3000"}}}, ["[process.web] ready_http", "http://"]),
    ({"process": {"a": {"command": "x", "depends_on": ["b"]}, "b": {"command": "y", "depends_on": ["a"]}}}, ["depends_on", "cycle"]),
    ({"process": {"worker": {"command": "x"}}}, ["[process.worker]", "reserved"]),
    ({"process": {"Web UI": {"command": "x"}}}, ["[process.Web UI]", "name"]),
    ({"beat": {"enabled": True, "app": None}, "worker": {"enabled": False, "app": None}}, ["[beat] app"]),
    ({"env": {"X": {"nested": 1}}}, ["[env] X", "string"]),
    ({"api": {"command": "unbalanced 'quote"}}, ["[api] command", "quote"]),
    ({"reload": {"debounce_ms": "fast"}}, ["[reload] debounce_ms", "integer"]),
    ({"reload": {"pollling": True}}, ["[reload] pollling", 'Did you mean "polling"']),
    ({"api": {"enabled": "yes"}}, ["[api] enabled", "true or false"]),
    ({"redis": 5}, ["[redis]", "table"]),
]


@pytest.mark.parametrize("data,fragments", MALFORMED, ids=[str(i) for i in range(len(MALFORMED))])
def test_malformed(tmp_path, data, fragments):
    data = {k: ({kk: vv for kk, vv in v.items()} if isinstance(v, dict) else v) for k, v in data.items()}
    # None means "remove the key from the base config"
    base = {"api": {"app": "app:app"}, "worker": {"app": "app.celery"}}
    for k, v in data.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            merged = {**base[k], **v}
            base[k] = {kk: vv for kk, vv in merged.items() if vv is not None}
        else:
            base[k] = v
    with pytest.raises(ConfigError) as ei:
        parse_config(base, root=tmp_path, path=tmp_path / "devstack.toml", source="devstack.toml", cwd=tmp_path)
    msg = str(ei.value)
    assert msg.startswith("devstack.toml: ")
    assert "\n" not in msg
    for frag in fragments:
        assert frag in msg, (frag, msg)


def test_password_never_leaks(tmp_path):
    secret = "s3cr3t-Pa55"
    cfg = parse(tmp_path, {"redis": {"password": secret}})
    assert cfg.redis.password == secret
    assert secret not in repr(cfg) and secret not in repr(cfg.redis) and secret not in str(cfg)
    # errors elsewhere in the same table / file
    for bad in ({"redis": {"password": secret, "port": "abc"}},
                {"redis": {"password": secret, "prot": 1}},
                {"redis": {"password": secret, "mode": "external"}},
                {"redis": {"url": f"redis://:{secret}@host:6379/0", "port": "x"}},
                {"redis": {"url": f"http://:{secret}@host"}}):
        assert secret not in error(tmp_path, bad)
    # a wrongly typed password itself
    msg = error(tmp_path, {"redis": {"password": 12345678}})
    assert "12345678" not in msg and "[redis] password" in msg


# ---------------------------------------------------------------- the example file


def _fields(model: type[BaseModel]) -> set[str]:
    return set(model.model_fields) - {"root", "path", "source"}


def test_example_config_is_valid(tmp_path):
    data = tomllib.loads(EXAMPLE.read_text())
    cfg = parse_config(data, root=EXAMPLE.parent, path=EXAMPLE, source="devstack.toml", cwd=EXAMPLE.parent)
    assert cfg.api.app == "app:app" and cfg.api.port == 5001
    assert cfg.worker.app == "app.celery" and cfg.worker.pool == "gevent" and cfg.worker.concurrency == 1
    assert cfg.worker.queues == ["dataset", "generation", "mail"]
    assert cfg.beat.enabled and cfg.beat.app == "app.celery"
    assert "web" in cfg.services()


def test_example_config_documents_every_key():
    text = EXAMPLE.read_text()
    keys_in_file = set()
    for line in text.splitlines():
        stripped = line.lstrip("# ").strip()
        if "=" in stripped:
            keys_in_file.add(stripped.split("=", 1)[0].strip())
    models = [cfgmod.ProjectConfig, cfgmod.RedisConfig, cfgmod.ApiConfig, cfgmod.WorkerConfig,
              cfgmod.BeatConfig, cfgmod.ProcessConfig, cfgmod.ReloadConfig]
    for table in cfgmod.TABLES:
        assert f"[{table}" in text, table
    for model in models:
        missing = _fields(model) - keys_in_file
        assert not missing, f"{model.__name__}: {sorted(missing)} not in the example"
    # every table of Config is present as a section
    assert set(cfgmod.TABLES) == _fields(Config)
