"""Cold start of each Redis topology (standalone, sentinel, cluster) to "all services ready", and the time
of `devstack failover` on the sentinel group. Run: .venv/bin/python -m bench.topology_bench [runs]."""
from __future__ import annotations

import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import DEVSTACK, demo_config, free_port, poll_until, spawn, stop_tree

TOPOLOGIES = {"standalone": "", "sentinel": 'topology = "sentinel"\nsentinel_port = 36400',
              "cluster": 'topology = "cluster"\ncluster_port = 17500'}
READY = re.compile(r"all services ready in ([0-9.]+) s")
FAILOVER = re.compile(r"agreed after ([0-9.]+) s, the new master took a write after ([0-9.]+) s")


def one_start(topology: str, failover: bool) -> tuple[float, float | None]:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = demo_config(folder, free_port(), free_port())
        config.write_text(config.read_text().replace('[redis]\n', f'[redis]\n{TOPOLOGIES[topology]}\n', 1))
        out = folder / "out.txt"
        proc = spawn([DEVSTACK, "up", "--no-tui", "--config", str(config)], folder, out)
        try:
            poll_until(lambda: READY.search(out.read_text(errors="replace")), 90)
            ready = float(READY.search(out.read_text()).group(1))
            switched = None
            if failover:
                res = subprocess.run([DEVSTACK, "failover", "--config", str(config)], capture_output=True, text=True)
                found = FAILOVER.search(res.stdout)
                switched = float(found.group(2)) if found else None
            return ready, switched
        finally:
            stop_tree(proc)


def main(runs: int) -> None:
    for topology in TOPOLOGIES:
        starts, switches = [], []
        for _ in range(runs):
            ready, switched = one_start(topology, topology == "sentinel")
            starts.append(ready)
            if switched is not None:
                switches.append(switched)
            time.sleep(0.5)
        line = f"{topology:10} all ready: median {statistics.median(starts):.2f} s (runs: {', '.join(f'{s:.2f}' for s in starts)})"
        if switches:
            line += f"; failover to a write on the new master: median {statistics.median(switches):.2f} s"
        print(line, flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
