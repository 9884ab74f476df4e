"""``imbi-plugin check --isolated``: a plugin's calls in the platform's sandbox policy, with
only its declared hosts reachable; a wrongly declared host fails with one line, exit 1."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from imbi_plugin_sdk.checker import check_project
from imbi_plugin_sdk.cli import main
from imbi_plugin_sdk.isolated import host_allowed
from imbi_plugin_sdk.scaffold import create_plugin


@pytest.mark.parametrize(
    ("host", "port", "patterns", "allowed"),
    [
        ("api.acme.example", 443, ["api.acme.example"], True),
        ("API.acme.example.", 443, ["api.acme.example"], True),
        ("api.acme.example", 80, ["api.acme.example"], False),
        ("api.acme.example", 8443, ["api.acme.example:8443"], True),
        ("eu.api.acme.example", 443, ["*.api.acme.example"], True),
        ("api.acme.example", 443, ["*.api.acme.example"], False),
        ("169.254.169.254", 443, ["*.169.254"], False),
        ("127.0.0.1", 8399, ["127.0.0.1:8399"], True),
        ("api.acme.test", 443, ["api.acme.example"], False),
    ],
)
def test_declared_host_patterns(host: str, port: int, patterns: list[str], allowed: bool) -> None:
    assert host_allowed(host, port, patterns) is allowed


def _plugin(tmp_path: Path, declared: str) -> Path:
    root = create_plugin("acme-net", parent=tmp_path, vendor="acme")
    handler = root / "imbi_plugin_acme_net" / "handler.py"
    source = handler.read_text()
    source = source.replace(
        "permissions=Permissions(storage=True),",
        f'permissions=Permissions(storage=True, network_hosts=("{declared}",)),',
    )
    marker = "    def test_connection(self) -> ConnectionResult:\n"
    source = source.replace(
        marker,
        marker + "        import socket\n\n"
        "        try:\n"
        '            socket.create_connection(("api.acme.test", 443), timeout=2).close()\n'
        "        except PermissionError:\n"
        "            raise\n"
        "        except OSError:\n"
        "            pass  # no network here: reaching it is not the point\n",
    )
    handler.write_text(source)
    return root


@pytest.mark.skipif(sys.platform != "linux", reason="fork and the kernel sandbox")
def test_a_wrongly_declared_host_fails_check_isolated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _plugin(tmp_path, "api.acme.example")
    assert check_project(root).passed  # without --isolated nothing notices
    assert main(["check", str(root), "--isolated"]) == 1
    captured = capsys.readouterr()
    assert captured.err == (
        "imbi-plugin: error: acme-net: --isolated: tried to reach api.acme.test:443, not a "
        "declared network host (permissions.network_hosts: api.acme.example)\n"
    )


@pytest.mark.skipif(sys.platform != "linux", reason="fork and the kernel sandbox")
def test_a_correctly_declared_host_passes_in_the_sandbox(tmp_path: Path) -> None:
    root = _plugin(tmp_path, "api.acme.test")
    report = check_project(root, isolated=True)
    assert report.passed, report.render()
    messages = [f.message for f in report.findings]
    assert "acme-net: --isolated: sandboxed like the platform (api.acme.test)" in messages


def test_the_sdk_imports_nothing_of_the_platform() -> None:
    import ast

    package = Path(__file__).resolve().parents[1] / "imbi_plugin_sdk"
    for module in ("sandbox.py", "isolated.py", "checker.py"):
        tree = ast.parse((package / module).read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(("django", "plugins_core", "imbi.")), (module, name)
