"""docs/plugin-authors.md, steps 2 to 8: init -> sign -> publish -> install from the index ->
binding -> a tab served, running only the commands on the page.

The author runs the ``<!-- tutorial -->`` and ``<!-- tutorial:sign -->`` blocks in a fresh
virtualenv that holds the SDK wheel built from this checkout (``PIP_FIND_LINKS``; setuptools
and cryptography come from the package index), with ``HOME`` in a temp folder. The platform
operator runs the ``<!-- tutorial:platform -->`` blocks in this checkout against the test
database (what the page assumes exists: an organization, a project type and a project, an
admin with an API token). The platform is then started (the page's "restart") and the
``<!-- tutorial:api -->`` blocks bind the plugin and read the Configuration tab over HTTP.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from rest_framework.authtoken.models import Token

from imbi.core.models import Organization, Project, ProjectType
from plugins_core.models import DistributionArtifact, IndexedArtifact, InstalledDistribution

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "plugin-authors.md"
UV = shutil.which("uv", path=str(Path(sys.executable).parent)) or "uv"


def blocks(marker: str) -> str:
    pattern = re.compile(rf"<!-- {re.escape(marker)} -->\n```sh\n(?P<body>.*?)```", re.DOTALL)
    return "".join(match["body"] for match in pattern.finditer(PAGE.read_text()))


def run(script: str, *, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    return result


def test_the_page_marks_every_publishing_step() -> None:
    sign, platform, api = (
        blocks("tutorial:sign"),
        blocks("tutorial:platform"),
        blocks("tutorial:api"),
    )
    for expected in ("imbi-plugin keygen", "imbi-plugin certify", "imbi-plugin sign"):
        assert expected in sign
    assert "imbi-plugin publish" in sign
    assert "manage.py plugin index add" in platform
    assert "manage.py plugin install acme-demo" in platform
    assert "/bindings" in api and "/configuration" in api


@pytest.fixture
def platform_env(tmp_path: Path) -> dict[str, str]:
    """The environment of the platform's own commands: the test database, temp plugin dirs."""
    database = django_settings.DATABASES["default"]
    url = (
        f"postgres://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
        f"{database['PORT']}/{database['NAME']}"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "VIRTUAL_ENV"))}
    env.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="imbi.settings.test",
        IMBI_PLUGIN_ROOT=str(tmp_path / "platform" / "plugins"),
        IMBI_NODE_ID="tutorial-node",
        IMBI_PLUGINS_UNSIGNED_ALLOWED="*",
    )
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def server(platform_env: dict[str, str]) -> Iterator[Any]:
    """Starts the platform (``runserver``) on demand; stops it afterwards."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> str:
        port = _free_port()
        process = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=platform_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        started.append(process)
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)  # noqa: S310
                return base
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the platform did not start")

    yield start
    for process in started:
        process.terminate()
        process.wait(timeout=30)


@pytest.mark.django_db(transaction=True)
def test_init_sign_publish_install_bind_and_serve_a_tab(
    tmp_path: Path, platform_env: dict[str, str], server: Any, django_user_model: Any
) -> None:
    # What the page assumes the platform already has.
    org = Organization.objects.create(slug="acme", name="Acme")
    project_type = ProjectType.objects.create(organization=org, slug="api", name="API")
    project = Project.objects.create(
        organization=org, project_type=project_type, slug="billing", name="Billing"
    )
    admin = django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    token = Token.objects.create(user=admin).key

    # The author: an SDK-only virtualenv, the tutorial's steps 1-4, then step 7.
    dist = tmp_path / "dist"
    sdk = tmp_path / "sdk-src"
    shutil.copytree(ROOT / "sdk", sdk, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    subprocess.run(
        [UV, "build", "--quiet", "--wheel", "--out-dir", dist, sdk], check=True, timeout=600
    )
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "python3").symlink_to(sys.executable)
    work, home = tmp_path / "author", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    author_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON", "PIP_"))
    }
    author_env.update(
        HOME=str(home),
        PATH=f"{tools}{os.pathsep}{author_env.get('PATH', '')}",
        PIP_FIND_LINKS=str(dist),
        PIP_DISABLE_PIP_VERSION_CHECK="1",
    )
    authored = run(blocks("tutorial") + blocks("tutorial:sign"), cwd=work, env=author_env)
    assert "published ../acme-index/index.json: index 'acme' version 1" in authored.stdout
    index_dir = work / "acme-index"
    assert (index_dir / "artifacts" / "imbi_plugin_acme_demo-0.1.0-py3-none-any.whl").is_file()
    assert oct((home / ".imbi-keys" / "acme.key").stat().st_mode & 0o777) == "0o600"

    # The platform operator: follow the index, install from it, set up the service.
    operator_env = {
        **platform_env,
        "INDEX_DIR": str(index_dir),
        "KEYS": str(home / ".imbi-keys"),
        "ORG": org.slug,
        "ACME_TOKEN": "acme-secret-token-1234",
    }
    installed = run(blocks("tutorial:platform"), cwd=ROOT, env=operator_env)
    assert "installed imbi-plugin-acme-demo 0.1.0 from index acme v1" in installed.stdout
    assert "[verified]" in installed.stdout
    assert "acme-secret-token-1234" not in installed.stdout + installed.stderr
    record = IndexedArtifact.objects.get()
    entry = json.loads((index_dir / "index.json").read_text())["signed"]["plugins"][
        "imbi-plugin-acme-demo"
    ]["versions"]["0.1.0"]["artifacts"][0]
    assert (record.sha256, record.size) == (entry["sha256"], entry["size"])
    # Through the desired state: the verified bytes, stored by hash, in this node's environment.
    row = InstalledDistribution.objects.get()
    assert (row.name, row.version, row.sha256) == (
        "imbi-plugin-acme-demo",
        "0.1.0",
        entry["sha256"],
    )
    assert (
        bytes(DistributionArtifact.objects.get(pk=row.sha256).content)
        == (index_dir / entry["url"]).read_bytes()
    )
    env = tmp_path / "platform" / "plugins" / "envs" / row.env_key
    assert (env / ".imbi-ready").is_file()

    # "Restart the platform's processes", then the API steps.
    base = server()
    api_env = {
        **author_env,
        "IMBI": base,
        "ORG": org.slug,
        "TYPE": project_type.slug,
        "PROJECT": str(project.pk),
        "TOKEN": token,
    }
    served = run(blocks("tutorial:api"), cwd=work, env=api_env)
    decoder, text, replies = json.JSONDecoder(), served.stdout.strip(), []
    while text:
        reply, end = decoder.raw_decode(text)
        replies.append(reply)
        text = text[end:].strip()
    binding, tab = replies
    assert (binding["plugin"], binding["tab"]) == ("acme-demo", "configuration"), binding
    assert tab["source"]["slug"] == "acme-demo", tab
    assert isinstance(tab["keys"], list)
