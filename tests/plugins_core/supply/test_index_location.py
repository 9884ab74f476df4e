"""Where an index may be followed from: an http(s) URL with a host or an absolute folder; the
CLI makes a folder named from the shell absolute. Anything else is a field error, saved never."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from plugins_core.models import PluginIndex, index_location_error

from .conftest import World


@pytest.mark.parametrize(
    "url",
    ["https://plugins.example.org/", "http://127.0.0.1:8080/index.json", "/srv/acme-index"],
)
def test_urls_and_absolute_folders_are_followed(url: str) -> None:
    assert index_location_error(url) == ""


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://plugins.example.org/", "not ftp:"),
        ("javascript:alert(1)", "not javascript:"),
        ("file:///srv/index", "not file:"),
        ("https:///index.json", "names no host"),
        ("relative/folder", "absolute path"),
        (" /srv/index", "surrounding spaces"),
        ("/srv/in\x00dex", "absolute folder path"),
        ("", "absolute folder path"),
    ],
)
@pytest.mark.django_db
def test_other_locations_are_a_field_error(url: str, why: str, world: World) -> None:
    row = PluginIndex(
        name="odd",
        url=url,
        index_keys=[world.index_key.public_key],
        root_keys=[world.root.public_key],
    )
    with pytest.raises(ValidationError) as info:
        row.full_clean()
    assert why in " ".join(info.value.message_dict["url"])


@pytest.mark.django_db
def test_the_cli_follows_a_relative_folder_by_its_absolute_path(
    world: World, tmp_path: Path, monkeypatch: Any, capsys: Any
) -> None:
    monkeypatch.chdir(world.folder.parent)
    keys = ["--index-key", world.index_key.public_key, "--root-key", world.root.public_key]
    call_command("plugin", "index", "add", "local", world.folder.name, *keys)
    assert PluginIndex.objects.get(name="local").url == str(world.folder.resolve())
    with pytest.raises(CommandError) as refused:
        call_command("plugin", "index", "add", "ftp", "ftp://plugins.example.org/", *keys)
    assert "not ftp:" in str(refused.value) and "\n" not in str(refused.value)
    assert not PluginIndex.objects.filter(name="ftp").exists()


@pytest.mark.django_db
def test_listing_or_refreshing_no_index_says_so(capsys: Any) -> None:
    for action in ("list", "refresh"):
        call_command("plugin", "index", action)
        assert "no plugin index is followed" in capsys.readouterr().out


@pytest.mark.django_db
def test_index_add_fetches_it_so_available_lists_it_at_once(
    world: World, capsys: Any, django_user_model: Any
) -> None:
    from rest_framework.test import APIClient

    world.release("1.0.0")
    keys = ["--index-key", world.index_key.public_key, "--root-key", world.root.public_key]
    call_command("plugin", "index", "add", "curated", str(world.folder), *keys)
    out = capsys.readouterr().out
    assert "curated: version 1 verified, 1 plugin(s) offered" in out
    staff = APIClient()
    staff.force_authenticate(django_user_model.objects.create_user("ops", is_staff=True))
    offered = staff.get("/api/plugin-index/available")
    assert offered.status_code == 200
    assert [o["latest"] for o in offered.json()] == ["1.0.0"]
    # an index that cannot be fetched yet is still followed, and the CLI says why
    call_command("plugin", "index", "add", "later", str(world.folder.parent / "nothing"), *keys)
    out = capsys.readouterr().out
    assert "later: not fetched yet: " in out and "index refresh tries again" in out
    assert PluginIndex.objects.filter(name="later").exists()
