"""The layers run one way and no two modules import each other (docs/architecture.md).

The layer order is the import-linter contract in pyproject.toml; this runs it as a user's
``make lint`` would, and checks for import loops between modules, which a layers contract does not
see inside one package. Imports under ``TYPE_CHECKING`` do not count: they never run.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parent.parent


def test_layers_contract_is_kept() -> None:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "1 kept, 0 broken" in result.stdout


def _import_loops(graph: grimp.ImportGraph) -> list[list[str]]:
    """Strongly connected sets of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    loops: list[list[str]] = []

    def imported_by(module: str) -> Iterator[str]:
        return iter(sorted(graph.find_modules_directly_imported_by(module)))

    for start in sorted(graph.modules):
        if start in index:
            continue
        work = [(start, imported_by(start))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, imported_by(child)))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    members.append(member)
                    if member == node:
                        break
                if len(members) > 1:
                    loops.append(sorted(members))
    return loops


def test_no_module_imports_loop_back_to_itself() -> None:
    graph = grimp.build_graph("querywatch", exclude_type_checking_imports=True, cache_dir=None)
    loops = _import_loops(graph)
    assert loops == []  # imports only under TYPE_CHECKING may point back


def test_loop_finder_sees_a_loop(tmp_path: Path) -> None:
    """The check above can fail: two modules that import each other are reported."""
    pkg = tmp_path / "loopy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from loopy import b\n")
    (pkg / "b.py").write_text("from loopy import a\n")
    (pkg / "c.py").write_text("from loopy import a\n")
    sys.path.insert(0, str(tmp_path))
    try:
        graph = grimp.build_graph("loopy", cache_dir=None)
    finally:
        sys.path.remove(str(tmp_path))
    assert _import_loops(graph) == [["loopy.a", "loopy.b"]]
