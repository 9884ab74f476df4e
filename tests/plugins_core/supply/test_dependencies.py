"""A plugin with a dependency, from a signed index: the artifact ``--no-deps``, its dependency
fetched once by its pinned SHA-256 (a local wheel folder: no network), both recorded in the
desired state; a second node builds the same environment from the database alone.

Refusals: a dependency wheel with other bytes, a dependency the entry does not pin, and a
dependency line that is more than ``name==version --hash=sha256:...``; each leaves nothing
installed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from imbi_plugin_sdk import signing

from plugins_core import registry
from plugins_core.distributions import environments, runtime
from plugins_core.distributions.integrity import verify_installed
from plugins_core.models import (
    DistributionArtifact,
    IndexedArtifact,
    InstalledDistribution,
    NodeState,
)
from plugins_core.supply.install import install_from_index

from .conftest import DIST, PACKAGE, PLUGIN, World, installed_files, library_wheel

ROOT = Path(__file__).resolve().parents[3]
DEP = "imbi-test-tinydep"
DEP_MODULE = "imbi_test_tinydep"


def _dependency(folder: Path, body: bytes = b'GREETING = "hello from a pinned wheel"\n') -> Path:
    return library_wheel(folder, DEP, "1.2.0", {f"{DEP_MODULE}/__init__.py": body})


def _pin(wheel: Path) -> str:
    return f"{DEP}==1.2.0 --hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}"


def _plugin_needing_the_dependency(world: World) -> Path:
    handler = (world.source / PACKAGE / "handler.py").read_bytes()
    return world.wheel(
        extra={f"{PACKAGE}/handler.py": handler + f"\nimport {DEP_MODULE}  # noqa\n".encode()},
        requires=(f"{DEP}>=1.0",),
    )


def _release(world: World, dependencies: tuple[str, ...]) -> None:
    wheel = _plugin_needing_the_dependency(world)
    world.publish([world.entry(wheel, dependencies=dependencies)], [wheel])
    world.follow()


@pytest.fixture
def dependency_folder(tmp_path: Path, settings: Any) -> Path:
    folder = tmp_path / "dependency-wheels"
    folder.mkdir()
    settings.IMBI_PLUGINS_DEPENDENCY_INDEX = str(folder)
    return folder


def _files(site: Path, manifest: dict[str, str]) -> dict[str, str]:
    return {p: hashlib.sha256((site / p).read_bytes()).hexdigest() for p in sorted(manifest)}


@pytest.mark.django_db
def test_the_artifact_and_its_pinned_dependency_are_installed_and_recorded(
    world: World, site: Path, dependency_folder: Path
) -> None:
    dependency = _dependency(dependency_folder)
    _release(world, (_pin(dependency),))
    install_from_index("supply-demo")
    row = InstalledDistribution.objects.get()
    dependency_sha = hashlib.sha256(dependency.read_bytes()).hexdigest()
    assert set(row.artifacts) == {row.sha256, dependency_sha}
    stored = DistributionArtifact.objects.get(pk=dependency_sha)
    assert bytes(stored.content) == dependency.read_bytes()
    # The plugin imported its dependency in the sandbox (the install inspects every entry).
    entry = registry.current().get(PLUGIN)
    assert entry is not None and entry.ok, entry
    site_packages = environments.site_packages(environments.env_path(row.env_key))
    assert (site_packages / DEP_MODULE / "__init__.py").read_bytes() == (
        b'GREETING = "hello from a pinned wheel"\n'
    )
    requirements = (environments.env_path(row.env_key) / ".imbi-requirements.txt").read_text()
    assert f"--hash=sha256:{dependency_sha}" in requirements
    assert f"--hash=sha256:{row.sha256}" in requirements
    (result,) = [r for r in verify_installed() if r.distribution == DIST]
    assert result.status == "signed" and result.ok
    # The dependency's files are checked at rest too.
    target = site_packages / DEP_MODULE / "__init__.py"
    target.write_bytes(b'GREETING = "patched on disk"\n')
    refused = runtime.switch().get(PLUGIN)
    assert refused is not None and refused.status is registry.Status.MODIFIED
    assert f"installed file {DEP_MODULE}/__init__.py was modified" in refused.reason


@pytest.mark.django_db
def test_a_dependency_wheel_with_other_bytes_is_refused(
    world: World, site: Path, dependency_folder: Path
) -> None:
    pinned = _dependency(dependency_folder)
    pin = _pin(pinned)
    _dependency(dependency_folder, body=b'GREETING = "swapped"\n')  # same file name, new bytes
    _release(world, (pin,))
    with pytest.raises(CommandError) as caught:
        call_command("plugin", "install", "supply-demo")
    message = str(caught.value)
    assert message.startswith("dependency_unavailable: ") and "\n" not in message
    assert "does not match its pinned hash" in message, message
    _nothing_installed(site)


@pytest.mark.django_db
def test_a_dependency_the_entry_does_not_pin_is_refused(world: World, site: Path) -> None:
    _release(world, ())
    with pytest.raises(CommandError) as caught:
        call_command("plugin", "install", "supply-demo")
    message = str(caught.value)
    assert message.startswith("install_failed: dependency_not_pinned: "), message
    assert f"requires {DEP}>=1.0, which is not among its pinned wheels" in message
    _nothing_installed(site)


@pytest.mark.django_db
def test_a_dependency_line_with_options_is_refused(
    world: World, site: Path, dependency_folder: Path
) -> None:
    """``sign`` only checks for ``==`` and a hash; the platform accepts nothing else on the
    line (no index URL, no second requirement smuggled in)."""
    pin = _pin(_dependency(dependency_folder)) + " --index-url=https://evil.example/simple"
    wheel = _plugin_needing_the_dependency(world)
    entry = world.entry(wheel)
    entry["dependencies"] = [pin]
    entry["signature"] = world.publisher.sign(signing.artifact_message(entry))
    world.publish([entry], [wheel])
    world.follow()
    with pytest.raises(CommandError, match=r"^dependency_rejected: .*is not name==version"):
        call_command("plugin", "install", "supply-demo")
    _nothing_installed(site)


def _nothing_installed(site: Path) -> None:
    assert [p for p in installed_files(site) if p.startswith(("envs/", "wheels/"))] == []
    assert not InstalledDistribution.objects.exists()
    assert not DistributionArtifact.objects.exists()
    assert not IndexedArtifact.objects.exists()


def _node_env(tmp_path: Path, node: str) -> dict[str, str]:
    database = django_settings.DATABASES["default"]
    url = (
        f"postgres://{database['USER']}:{database['PASSWORD']}@{database['HOST']}:"
        f"{database['PORT']}/{database['NAME']}"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "VIRTUAL_ENV"))}
    env.update(
        DATABASE_URL=url,
        DJANGO_SETTINGS_MODULE="imbi.settings.test",
        IMBI_PLUGIN_ROOT=str(tmp_path / node),
        IMBI_NODE_ID=node,
        IMBI_PLUGINS_DEPENDENCY_INDEX=str(tmp_path / "no-such-folder"),  # never needed there
    )
    return env


@pytest.mark.django_db(transaction=True)
def test_a_second_node_installs_the_same_bytes_from_the_desired_state(
    world: World, site: Path, dependency_folder: Path, tmp_path: Path
) -> None:
    dependency = _dependency(dependency_folder)
    _release(world, (_pin(dependency),))
    install_from_index("supply-demo")
    row = InstalledDistribution.objects.get()
    entry = IndexedArtifact.objects.get().entry
    # Node B: a fresh process with its own plugin root and no access to the index or the
    # dependency folder (both removed): only the database.
    dependency.unlink()
    for path in sorted(world.folder.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    env = _node_env(tmp_path, "node-b")
    command = [sys.executable, "manage.py", "plugin"]
    reconciled = subprocess.run(
        [*command, "reconcile"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert reconciled.returncode == 0, reconciled.stderr[-2000:]
    assert f"{DIST}: ready" in reconciled.stdout
    verified = subprocess.run(
        [*command, "verify"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr[-2000:]
    assert f"{DIST} 1.0.0  signed  " in verified.stdout
    state = NodeState.objects.get(node="node-b", distribution=DIST)
    assert (state.status, state.sha256, state.version) == ("ready", row.sha256, "1.0.0")
    # Byte for byte the same installed files on both nodes: the plugin's and the dependency's.
    site_a = environments.site_packages(Path(site) / "envs" / row.env_key)
    site_b = environments.site_packages(tmp_path / "node-b" / "envs" / row.env_key)
    manifest = dict(entry["files"])
    manifest[f"{DEP_MODULE}/__init__.py"] = ""
    assert _files(site_b, manifest) == _files(site_a, manifest)
    assert _files(site_a, entry["files"]) == entry["files"]
    wheels_b = sorted((tmp_path / "node-b" / "wheels" / row.env_key).glob("*.whl"))
    assert sorted(hashlib.sha256(w.read_bytes()).hexdigest() for w in wheels_b) == sorted(
        row.artifacts
    )
