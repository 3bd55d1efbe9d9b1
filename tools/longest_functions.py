"""List the functions longer than a limit (60 lines by default) under a source tree.

Usage: python tools/longest_functions.py [PATH ...] [--limit N] [--top N]

Length is counted from the `def` line (decorators excluded) to the function's last line,
docstring and comments included. Nested functions are listed on their own too. Exits 1
when any function is over the limit, so it can gate a build.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path


def functions(path: Path) -> list[tuple[int, str, int]]:
    """(length, "file:line name", line) of every function and method in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            found.append((length, f"{path}:{node.lineno} {node.name}", node.lineno))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=["operator/releaseguard"])
    parser.add_argument("--limit", type=int, default=60, help="list functions over this")
    parser.add_argument("--top", type=int, default=0, help="also list the N longest")
    args = parser.parse_args(argv)
    found: list[tuple[int, str, int]] = []
    for root in map(Path, args.paths):
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for file in files:
            found.extend(functions(file))
    found.sort(key=lambda f: (-f[0], f[1]))
    over = [f for f in found if f[0] > args.limit]
    for length, where, _ in over:
        print(f"{length:5d}  {where}")
    if args.top:
        print(f"-- {args.top} longest --")
        for length, where, _ in found[: args.top]:
            print(f"{length:5d}  {where}")
    longest = found[0] if found else (0, "(none)", 0)
    print(f"{len(over)} function(s) over {args.limit} lines; longest {longest[0]}: {longest[1]}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
