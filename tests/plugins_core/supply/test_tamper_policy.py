"""Issue 20, case 9: an organization's verified-only policy applies where the plugin lands.

A community publisher's plugin installed without ``--org`` (the instance has no policy)
cannot then be provisioned into an organization whose ``PluginPolicy`` wants verified
publishers only: not by the one-click template install, the API or the install wizard.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from imbi.core.models import AuditEvent, Organization
from plugins_core.models import Plugin, PluginPolicy, RegistryState, ThirdPartyService
from plugins_core.provisioning.install import InstallError, install_from_template
from plugins_core.supply.install import install_from_index

from .conftest import PLUGIN, World

pytestmark = pytest.mark.django_db


def _counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count() for model in (ThirdPartyService, Plugin, AuditEvent)
    }


@pytest.fixture
def community_install(world: World, site: Path) -> None:
    world.certificate = world.certify(world.publisher, "acme", verified=False)
    world.release()
    world.follow()
    install_from_index("supply-demo")  # no --org: the instance has no policy


def test_case9_a_template_does_not_provision_a_community_plugin_into_a_verified_only_org(
    community_install: None, org: Organization, other_org: Organization, django_user_model: Any
) -> None:
    PluginPolicy.objects.create(organization=org, verified_publishers_only=True)
    generation = RegistryState.objects.get().generation
    before = _counts()

    with pytest.raises(InstallError) as caught:
        install_from_template(org, PLUGIN)
    assert caught.value.code == "publisher_not_verified"
    assert "verified publishers only" in caught.value.message
    assert "publisher 'acme' is not verified" in caught.value.message

    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    api = APIClient()
    api.force_authenticate(user)
    response = api.post(
        f"/api/orgs/{org.slug}/plugins/install", {"entry_point": PLUGIN}, format="json"
    )
    body = response.json()
    assert (response.status_code, body["code"]) == (400, "publisher_not_verified"), body
    assert "verified publishers only" in body["errors"]["entry_point"]

    wizard = Client()
    wizard.force_login(user)
    response = wizard.post(
        reverse("admin:plugins_core_install_start"),
        {"entry_point": PLUGIN, "organization": org.pk},
    )
    assert response.status_code == 200  # the form again, with the field's error
    page = response.content.decode()
    assert "publisher_not_verified" in page and "verified publishers only" in page

    assert _counts() == before  # nothing provisioned, nothing audited
    assert RegistryState.objects.get().generation == generation

    # an organization without the policy still gets it
    result = install_from_template(other_org, PLUGIN)
    assert [p.handler for p in result.plugins] == [PLUGIN]
