"""docs/plugin-authors.md: the tutorial's commands run as written and do what the page says.

Every ```sh block preceded by ``<!-- tutorial -->`` is concatenated into one bash script
(``set -euo pipefail``) and run in an empty folder. ``pip install imbi-plugin-sdk`` finds the
SDK wheel built from this checkout (``PIP_FIND_LINKS``); pytest and setuptools come from the
package index. The platform-side step 6 is run by tests/test_plugin_sdk_distribution.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import imbi_plugin_sdk

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "plugin-authors.md"
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"
BLOCK_RE = re.compile(r"<!-- tutorial -->\n```sh\n(?P<body>.*?)```", re.DOTALL)


def tutorial_commands() -> list[str]:
    return [match["body"] for match in BLOCK_RE.finditer(PAGE.read_text())]


def test_the_page_marks_the_tutorial_steps() -> None:
    commands = "".join(tutorial_commands())
    for expected in (
        "pip install imbi-plugin-sdk",
        "imbi-plugin init acme-demo",
        "python -m pytest",
        "imbi-plugin check",
        "imbi-plugin check --isolated",
    ):
        assert expected in commands


def test_the_tutorial_runs_as_written(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    sdk = tmp_path / "sdk-src"
    shutil.copytree(ROOT / "sdk", sdk, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run(
        [UV, "build", "--quiet", "--wheel", "--out-dir", dist, sdk], check=True, timeout=600
    )
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "python3").symlink_to(sys.executable)  # the page says python3
    work = tmp_path / "author"
    work.mkdir()
    script = "set -euo pipefail\n" + "".join(tutorial_commands())
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VIRTUAL_ENV", "PYTHON", "PIP_"))
    }
    env.update(
        PATH=f"{tools}{os.pathsep}{env.get('PATH', '')}",
        PIP_FIND_LINKS=str(dist),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    result = subprocess.run(
        ["bash", "-c", script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert f"imbi-plugin-sdk {imbi_plugin_sdk.__version__}" in result.stdout
    assert (work / "acme-demo" / "imbi_plugin_acme_demo" / "handler.py").is_file()
    assert re.search(r"\b4 passed\b", result.stdout), result.stdout[-2000:]
    assert "acme-demo: contract kit" in result.stdout
    assert "acme-demo: permissions: storage" in result.stdout
    assert "passed: 6 checks, 0 problem(s), 0 warning(s)" in result.stdout
    # The sample output printed on the page is what check prints.
    page = PAGE.read_text()
    for line in result.stdout.splitlines():
        if line.startswith("  ok    acme-demo:"):
            assert line in page, line

    # check --isolated: the tutorial's plugin, edited to call a host it does not declare,
    # fails in the SDK's sandbox with a one-line reason (its own tests and check still pass)
    handler = work / "acme-demo" / "imbi_plugin_acme_demo" / "handler.py"
    source = handler.read_text()
    source = source.replace(
        "permissions=Permissions(storage=True),",
        'permissions=Permissions(storage=True, network_hosts=("api.acme.example",)),',
    )
    marker = "    def test_connection(self) -> ConnectionResult:\n"
    assert marker in source
    source = source.replace(
        marker,
        marker + "        import socket\n\n"
        '        socket.create_connection(("api.acme.test", 443), timeout=2).close()\n',
    )
    handler.write_text(source)
    venv_bin = work / ".venv" / "bin"
    wrong = subprocess.run(
        [str(venv_bin / "imbi-plugin"), "check", "--isolated"],
        cwd=work / "acme-demo",
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert wrong.returncode == 1, wrong.stdout + wrong.stderr
    reason = wrong.stderr.strip()
    assert "\n" not in reason
    assert reason == (
        "imbi-plugin: error: acme-demo: --isolated: tried to reach api.acme.test:443, not a "
        "declared network host (permissions.network_hosts: api.acme.example)"
    )
