"""The SDK as an author gets it: a wheel, a fresh venv with nothing else, ``imbi-plugin init``.

Builds the ``imbi-plugin-sdk`` wheel (the command ``make sdk-wheel`` runs), creates a virtual
environment holding only that wheel (Django is not importable there), scaffolds
``acme-demo``, installs it, runs its tests and ``imbi-plugin check``; then installs the
generated plugin into the platform's own environment and ``manage.py plugin list`` shows it
loaded. The generated plugin is uninstalled from the platform's environment afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import imbi_plugin_sdk
import pytest

ROOT = Path(__file__).resolve().parents[1]
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"


def run(*args: str | Path, cwd: Path = ROOT, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(arg) for arg in args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, **env},
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    build = tmp_path_factory.mktemp("sdk-src")
    shutil.copytree(
        ROOT / "sdk", build / "sdk", ignore=shutil.ignore_patterns("build", "*.egg-info")
    )
    run(UV, "build", "--quiet", "--wheel", "--out-dir", out, build / "sdk")
    (found,) = out.glob("imbi_plugin_sdk-*.whl")
    assert found.name == f"imbi_plugin_sdk-{imbi_plugin_sdk.__version__}-py3-none-any.whl"
    return found


@pytest.fixture
def platform_install() -> Iterator[list[str]]:
    """Distributions installed into the platform's venv by the test, removed afterwards."""
    installed: list[str] = []
    yield installed
    for name in installed:
        subprocess.run(
            [UV, "pip", "uninstall", "--quiet", "--python", sys.executable, name],
            capture_output=True,
            check=False,
            timeout=300,
        )


@pytest.mark.alone  # installs into the platform's virtualenv, which every other test reads
def test_author_flow_from_the_wheel_to_a_loaded_plugin(
    wheel: Path, tmp_path: Path, platform_install: list[str]
) -> None:
    venv = tmp_path / "author-venv"
    run(UV, "venv", "--quiet", "--python", sys.executable, venv)
    python = venv / "bin" / "python"
    run(UV, "pip", "install", "--quiet", "--python", python, "--no-index", wheel)

    # Nothing but the SDK: no Django, no host.
    listed = run(UV, "pip", "list", "--python", python, "--format", "freeze").stdout.split()
    assert listed == [f"imbi-plugin-sdk=={imbi_plugin_sdk.__version__}"]
    probe = "import importlib.util as u; print(u.find_spec('django'), u.find_spec('plugins_core'))"
    assert run(python, "-c", probe, cwd=tmp_path).stdout.split() == ["None", "None"]

    work = tmp_path / "work"
    work.mkdir()
    run(venv / "bin" / "imbi-plugin", "init", "acme-demo", cwd=work)
    plugin = work / "acme-demo"
    run(UV, "pip", "install", "--quiet", "--python", python, "--find-links", wheel.parent, plugin)
    tests = run(python, "-m", "unittest", "discover", "-s", "tests", "-t", ".", "-v", cwd=plugin)
    assert "Ran 4 tests" in tests.stderr and tests.stderr.rstrip().endswith("OK")
    checked = run(venv / "bin" / "imbi-plugin", "check", cwd=plugin)
    assert "FAIL" not in checked.stdout
    assert "acme-demo: contract kit" in checked.stdout
    assert checked.stdout.rstrip().splitlines()[-1].startswith("passed:")

    # The same plugin in the platform's environment: the host loads it.
    run(UV, "pip", "install", "--quiet", "--python", sys.executable, "--no-deps", plugin)
    platform_install.append("imbi-plugin-acme-demo")
    listing = run(
        sys.executable, "manage.py", "plugin", "list", DJANGO_SETTINGS_MODULE="imbi.settings.test"
    )
    lines = {line.split()[0]: line for line in listing.stdout.splitlines() if line.strip()}
    assert lines["acme-demo"].split()[1:3] == ["loaded", "imbi-plugin-acme-demo"]
    assert "deprecated" not in lines["acme-demo"]
