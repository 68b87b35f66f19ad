"""The architecture as a test: the folders' one-way flow (ingest → rag → app → front ends; only app calls
inference), no import cycle anywhere (imports inside functions and type-only imports counted), front ends on
app's public surface only, app/ grouped by concept, and function-level imports only where they say why."""

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ingest", "rag", "inference", "app", "api", "ui")
# What each top-level package may import of the others.
ALLOWED = {
    "ingest": set(),
    "rag": {"ingest"},
    "inference": set(),
    "app": {"ingest", "rag", "inference"},
    "api": {"app"},
    "ui": {"app"},
}


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue  # Alembic's scripts are loaded by path, not imported
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            found[name] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> list[tuple[str, ast.AST]]:
    """Every project module `name` imports, anywhere in it (functions and TYPE_CHECKING blocks included)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.append((target, node))
    return out


def graph() -> dict[str, set[str]]:
    known = modules()
    edges: dict[str, set[str]] = defaultdict(set)
    for name, path in known.items():
        edges[name].update(t for t, _ in imports(name, path, known))
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_anywhere():
    assert cycles(graph()) == []


def test_data_flows_one_way():
    wrong = []
    for module, targets in graph().items():
        top = module.split(".")[0]
        for target in targets:
            other = target.split(".")[0]
            if other != top and other not in ALLOWED[top]:
                wrong.append(f"{module} imports {target}")
    assert wrong == []


def test_front_ends_use_only_the_services_public_surface():
    reaching = []
    for package in ("api", "ui"):
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Attribute) and (node.attr.startswith("_") and not node.attr.startswith("__")
                                                        or node.attr in ("components", "store", "generator")):
                    if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
                        continue
                    reaching.append(f"{path.relative_to(ROOT)}:{node.lineno} .{node.attr}")
    assert reaching == []


def test_app_is_grouped_by_concept():
    top = [p.name for p in (ROOT / "app").glob("*.py")]
    packages = [p.name for p in (ROOT / "app").iterdir() if (p / "__init__.py").exists()]
    assert len(top) <= 12, top
    assert len(set(packages) - {"cli"}) >= 4, packages
    assert not (ROOT / "app" / "guardrails.py").exists()


def test_imports_inside_functions_say_why():
    """A function-level import is allowed where it keeps a heavy optional dependency out of start-up, and then a
    comment on it (or just above) says so."""
    silent = []
    for path in (ROOT / "app").rglob("*.py"):
        if "migrations" in path.parts:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for node in ast.walk(ast.parse("\n".join(lines))):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for sub in ast.walk(node):
                if isinstance(sub, (ast.Import, ast.ImportFrom)):
                    here = lines[sub.lineno - 1]
                    first = sub.lineno - 1  # a comment above a run of imports speaks for the run
                    while first > 0 and lines[first - 1].strip().startswith(("import ", "from ")):
                        first -= 1
                    above = lines[first - 1].strip() if first > 0 else ""
                    if not any("#" in line for line in lines[first : sub.lineno]) and not above.startswith("#"):
                        silent.append(f"{path.relative_to(ROOT)}:{sub.lineno}: {here.strip()}")
    assert silent == []
