"""What ``imbi-plugin init`` writes is clean under ruff, ruff format and ``mypy --strict``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def run(*args: str, cwd: Path, **env: str) -> str:
    result = subprocess.run(
        list(args),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("plugin_type", ["configuration", "logs", "identity", "deployment"])
def test_generated_plugin_is_lint_and_strict_mypy_clean(tmp_path: Path, plugin_type: str) -> None:
    run(
        sys.executable,
        "-m",
        "imbi_plugin_sdk",
        "init",
        "acme-demo",
        "--type",
        plugin_type,
        cwd=tmp_path,
    )
    plugin = tmp_path / "acme-demo"
    run(str(BIN / "ruff"), "check", "--select", "E,F,W,I,B,UP,RUF", ".", cwd=plugin)
    run(str(BIN / "ruff"), "format", "--check", ".", cwd=plugin)
    out = run(
        str(BIN / "mypy"),
        "--no-incremental",
        "imbi_plugin_acme_demo",
        "tests",
        cwd=plugin,
        MYPYPATH=str(ROOT / "sdk"),  # the SDK is installed editable here; a wheel needs nothing
    )
    assert "Success: no issues found in 4 source files" in out
