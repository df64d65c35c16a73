"""The package's import graph (read with ast, imports inside functions included): no cycles, the
ground floor knows no connector, only the command line imports the command line, codecs stay pure."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "gatewayd"

# Sans-IO codecs: they may import each other and the shared error type, nothing else of gatewayd.
CODECS = {
    "gatewayd.connectors.devices.json_codec", "gatewayd.connectors.devices.xml_codec",
    "gatewayd.connectors.devices.messages", "gatewayd.connectors.devices.dialect",
    "gatewayd.connectors.terminals.codec", "gatewayd.connectors.terminals.fields", "gatewayd.connectors.terminals.punches",
    "gatewayd.connectors.terminals.command_codec", "gatewayd.connectors.terminals.user_codec",
    "gatewayd.connectors.terminals.command_params",
    "gatewayd.connectors.terminals.push.codec",
    "gatewayd.connectors.terminals.push.command_lines",
    "gatewayd.connectors.lorawan.gwmp", "gatewayd.connectors.lorawan.packets", "gatewayd.connectors.lorawan.frames",
    "gatewayd.connectors.lorawan.crypto",
    "gatewayd.connectors.lorawan.regions",
    "gatewayd.connectors.lorawan.band", "gatewayd.connectors.lorawan.bands", "gatewayd.connectors.lorawan.station.codec",
    "gatewayd.connectors.monitor.resiot", "gatewayd.connectors.monitor.tx_request",
}
ERRORS = "gatewayd.errors"
# Above the ground floor: the connectors, what stands on them (northbound events) and the places
# that put them together.
ABOVE_GROUND = ("gatewayd.connectors", "gatewayd.northbound", "gatewayd.cli", "gatewayd.gateway",
                "gatewayd.__main__")


def modules(root: Path = PACKAGE) -> dict[str, Path]:
    found = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def import_graph(mods: dict[str, Path]) -> dict[str, set[str]]:
    """module -> the gatewayd modules it imports (a name imported from a package counts as its
    submodule when there is one; a package's own submodules importing it are left out)."""
    graph: dict[str, set[str]] = {name: set() for name in mods}
    for name, path in mods.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = name.split(".") if is_package else name.split(".")[:-1]
                    anchor = anchor[: len(anchor) - (node.level - 1)]
                    base = ".".join(anchor + ([node.module] if node.module else []))
                else:
                    base = node.module or ""
                targets = [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in targets:
                while target and target not in mods:
                    target = target.rpartition(".")[0]
                if not target or target == name or not target.startswith("gatewayd"):
                    continue
                if name.startswith(target + ".") and mods[target].name == "__init__.py":
                    continue
                graph[name].add(target)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def path_within(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete loop through a component, to name in a failure: a -> b -> ... -> a."""
    members = set(component)
    start = component[0]
    previous = {start: None}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for child in sorted(graph[node] & members):
            if child == start:
                loop = [node]
                while previous[loop[-1]] is not None:
                    loop.append(previous[loop[-1]])
                return [start, *reversed(loop[:-1]), start] if len(loop) > 1 else [start, node, start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    return component


@pytest.fixture(scope="module")
def graph():
    return import_graph(modules())


def test_no_import_cycles(graph):
    found = cycles(graph)
    assert not found, "import cycles: " + "; ".join(" -> ".join(path_within(graph, c)) for c in found)


def test_a_cycle_is_found_and_named(tmp_path):
    package = tmp_path / "gatewayd"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from . import b\n")
    (package / "b.py").write_text("def late():\n    from .sub.c import thing\n")
    (package / "sub" / "__init__.py").write_text("from . import c\n")  # a package importing its own: fine
    (package / "sub" / "c.py").write_text("from .. import a\nthing = 1\n")
    graph = import_graph(modules(package))
    [component] = cycles(graph)
    assert component == ["gatewayd.a", "gatewayd.b", "gatewayd.sub.c"]
    assert path_within(graph, component) == ["gatewayd.a", "gatewayd.b", "gatewayd.sub.c", "gatewayd.a"]


def test_the_ground_floor_imports_no_connector(graph):
    wrong = sorted(f"{name} -> {target}" for name, targets in graph.items() for target in targets
                   if not name.startswith(ABOVE_GROUND) and target.startswith("gatewayd.connectors"))
    assert not wrong, wrong


def test_only_the_command_line_imports_it(graph):
    wrong = sorted(f"{name} -> {target}" for name, targets in graph.items() for target in targets
                   if target.startswith("gatewayd.cli")
                   and not name.startswith(("gatewayd.cli", "gatewayd.__main__")))
    assert not wrong, wrong


def test_codecs_import_only_codecs_and_the_error_type(graph):
    assert CODECS <= set(graph)
    wrong = sorted(f"{name} -> {target}" for name in CODECS for target in graph[name]
                   if target not in CODECS and target != ERRORS)
    assert not wrong, wrong


def test_no_flat_family_modules(graph):
    assert not [name for name in graph if name.rpartition(".")[2].startswith("lorawan_")]


# Decorators from other modules that only mark or wrap the function they decorate (they register
# nothing anywhere): collected later from the module that defines the function, or not at all.
MARKING_DECORATORS = {"operation", "page", "action", "operator_required"}


def imported_names(tree: ast.Module) -> set[str]:
    """The names a module binds to something imported from gatewayd."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("gatewayd")):
            found.update(alias.asname or alias.name for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update((alias.asname or alias.name).partition(".")[0] for alias in node.names
                         if alias.name.startswith("gatewayd"))
    return found


def _root(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


def _top_level(body: list[ast.stmt]):
    """The statements that run when the module is imported (not those inside functions or classes)."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, (ast.If, ast.Try, ast.With, ast.For, ast.While)):
            for field in ("body", "orelse", "finalbody", "handlers"):
                for child in getattr(stmt, field, []):
                    yield from _top_level(child.body if isinstance(child, ast.ExceptHandler) else [child])


def import_time_side_effects(mods: dict[str, Path]) -> list[str]:
    """Statements that change another module's objects while a module is imported: a call of an
    imported function as a statement (`register(x)`), an assignment into an imported object
    (`table[k] = v`, `mod.X = v`), a decorator from another module that is not a mere marker."""
    found = []
    for name, path in sorted(mods.items()):
        if name.endswith("__main__"):
            continue
        tree = ast.parse(path.read_text(), str(path))
        imported = imported_names(tree)
        for stmt in _top_level(tree.body):
            suspects: list[tuple[ast.AST, str]] = []
            if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
                suspects.append((stmt.value, "call"))
            elif isinstance(stmt, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
                targets = stmt.targets if isinstance(stmt, (ast.Assign, ast.Delete)) else [stmt.target]
                suspects += [(t, "assignment") for t in targets if isinstance(t, (ast.Attribute, ast.Subscript))]
            elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                suspects += [(d, "decorator") for d in stmt.decorator_list
                             if (d.func.id if isinstance(d, ast.Call) and isinstance(d.func, ast.Name)
                                 else getattr(d, "id", None)) not in MARKING_DECORATORS]
            for node, what in suspects:
                if _root(node) in imported:
                    found.append(f"{name}:{node.lineno}: {what} {ast.unparse(node)[:60]}")
    return found


def test_importing_a_module_fills_no_registry_elsewhere():
    """Connectors declare their parts as data (gatewayd/connector.py); nothing is registered by
    importing a module."""
    assert not import_time_side_effects(modules()), import_time_side_effects(modules())


def test_an_import_time_registration_is_found(tmp_path):
    package = tmp_path / "gatewayd"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "tables.py").write_text("MAPPERS = {}\ndef mapper(t):\n    return lambda fn: MAPPERS.setdefault(t, fn)\n")
    (package / "a.py").write_text("from .tables import MAPPERS, mapper\nfrom . import tables\n"
                                  "@mapper('x')\ndef f(r):\n    pass\nMAPPERS['y'] = f\ntables.HANDLERS = [f]\n"
                                  "if True:\n    tables.MAPPERS.update(z=f)\n"
                                  "LOCAL = {}\nLOCAL['ok'] = f\n")
    found = import_time_side_effects(modules(package))
    assert [line.split(": ", 1)[1].split(" ", 1)[0] for line in found] == \
        ["decorator", "assignment", "assignment", "call"], found
