"""No import cycles: neither between modules nor among the children of any package.

import-linter's contracts (``make check``) fix which way whole layers point; they do not see a
cycle inside one layer, such as two modules of ``collectors.promql`` importing each other, or
two subpackages of ``federator`` that each reach into the other. Such a pair can only be read,
tested and split together, and one of the two imports usually hides in a function body to
dodge the circular-import error. This test builds the import graph with grimp (the library
import-linter uses) and checks two rules over it:

(a) no cycle between modules;
(b) for every package, no cycle among its direct children, each child (a module or a
    subpackage) standing for everything under it: so ``a.x.one -> a.y.two`` and
    ``a.y.three -> a.x.four`` are a cycle ``a.x -> a.y -> a.x`` of package ``a``, although no
    two modules import each other.

A failure names each cycle as a path and, for every step, one import line that makes it.
Imports under ``if TYPE_CHECKING:`` and inside functions count, as they do for import-linter.
The generated gRPC stubs are left out: they are not ours to arrange.
"""

from __future__ import annotations

import functools
import itertools
from collections import deque
from collections.abc import Iterable, Mapping

import grimp
import pytest

ROOTS = ("collectors", "federator", "meshfed")
EXCLUDED = ("federator.api._generated",)

Imports = Mapping[str, frozenset[str]]
"""module -> the modules it imports directly (ours only)."""


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@functools.cache
def _graph() -> grimp.ImportGraph:
    # cache_dir=None: a stale grimp cache must never hide a new import.
    return grimp.build_graph(*ROOTS, cache_dir=None)


@functools.cache
def _imports() -> Imports:
    graph = _graph()
    ours = {m for m in graph.modules if not any(_under(m, e) for e in EXCLUDED)}
    return {
        m: frozenset(w for w in graph.find_modules_directly_imported_by(m) if w in ours)
        for m in ours
    }


def _strongly_connected(nodes: Iterable[str], edges: Mapping[str, Iterable[str]]) -> list[set[str]]:
    """Tarjan's algorithm: the components with more than one node (each holds a cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

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
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(nodes):
        if node not in index:
            visit(node)
    return found


def _shortest_cycle(component: set[str], edges: Mapping[str, Iterable[str]]) -> list[str]:
    """A shortest cycle through the component's first node, as a path ending where it began."""
    start = min(component)
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in sorted(edges.get(v, ())):
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if w in component and w not in parent:
                parent[w] = v
                queue.append(w)
    raise AssertionError(f"no cycle through {start} in {sorted(component)}")


def _cycles(nodes: Iterable[str], edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One shortest cycle per strongly connected component, in a stable order."""
    return sorted(_shortest_cycle(c, edges) for c in _strongly_connected(nodes, edges))


def module_cycles(imports: Imports) -> list[list[str]]:
    """Rule (a): cycles between modules."""
    return _cycles(imports, imports)


def child_cycles(package: str, imports: Imports) -> list[tuple[list[str], list[tuple[str, str]]]]:
    """Rule (b): cycles among ``package``'s direct children, each with one witness import
    (importer, imported) per step."""
    depth = package.count(".") + 1

    def child(module: str) -> str | None:
        if not _under(module, package) or module == package:
            return None
        return ".".join(module.split(".")[: depth + 1])

    witness: dict[tuple[str, str], tuple[str, str]] = {}
    for importer in sorted(imports):
        source = child(importer)
        if source is None:
            continue
        for imported in sorted(imports[importer]):
            target = child(imported)
            if target is not None and target != source:
                witness.setdefault((source, target), (importer, imported))
    edges: dict[str, set[str]] = {}
    for source, target in witness:
        edges.setdefault(source, set()).add(target)
    children = {c for pair in witness for c in pair}
    return [
        (cycle, [witness[step] for step in itertools.pairwise(cycle)])
        for cycle in _cycles(children, edges)
    ]


def _packages(root: str, imports: Imports) -> list[str]:
    """Every package under ``root`` (root included): modules with a module below them."""
    return sorted({m.rsplit(".", 1)[0] for m in imports if _under(m, root) and "." in m})


def _line(importer: str, imported: str) -> str:
    """The first line of ``importer`` that imports ``imported``, with its number."""
    details = _graph().get_import_details(importer=importer, imported=imported)
    if not details:
        return f"{importer} -> {imported}"
    first = details[0]
    return f"{importer}:{first['line_number']}: {first['line_contents']}"


def _describe_module_cycle(cycle: list[str]) -> str:
    steps = [f"      {_line(a, b)}" for a, b in itertools.pairwise(cycle)]
    return "\n".join([f"  {' -> '.join(cycle)}", *steps])


def _describe_child_cycle(package: str, cycle: list[str], witnesses: list[tuple[str, str]]) -> str:
    short = [c.removeprefix(package + ".") for c in cycle]
    steps = [f"      {_line(a, b)}" for a, b in witnesses]
    return "\n".join([f"  in {package}: {' -> '.join(short)}", *steps])


ROOT_CASES = [pytest.param(root, id=root) for root in ROOTS]


def test_the_graph_holds_our_modules_and_not_the_generated_stubs() -> None:
    imports = _imports()
    assert {"collectors.promql.engine", "federator.core.diff", "meshfed.cli"} <= set(imports)
    assert not [m for m in imports if "_generated" in m]


@pytest.mark.parametrize("root", ROOT_CASES)
def test_no_cycle_between_modules(root: str) -> None:
    cycles = [c for c in module_cycles(_imports()) if any(_under(m, root) for m in c)]
    if cycles:
        pytest.fail(
            f"{len(cycles)} import cycle(s) between modules of {root}; break each one (move the "
            "shared part into a module both can import, or invert the dependency):\n"
            + "\n".join(_describe_module_cycle(c) for c in cycles),
            pytrace=False,
        )


@pytest.mark.parametrize("root", ROOT_CASES)
def test_no_cycle_among_the_children_of_a_package(root: str) -> None:
    imports = _imports()
    found = [
        _describe_child_cycle(package, cycle, witnesses)
        for package in _packages(root, imports)
        for cycle, witnesses in child_cycles(package, imports)
    ]
    if found:
        pytest.fail(
            f"{len(found)} cycle(s) among the children of packages in {root} (a child stands "
            "for everything under it); one import per step:\n" + "\n".join(found),
            pytrace=False,
        )


# The checker itself, on hand-made graphs: a checker that finds nothing would pass vacuously.
SELF_TEST_CASES = [
    pytest.param(
        {"a.x": {"a.y"}, "a.y": {"a.x"}},
        [["a.x", "a.y", "a.x"]],
        [["a.x", "a.y", "a.x"]],
        id="two-modules",
    ),
    pytest.param(
        {"a.p.one": {"a.q.two"}, "a.q.three": {"a.p.four"}, "a.p.four": set(), "a.q.two": set()},
        [],
        [["a.p", "a.q", "a.p"]],
        id="subpackages-without-a-module-cycle",
    ),
    pytest.param(
        {"a.x": {"a.y"}, "a.y": {"a.z"}, "a.z": {"a.x"}, "a.w": {"a.x"}},
        [["a.x", "a.y", "a.z", "a.x"]],
        [["a.x", "a.y", "a.z", "a.x"]],
        id="three-step-cycle-and-a-bystander",
    ),
    pytest.param(
        {"a.x": {"a.y"}, "a.y": {"b.z"}, "b.z": set()},
        [],
        [],
        id="acyclic",
    ),
]


@pytest.mark.parametrize(("imports", "module_level", "children_of_a"), SELF_TEST_CASES)
def test_the_checker_finds_and_names_cycles(
    imports: dict[str, set[str]], module_level: list[list[str]], children_of_a: list[list[str]]
) -> None:
    frozen = {m: frozenset(ws) for m, ws in imports.items()}
    assert module_cycles(frozen) == module_level
    assert [cycle for cycle, _ in child_cycles("a", frozen)] == children_of_a
