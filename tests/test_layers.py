"""Imports point down: only the entry points import the command line."""

from __future__ import annotations

import ast
from pathlib import Path

import napikit

PACKAGE = Path(napikit.__file__).resolve().parent
#: The modules allowed to import napikit.cli: the command itself and ``python -m``.
ENTRY_POINTS = {"cli.py", "__main__.py"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


def test_no_module_below_the_command_line_imports_it() -> None:
    offenders = sorted(
        str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
        if p.name not in ENTRY_POINTS and "napikit.cli" in _imports(p)
    )
    assert offenders == []
