"""No import circle inside devstack/: every import of a devstack module counts, lazy ones inside
functions and `if TYPE_CHECKING:` blocks included (a circle that only works thanks to laziness is
still two modules that cannot be understood apart)."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "devstack"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted((ROOT / PACKAGE).rglob("*.py"))}


def _package_of(name: str, path: Path) -> str:
    """The package relative imports in this module start from."""
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _resolve(module: str | None, level: int, current: str, path: Path) -> str | None:
    if level == 0:
        return module
    base = _package_of(current, path).split(".")
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *([module] if module else [])])


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The devstack modules `name` imports (the submodule when `from pkg import sub` names one)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node.module, node.level, name, path)
            if target is None:
                continue
            targets = [f"{target}.{alias.name}" if f"{target}.{alias.name}" in modules else target
                       for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:  # `import devstack.x.y` names a module; an
                target = target.rpartition(".")[0]  # attribute path falls back to its module
            if target:
                found.update(_with_parents(target, name))
    found.discard(name)
    return found


def _with_parents(target: str, importer: str) -> set[str]:
    """Importing devstack.a.b runs devstack.a's __init__ first, unless the importer is inside devstack.a
    (a package re-exporting its own submodules is no circle)."""
    out = {target}
    parts = target.split(".")
    for i in range(1, len(parts)):
        parent = ".".join(parts[:i])
        if not (importer == parent or importer.startswith(parent + ".")):
            out.add(parent)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path (first module repeated at the end), or None."""
    WHITE, GREY, BLACK = 0, 1, 2
    colour = dict.fromkeys(graph, WHITE)
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = GREY
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if colour.get(nxt) == GREY:
                return stack[stack.index(nxt):] + [nxt]
            if colour.get(nxt) == WHITE:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        colour[node] = BLACK
        return None

    for node in sorted(graph):
        if colour[node] == WHITE:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_no_import_cycles_inside_devstack():
    cycle = find_cycle(_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_graph_sees_lazy_type_checking_and_relative_imports():
    graph = _graph()
    assert "devstack.reload" in graph["devstack.engine"]  # imported inside Engine.start
    assert "devstack.supervisor.spec" in graph["devstack.redis_server"]
    assert "devstack.supervisor" in graph["devstack.redis_server"]  # its package __init__ runs first
    assert "devstack.supervisor" not in graph["devstack.supervisor.service"]  # its own package


def test_find_cycle_reports_the_path():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_relative_and_package_imports_resolve(tmp_path):
    modules = {"devstack.x": Path("devstack/x/__init__.py"), "devstack.x.y": Path("devstack/x/y.py"),
               "devstack.x.z": Path("devstack/x/z.py"), "devstack.w": Path("devstack/w.py")}
    assert _resolve(None, 1, "devstack.x.y", modules["devstack.x.y"]) == "devstack.x"
    assert _resolve("z", 1, "devstack.x", modules["devstack.x"]) == "devstack.x.z"
    assert _resolve("w", 2, "devstack.x.y", modules["devstack.x.y"]) == "devstack.w"
    code = tmp_path / "y.py"
    code.write_text("from . import z\nfrom .. import w\nfrom . import helper\n"
                    "def f():\n    from typing import TYPE_CHECKING\n    import devstack.w.attr\n")
    assert _imports("devstack.x.y", code, modules) == {"devstack.x.z", "devstack.w", "devstack.x"}
