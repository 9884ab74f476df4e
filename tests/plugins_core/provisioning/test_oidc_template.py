"""The OIDC catalog plugin (contract 1.3, identity) installs in one click from its template."""

from __future__ import annotations

import pytest

from imbi.core.models import Organization
from plugins_core import registry
from plugins_core.models import Plugin, ServiceApplication
from plugins_core.provisioning.install import install_from_template

pytestmark = pytest.mark.django_db


def test_the_oidc_plugin_is_loaded_in_process() -> None:
    entry = registry.current().get("oidc")
    assert entry is not None and entry.ok, entry
    assert not entry.isolated  # first-party: trusted like the rest of the catalog
    assert entry.manifest is not None and entry.manifest.plugin_type == "identity"


def test_install_from_the_template_creates_an_identity_plugin(org: Organization) -> None:
    result = install_from_template(org, "oidc")
    service = result.service
    assert (service.vendor, service.category) == ("openid", "identity")
    assert service.settings == {"scopes": "openid profile email", "clock_skew_seconds": 60}
    assert service.icon.startswith("<svg")
    assert result.created_plugins == ["oidc"]
    plugin = Plugin.objects.get(service=service)
    assert (plugin.handler, plugin.plugin_type) == ("oidc", "identity")
    assert not ServiceApplication.objects.exists()  # the client credentials come next
