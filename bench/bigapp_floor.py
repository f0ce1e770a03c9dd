"""The floor of a warm reload on the big app: what is left to import once every library is preloaded.

A warm spare (devstack/preload.py) imports what the service loaded from outside the project; the project's own
modules and create_app() it may never run ahead (issue 10: "never the project's own modules"). So once a spare
serves the restart, the API still imports the project and builds the app. This measures that part alone, in the
app's own environment (bench/bigapp_bench.py builds it), as the API imports it (`flask` as argv[0]: create_app
registers the blueprints):

  1. one process imports `app` and lists every module loaded from outside the project folder;
  2. --runs fresh processes each import that list (the spare's part, timed), then `app` (the floor, timed);
  3. as many again, alternating with those, that freeze the heap after the list (`gc.collect(); gc.freeze()`,
     as a spare does: devstack/guard.py `_preload`), so the project's imports no longer walk the libraries'
     objects in their full collections;
  4. as many again that also run the project's imports without the collector (`gc.disable()`, as a spare does
     until its imports settle: devstack/module_report_site/sitecustomize.py `collector_off_while_starting`).

Usage: .venv/bin/python bench/bigapp_floor.py [--runs 5]   (prints; compare with `flask run --debug` in
docs/benchmarks.md "## Big app": floor / its reload is the best ratio a spare can give)
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bigapp.generate import generate  # noqa: E402
from bench.bigapp_bench import bench_venv  # noqa: E402

CHILD = r'''
import importlib, json, os, sys, time
root, mode, listing = os.path.realpath(os.getcwd()) + os.sep, sys.argv[1], sys.argv[2]
sys.argv = [os.path.join(os.path.dirname(sys.executable), "flask")]
sys.path.insert(0, root)

def outside(module):
    path = getattr(module, "__file__", None)
    return not (isinstance(path, str) and os.path.realpath(path).startswith(root))

if mode == "list":
    import app  # noqa: F401
    json.dump(sorted(n for n, m in list(sys.modules.items()) if outside(m)), open(listing, "w"))
else:
    began = time.perf_counter()
    for name in json.load(open(listing)):
        try:
            importlib.import_module(name)
        except Exception:
            pass
    preloaded = time.perf_counter() - began
    if mode in ("freeze", "off"):
        import gc
        gc.collect()
        gc.freeze()
        if mode == "off":
            gc.disable()
    began = time.perf_counter()
    import app  # noqa: F401
    print(json.dumps({"preload": preloaded, "project": time.perf_counter() - began}))
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    python = str(bench_venv() / "python")
    with tempfile.TemporaryDirectory(prefix="bigapp-floor-") as tmp:
        folder, listing = Path(tmp) / "app", str(Path(tmp) / "outside.json")
        generate(folder, python)
        subprocess.run([python, "-c", CHILD, "list", listing], cwd=folder, check=True)

        def run(mode: str) -> dict:
            return json.loads(subprocess.run([python, "-c", CHILD, mode, listing], cwd=folder, check=True,
                                             capture_output=True, text=True).stdout)

        rounds = [(run("time"), run("freeze"), run("off")) for _ in range(args.runs)]
        runs, frozen, off = ([r[i] for r in rounds] for i in range(3))
        count = len(json.loads(Path(listing).read_text()))
    pre = statistics.median(r["preload"] for r in runs)
    floor = statistics.median(r["project"] for r in runs)
    floor_frozen = statistics.median(r["project"] for r in frozen)
    floor_off = statistics.median(r["project"] for r in off)
    print(f"modules from outside the project: {count}; their import (the spare's part): {pre:.2f} s; "
          f"then the project's modules + create_app (the floor of a warm API reload): {floor:.2f} s "
          f"(median of {args.runs}: {', '.join(format(r['project'], '.2f') for r in runs)}); "
          f"with the preloaded heap frozen as a spare does: {floor_frozen:.2f} s "
          f"({', '.join(format(r['project'], '.2f') for r in frozen)}); and without the collector during them, as a "
          f"spare runs them: {floor_off:.2f} s ({', '.join(format(r['project'], '.2f') for r in off)})")


if __name__ == "__main__":
    main()
