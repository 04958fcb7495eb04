"""The tree's layers, read from every import statement (function-level ones included):

    bench.core (the foundation) <- the engine (bench.*), analysis <- bench.runner <- bench.cli

* no import circle anywhere;
* the foundation imports only itself (and third-party packages), never torch;
* analysis imports only itself and the foundation, never torch;
* the engine never imports the runner.
"""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("bench", "analysis")
TORCH = ("torch", "torchvision")


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for f in (ROOT / pkg).rglob("*.py"):
            parts = f.relative_to(ROOT).with_suffix("").parts
            out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _imports(mods: dict[str, Path]):
    """(importer, imported module name, enclosing function or None) for every import statement."""
    for name, path in mods.items():
        tree = ast.parse(path.read_text())
        funcs = {}
        for fn in (n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))):
            for node in ast.walk(fn):
                funcs.setdefault(id(node), fn.name)
        for node in ast.walk(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    pkg = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
                    base = ".".join(pkg[: len(pkg) - node.level + 1] + ([node.module] if node.module else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            for t in targets:
                yield name, t, funcs.get(id(node))


def _resolve(target: str, mods) -> str | None:
    while target and target not in mods:
        target = target.rpartition(".")[0]
    return target or None


def _layer(m: str) -> str:
    if m.startswith("bench.core"):
        return "core"
    if m.startswith("analysis"):
        return "analysis"
    if m.startswith("bench.runner") or m == "bench.cli":
        return "runner"
    return "engine" if m != "bench" else "package"


def test_no_import_circle_function_level_imports_included():
    mods = _modules()
    edges = {m: set() for m in mods}
    for src, target, _ in _imports(mods):
        t = _resolve(target, mods)
        if t and t != src and not src.startswith(t + "."):  # a submodule importing its own package is not a circle
            edges[src].add(t)
    index, low, stack, on, cycles = {}, {}, [], set(), []

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                cycles.append(sorted(comp))

    for v in edges:
        if v not in index:
            visit(v)
    assert not cycles


def test_each_layer_imports_only_what_it_may():
    mods = _modules()
    allowed = {"core": {"core"}, "analysis": {"core", "analysis"}, "engine": {"core", "engine", "package"},
               "runner": {"core", "engine", "analysis", "runner", "package"}, "package": {"core", "engine"}}
    bad = []
    for src, target, fn in _imports(mods):
        top = target.split(".")[0]
        if top in TORCH and _layer(src) in ("core", "analysis"):
            bad.append(f"{src} imports {target}" + (f" in {fn}()" if fn else ""))
        if top == "timm" and _layer(src) in ("core", "analysis"):
            bad.append(f"{src} imports timm" + (f" in {fn}()" if fn else ""))
        t = _resolve(target, mods)
        if t and _layer(t) not in allowed[_layer(src)] and not t.startswith(src + "."):
            bad.append(f"{src} ({_layer(src)}) imports {t} ({_layer(t)})" + (f" in {fn}()" if fn else ""))
    assert not bad, "\n".join(bad)


def test_the_graph_is_read_from_the_tree():
    """The checks above see the tree: they find the runner's import of the foundation."""
    found = {(s, _resolve(t, _modules())) for s, t, _ in _imports(_modules())}
    assert ("bench.runner.orchestrate", "bench.core.layout") in found
    assert any(s.startswith("analysis") and t and t.startswith("bench.core") for s, t in found)
