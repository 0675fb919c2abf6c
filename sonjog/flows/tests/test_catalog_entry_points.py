"""Packages are saved through `flows.catalog`, whichever door: no module outside catalog and the flows calls
catalog's `package_create` / `package_update`, so no package is saved without its profiles going to the
routers."""

from __future__ import annotations

import ast
from pathlib import Path

SONJOG = Path(__file__).resolve().parents[2]
GUARDED = {"package_create", "package_update"}
CATALOG_SERVICES = "sonjog.catalog.services"


def _direct_calls(path: Path) -> list[int]:
    """Lines calling catalog's own package writes: imported by name, or through the module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == CATALOG_SERVICES:
            names |= {alias.asname or alias.name for alias in node.names if alias.name in GUARDED}
        elif isinstance(node, ast.ImportFrom) and node.module == "sonjog.catalog":
            modules |= {alias.asname or alias.name for alias in node.names if alias.name == "services"}
        elif isinstance(node, ast.Import):
            modules |= {alias.asname or alias.name for alias in node.names if alias.name == CATALOG_SERVICES}
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        function = node.func
        by_name = isinstance(function, ast.Name) and function.id in names
        by_module = (
            isinstance(function, ast.Attribute) and function.attr in GUARDED and ast.unparse(function.value) in modules
        )
        if by_name or by_module:
            lines.append(node.lineno)
    return lines


def test_no_entry_point_saves_a_package_around_the_flow() -> None:
    offenders = []
    for path in SONJOG.rglob("*.py"):
        relative = path.relative_to(SONJOG)
        if relative.parts[0] in {"catalog", "flows"} or "tests" in relative.parts or "migrations" in relative.parts:
            continue
        offenders += [f"{relative}:{line}" for line in _direct_calls(path)]
    assert offenders == []


def test_the_walk_finds_a_direct_call(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from sonjog.catalog import services as catalog_services\n"
        "from sonjog.catalog.services import package_update\n"
        "catalog_services.package_create(operator=None)\n"
        "package_update(package=None)\n"
        "flows.package_create(operator=None)\n",
        encoding="utf-8",
    )
    assert _direct_calls(sample) == [3, 4]
