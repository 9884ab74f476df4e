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
    # a type's filter is offered exactly when a card of that type is listed (the first-party
    # OpenID Connect plugin is an identity plugin; no card is a deployment plugin here)
    for plugin_type in ("configuration", "logs", "identity", "deployment"):
        offered = f'data-catalog-type="{plugin_type}"' in page
        assert offered == (f'data-type="{plugin_type}"' in page), plugin_type
    assert ">Details for " in page
    assert ">Details</a>" not in page


def test_the_catalog_offers_install_and_update_from_the_followed_indexes(
    world: World, site: Path, admin_user: Any, client: Any
) -> None:
    """The marketplace: what the indexes offer, with version, publisher and trust, an
    Install / Update button posting to the install-from-index service, and "update
    available" on the installed plugin; the API says the same with ``installed_version``."""
    import re

    world.release("1.0.0")
    world.release("1.1.0")
    world.follow()
    install_from_index("supply-demo==1.0.0")
    api = APIClient()
    api.force_authenticate(admin_user)
    (offer,) = api.get("/api/plugin-index/available").json()
    assert (offer["installed_version"], offer["latest"], offer["update_available"]) == (
        "1.0.0",
        "1.1.0",
        True,
    )
    client.force_login(admin_user)
    page = client.get("/catalog/").content.decode()
    row = page[page.index(f'data-offer="{DIST}"') :]
    row = row[: row.index("</tr>")]
    assert "1.1.0" in row and "acme" in row and "badge-verified" in row
    assert "update available" in row
    assert 'data-update="1.1.0"' in page  # the installed plugin's card says so too
    form = re.search(r'<form method="post" action="([^"]+)".*?</form>', row, re.DOTALL)
    assert form is not None and f"Update {DIST} to 1.1.0" in form.group(0)
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]+)"', form.group(0)))
    assert fields["requirement"] == f"{DIST}==1.1.0"
    installed = client.post(form.group(1), fields)  # the form as served
    assert installed.status_code == 302, installed.content.decode()[-2000:]
    (offer,) = api.get("/api/plugin-index/available").json()
    assert (offer["installed_version"], offer["update_available"]) == ("1.1.0", False)
    assert "Update " not in client.get("/catalog/").content.decode()


def test_only_superusers_see_the_index_offers_on_the_catalog(
    world: World, site: Path, client: Any, django_user_model: Any
) -> None:
    world.release("1.0.0")
    world.follow()
    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    page = client.get("/catalog/").content.decode()
    assert "From your followed indexes" not in page and "Install " not in page


def test_a_local_plugin_links_to_its_readme(admin_user: Any, client: Any) -> None:
    """The built-in local plugins have no homepage; their details page links the
    distribution's README, served by the platform."""
    client.force_login(admin_user)
    detail = client.get("/catalog/local-config/").content.decode()
    assert 'href="/catalog/local-config/readme/"' in detail
    readme = client.get("/catalog/local-config/readme/")
    assert readme.status_code == 200
    assert "They need no external service and no credentials" in readme.content.decode()
    assert client.get("/catalog/no-such-plugin/readme/").status_code == 404
