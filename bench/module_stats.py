"""The structure figures of issue 13 (Step 9), for one source tree or two side by side.

    python bench/module_stats.py                          # this checkout's src/
    python bench/module_stats.py /work/main/src --against src

Per tree (the directory that holds the `assistd` package):
- module sizes: the largest module and the median, in lines, of every .py under src/assistd except the
  Alembic migrations (db/migrations); how many are over 500 lines;
- `Any` per package: uses of the name `Any` (typing.Any, in annotations and casts; imports not counted)
  in engine/, adapters/, tools/, stores/, services/ and runs/ (the engine before Step 9);
- run-status writers: SQL UPDATEs of the runs table that set `status` (`update(t.runs)...values(status=`,
  or text SQL `UPDATE runs SET ... status`), and calls of a `transition(...)` function (or a generic
  `move(...)`, lifecycle's or the runs store's) that picks a run's next status, outside
  engine/lifecycle.py (the one writer the design allows). A status written through another helper
  (say the leased queue's `complete(..., status=...)`) is not seen: read the details;
- package cycles among assistd's top-level packages and modules, from grimp's import graph (the graph
  import-linter checks), built in a child process with PYTHONPATH=<tree> so that each tree is read as
  itself; imports under `if TYPE_CHECKING:` count, and the cycles they alone make are marked.

The details (each writer's place, each cycle's imports) follow the table.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import statistics
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

ANY_PACKAGES = ("engine", "adapters", "tools", "stores", "services", "runs")
LIFECYCLE = "engine/lifecycle.py"
BIG = 500
_TEXT_UPDATE = re.compile(r"\bUPDATE\s+runs\s+SET\b[^;]*\bstatus\b", re.IGNORECASE | re.DOTALL)


@dataclass
class TreeStats:
    root: Path
    sizes: dict[str, int] = field(default_factory=dict)
    any_counts: dict[str, int | None] = field(default_factory=dict)
    status_updates: list[str] = field(default_factory=list)
    transition_calls: list[str] = field(default_factory=list)
    cycles: list[list[str]] = field(default_factory=list)
    cycle_edges: list[str] = field(default_factory=list)
    type_only_cycles: int = 0


def modules(package: Path) -> list[Path]:
    return sorted(p for p in package.rglob("*.py") if "migrations" not in p.relative_to(package).parts[:2])


def count_lines(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines())


def count_any(tree: ast.AST) -> int:
    found = 0
    for node in ast.walk(tree):
        name = node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else None
        if name == "Any" or (isinstance(node, ast.Constant) and node.value == "Any"):  # or a quoted annotation
            found += 1
    return found


def _is_runs_table(node: ast.expr) -> bool:
    """`t.runs`, `tables.runs`, `runs`, `RUNS`: the runs table as the code names it."""
    if isinstance(node, ast.Attribute):
        return node.attr == "runs"
    return isinstance(node, ast.Name) and node.id.lower() == "runs"


def _updates_runs(node: ast.expr) -> bool:
    """Whether a call chain (`update(t.runs).where(...)`, `t.runs.update()...`) starts from the runs table."""
    while True:
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "update" and node.args and _is_runs_table(node.args[0]):
                return True
            if isinstance(func, ast.Attribute) and func.attr == "update" and _is_runs_table(func.value):
                return True
            node = func
        elif isinstance(node, ast.Attribute):
            node = node.value
        else:
            return False


def _sets_status(call: ast.Call) -> bool:
    if any(k.arg == "status" for k in call.keywords):
        return True
    for arg in call.args:
        if isinstance(arg, ast.Dict) and any(
            isinstance(k, ast.Constant) and k.value == "status" for k in arg.keys if k is not None
        ):
            return True
    return False


def status_writes(tree: ast.AST, where: str) -> tuple[list[str], list[str]]:
    """SQL UPDATEs of the runs table that set `status`, and calls of a `transition(...)` function."""
    updates: list[str] = []
    transitions: list[str] = []
    from_lifecycle = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").endswith("lifecycle")
        for alias in node.names
    }
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if (
                isinstance(func, ast.Attribute)
                and func.attr == "values"
                and _sets_status(node)
                and _updates_runs(func.value)
            ):
                updates.append(f"{where}:{node.lineno}")
            if _moves_a_run(func, from_lifecycle):
                transitions.append(f"{where}:{node.lineno}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and _TEXT_UPDATE.search(node.value):
            updates.append(f"{where}:{node.lineno}")
    return sorted(updates, key=_line), sorted(transitions, key=_line)


def _line(place: str) -> int:
    return int(place.rsplit(":", 1)[1])


def _moves_a_run(func: ast.expr, from_lifecycle: set[str]) -> bool:
    """`transition(...)` / `store.transition(...)` (before Step 9), or a generic `move(...)`: lifecycle's,
    or the runs store's (`run_store.move`) that holds its SQL."""
    if isinstance(func, ast.Attribute):
        receiver = func.value.id if isinstance(func.value, ast.Name) else ""
        return func.attr == "transition" or (func.attr == "move" and (receiver == "lifecycle" or "store" in receiver))
    return isinstance(func, ast.Name) and (func.id == "transition" or (func.id == "move" and "move" in from_lifecycle))


def scan(root: Path) -> TreeStats:
    package = root / "assistd"
    if not (package / "__init__.py").is_file():
        raise SystemExit(f"{root}: no assistd package here (give the directory that holds assistd/)")
    stats = TreeStats(root)
    any_counts: dict[str, int] = defaultdict(int)
    for path in modules(package):
        where = path.relative_to(package).as_posix()
        stats.sizes[where] = count_lines(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        top = where.split("/")[0]
        if top in ANY_PACKAGES:
            any_counts[top] += count_any(_without_imports(tree))
        if where != LIFECYCLE:
            updates, transitions = status_writes(tree, where)
            stats.status_updates += updates
            stats.transition_calls += transitions
    stats.any_counts = {name: (any_counts[name] if (package / name).is_dir() else None) for name in ANY_PACKAGES}
    graph = package_graph(root)
    stats.cycles, stats.cycle_edges = cycles(graph["all"])
    typed_cycles, _ = cycles(graph["runtime"])
    stats.type_only_cycles = len(stats.cycles) - len(typed_cycles)
    return stats


def _without_imports(tree: ast.Module) -> ast.Module:
    body = [node for node in tree.body if not isinstance(node, ast.Import | ast.ImportFrom)]
    return ast.Module(body=body, type_ignores=[])


# --- package graph (grimp, in a child process with the tree first on sys.path) -------------------

_GRAPH_CHILD = """
import json, sys
import grimp

def edges(exclude_type_checking):
    graph = grimp.build_graph("assistd", exclude_type_checking_imports=exclude_type_checking, cache_dir=None)
    found = {}
    for module in sorted(graph.modules):
        parts = module.split(".")
        if parts[0] != "assistd" or len(parts) < 2:
            continue
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            other = imported.split(".")
            if other[0] == "assistd" and len(other) > 1 and other[1] != parts[1]:
                key = parts[1] + " " + other[1]
                found.setdefault(key, []).append(module + " -> " + imported)
    return found

json.dump({"all": edges(False), "runtime": edges(True)}, sys.stdout)
"""


def package_graph(root: Path) -> dict[str, dict[str, list[str]]]:
    """{"all"|"runtime": {"importer imported": ["a.b -> c.d", ...]}} between assistd's top-level packages."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", _GRAPH_CHILD], env=env, capture_output=True, text=True, check=True, timeout=300
    )
    graph: dict[str, dict[str, list[str]]] = json.loads(out.stdout)
    return graph


def cycles(edges: dict[str, list[str]]) -> tuple[list[list[str]], list[str]]:
    """The strongly connected groups of more than one package, and the imports between their members."""
    succ: dict[str, set[str]] = defaultdict(set)
    for key in edges:
        a, b = key.split()
        succ[a].add(b)
        succ.setdefault(b, set())

    def reach(start: str) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            for nxt in succ[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reachable = {node: reach(node) for node in succ}
    groups: list[list[str]] = []
    placed: set[str] = set()
    for node in sorted(succ):
        if node in placed:
            continue
        group = sorted(other for other in reachable[node] if node in reachable[other])
        placed.update(group)
        if len(group) > 1:
            groups.append(group)
    details: list[str] = []
    for group in groups:
        for key in sorted(edges):
            a, b = key.split()
            if a in group and b in group:
                imports = edges[key]
                details.append(f"{a} -> {b}: {len(imports)} import(s), e.g. {imports[0]}")
    return groups, details


# --- report -------------------------------------------------------------------------------------


def rows(stats: TreeStats) -> list[tuple[str, str]]:
    sizes = stats.sizes
    largest = max(sizes, key=lambda name: sizes[name])
    found = [
        ("modules (excl. db/migrations)", str(len(sizes))),
        ("largest module (lines)", f"{sizes[largest]} {largest}"),
        ("median module (lines)", f"{statistics.median(sizes.values()):g}"),
        (f"modules over {BIG} lines", str(sum(1 for n in sizes.values() if n > BIG))),
        ("engine loop (lines)", _loop(sizes)),
    ]
    for name, count in stats.any_counts.items():
        found.append((f"`Any` in {name}/", "-" if count is None else str(count)))
    writers = sorted({place.split(":")[0] for place in stats.status_updates + stats.transition_calls})
    found += [
        ("run-status SQL UPDATEs outside lifecycle", str(len(stats.status_updates))),
        ("run-status transition() calls outside lifecycle", str(len(stats.transition_calls))),
        ("modules writing a run's status outside lifecycle", f"{len(writers)} {' '.join(writers)}".strip()),
        (
            "package cycles",
            f"{len(stats.cycles)} {' '.join('↔'.join(g) for g in stats.cycles)}".strip()
            + (f" ({stats.type_only_cycles} only through TYPE_CHECKING imports)" if stats.type_only_cycles else ""),
        ),
    ]
    return found


def _loop(sizes: dict[str, int]) -> str:
    for name in ("engine/loop.py", "runs/executor.py"):
        if name in sizes:
            return f"{sizes[name]} {name}"
    return "-"


def table(trees: list[TreeStats]) -> str:
    columns = [rows(stats) for stats in trees]
    header = ["measure", *(str(stats.root) for stats in trees)]
    body = [[label, *(column[i][1] for column in columns)] for i, (label, _) in enumerate(columns[0])]
    widths = [max(len(row[i]) for row in [header, *body]) for i in range(len(header))]
    lines = ["| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(header)) + " |"]
    lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    lines += ["| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |" for row in body]
    return "\n".join(lines)


def details(stats: TreeStats) -> str:
    out = [f"### {stats.root}", "largest modules: " + ", ".join(f"{n} {stats.sizes[n]}" for n in _top(stats.sizes))]
    out += [f"run-status UPDATE: {place}" for place in stats.status_updates]
    out += [f"transition() call: {place}" for place in stats.transition_calls]
    out += [f"cycle import: {edge}" for edge in stats.cycle_edges]
    return "\n".join(out)


def _top(sizes: dict[str, int], n: int = 5) -> list[str]:
    return sorted(sizes, key=lambda name: -sizes[name])[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("src", nargs="?", default=str(Path(__file__).resolve().parents[1] / "src"))
    parser.add_argument("--against", help="a second tree (the directory holding assistd/), shown beside the first")
    args = parser.parse_args()
    trees = [scan(Path(args.src).resolve())]
    if args.against:
        trees.append(scan(Path(args.against).resolve()))
    print("## assistd module structure (issue 13)\n")
    print(table(trees))
    for stats in trees:
        print()
        print(details(stats))


if __name__ == "__main__":
    main()
