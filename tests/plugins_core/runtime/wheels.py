"""Builds the runtime demo plugin (tests/runtime_plugin) as a wheel of a given version, at
test time, with ``uv build`` (no committed binaries)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from uv import find_uv_bin

SOURCE = Path(__file__).resolve().parents[2] / "runtime_plugin"


def build_wheel(version: str, out: Path, *, body: str | None = None) -> Path:
    """``imbi_plugin_runtime_demo-<version>-py3-none-any.whl`` in ``out``. ``body`` replaces
    the module's source (e.g. a plugin that fails at import)."""
    tree = out / f"src-{version}"
    shutil.rmtree(tree, ignore_errors=True)
    shutil.copytree(SOURCE, tree, ignore=shutil.ignore_patterns("*.egg-info", "build"))
    for path in (tree / "pyproject.toml", tree / "imbi_plugin_runtime_demo" / "__init__.py"):
        path.write_text(path.read_text().replace("@VERSION@", version))
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
