"""Issue 20, case 8: names belong to publishers.

Another certified publisher signing ``imbi-plugin-supply-demo`` is refused by ``publish``,
by the host when the index files its entry anyway, and by the host when the index (its key
holder) moves the name to that publisher without a root-signed transfer; an installed
build is replaced by another publisher's only with an explicit, audited transfer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from imbi_plugin_sdk import publishing, signing
from rest_framework.test import APIClient

from imbi.core.models import AuditEvent
from plugins_core.models import IndexedArtifact, InstalledDistribution, PluginIndex, RegistryState
from plugins_core.supply import index as index_module
from plugins_core.supply.errors import NameNotOwned
from plugins_core.supply.install import install_from_index
from plugins_core.supply.signing import TrustRoot

from .conftest import DIST, World
from .test_tamper import _nothing_installed, _refused, superuser_client

pytestmark = pytest.mark.django_db

__all__ = ["superuser_client"]


def _rival(world: World, *, verified: bool = True) -> tuple[signing.PrivateKey, dict[str, Any]]:
    path = world.keys / "rival.key"
    key = signing.load_private_key(path) if path.exists() else world.key("rival")
    return key, world.certify(key, "rival", verified=verified)


def _rival_entry(world: World, key: signing.PrivateKey, version: str) -> tuple[Any, Any]:
    wheel = world.wheel(version)
    return world.entry(wheel, key=key, publisher="rival"), wheel


def test_case8_publish_refuses_another_publishers_entry_for_an_owned_name(world: World) -> None:
    world.release("1.0.0")
    assert world.document()["signed"]["owners"] == {DIST: "acme"}  # first come
    key, certificate = _rival(world)
    entry, wheel = _rival_entry(world, key, "1.3.0")
    before = world.document()
    with pytest.raises(publishing.PublishError, match=r"^name_not_owned: .* belongs to "):
        world.publish([entry], [wheel], certificates=[world.certificate, certificate])
    assert world.document() == before  # nothing written


def test_case8_an_entry_filed_by_the_index_key_holder_is_refused_at_install(
    world: World, site: Path
) -> None:
    world.release("1.0.0")
    key, certificate = _rival(world)
    entry, wheel = _rival_entry(world, key, "1.3.0")
    (world.folder / "artifacts" / wheel.name).write_bytes(wheel.read_bytes())

    def file_it(signed: dict[str, Any]) -> None:
        signed["publishers"]["rival"] = certificate
        signed["plugins"][DIST]["versions"]["1.3.0"] = {
            "artifacts": [entry],
            "indexed_at": {wheel.name: signing.format_time(signing.utcnow())},
        }

    world.rewrite(file_it)
    world.follow()
    message = _refused("supply-demo", "name_not_owned")
    assert "belongs to publisher 'acme'" in message and "signed by 'rival'" in message
    _nothing_installed(site)


def _take_over(world: World, *, transfer: dict[str, Any] | None = None) -> None:
    """The index-key holder files the rival's 1.3.0 and names the rival as the owner."""
    key, certificate = _rival(world)
    entry, wheel = _rival_entry(world, key, "1.3.0")
    (world.folder / "artifacts" / wheel.name).write_bytes(wheel.read_bytes())

    def move(signed: dict[str, Any]) -> None:
        signed["version"] += 1
        signed["publishers"]["rival"] = certificate
        signed["owners"][DIST] = "rival"
        if transfer is not None:
            signed.setdefault("transfers", {})[DIST] = transfer
        signed["plugins"][DIST]["versions"]["1.3.0"] = {
            "artifacts": [entry],
            "indexed_at": {wheel.name: signing.format_time(signing.utcnow())},
        }

    world.rewrite(move)


def test_case8_moving_a_name_needs_the_root_key_and_replacing_an_install_needs_a_transfer(
    world: World, site: Path, superuser_client: APIClient
) -> None:
    world.release("1.0.0")
    world.follow()
    install_from_index("supply-demo")
    generation = RegistryState.objects.get().generation
    events = AuditEvent.objects.count()
    seen = PluginIndex.objects.get().last_version

    # the index key alone: the whole index is refused, nothing changes
    _take_over(world)
    message = _refused("supply-demo", "name_not_owned")
    assert "moves imbi-plugin-supply-demo from publisher 'acme' to 'rival'" in message
    assert "without a transfer signed by its root key" in message
    row = PluginIndex.objects.get()
    assert (row.last_error_code, row.last_version) == ("name_not_owned", seen)
    assert InstalledDistribution.objects.get().version == "1.0.0"
    assert IndexedArtifact.objects.get().publisher == "acme"
    assert RegistryState.objects.get().generation == generation
    assert AuditEvent.objects.count() == events

    # a transfer signed by a key that is not the index's root: still refused
    forged = signing.issue_transfer(
        world.key("not-root"),
        index="curated",
        name=DIST,
        from_publisher="acme",
        to_publisher="rival",
    )
    _take_over(world, transfer=forged)
    _refused("supply-demo", "name_not_owned")

    # the operator's root-signed transfer: the index is accepted, but the installed build is
    # only replaced by an explicit, audited transfer
    transfer = signing.issue_transfer(
        world.root, index="curated", name=DIST, from_publisher="acme", to_publisher="rival"
    )
    _take_over(world, transfer=transfer)
    message = _refused("supply-demo", "publisher_changed")
    assert "--transfer-publisher" in message
    response = superuser_client.post(
        "/api/plugin-index/install", {"requirement": "supply-demo"}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (409, "publisher_changed")
    assert InstalledDistribution.objects.get().version == "1.0.0"
    assert RegistryState.objects.get().generation == generation
    assert not AuditEvent.objects.filter(action="plugin.distribution_transferred").exists()
    response = superuser_client.post(
        "/api/plugin-index/install",
        {"requirement": "supply-demo", "transfer_publisher": True},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert IndexedArtifact.objects.get().publisher == "rival"
    assert InstalledDistribution.objects.get().version == "1.3.0"
    assert AuditEvent.objects.filter(action="plugin.distribution_transferred").count() == 1


def test_case8_publish_files_a_root_signed_transfer(world: World) -> None:
    world.release("1.0.0")
    key, certificate = _rival(world)
    entry, wheel = _rival_entry(world, key, "1.3.0")
    transfer = signing.issue_transfer(
        world.root, index="curated", name=DIST, from_publisher="acme", to_publisher="rival"
    )
    world.publish(
        [entry], [wheel], certificates=[world.certificate, certificate], transfers=[transfer]
    )
    signed = world.document()["signed"]
    assert signed["owners"][DIST] == "rival"
    root = TrustRoot.of([world.index_key.public_key], [world.root.public_key])
    previous = dict(signed, owners={DIST: "acme"})
    index_module.check_owner_changes(signed, previous, index="curated", root=root)
    with pytest.raises(NameNotOwned):
        index_module.check_owner_changes(
            dict(signed, transfers={}), previous, index="curated", root=root
        )
