"""Where a local redis-server comes from, and the paragraph a user gets when there is none."""
from __future__ import annotations

import os
import sys

from devstack import redis_binary


def _executable(folder, name):
    path = folder / name
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(0o755)
    return path


def test_valkey_server_is_found_when_redis_server_is_not(tmp_path):
    _executable(tmp_path, "valkey-server")
    assert redis_binary.on_path(str(tmp_path)) == str(tmp_path / "valkey-server")


def test_redis_server_wins_over_valkey(tmp_path):
    _executable(tmp_path, "valkey-server")
    _executable(tmp_path, "redis-server")
    assert redis_binary.on_path(str(tmp_path)) == str(tmp_path / "redis-server")


def test_nothing_on_an_empty_path(tmp_path):
    assert redis_binary.on_path(str(tmp_path)) is None


def test_install_command_follows_the_package_manager_on_path(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setenv("PATH", str(tmp_path))
    _executable(tmp_path, "dnf")
    assert redis_binary.install_command() == "sudo dnf install redis"
    _executable(tmp_path, "apt-get")
    assert redis_binary.install_command() == "sudo apt install redis-server"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert redis_binary.install_command() == "brew install redis"


def test_the_paragraph_says_why_and_how(monkeypatch, tmp_path):
    monkeypatch.setattr(sys, "platform", "linux")
    monkeypatch.setattr(redis_binary.platform, "machine", lambda: "x86_64")
    monkeypatch.setattr(sys, "version_info", (3, 13, 0, "final", 0))
    monkeypatch.setenv("PATH", str(tmp_path) + os.pathsep)
    _executable(tmp_path, "apt-get")
    text = redis_binary.none_available()
    assert "Python 3.13" in text and "3.12" in text
    assert "`sudo apt install redis-server`" in text and 'mode = "external"' in text
    monkeypatch.setattr(redis_binary.platform, "machine", lambda: "aarch64")
    assert "Linux x86_64 only (this is linux aarch64)" in redis_binary.none_available()
