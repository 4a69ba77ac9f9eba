"""Where the SQL and the `Any`s are: per module of services/ and stores/, plus module sizes (issue 13, item 5).

    python bench/measure_layers.py                      # this tree
    python bench/measure_layers.py --root /tmp/main     # another checkout (e.g. `git archive main`)

Counts are textual, over the source: `Any` is the word `Any` (annotations, aliases, imports);
a SQL statement is a call that builds one (`select(`, `insert(`, `update(`, `delete(`, `.insert()`),
which is how statements are written in this code base (SQLAlchemy Core).
"""

from __future__ import annotations

import argparse
import re
import statistics
from pathlib import Path

ANY = re.compile(r"\bAny\b")
SQL = re.compile(r"(?<!def )(?<![\w.])(?:select|update|delete|insert)\(|\.insert\(\)")
ROW_ANY = re.compile(r"Row\[Any\]")


def count(path: Path) -> tuple[int, int, int, int, bool]:
    text = path.read_text()
    uses_sqlalchemy = bool(re.search(r"^\s*(from sqlalchemy|import sqlalchemy)", text, re.M))
    return (
        len(text.splitlines()),
        len(ANY.findall(text)),
        len(SQL.findall(text)),
        len(ROW_ANY.findall(text)),
        uses_sqlalchemy or "db import tables" in text,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    args = parser.parse_args()
    package = args.root / "src" / "assistd"
    print("| module | lines | Any | SQL statements | Row[Any] | sqlalchemy/tables |\n|---|---:|---:|---:|---:|---|")
    totals = {"services": [0, 0, 0, 0], "stores": [0, 0, 0, 0]}
    for layer in ("services", "stores"):
        for path in sorted((package / layer).glob("*.py")):
            lines, anys, sql, row_any, uses = count(path)
            print(f"| {layer}/{path.name} | {lines} | {anys} | {sql} | {row_any} | {'yes' if uses else ''} |")
            if path.name != "runs.py":  # services/runs.py and stores/runs.py belong to the run engine's work
                for i, value in enumerate((lines, anys, sql, row_any)):
                    totals[layer][i] += value
    for layer, (lines, anys, sql, row_any) in totals.items():
        print(f"| **{layer}/ (without runs.py)** | {lines} | {anys} | {sql} | {row_any} | |")
    sizes = sorted((len(p.read_text().splitlines()), str(p.relative_to(package))) for p in package.rglob("*.py"))
    print(f"\nmodules: {len(sizes)}; median {statistics.median(s for s, _ in sizes):.0f} lines; largest:")
    for lines, name in sizes[-3:][::-1]:
        print(f"  {lines:5d}  {name}")


if __name__ == "__main__":
    main()
