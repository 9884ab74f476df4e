"""Every environment variable the code reads is documented in docs/operations.md and listed in
docker/env.example, and neither lists a variable nothing reads.

The variables are found in the source of ``imbi`` (settings, server entry points, gunicorn
configuration, health check), ``plugins_core`` and ``manage.py``: any
``env.<type>("NAME")``, ``env("NAME")``, ``environ.Env().<type>("NAME")``,
``os.environ.get/setdefault("NAME")`` or ``os.environ["NAME"]``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The platform's code (settings, entry points, gunicorn config, health check, services);
# the test harness and the benchmarks are not configuration.
SOURCES = [
    *(p for p in sorted((ROOT / "imbi").rglob("*.py")) if "testing" not in p.parts),
    *sorted((ROOT / "plugins_core").rglob("*.py")),
    ROOT / "manage.py",
]
NAME = re.compile(r"[A-Z][A-Z0-9_]+")


def _is_environment(node: ast.expr) -> bool:
    """``env``, ``environ.Env()``, ``os.environ``."""
    if isinstance(node, ast.Name):
        return node.id == "env"
    if isinstance(node, ast.Call):
        return isinstance(node.func, ast.Attribute) and node.func.attr == "Env"
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def variables_read(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        key: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if (isinstance(func, ast.Attribute) and _is_environment(func.value)) or (
                isinstance(func, ast.Name) and func.id == "env"
            ):
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and _is_environment(node.value):
            key = node.slice
        if (
            isinstance(key, ast.Constant)
            and isinstance(key.value, str)
            and NAME.fullmatch(key.value)
        ):
            found.add(key.value)
    return found


def read_by_the_code() -> set[str]:
    found: set[str] = set()
    for path in SOURCES:
        found |= variables_read(path)
    return found


def documented() -> set[str]:
    """First-column names of the settings table(s) in docs/operations.md."""
    names: set[str] = set()
    for line in (ROOT / "docs" / "operations.md").read_text().splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", first_cell))
    return names


def in_env_example() -> set[str]:
    text = (ROOT / "docker" / "env.example").read_text()
    return set(re.findall(r"^#? ?([A-Z][A-Z0-9_]+)=", text, re.M))


def compose_only() -> set[str]:
    """Variables docker/compose.yaml itself interpolates (``${NAME...}``)."""
    return set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", (ROOT / "docker" / "compose.yaml").read_text()))


def test_the_scan_finds_what_the_settings_read() -> None:
    found = read_by_the_code()
    # Spot checks of every reading style, so a broken scan cannot pass silently.
    assert {"IMBI_DATA_DIR", "SECRET_KEY", "SECURE_HSTS_SECONDS", "LOG_LEVEL"} <= found
    assert {"DJANGO_SETTINGS_MODULE", "PORT", "WEB_CONCURRENCY"} <= found
    assert len(found) >= 20


def test_operations_md_documents_exactly_the_variables_the_code_reads() -> None:
    read, docs = read_by_the_code(), documented()
    assert not read - docs, f"read but not documented in docs/operations.md: {read - docs}"
    assert not docs - read, f"documented but read by nothing: {docs - read}"


def test_env_example_lists_every_variable() -> None:
    read, example = read_by_the_code(), in_env_example()
    assert not read - example, f"missing from docker/env.example: {read - example}"
    extra = example - read
    assert extra <= compose_only(), f"in env.example but read by nothing: {extra - compose_only()}"


def test_compose_only_variables_are_documented_in_the_docker_readme() -> None:
    readme = (ROOT / "docker" / "README.md").read_text()
    for name in compose_only() - read_by_the_code():
        assert f"`{name}`" in readme, f"{name} (used by compose.yaml) is not in docker/README.md"
