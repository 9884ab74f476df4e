"""The "community" badge: unverified publishers are marked in the API, the catalog's
available list, the registry page and the install wizard."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from plugins_core.supply.install import install_from_index

from .conftest import DIST, NOW, PLUGIN, World

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw")


def _community_release(world: World) -> None:
    community = world.certify(world.publisher, "acme", verified=False)
    wheel = world.wheel()
    world.publish([world.entry(wheel, signed_at=NOW)], [wheel], certificates=[community])


def test_available_lists_badges_and_blocked_versions(
    world: World, site: Path, admin_user: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    _community_release(world)
    world.publish(blocklist=[{"plugin": DIST, "below": "1.0.1", "reason": "bug"}], certificates=[])
    world.follow()
    call_command("plugin", "available", "--refresh")
    assert f"{DIST} 1.0.0 [community] from curated by acme" in capsys.readouterr().out
    client = APIClient()
    client.force_authenticate(admin_user)
    (offer,) = client.get("/api/plugin-index/available").json()
    assert (offer["name"], offer["badge"], offer["publisher"]) == (DIST, "community", "acme")
    assert offer["blocked_versions"] == ["1.0.0"] and offer["installed"] is None


def test_installed_plugins_show_their_badge_in_the_api_registry_page_and_wizard(
    world: World, site: Path, admin_user: Any, client: Any
) -> None:
    _community_release(world)
    world.follow()
    install_from_index("supply-demo")
    api = APIClient()
    api.force_authenticate(admin_user)
    entries = {e["name"]: e for e in api.get("/api/plugins").json()["entries"]}
    assert entries[PLUGIN]["badge"] == "community"
    assert entries["example-config"]["badge"] == "unsigned"
    client.force_login(admin_user)
    registry_page = client.get("/admin/plugins_core/plugin/registry/").content.decode()
    assert '<span class="badge badge-community" title="publisher">community</span>' in (
        registry_page
    )
    wizard = client.get("/admin/plugins_core/plugin/install/", follow=True).content.decode()
    assert 'badge-community">community</span>' in wizard


def test_a_verified_publisher_is_shown_as_verified(
    world: World, site: Path, admin_user: Any
) -> None:
    world.release()
    world.follow()
    install_from_index("supply-demo")
    api = APIClient()
    api.force_authenticate(admin_user)
    entries = {e["name"]: e for e in api.get("/api/plugins").json()["entries"]}
    assert entries[PLUGIN]["badge"] == "verified"


def test_the_platforms_own_catalog_is_first_party_not_unsigned(
    admin_user: Any, client: Any
) -> None:
    """The catalog tells first-party (shipped with the platform) from unsigned; it offers
    only type filters that match a card, and each card's link says what it opens."""
    api = APIClient()
    api.force_authenticate(admin_user)
    entries = {e["name"]: e for e in api.get("/api/plugins").json()["entries"]}
    assert entries["local-config"]["badge"] == "first-party"
    assert entries["example-config"]["badge"] == "unsigned"
    client.force_login(admin_user)
    page = client.get("/catalog/").content.decode()
    assert 'badge-first-party">first-party</span>' in page
    assert 'badge-unsigned">unsigned</span>' in page
    assert 'data-catalog-type="configuration"' in page
    assert 'data-catalog-type="identity"' not in page  # no identity plugin is loaded
    assert ">Details for " in page
    assert ">Details</a>" not in page
