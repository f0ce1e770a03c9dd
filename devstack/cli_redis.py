"""The Redis drills on the command line: `devstack failover` and `devstack kill NODE` (devstack/topology/drills.py)."""
from __future__ import annotations

from pathlib import Path

import click


def register(main: click.Group, config_option, state_dir) -> None:
    """Add the commands to `main`; ``state_dir(config_path)`` finds the stack's state folder."""

    @main.command()
    @config_option
    def failover(config_path: Path | None) -> None:
        """Ask the sentinels to fail over; print the new master and how long the switch took."""
        from .control import request

        result = request(state_dir(config_path), "failover")
        click.echo(f"master: {result['old']} -> {result['new']}; the sentinels agreed after "
                   f"{result['agreed_seconds']:.2f} s, the new master took a write after {result['writable_seconds']:.2f} s")

    @main.command()
    @config_option
    @click.argument("node")
    @click.option("--hold", is_flag=True, help="Leave it dead (no restart) until `devstack start NODE`.")
    def kill(config_path: Path | None, node: str, hold: bool) -> None:
        """SIGKILL one Redis node (redis, redis-replica, sentinel-N, cluster-N): a crash to reproduce."""
        from .control import request

        result = request(state_dir(config_path), "kill", [node, hold])
        then = "held: `devstack start " + node + "` brings it back" if hold else "supervision restarts it"
        click.echo(f"killed {result['node']} (pid {result['pid']}); {then}")
