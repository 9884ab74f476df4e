"""Fault 5 of issue 21: a full plugin-root disk during an install is a clean
``environment_failed``, names the folder, and leaves no partial file behind.

The plugin root is a 1 MiB tmpfs, mounted in a private mount namespace of the process under
test (``unshare --mount``: nothing outside that process sees it, and it disappears with the
process), filled to about 64 KiB free; the wheel is about 300 KiB. The write fails with a
real ENOSPC from the kernel. Both ways in: ``manage.py plugin install`` (exit status 1, one
line, no traceback) and the REST API (``507`` problem+json ``environment_failed``).
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from rest_framework.authtoken.models import Token
from uv import find_uv_bin

from plugins_core.models import InstalledDistribution

from .conftest import HOST, ROOT, Web, production_env

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"), reason="needs root and unshare"
)

SOURCE = ROOT / "tests" / "runtime_plugin"
# Mount a small tmpfs on $IMBI_PLUGIN_ROOT in a private mount namespace, fill it, run "$@".
FULL_DISK = [
    "unshare",
    "--mount",
    "--propagation",
    "private",
    "sh",
    "-c",
    'mount -t tmpfs -o size=1m tmpfs "$IMBI_PLUGIN_ROOT" '
    '&& head -c 983040 /dev/zero > "$IMBI_PLUGIN_ROOT/filler" && exec "$@"',
    "sh",
]


def big_wheel(out: Path) -> Path:
    tree = out / "src"
    shutil.copytree(SOURCE, tree, ignore=shutil.ignore_patterns("*.egg-info", "build"))
    for path in (tree / "pyproject.toml", tree / "imbi_plugin_runtime_demo" / "__init__.py"):
        path.write_text(path.read_text().replace("0.0.0.dev0", "9.0.0"))
    padding = base64.b64encode(os.urandom(300_000)).decode()
    (tree / "imbi_plugin_runtime_demo" / "padding.py").write_text(f'PADDING = "{padding}"\n')
    dist = out / "dist"
    subprocess.run(
        [str(find_uv_bin()), "build", "--quiet", "--wheel", "--out-dir", str(dist), str(tree)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("imbi_plugin_runtime_demo-9.0.0-*.whl")
    assert wheel.stat().st_size > 150_000
    return wheel


def leftovers(listing: str) -> list[str]:
    return [line for line in listing.splitlines() if ".whl." in line or "/.building-" in line]


def test_cli_install_on_a_full_disk(transactional_db: Any, tmp_path: Path) -> None:
    wheel = big_wheel(tmp_path)
    root = tmp_path / "plugins"
    root.mkdir()
    env = production_env(tmp_path, IMBI_PLUGIN_ROOT=str(root))
    script = (
        "import subprocess, sys; "
        f"r = subprocess.run([sys.executable, 'manage.py', 'plugin', 'install', {str(wheel)!r}]); "
        f"print('FILES', *sorted(str(p) for p in __import__('pathlib').Path({str(root)!r})"
        ".rglob('*')), sep='\\n', file=sys.stderr); sys.exit(r.returncode)"
    )
    done = subprocess.run(
        [*FULL_DISK, sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors, _, files = done.stderr.partition("FILES\n")
    assert done.returncode == 1, done.stderr[-3000:]
    assert "Traceback" not in errors, errors[-3000:]
    lines = [line for line in errors.splitlines() if line.strip()]
    assert lines[-1].startswith("CommandError: environment_failed: copying imbi_plugin_runtime")
    assert f"no space left in {root}/wheels/" in lines[-1]
    assert "free space there and retry" in lines[-1]
    assert leftovers(files) == [], files
    assert not InstalledDistribution.objects.exists()
    assert list(root.iterdir()) == []  # the tmpfs was private to that process


def test_api_install_on_a_full_disk(
    web_server: Callable[..., Web], django_user_model: Any, tmp_path: Path
) -> None:
    wheel = big_wheel(tmp_path)
    root = tmp_path / "plugins"
    root.mkdir()
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    token = Token.objects.create(user=admin, key="full-disk-token-0123456789abcdef01234567")
    web = web_server(wrap=FULL_DISK, IMBI_PLUGIN_ROOT=str(root))
    answer = httpx.post(
        f"http://127.0.0.1:{web.port}/api/plugin-distributions",
        headers={
            "Host": HOST,
            "X-Forwarded-Proto": "https",
            "Authorization": f"Token {token.key}",
        },
        files={"wheel": (wheel.name, wheel.read_bytes(), "application/octet-stream")},
        timeout=120,
    )
    assert answer.status_code == 507, answer.text
    assert answer.headers["Content-Type"] == "application/problem+json"
    body = answer.json()
    assert body["code"] == "environment_failed"
    assert f"no space left in {root}/wheels/" in body["detail"]
    assert "Traceback" not in web.logs()
    assert not InstalledDistribution.objects.exists()
