"""The architecture stays as docs/architecture.md draws it: layers import only the layers below
them, no module imports another in a circle, and no private name crosses a module boundary."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "netlab"

# Lowest first; a module may import its own layer and the layers before it (docs/architecture.md).
LAYERS = ["base", "model", "core", "spec", "kernel", "ops", "tools", "cli"]
BASE = {"netlab", "netlab.errors", "netlab.names", "netlab.__main__"}


def layer_of(module: str) -> str:
    if module in BASE:
        return "cli" if module == "netlab.__main__" else "base"
    return module.split(".")[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def imports() -> dict[str, list[tuple[str, set[str], bool]]]:
    """module -> [(imported module, names taken from it, at module level?)]"""
    known = {module_name(p) for p in PACKAGE.rglob("*.py")}
    found: dict[str, list[tuple[str, set[str], bool]]] = {}
    for path in PACKAGE.rglob("*.py"):
        module = module_name(path)
        tree = ast.parse(path.read_text())
        top = set(map(id, tree.body))
        out = found.setdefault(module, [])
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("netlab"):
                        out.append((alias.name, set(), id(node) in top))
            elif isinstance(node, ast.ImportFrom):
                target = resolve(module, path.name == "__init__.py", node)
                if not target.startswith("netlab"):
                    continue
                for alias in node.names:   # `from pkg import module` imports the module
                    sub = f"{target}.{alias.name}"
                    if sub in known:
                        out.append((sub, set(), id(node) in top))
                    else:
                        out.append((target, {alias.name}, id(node) in top))
    return found


def test_each_layer_imports_only_layers_below_it():
    wrong = [f"{module} ({layer_of(module)}) imports {target} ({layer_of(target)})"
             for module, targets in imports().items() for target, _, _ in targets
             if LAYERS.index(layer_of(target)) > LAYERS.index(layer_of(module))]
    assert not wrong, wrong


def test_no_import_circles():
    graph = {m: {t for t, _, top in ts if t != m} for m, ts in imports().items()}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str], done: set[str]) -> None:
        if node in stack:
            cycles.append(stack[stack.index(node):] + [node])
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, stack + [node], done)
        done.add(node)
    done: set[str] = set()
    for module in sorted(graph):
        visit(module, [], done)
    # a package's __init__ importing its own modules is not a circle unless they import it back
    assert not cycles, cycles


def test_no_private_names_cross_modules():
    crossing = [f"{module} takes {name} from {target}" for module, targets in imports().items()
                for target, names, _ in targets for name in names if name.startswith("_")]
    assert not crossing, crossing


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_says_what_it_holds(path: Path):
    if path.name == "__main__.py":
        return
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc, f"{path} has no docstring"


def test_down_imports_no_lab_file_plan_or_backend():
    """`netlab down` is most of a small lab's teardown time in start-up: it imports the kernel
    modules removing needs, not the YAML loader, the lab model, the plan or the backends."""
    import subprocess
    import sys
    heavy = ["yaml", "netlab.spec.loader", "netlab.model.lab", "netlab.core.plan", "netlab.core.backends",
             "netlab.ops.lab", "netlab.ops.services", "netlab.ops.dns", "pyroute2"]
    code = ("import sys, netlab.cli.lab, netlab.ops.teardown; "
            f"print([m for m in {heavy!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2]).stdout
    assert out.strip() == "[]"
