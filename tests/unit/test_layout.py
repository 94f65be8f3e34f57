"""The Python package's layout (DEVELOPMENT.md): no import cycles, no module importing another's
private names, nothing but the runtime in the package PL/Python loads."""
from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[2] / "python" / "recvector"


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in PKG.rglob("*.py"):
        rel = path.relative_to(PKG.parent).with_suffix("")
        name = ".".join(rel.parts)
        if name.endswith(".__init__"):
            name = name[: -len(".__init__")]
        out[name] = ast.parse(path.read_text())
    return out


def _resolve(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(mods: dict[str, ast.Module]) -> dict[str, set[tuple[str, str, bool]]]:
    """module -> {(imported module, name, at module level)}"""
    graph: dict[str, set[tuple[str, str, bool]]] = {}
    for name, tree in mods.items():
        is_pkg = (PKG.parent / Path(*name.split(".")) / "__init__.py").exists()
        edges: set[tuple[str, str, bool]] = set()
        top = set(map(id, tree.body))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                target = _resolve(name, node, is_pkg)
                if target.startswith("recvector"):
                    for alias in node.names:
                        sub = f"{target}.{alias.name}"
                        edges.add((sub if sub in mods else target, alias.name, id(node) in top))
        graph[name] = edges
    return graph


def test_no_module_imports_another_modules_private_names():
    bad = [(m, t, n) for m, edges in _imports(_modules()).items() for t, n, _ in edges
           if n.startswith("_") and not n.startswith("__") and t != m]
    assert bad == []


def test_no_import_cycles_at_module_level():
    graph = {m: {t for t, _, top in edges if top and t != m} for m, edges in _imports(_modules()).items()}

    def visit(node: str, path: list[str], seen: set[str]) -> list[str] | None:
        for nxt in graph.get(node, ()):
            if nxt in path:
                return path[path.index(nxt):] + [nxt]
            if nxt not in seen:
                seen.add(nxt)
                cycle = visit(nxt, path + [nxt], seen)
                if cycle:
                    return cycle
        return None

    for m in graph:
        cycle = visit(m, [m], {m})
        # A package importing its own submodules is not a cycle of concepts.
        assert cycle is None or all(c.startswith(cycle[0] + ".") or c == cycle[0] for c in cycle), cycle


def test_benchmarks_are_not_in_the_runtime_package():
    assert not list(PKG.glob("bench*.py"))
    assert (PKG.parents[1] / "bench" / "scale.py").exists()


def test_the_entry_layer_holds_only_entry_points():
    tree = _modules()["recvector.plpython"]
    public = [n.name for n in tree.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")]
    for fn in (n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in public):
        assert any(isinstance(d, ast.Name) and d.id == "_sql_errors" for d in fn.decorator_list), fn.name
        assert len(fn.body) <= 8, f"{fn.name}: the engine belongs in a module named after what it holds"
