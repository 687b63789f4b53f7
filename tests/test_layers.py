"""The layers of DESIGN.md: imports go downward only (checked on the source, imports inside
functions included)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("models", "search_spaces", "evaluators", "nas")
ALLOWED = {
    "models": set(),
    "search_spaces": {"models"},
    "evaluators": {"models"},
    "nas": {"models", "search_spaces", "evaluators"},
}


def _imported_packages(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(n.split(".")[0] for n in names if n.split(".")[0] in PACKAGES)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_go_downward_only(package: str) -> None:
    bad = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for other in _imported_packages(path) - ALLOWED[package] - {package}:
            bad.append(f"{path.relative_to(ROOT)} imports {other}")
    assert not bad, "\n".join(bad)


def test_the_check_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from search_spaces import get_space\n    return get_space\n")
    assert _imported_packages(bad) == {"search_spaces"}
