"""macOS: a prefork worker gets OBJC_DISABLE_INITIALIZE_FORK_SAFETY=YES (forked pool children that touch
Objective-C abort there); other pools, other platforms and a value the user set are left alone."""
from __future__ import annotations

import sys

import pytest

from devstack.app_specs import worker_spec
from devstack.config import demo_config

FLAG = "OBJC_DISABLE_INITIALIZE_FORK_SAFETY"


async def _confirm(node, broker) -> None: ...


def _env(tmp_path, platform: str, pool: str, env: dict[str, str], monkeypatch) -> dict[str, str]:
    monkeypatch.setattr(sys, "platform", platform)
    w = demo_config(tmp_path).worker
    return worker_spec(w, env, pool, 2, 1, False, _confirm).env


@pytest.mark.parametrize("platform, pool, expected", [
    ("darwin", "prefork", "YES"), ("darwin", "solo", None), ("darwin", "gevent", None), ("linux", "prefork", None)])
def test_fork_safety_only_for_prefork_on_macos(tmp_path, monkeypatch, platform, pool, expected):
    assert _env(tmp_path, platform, pool, {"PATH": "/usr/bin"}, monkeypatch).get(FLAG) == expected


def test_a_value_the_user_set_wins_and_the_callers_env_is_not_changed(tmp_path, monkeypatch):
    assert _env(tmp_path, "darwin", "prefork", {"PATH": "/usr/bin", FLAG: "NO"}, monkeypatch)[FLAG] == "NO"
    shared = {"PATH": "/usr/bin"}
    assert _env(tmp_path, "darwin", "prefork", shared, monkeypatch)[FLAG] == "YES"
    assert shared == {"PATH": "/usr/bin"}  # the same env may serve other services
