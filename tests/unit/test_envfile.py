"""Unit tests for devstack.envfile: dotenv parsing, interpolation and env precedence."""
from __future__ import annotations

from pathlib import Path

import pytest

from devstack.config import ConfigError
from devstack.envfile import compose_env, interpolate, parse_env_file, resolve_env_file


def envfile(tmp_path: Path, text: str) -> Path:
    p = tmp_path / ".env"
    p.write_text(text)
    return p


# ---------------------------------------------------------------- parse_env_file


def test_parse_basic_syntax(tmp_path):
    p = envfile(tmp_path, """
# a comment
A=1
export B=two
  C = spaced value   
D=plain # inline comment
E=url#fragment
F='single # not a comment'
G="double\\nline \\"quoted\\""
H=
I=""
""")
    env = parse_env_file(p)
    assert env["A"] == "1"
    assert env["B"] == "two"
    assert env["C"] == "spaced value"
    assert env["D"] == "plain"
    assert env["E"] == "url#fragment"
    assert env["F"] == "single # not a comment"
    assert env["G"] == 'double\nline "quoted"'
    assert env["H"] == "" and env["I"] == ""
    assert "# a comment" not in env


def test_parse_multiline_double_quotes_and_later_keys_override(tmp_path):
    p = envfile(tmp_path, 'KEY="line1\nline2"\nA=1\nA=2\n')
    env = parse_env_file(p)
    assert env == {"KEY": "line1\nline2", "A": "2"}


def test_parse_bom_and_crlf(tmp_path):
    p = tmp_path / ".env"
    p.write_bytes("\ufeffA=1\r\nB='x'\r\n".encode("utf-8"))
    assert parse_env_file(p) == {"A": "1", "B": "x"}


def test_single_quotes_stay_literal_through_interpolation(tmp_path):
    p = envfile(tmp_path, "PW='pa$${NOPE}x'\nD=\"a\\$b\"\n")
    raw = parse_env_file(p)
    out = compose_env(environ={}, env_file=raw, wiring={}, global_env={}, service_env={})
    assert out["PW"] == "pa$${NOPE}x"
    assert out["D"] == "a$b"


@pytest.mark.parametrize("text,line", [
    ("A=1\nnot a pair\n", 2),
    ("A=1\n\nB=\"unclosed\n", 3),
    ("1BAD=x\n", 1),
    ("A='x' trailing\n", 1),
])
def test_parse_errors_name_file_and_line(tmp_path, text, line):
    p = envfile(tmp_path, text)
    with pytest.raises(ConfigError) as ei:
        parse_env_file(p)
    msg = str(ei.value)
    assert str(p) in msg and f"line {line}" in msg and "Fix" in msg


def test_missing_and_binary_env_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        parse_env_file(tmp_path / "nope.env")
    p = tmp_path / "bin.env"
    p.write_bytes(b"A=\xff\xfe\n")
    with pytest.raises(ConfigError, match="UTF-8"):
        parse_env_file(p)


# ---------------------------------------------------------------- interpolate


@pytest.mark.parametrize("value,expected", [
    ("${A}", "a"),
    ("x${A}y${B}", "xaybee"),
    ("${MISSING}", ""),
    ("${MISSING:-dflt}", "dflt"),
    ("${EMPTY:-dflt}", "dflt"),
    ("${EMPTY-dflt}", ""),
    ("${MISSING-dflt}", "dflt"),
    ("${A:-dflt}", "a"),
    ("${MISSING:-${B}}", "bee"),
    ("$$", "$"),
    ("$${A}", "${A}"),
    ("cost $5 and $HOME", "cost $5 and $HOME"),
    ("${unclosed", "${unclosed"),
    ("${SELF}", "${SELF}"),  # substituted text is not expanded again
])
def test_interpolate(value, expected):
    mapping = {"A": "a", "B": "bee", "EMPTY": "", "SELF": "${SELF}"}
    assert interpolate(value, mapping) == expected


# ---------------------------------------------------------------- compose_env


def test_precedence_of_all_five_layers():
    layers = dict(
        env_file={"K": "file", "F": "file", "E": "file", "W": "file", "G": "file"},
        environ={"K": "environ", "F": "environ", "E": "environ", "W": "environ"},
        wiring={"K": "wiring", "F": "wiring", "E": "wiring"},
        global_env={"K": "global", "F": "global"},
        service_env={"K": "service"},
    )
    env = compose_env(**layers)
    assert env["K"] == "service"
    assert env["F"] == "global"
    assert env["E"] == "wiring"
    assert env["W"] == "environ"
    assert env["G"] == "file"
    assert env["PYTHONUNBUFFERED"] == "1"


def test_celery_broker_url_resolves_to_wiring():
    env = compose_env(
        environ={"CELERY_BROKER_URL": "redis://from-shell"},
        env_file={"CELERY_BROKER_URL": "redis://from-file"},
        wiring={"CELERY_BROKER_URL": "redis://:pw@127.0.0.1:6390/1"},
        global_env={"FLASK_CELERY__broker_url": "${CELERY_BROKER_URL}"},
        service_env={},
    )
    assert env["FLASK_CELERY__broker_url"] == "redis://:pw@127.0.0.1:6390/1"
    assert env["CELERY_BROKER_URL"] == "redis://:pw@127.0.0.1:6390/1"


def test_service_env_references_global_and_self_extension():
    env = compose_env(
        environ={"PATH": "/usr/bin"},
        env_file={"HOST": "db", "DSN": "postgres://${HOST}/${USER:-me}"},
        wiring={},
        global_env={"BASE": "/srv", "DATA": "${BASE}/data", "PATH": "${PATH}:/opt/bin"},
        service_env={"OUT": "${DATA}/out", "MODE": "${MODE:-dev}"},
    )
    assert env["DSN"] == "postgres://db/me"
    assert env["DATA"] == "/srv/data"
    assert env["PATH"] == "/usr/bin:/opt/bin"
    assert env["OUT"] == "/srv/data/out"
    assert env["MODE"] == "dev"


def test_env_file_may_reference_real_environment():
    env = compose_env(environ={"HOME": "/home/u"}, env_file={"CACHE": "${HOME}/.cache"},
                      wiring={}, global_env={}, service_env={})
    assert env["CACHE"] == "/home/u/.cache"


def test_resolve_env_file_is_the_env_file_layer_of_compose_env():
    """doctor reads the env file with resolve_env_file; it must agree with what services get."""
    raw = {"A": "file", "B": "${A}-b", "HOME": "/file-home", "C": "${HOME}/c"}
    environ = {"HOME": "/real-home"}
    resolved = resolve_env_file(raw, environ)
    # the real environment outranks an earlier line of the file, as in compose_env's precedence
    assert resolved == {"A": "file", "B": "file-b", "HOME": "/file-home", "C": "/real-home/c"}
    env = compose_env(environ=environ, env_file=raw, wiring={}, global_env={}, service_env={})
    assert {k: env[k] for k in ("A", "B", "C")} == {k: resolved[k] for k in ("A", "B", "C")}


def test_pythonunbuffered_always_set():
    env = compose_env(environ={"PYTHONUNBUFFERED": "0"}, env_file={}, wiring={},
                      global_env={}, service_env={"PYTHONUNBUFFERED": ""})
    assert env["PYTHONUNBUFFERED"] == "1"
