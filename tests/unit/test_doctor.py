"""devstack.doctor's pure parts: URL shape, masking, log-line detectors, visibility timeout, folder count."""
from __future__ import annotations

import os
import socket
import stat
from types import SimpleNamespace

import pytest

from devstack.doctor import (
    LogDiagnoser,
    broker_url_problems,
    count_watched_dirs,
    diagnose_line,
    mask,
    visibility_timeout,
)
from devstack.events import LogLine, Notice
from devstack.ports import listener, port_owner
from devstack.redis_server import RedisEndpoint, load_or_create_password, password_source
from devstack.reload import DEFAULT_IGNORE

SECRET = "s3cr3t-Pw"


# ----- broker URL shape ----------------------------------------------------------------------------
@pytest.mark.parametrize("url", [
    "redis://:pw@localhost:6379/1", "redis://localhost", "redis://:pw@h:6379", "rediss://:p%23w@h:6380/0",
    "redis://user:pw@h:6379/2", "sentinel://:pw@h1:26379/1;sentinel://:pw@h2:26379/1",
    "redis+socket:///tmp/redis.sock", "redis://[::1]:6379/1", "redis://:p%40ss@h:6379/1",
])
def test_well_formed_urls_have_no_problems(url):
    assert broker_url_problems(url) == []


@pytest.mark.parametrize("url, words", [
    ("", "is empty"),
    ("localhost:6379", "has no scheme"),
    ("redis://:pw@localhost:63a9/1", "port '63a9', which is not a number"),
    ("redis://:pw@localhost:70000/1", "outside 1..65535"),
    ("redis://:pw@localhost:6379/one", "database 'one'"),
    ("redis://:pw@localhost:6379/1/", "database '1/'"),
    ("redis://:pw@localhost:6379/16", "16 databases"),
    (f"redis://{SECRET}@localhost:6379/1", "no ':' before the password"),
    (f"redis://:{SECRET}#x@localhost:6379/1", "not percent-encoded"),
    (f"redis://:a/{SECRET}@localhost:6379/1", "not percent-encoded"),
    ("redis://h1:6379/1;redis://h2:6379/1", "only sentinel:// lists"),
    ("sentinel://:pw@h1:26379,h2:26379/1", "with ','"),
    ("amqp://guest@localhost//", "RabbitMQ"),
    ("http://localhost:6379/1", "scheme 'http'"),
    ('"redis://localhost:6379/1"', "quote characters"),
    (" redis://localhost:6379/1", "spaces"),
])
def test_malformed_urls_say_what_is_wrong_without_the_password(url, words):
    problems = " ".join(broker_url_problems(url))
    assert words in problems
    assert SECRET not in problems and "#x" not in problems


# ----- masking -------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, expected", [
    (f"redis://:{SECRET}@h:6379/1", "redis://:***@h:6379/1"),
    (f"redis://default:{SECRET}@h:6379/1", "redis://default:***@h:6379/1"),
    (f"redis://{SECRET}@h:6379/1", "redis://***@h:6379/1"),
    (f"redis://:{SECRET}@x@h:6379/1 ok", "redis://:***@h:6379/1 ok"),  # an unencoded '@' in the password
    (f"sentinel://:{SECRET}@a:1/1;sentinel://:{SECRET}@b:2/1", "sentinel://:***@a:1/1;sentinel://:***@b:2/1"),
    ("redis://h:6379/1", "redis://h:6379/1"),
    ("redis://:<password>@host:port/db", "redis://:<password>@host:port/db"),  # a placeholder stays
])
def test_mask_urls(text, expected):
    assert mask(text) == expected


def test_mask_known_secrets_anywhere():
    assert mask(f"REDIS_PASSWORD={SECRET} and {SECRET}!", [SECRET]) == "REDIS_PASSWORD=*** and ***!"


# ----- log-line detectors --------------------------------------------------------------------------
@pytest.mark.parametrize("line, key, words", [
    ("[2026-01-01 10:00:00,000: ERROR/MainProcess] consumer: Cannot connect to redis://:**@127.0.0.1:6399/1: "
     "Error 111 connecting to 127.0.0.1:6399. Connection refused..", "redis-refused", "at 127.0.0.1:6399"),
    ("redis.exceptions.ConnectionError: Error 111 connecting to localhost:6379. Connection refused.",
     "redis-refused", "at localhost:6379"),
    ("kombu.exceptions.OperationalError: [Errno 111] Connection refused", "redis-refused", "Error 111"),
    (f"consumer: Cannot connect to redis://:{SECRET}@10.0.0.5:6379/1: timed out", "redis-refused",
     "redis://:***@10.0.0.5:6379/1"),
    ("redis.exceptions.AuthenticationError: NOAUTH Authentication required.", "redis-noauth", "NOAUTH"),
    ("WRONGPASS invalid username-password pair or user is disabled.", "redis-wrongpass", "WRONGPASS"),
    ("kombu.exceptions.OperationalError: Error while reading from socket", "kombu-operational", "broker"),
    ("[ERROR/MainProcess] Received unregistered task of type 'tasks.send_mail'.", "unregistered:tasks.send_mail",
     "'tasks.send_mail'"),
    ("ModuleNotFoundError: No module named 'flask_sqlalchemy'", "import:flask_sqlalchemy", "flask_sqlalchemy"),
    ("ImportError: cannot import name 'create_app' from 'app'", "import:create_app", "failed to import"),
    ("Error: Invalid value for '-A' / '--app': Unable to load celery application.", "import:app", "[worker] app"),
    ("OSError: [Errno 98] Address already in use", "port-in-use", "already in use"),
    ("Port 5001 is in use by another program. Either identify and stop that program, or start the server "
     "with a different port.", "port-in-use", "port 5001"),
])
def test_detectors(line, key, words):
    found = diagnose_line(line)
    assert found is not None and found.key == key
    assert words in found.text and "Fix" in found.text
    assert SECRET not in found.text


@pytest.mark.parametrize("line", [
    "", "[INFO/MainProcess] celery@host ready.", "GET /tasks/add 200", "Connection refused by the SMTP server",
    "* Running on http://127.0.0.1:5000",
])
def test_ordinary_lines_give_no_diagnosis(line):
    assert diagnose_line(line) is None


def test_the_most_specific_diagnosis_wins():
    line = "kombu.exceptions.OperationalError: WRONGPASS invalid username-password pair"
    assert diagnose_line(line).key == "redis-wrongpass"


def test_log_diagnoser_notifies_once_per_diagnosis_per_service():
    notices = []
    diagnoser = LogDiagnoser(lambda text, level, service: notices.append(Notice(text, level, service)))
    refused = "consumer: Cannot connect to redis://:**@127.0.0.1:1/1: Error 111 connecting to 127.0.0.1:1."
    for _ in range(5):
        diagnoser(LogLine("worker", refused))
    diagnoser(LogLine("beat", refused))
    diagnoser(LogLine("worker", "NOAUTH Authentication required."))
    diagnoser(LogLine("worker", "all good"))
    diagnoser(Notice("not a log line"))
    assert [(n.service, n.level) for n in notices] == [("worker", "warning"), ("beat", "warning"),
                                                      ("worker", "warning")]
    assert "refused" in notices[0].text and "NOAUTH" in notices[2].text


# ----- visibility timeout, watched folders ---------------------------------------------------------
def test_visibility_timeout_from_env_or_default():
    assert visibility_timeout({}) == (3600.0, "the default")
    opts = {"FLASK_CELERY__broker_transport_options": '{"visibility_timeout": 43200}'}
    assert visibility_timeout(opts) == (43200.0, "FLASK_CELERY__broker_transport_options")
    assert visibility_timeout({"CELERY_VISIBILITY_TIMEOUT": "600"}) == (600.0, "CELERY_VISIBILITY_TIMEOUT")
    assert visibility_timeout({"X_BROKER_TRANSPORT_OPTIONS": "not json"})[0] == 3600.0


def test_count_watched_dirs_skips_ignored_folders(tmp_path):
    for name in ("a/b/c", "a/d", "node_modules/x/y/z", ".git/objects", "storage/1"):
        (tmp_path / name).mkdir(parents=True)
    assert count_watched_dirs(tmp_path, {"node_modules", ".git", "storage"}, 1000) == 5  # root, a, b, c, d
    assert count_watched_dirs(tmp_path, set(), 3) == 4  # stops past the limit


def test_count_watched_dirs_skips_what_the_reloader_skips(tmp_path):
    """The inotify check counts with hot reload's own list (globs included), so folders the reloader
    watches, such as build/, count too."""
    for name in ("pkg.egg-info/x", ".hypothesis/examples", ".venv/lib", "build/lib", "src"):
        (tmp_path / name).mkdir(parents=True)
    assert count_watched_dirs(tmp_path, set(DEFAULT_IGNORE), 1000) == 4  # root, build, build/lib, src


# ----- rules doctor shares with `devstack up` ------------------------------------------------------
def test_password_source_order_and_the_stored_password(tmp_path):
    cfg = SimpleNamespace(password=None)
    from_cfg = SimpleNamespace(password="from-cfg")
    assert password_source(from_cfg, "env", "file", tmp_path) == ("from-cfg", "[redis] password")
    assert password_source(cfg, "env", "file", tmp_path) == ("env", "REDIS_PASSWORD in the environment")
    assert password_source(cfg, "", "file", tmp_path) == ("file", "REDIS_PASSWORD in the env file")
    first_up = "a random password generated at the first `devstack up`"
    assert password_source(cfg, None, None, tmp_path) == (None, first_up)
    created = load_or_create_password(cfg, None, tmp_path)
    stored = tmp_path / "redis.password"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert password_source(cfg, None, None, tmp_path) == (created, f"the stored password ({stored})")
    assert load_or_create_password(cfg, None, tmp_path) == created
    assert load_or_create_password(cfg, "env", tmp_path) == "env"


def test_internal_broker_url_is_the_apps_except_behind_sentinels():
    ep = RedisEndpoint("binary", "127.0.0.1", 6390, "pw")
    assert ep.internal_broker_url(None) == "redis://:pw@127.0.0.1:6390/1"
    assert ep.internal_broker_url("redis://:other@10.0.0.3:6379/2") == "redis://:other@10.0.0.3:6379/2"
    url = "sentinel://:pw@127.0.0.1:26379/1"
    behind = RedisEndpoint("external", "127.0.0.1", 26379, "pw", url_override=url, master_name="mymaster",
                           sentinels=(("127.0.0.1", 26379),), master=("10.0.0.2", 6379))
    assert behind.internal_broker_url(url) == "redis://:pw@10.0.0.2:6379/1"


def test_port_owner_names_the_listening_process():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert listener(port).endswith(f"(pid {os.getpid()})")  # doctor's form: no argv
        assert port_owner(port).startswith(" by ") and f"(pid {os.getpid()}: " in port_owner(port)
    assert listener(port) is None and port_owner(port) == " by another process"
