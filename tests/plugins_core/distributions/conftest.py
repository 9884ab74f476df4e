"""The runtime demo plugin (tests/runtime_plugin) built as wheels at test time with
``uv build`` (no committed binaries): ``demo_wheels`` holds versions 1.0.0 and 2.0.0."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from uv import find_uv_bin

SOURCE = Path(__file__).resolve().parents[2] / "runtime_plugin"


def build_wheel(version: str, out: Path, *, body: str | None = None) -> Path:
    """``imbi_plugin_runtime_demo-<version>-py3-none-any.whl`` in ``out``. ``body`` replaces
    the module's source (e.g. a plugin that fails at import)."""
    tree = out / f"src-{version}"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(SOURCE, tree, ignore=shutil.ignore_patterns("*.egg-info", "build"))
    for path in (tree / "pyproject.toml", tree / "imbi_plugin_runtime_demo" / "__init__.py"):
        path.write_text(path.read_text().replace("0.0.0.dev0", version))
    if body is not None:
        (tree / "imbi_plugin_runtime_demo" / "__init__.py").write_text(body)
    dist = out / "dist"
    subprocess.run(
        [str(find_uv_bin()), "build", "--quiet", "--wheel", "--out-dir", str(dist), str(tree)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob(f"imbi_plugin_runtime_demo-{version}-*.whl")
    return wheel


@pytest.fixture(scope="session")
def demo_wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("demo-wheels")
    return {version: build_wheel(version, out) for version in ("1.0.0", "2.0.0")}


@pytest.fixture(scope="session")
def wheel_builder() -> object:
    return build_wheel
