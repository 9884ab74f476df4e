"""Issue 20, cases 13 and 15: keys that leak or expire.

13: a leaked index key signs version 10⁹; a root-signed key rotation (new keys, a new version
    floor) lets the legitimate next version in again, and nothing else can do that.
15: a signature back-dated into an expired publisher key's window: the certificate is checked
    at the index's own signed time for the entry (``indexed_at``), not the signer's claim.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from imbi_plugin_sdk import signing

from imbi.core.models import AuditEvent
from plugins_core.models import InstalledDistribution, PluginIndex
from plugins_core.supply.install import install_from_index
from plugins_core.supply.rotation import ROTATION_ACTION

from .conftest import DIST, NOW, World
from .test_tamper import _nothing_installed, _refused

pytestmark = pytest.mark.django_db


# --- 13: recovery from a leaked index key -------------------------------------------------


def _rotate(record: dict[str, Any], tmp_path: Path, code: str | None = None) -> str:
    path = tmp_path / f"rotation-{len(list(tmp_path.glob('rotation-*')))}.json"
    path.write_text(json.dumps(record))
    if code is None:
        call_command("plugin", "index", "rotate", "curated", str(path))
        return ""
    with pytest.raises(CommandError) as caught:
        call_command("plugin", "index", "rotate", "curated", str(path))
    message = str(caught.value)
    assert message.startswith(f"{code}: "), message
    return message


def test_case13_a_root_signed_rotation_resets_the_rollback_counter(
    world: World, site: Path, tmp_path: Path
) -> None:
    world.release("1.0.0")
    world.follow()
    install_from_index("supply-demo")
    legitimate = (world.folder / "index.json").read_text()

    # the leaked index key signs version 10⁹, and the platform sees it
    world.rewrite(lambda signed: signed.update(version=10**9))
    call_command("plugin", "index", "refresh")
    assert PluginIndex.objects.get().last_version == 10**9

    # the operator makes a new index key and publishes the next version with it
    (world.folder / "index.json").write_text(legitimate)
    new_key = world.key("index-2")
    world.release("1.1.0", index_key=new_key)
    assert world.document()["signed"]["version"] == 2
    row = PluginIndex.objects.get()
    row.index_keys = [new_key.public_key]  # `plugin index add` again: not enough
    row.save()
    _refused("supply-demo", "index_rollback")  # locked out: the bug of case 13

    rotation = signing.issue_rotation(
        world.root, index="curated", index_keys=[new_key.public_key], version_floor=2
    )
    keys, version = list(row.index_keys), 10**9

    def unchanged() -> None:
        row = PluginIndex.objects.get()
        assert (row.index_keys, row.last_version, row.rotation) == (keys, version, None)
        assert not AuditEvent.objects.filter(action=ROTATION_ACTION).exists()

    # refused: signed by the (leaked) index key, for another index, altered, malformed
    by_index_key = signing.issue_rotation(
        world.index_key, index="curated", index_keys=[world.index_key.public_key], version_floor=1
    )
    message = _rotate(by_index_key, tmp_path, "rotation_invalid")
    assert "is not by a root key of this index" in message
    other = signing.issue_rotation(
        world.root, index="staging", index_keys=[new_key.public_key], version_floor=2
    )
    assert "is for index 'staging'" in _rotate(other, tmp_path, "rotation_invalid")
    altered = json.loads(json.dumps(rotation))
    altered["rotation"]["version_floor"] = 1
    assert "does not verify" in _rotate(altered, tmp_path, "rotation_invalid")
    _rotate({"rotation": "x"}, tmp_path, "rotation_invalid")
    unchanged()
    assert InstalledDistribution.objects.get().version == "1.0.0"

    _rotate(rotation, tmp_path)
    row = PluginIndex.objects.get()
    assert (row.index_keys, row.last_version) == ([new_key.public_key], 2)
    event = AuditEvent.objects.get(action=ROTATION_ACTION)
    assert "version floor 1000000000 -> 2" in event.detail
    install_from_index("supply-demo")
    assert InstalledDistribution.objects.get().version == "1.1.0"

    # the same record again (replay), and the leaked key's documents: refused
    assert "cannot be replayed" in _rotate(rotation, tmp_path, "rotation_invalid")
    assert AuditEvent.objects.filter(action=ROTATION_ACTION).count() == 1
    world.rewrite(lambda signed: signed.update(version=10**9), key=world.index_key)
    _refused("supply-demo", "index_untrusted_key")
    assert PluginIndex.objects.get().last_version == 2


# --- 15: the index's time, not the signer's ---------------------------------------------------


def test_case15_a_signature_back_dated_into_an_expired_key_window_is_refused(
    world: World, site: Path
) -> None:
    expired = world.certify(
        world.publisher,
        "acme",
        valid_from=NOW - dt.timedelta(days=400),
        valid_until=NOW - dt.timedelta(days=35),
    )
    wheel = world.wheel()
    back_dated = world.entry(wheel, signed_at=NOW - dt.timedelta(days=100))  # inside the window
    world.publish([back_dated], [wheel], certificates=[expired])
    world.follow()
    message = _refused("supply-demo", "certificate_expired")
    assert "entry was filed at" in message and "after its certificate expired" in message
    _nothing_installed(site)


def test_case15_an_entry_the_index_did_not_timestamp_is_refused(world: World, site: Path) -> None:
    world.release()

    def drop(signed: dict[str, Any]) -> None:
        del signed["plugins"][DIST]["versions"]["1.0.0"]["indexed_at"]

    world.rewrite(drop)
    world.follow()
    message = _refused("supply-demo", "index_malformed")
    assert "does not timestamp" in message
    _nothing_installed(site)


def test_case15_a_signature_dated_after_the_index_filed_it_is_refused(
    world: World, site: Path
) -> None:
    wheel = world.wheel()
    world.publish([world.entry(wheel)], [wheel], now=NOW - dt.timedelta(days=2))
    world.follow()
    message = _refused("supply-demo", "publisher_signature_invalid")
    assert "after the index filed it" in message
    _nothing_installed(site)
