"""What one round of the Redis panel's topology poll (`Stack.redis_topology()`, every second in the TUI's poll
thread) costs: wall time and this process's CPU per round, on a sentinel group and a cluster with replicas.
Run: .venv/bin/python -m bench.topology_poll_bench [rounds]."""
from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench.common import demo_config, free_port
from devstack.api import Stack
from devstack.config import load_config

TOPOLOGIES = {"sentinel": f'topology = "sentinel"\nsentinel_port = {free_port()}',
              "cluster, replicas = 1": 'topology = "cluster"\ncluster_port = 17540\nreplicas = 1'}


async def measure(redis: str, rounds: int) -> tuple[float, float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        config = demo_config(Path(tmp), free_port(), free_port())
        text = config.read_text().replace("[redis]\n", f"[redis]\n{redis}\n", 1)
        for table in ("api", "worker", "beat"):  # only the Redis nodes: the poll is what is measured
            text = text.replace(f"[{table}]\n", f"[{table}]\nenabled = false\n", 1)
        config.write_text(text)
        stack = Stack.from_config(load_config(config))
        try:
            await stack.start(lambda: None)
            await stack.wait_all_ready(60)
            await asyncio.to_thread(stack.redis_topology)  # connections opened, redis-py imported
            walls, cpus = [], []
            for _ in range(rounds):
                wall, cpu = time.perf_counter(), time.process_time()
                await asyncio.to_thread(stack.redis_topology)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.process_time() - cpu)
            return statistics.median(walls), max(walls), statistics.median(cpus)
        finally:
            await stack.shutdown()


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    for name, redis in TOPOLOGIES.items():
        median, worst, cpu = asyncio.run(measure(redis, rounds))
        print(f"{name}: one round {median * 1000:.2f} ms median, {worst * 1000:.2f} ms worst, "
              f"{cpu * 1000:.2f} ms CPU median ({rounds} rounds)")


if __name__ == "__main__":
    main()
