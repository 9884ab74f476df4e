"""Installing from a signed index through the desired state (real uv environments, real
sandboxed imports, real registry), several indexes, HTTP, dependencies, a second node, at rest.

The happy path hands the verified bytes to ``distributions.install``: the wheel is stored by
its SHA-256, this node's environment holds exactly its files, and the registry serves the
plugin; the recorded hash is the index's. Then integrity at rest (a modified file is named by
``plugin verify`` and the plugin is refused at load), the blocklist at load, and the
allow-list for unsigned host distributions (admitted, never when modified).
"""

from __future__ import annotations

import hashlib
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from plugins_core import registry
from plugins_core.distributions import environments, runtime
from plugins_core.distributions.integrity import verify_installed
from plugins_core.models import (
    DistributionArtifact,
    IndexedArtifact,
    InstalledDistribution,
    NodeState,
    PluginIndex,
    RegistryState,
)
from plugins_core.provisioning.icons import IconError, load_icon
from plugins_core.supply.errors import IndexUntrustedKey
from plugins_core.supply.install import install_from_index
from plugins_core.supply.verification import VerifiedArtifact

from .conftest import DIST, PACKAGE, PLUGIN, World, installed_files

pytestmark = pytest.mark.django_db


def _entry(name: str = PLUGIN) -> registry.Entry:
    entry = registry.current().get(name)
    assert entry is not None, sorted(registry.current().entries)
    return entry


def env_site(name: str = DIST) -> Path:
    """The site-packages of ``name``'s environment on this node."""
    row = InstalledDistribution.objects.get(name=name)
    return environments.site_packages(environments.env_path(row.env_key))


def at_load(name: str = PLUGIN) -> registry.Entry:
    """What a process serves after its next generation switch (the load path)."""
    entry = runtime.switch().get(name)
    assert entry is not None
    return entry


def test_install_verifies_then_installs_exactly_those_bytes(
    world: World, site: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world.release("1.0.0")
    world.follow()
    call_command("plugin", "install", "supply-demo")
    out = capsys.readouterr().out
    document = world.document()
    entry = document["signed"]["plugins"][DIST]["versions"]["1.0.0"]["artifacts"][0]
    assert f"installed {DIST} 1.0.0 from index curated v1: sha256 {entry['sha256']}" in out
    assert "[verified]" in out
    record = IndexedArtifact.objects.get()
    assert (record.distribution, record.version, record.sha256, record.size) == (
        DIST,
        "1.0.0",
        entry["sha256"],
        entry["size"],
    )
    # The desired state holds exactly those bytes; this node's environment, exactly its files.
    row = InstalledDistribution.objects.get()
    assert (row.version, row.sha256, row.size, row.artifacts) == (
        "1.0.0",
        entry["sha256"],
        entry["size"],
        [entry["sha256"]],
    )
    assert row.source.startswith("index curated v1: ") and "publisher acme" in row.source
    stored = bytes(DistributionArtifact.objects.get(pk=entry["sha256"]).content)
    assert stored == (world.folder / entry["url"]).read_bytes()
    site_packages = env_site()
    for relative, digest in entry["files"].items():
        assert hashlib.sha256((site_packages / relative).read_bytes()).hexdigest() == digest
    assert _entry().ok, _entry().reason
    assert (_entry().version, _entry().isolated) == ("1.0.0", True)
    assert _entry().env == str(environments.env_path(row.env_key))
    call_command("plugin", "verify")
    assert f"{DIST} 1.0.0  signed  {len(entry['files'])} files match" in capsys.readouterr().out
    # Never imported by the host: its icon comes from its own environment only.
    assert load_icon(f"{PACKAGE}:icon.svg", _entry().env).startswith("<svg")
    with pytest.raises(IconError, match="was not found"):
        load_icon(f"{PACKAGE}:icon.svg")


def test_the_api_installs_through_the_desired_state(
    world: World, site: Path, superuser_client: APIClient
) -> None:
    world.release("1.0.0")
    world.follow()
    response = superuser_client.post(
        "/api/plugin-index/install", {"requirement": "supply-demo"}, format="json"
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    row = InstalledDistribution.objects.get()
    assert (body["distribution"], body["version"], body["sha256"]) == (DIST, "1.0.0", row.sha256)
    assert (body["generation"], body["artifacts"]) == (row.generation, [row.sha256])
    assert body["previous_version"] is None and body["badge"] == "verified"
    listing = superuser_client.get("/api/plugin-index/available").json()
    assert [(o["name"], o["installed"]) for o in listing] == [(DIST, "1.0.0")]


def test_upgrade_to_a_pinned_version_and_the_newest_by_default(world: World, site: Path) -> None:
    world.release("1.0.0")
    world.release("1.1.0")
    world.follow()
    result = install_from_index("supply-demo==1.0.0")
    assert result.artifact.version == "1.0.0"
    result = install_from_index("imbi-plugin-supply-demo")
    assert (result.artifact.version, result.previous_version) == ("1.1.0", "1.0.0")
    assert _entry().version == "1.1.0"
    assert IndexedArtifact.objects.get().version == "1.1.0"
    assert InstalledDistribution.objects.get().version == "1.1.0"


def test_the_newest_good_version_skips_blocklisted_ones(world: World, site: Path) -> None:
    world.release("1.0.0")
    world.release("2.0.0", blocklist=[{"plugin": DIST, "below": "9", "reason": "x"}])
    world.publish(blocklist=[{"plugin": DIST, "below": "1.0.0", "reason": "old"}])
    world.follow()
    recorded: list[VerifiedArtifact] = []

    class Recorder:
        def install(self, artifact: VerifiedArtifact) -> None:
            recorded.append(artifact)

    install_from_index("supply-demo", installer=Recorder())
    assert [a.version for a in recorded] == ["2.0.0"]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def http_index(world: World, settings: Any) -> Iterator[str]:
    """The index folder served by a loopback HTTP server (which the operator must allow)."""
    settings.IMBI_PLUGIN_INDEX_ALLOW_INTERNAL = True
    world.folder.mkdir(parents=True, exist_ok=True)

    def handler(*args: Any, **kwargs: Any) -> _Quiet:
        return _Quiet(*args, directory=str(world.folder), **kwargs)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_install_from_an_index_served_over_http(world: World, site: Path, http_index: str) -> None:
    world.release("1.0.0")
    world.follow(url=http_index)
    result = install_from_index("supply-demo")
    assert result.artifact.index == "curated"
    assert _entry().ok


def test_http_index_refusals_reach_the_cli(world: World, site: Path, http_index: str) -> None:
    world.release(index_key=world.key("stranger"))
    world.follow(url=http_index)
    with pytest.raises(CommandError, match=r"^index_untrusted_key: "):
        call_command("plugin", "install", "supply-demo")
    PluginIndex.objects.update(url=http_index + "missing/")
    with pytest.raises(CommandError, match=r"^index_unreachable: .*HTTP 404"):
        call_command("plugin", "install", "supply-demo")
    assert installed_files(site) == []


def test_each_index_has_its_own_trust_root(world: World, site: Path, tmp_path: Path) -> None:
    """An organization's private index, signed and certified by its own keys: its keys
    cannot vouch for the curated index and the curated keys cannot vouch for it."""
    world.release("1.0.0")
    private = World(tmp_path / "private-world")
    private.folder = tmp_path / "private-index"
    private.index_name = "acme-private"  # an index names itself (index_name_mismatch)
    private.release("3.0.0")
    world.follow(priority=10)
    private.follow(name="acme-private", priority=20)
    # The curated index lists the name first: it wins; the private one never shadows it.
    result = install_from_index("supply-demo")
    assert (result.artifact.index, result.artifact.version) == ("curated", "1.0.0")
    # Swap the trust roots: both indexes are refused.
    PluginIndex.objects.filter(name="curated").update(index_keys=[private.index_key.public_key])
    with pytest.raises(IndexUntrustedKey):
        install_from_index("supply-demo")
    curated = PluginIndex.objects.get(name="curated")
    assert curated.last_error_code == "index_untrusted_key"
    PluginIndex.objects.filter(name="curated").update(enabled=False)
    # The private index's "acme" is another publisher (another root): replacing the curated
    # build is an explicit transfer (issue 20, case 8).
    with pytest.raises(CommandError, match=r"^publisher_changed: "):
        call_command("plugin", "install", "supply-demo")
    result = install_from_index("supply-demo", transfer_publisher=True)
    assert (result.artifact.index, result.artifact.version) == ("acme-private", "3.0.0")
    # A private index whose certificates come from another root is refused too.
    PluginIndex.objects.filter(name="acme-private").update(root_keys=[world.root.public_key])
    with pytest.raises(CommandError, match=r"^certificate_invalid: .*not issued by a root key"):
        call_command("plugin", "install", "supply-demo==3.0.0")


# --- integrity at rest ----------------------------------------------------------------------


def test_a_modified_installed_file_is_named_and_refused_at_load(
    world: World, site: Path, superuser_client: APIClient, client: Any, django_user_model: Any
) -> None:
    world.release()
    world.follow()
    install_from_index("supply-demo")
    assert _entry().ok
    handler = env_site() / PACKAGE / "handler.py"
    handler.write_text(handler.read_text() + "\nimport os  # injected\n")
    with pytest.raises(CommandError) as caught:
        call_command("plugin", "verify")
    message = str(caught.value)
    assert f"file_modified: {DIST}: installed file {PACKAGE}/handler.py was modified" in message
    entry = at_load()
    assert entry.status is registry.Status.MODIFIED
    assert f"{PACKAGE}/handler.py" in entry.reason
    assert entry.handler is None  # never imported here, and no runner starts from it
    # The node reports it (the admin's distributions page shows every node's status).
    call_command("plugin", "reconcile")
    state = NodeState.objects.get(distribution=DIST)
    assert state.status == "failed" and f"installed file {PACKAGE}/handler.py" in state.detail
    body = superuser_client.get("/api/plugins/integrity").json()
    mine = next(r for r in body if r["distribution"] == DIST)
    assert (mine["status"], mine["ok"]) == ("file_modified", False)
    assert f"{PACKAGE}/handler.py" in mine["detail"]
    listing = superuser_client.get("/api/plugins").json()
    shown = next(e for e in listing["entries"] if e["name"] == PLUGIN)
    assert shown["status"] == "modified" and "handler.py" in shown["reason"]
    # The admin: the registry page and the install records name the file too.
    admin = django_user_model.objects.get(username="root")
    client.force_login(admin)
    page = client.get("/admin/plugins_core/plugin/registry/").content.decode()
    assert f"installed file {PACKAGE}/handler.py was modified" in page
    records = client.get("/admin/plugins_core/indexedartifact/").content.decode()
    assert f"file_modified: {DIST}: installed file {PACKAGE}/handler.py was modified" in records


@pytest.mark.parametrize(
    "added",
    [
        f"{PACKAGE}/__pycache__/handler.cpython-311.pyc",
        "zz_injected.pth",
        f"{PACKAGE}/extra.py",
    ],
    ids=["planted byte code", "a .pth file", "an added module"],
)
def test_a_file_no_manifest_names_is_refused_at_load(world: World, site: Path, added: str) -> None:
    """Byte code, ``.pth`` files and modules that no wheel brought are refused: runners never
    write byte code (PYTHONDONTWRITEBYTECODE) and nothing else writes there."""
    world.release()
    world.follow()
    install_from_index("supply-demo")
    assert at_load().ok
    path = env_site() / added
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"import os\n")
    entry = at_load()
    assert entry.status is registry.Status.MODIFIED
    assert f"unexpected file {added} in its environment" in entry.reason


def test_the_environment_interpreter_and_its_configuration_are_checked(
    world: World, site: Path
) -> None:
    world.release()
    world.follow()
    install_from_index("supply-demo")
    env = Path(_entry().env)
    config = env / "pyvenv.cfg"
    original = config.read_text()
    config.write_text(original.replace("include-system-site-packages = false", "x = 1"))
    entry = at_load()
    assert entry.status is registry.Status.MODIFIED
    assert "pyvenv.cfg of its environment was modified" in entry.reason
    config.write_text(original)
    assert at_load().ok
    python = env / "bin" / "python"
    python.unlink()
    python.symlink_to("/bin/sh")
    entry = at_load()
    assert entry.status is registry.Status.MODIFIED
    assert "bin/python of its environment is not the host's interpreter" in entry.reason


def test_a_deleted_file_and_a_forged_record_are_refused(world: World, site: Path) -> None:
    world.release()
    world.follow()
    install_from_index("supply-demo")
    (env_site() / PACKAGE / "icon.svg").unlink()
    entry = at_load()
    assert entry.status is registry.Status.MODIFIED
    assert "icon.svg is missing" in entry.reason
    # Editing the recorded manifest to match breaks the publisher's signature over it.
    record = IndexedArtifact.objects.get()
    del record.entry["files"][f"{PACKAGE}/icon.svg"]
    record.save()
    entry = at_load()
    assert entry.status is registry.Status.MODIFIED
    assert "publisher_signature_invalid" in entry.reason


def test_a_blocklisted_installed_version_is_disabled_at_load_with_the_reason(
    world: World, site: Path, settings: Any
) -> None:
    world.release("1.0.0")
    world.follow()
    install_from_index("supply-demo")
    assert _entry().ok
    world.publish(blocklist=[{"plugin": DIST, "below": "1.0.1", "reason": "CVE-2026-1234"}])
    generation = RegistryState.objects.get().generation
    call_command("plugin", "index", "refresh")
    # A new blocklist is a new generation: every process re-checks at its next request.
    assert RegistryState.objects.get().generation == generation + 1
    entry = at_load()
    assert entry.status is registry.Status.BLOCKED
    assert entry.reason == (
        f"{DIST} 1.0.0 is blocklisted by index 'curated' (lowest good version 1.0.1): CVE-2026-1234"
    )
    # The platform's own blocklist works the same way, without any index.
    PluginIndex.objects.all().delete()
    settings.IMBI_PLUGINS_BLOCKLIST = [{"plugin": DIST, "below": "2", "reason": "local"}]
    entry = at_load()
    assert entry.status is registry.Status.BLOCKED
    assert "this platform" in entry.reason


def test_a_local_wheel_is_checked_against_its_recorded_bytes(world: World, site: Path) -> None:
    """Installed from a wheel file (no index): no publisher signature, but the desired state
    records its bytes, so a modified file is refused all the same."""
    call_command("plugin", "install", str(world.wheel()))
    assert at_load().ok
    (result,) = [r for r in verify_installed() if r.distribution == DIST]
    assert (result.status, result.ok) == ("recorded", True)
    handler = env_site() / PACKAGE / "handler.py"
    handler.write_text(handler.read_text() + "\n# edited\n")
    entry = at_load()
    assert entry.status is registry.Status.MODIFIED
    assert f"{PACKAGE}/handler.py was modified" in entry.reason


def test_unsigned_host_plugins_load_only_when_allowed_and_never_modified(
    world: World, tmp_path: Path, settings: Any
) -> None:
    """A distribution in the host environment (the image's own plugins), not from an index."""
    import importlib
    import subprocess
    import sys

    host = tmp_path / "host-site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(host),
            str(world.wheel()),
        ],
        check=True,
        capture_output=True,
    )
    sys.path.append(str(host))
    allowed = settings.IMBI_PLUGINS_UNSIGNED_ALLOWED
    try:
        settings.IMBI_PLUGINS_UNSIGNED_ALLOWED = []
        entry = registry.rebuild().get(PLUGIN)
        assert entry is not None and entry.status is registry.Status.UNSIGNED
        assert "was not installed from a signed index" in entry.reason
        settings.IMBI_PLUGINS_UNSIGNED_ALLOWED = [DIST]
        assert _entry().ok if registry.rebuild() else False
        handler = host / PACKAGE / "handler.py"
        handler.write_text(handler.read_text() + "\n# edited\n")
        entry = registry.rebuild().get(PLUGIN)
        assert entry is not None and entry.status is registry.Status.MODIFIED
        assert f"{PACKAGE}/handler.py was modified" in entry.reason
    finally:
        sys.path.remove(str(host))
        for module in [m for m in sys.modules if m.startswith(PACKAGE)]:
            del sys.modules[module]
        importlib.invalidate_caches()
        settings.IMBI_PLUGINS_UNSIGNED_ALLOWED = allowed  # the snapshot others see is the usual one
        registry.rebuild()


@pytest.fixture
def superuser_client(django_user_model: Any) -> APIClient:
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = APIClient()
    client.force_authenticate(user)
    return client
