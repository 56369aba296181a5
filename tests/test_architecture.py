"""The layering, read from the source: no import cycles among the core's modules, and the core
(`installer/`) never imports the wizard (`screens/`) or Textual.

Every module under installer/ and screens/ is parsed with `ast` (nothing is imported), and
every import statement is read: module-level ones (run when the module is imported, including
those inside `if`/`try` at the top and in class bodies) and function-level ones (run when the
function is first called) are listed separately, but both count. A function-level import
does not make a cycle harmless: it is the same dependency, taken later, and hiding a
back-import inside a function is how two modules that need each other usually look.

What an import names: `import a.b` and `from a import b` name the module a.b when there is
one (else the module a); `from a.b import name` names a.b. The parent packages that Python
imports on the way (`installer/__init__.py` for `installer.planning.plan`) are not counted: a package
whose `__init__` imports its own submodules would otherwise always be in a cycle with them.

Cycles that exist today are listed in KNOWN_CYCLE_EDGES, one edge each that the layout work
must remove (with where it is and what it would take). The test fails on any cycle those
edges do not account for, and on a listed edge that is gone or no longer closes a cycle: the
list only shrinks.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LAYERS = ("installer", "screens")
FORBIDDEN_IN_CORE = ("textual", "screens")
# (importer, imported) of the core importing the wizard today; the list only shrinks.
KNOWN_CORE_TO_WIZARD: dict[tuple[str, str], str] = {
    ("installer.cli", "screens.run"):
        "the program's entry point starts the wizard (cli._wizard, function-level, so that every "
        "other verb runs without Textual): the hand-over belongs in an entry point outside installer/",
}

# (importer, imported): each closes a cycle today. Remove an entry with the cycle it closes.
KNOWN_CYCLE_EDGES: dict[tuple[str, str], str] = {}


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    line: int
    function_level: bool

    def where(self) -> str:
        level = "function-level" if self.function_level else "module-level"
        return f"{self.importer} -> {self.imported} ({level}, line {self.line})"


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules(root: Path, layers: tuple[str, ...] = LAYERS) -> dict[str, Path]:
    """Every module of the layers under `root`, by its dotted name."""
    return {module_name(root, p): p for layer in layers for p in sorted((root / layer).rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str] | dict[str, Path]) -> list[Import]:
    """Every import statement of one module, as the modules it names (see the docstring)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.extend(Import(name, a.name, child.lineno, in_function) for a in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")[:len(package.split(".")) - (child.level - 1)]
                    source = ".".join(base + ([child.module] if child.module else []))
                else:
                    source = child.module or ""
                for a in child.names:
                    sub = f"{source}.{a.name}"
                    found.append(Import(name, sub if sub in known else source, child.lineno, in_function))
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(ast.parse(path.read_text(encoding="utf-8"), str(path)), False)
    return list(dict.fromkeys(found))  # `from a import b, c` is one import of a


def import_graph(root: Path, layer: str) -> dict[str, dict[str, list[Import]]]:
    """importer -> imported -> the statements, among the modules of one layer."""
    mods = modules(root, (layer,))
    graph: dict[str, dict[str, list[Import]]] = {m: {} for m in mods}
    for name, path in mods.items():
        for imp in imports_of(name, path, mods):
            if imp.imported in mods and imp.imported != name:
                graph[name].setdefault(imp.imported, []).append(imp)
    return graph


def cycles(graph: dict[str, dict[str, list[Import]]]) -> list[list[str]]:
    """One shortest cycle through each strongly connected part with more than one module
    (Tarjan's algorithm, then a breadth-first search inside the part), as a path a -> ... -> a."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    parts: list[set[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            part = set()
            while True:
                w = stack.pop()
                part.add(w)
                if w == v:
                    break
            if len(part) > 1:
                parts.append(part)

    for v in sorted(graph):
        if v not in index:
            connect(v)
    found = []
    for part in parts:
        start = min(part)
        paths = {start: [start]}
        queue = [start]
        while queue:
            v = queue.pop(0)
            for w in sorted(graph[v]):
                if w == start:
                    found.append(paths[v] + [start])
                    queue = []
                    break
                if w in part and w not in paths:
                    paths[w] = paths[v] + [w]
                    queue.append(w)
    return sorted(found)


def describe(graph: dict[str, dict[str, list[Import]]], cycle: list[str]) -> str:
    return "\n    ".join(graph[a][b][0].where() for a, b in pairwise(cycle))


# --- the rules, on this repository -----------------------------------------------------------

@pytest.fixture(scope="module")
def graph() -> dict[str, dict[str, list[Import]]]:
    return import_graph(REPO, "installer")


def test_no_import_cycles_among_installer_modules(graph):
    pruned = {a: {b: s for b, s in edges.items() if (a, b) not in KNOWN_CYCLE_EDGES} for a, edges in graph.items()}
    new = cycles(pruned)
    assert not new, "import cycles among installer/ modules:\n" + "\n".join(
        f"  {' -> '.join(c)}:\n    {describe(graph, c)}" for c in new)
    for (a, b), why in KNOWN_CYCLE_EDGES.items():
        assert b in graph.get(a, {}), f"{a} -> {b} no longer exists: remove it from KNOWN_CYCLE_EDGES"
        assert a in _reaches(graph, b), (
            f"{a} -> {b} closes no cycle any more ({why}): remove it from KNOWN_CYCLE_EDGES")


def _reaches(graph: dict[str, dict[str, list[Import]]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        v = todo.pop()
        for w in graph[v]:
            if w not in seen:
                seen.add(w)
                todo.append(w)
    return seen


def forbidden_in_core(root: Path) -> list[Import]:
    """The imports of Textual or of the wizard anywhere under root/installer."""
    mods = modules(root)
    return [imp for name, path in mods.items() if name.split(".")[0] == "installer"
            for imp in imports_of(name, path, mods) if imp.imported.split(".")[0] in FORBIDDEN_IN_CORE]


def test_the_core_never_imports_the_wizard_or_textual():
    assert len([m for m in modules(REPO) if m.startswith("installer.")]) > 40  # the walk found the core
    found = forbidden_in_core(REPO)
    wrong = [i for i in found if (i.importer, i.imported) not in KNOWN_CORE_TO_WIZARD]
    assert not wrong, "installer/ must not import Textual or screens/:\n  " + "\n  ".join(i.where() for i in wrong)
    for (a, b), why in KNOWN_CORE_TO_WIZARD.items():
        assert any((i.importer, i.imported) == (a, b) for i in found), (
            f"{a} no longer imports {b} ({why}): remove it from KNOWN_CORE_TO_WIZARD")


def test_the_walk_sees_both_kinds_of_import(graph):
    """The walk sees both kinds of import in this repository: a rule about imports that finds
    none would pass for the wrong reason."""
    everything = [imp for edges in graph.values() for found in edges.values() for imp in found]
    assert any(not i.function_level for i in everything) and any(i.function_level for i in everything)
    screens = import_graph(REPO, "screens")
    assert screens and all(name.startswith("screens") for name in screens)


# --- the finder itself, on a small tree made here --------------------------------------------

def _tree(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_cycle_through_a_function_level_import_is_found_with_its_path(tmp_path):
    root = _tree(tmp_path, {
        "installer/__init__.py": "",
        "installer/a.py": "from installer.b import thing\n",
        "installer/b.py": "import os\n\ndef thing():\n    from installer import c\n    return c\n",
        "installer/c.py": "from . import a\n",
        "installer/d.py": "from installer import a, b\n",
        "installer/sub/__init__.py": "from .e import x\n",
        "installer/sub/e.py": "from installer.sub import x as y\nx = 1\n",
    })
    graph = import_graph(root, "installer")
    assert cycles(graph) == [["installer.a", "installer.b", "installer.c", "installer.a"],
                             ["installer.sub", "installer.sub.e", "installer.sub"]]
    (b_c,) = graph["installer.b"]["installer.c"]
    assert (b_c.function_level, b_c.line) == (True, 4)
    assert describe(graph, ["installer.a", "installer.b", "installer.c", "installer.a"]).splitlines()[1].strip() == (
        "installer.b -> installer.c (function-level, line 4)")
    assert not graph["installer.a"]["installer.b"][0].function_level
    assert set(graph["installer.d"]) == {"installer.a", "installer.b"}  # `from pkg import module`


def test_no_cycle_when_the_back_import_goes(tmp_path):
    root = _tree(tmp_path, {
        "installer/__init__.py": "",
        "installer/types.py": "X = 1\n",
        "installer/read.py": "from installer.types import X\n",
        "installer/face.py": "from installer.read import X\n\ndef load():\n    from installer import read\n",
    })
    assert cycles(import_graph(root, "installer")) == []


def test_a_textual_import_in_the_core_is_found(tmp_path):
    root = _tree(tmp_path, {"installer/x.py": "def f():\n    from textual.app import App\n",
                            "installer/y.py": "import screens.base\n", "screens/base.py": ""})
    found = forbidden_in_core(root)
    assert sorted(i.where() for i in found) == ["installer.x -> textual.app (function-level, line 2)",
                                                "installer.y -> screens.base (module-level, line 1)"]


def test_every_package_is_in_pyproject():
    """setuptools installs only the packages pyproject.toml lists: a subpackage left out works
    from a clone and is missing from the wheel and the zipapp."""
    import tomllib

    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {module_name(REPO, p) for layer in LAYERS for p in (REPO / layer).rglob("__init__.py")}
    assert found <= listed, f"missing from pyproject.toml's [tool.setuptools] packages: {sorted(found - listed)}"
