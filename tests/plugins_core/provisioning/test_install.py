"""One-click install from manifest service templates (ADR 0012), against the example plugin.

``example-config`` and ``example-logs`` share one template (as aws-ssm and aws-cloudwatch-logs
do); ``example-static`` has none; ``example-broken`` does not load.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from imbi_plugin_example.config import ExampleConfiguration
from imbi_plugin_sdk import ServiceTemplate

from imbi.core.models import AuditEvent, Organization
from plugins_core import registry
from plugins_core.models import Plugin, ServiceApplication, ThirdPartyService
from plugins_core.provisioning import install as install_module
from plugins_core.provisioning.icons import load_icon
from plugins_core.provisioning.install import (
    InstallError,
    available_templates,
    install_from_template,
)

pytestmark = pytest.mark.django_db


def rows() -> tuple[int, int, int, int]:
    return (
        ThirdPartyService.objects.count(),
        Plugin.objects.count(),
        ServiceApplication.objects.count(),
        AuditEvent.objects.count(),
    )


def rogue_snapshot(template: ServiceTemplate) -> registry.Snapshot:
    """A snapshot with one loaded handler declaring ``template``."""
    manifest = dataclasses.replace(
        ExampleConfiguration.manifest, slug="rogue-config", service_template=template
    )
    handler = type("Rogue", (ExampleConfiguration,), {"manifest": manifest})
    candidate = registry.Candidate("rogue-config", "rogue:Rogue", "rogue", "1.0", lambda: handler)
    snapshot = registry.build_snapshot([candidate], generation=1000, trusted=lambda _: True)
    assert snapshot.get("rogue-config").ok  # type: ignore[union-attr]
    return snapshot


def test_the_example_plugin_is_loaded() -> None:
    entry = registry.current().get("example-config")
    assert entry is not None and entry.ok, "pip install -e tests/example_plugin"


def test_install_creates_the_service_and_every_plugin_sharing_the_template(
    org: Organization, django_user_model: Any
) -> None:
    admin = django_user_model.objects.create_user(username="root", password="pw")
    result = install_from_template(org, "example-config", actor=admin)

    service = result.service
    assert result.created_service and not result.updated_service
    assert (service.organization, service.vendor, service.identity) == (org, "example", "")
    assert (service.slug, service.name, service.category) == (
        "example",
        "Example Service",
        "testing",
    )
    assert service.settings == {"region": "eu-west-1", "base_url": "https://api.example.com"}
    assert service.managed_by_manifest and service.template_source == "example-config"
    assert service.icon == load_icon("imbi_plugin_example:icon.svg")
    assert service.icon.startswith("<svg")

    assert sorted(result.created_plugins) == ["example-config", "example-logs"]
    by_handler = {p.handler: p for p in Plugin.objects.filter(service=service)}
    assert set(by_handler) == {"example-config", "example-logs"}  # not example-static
    assert {p.pk for p in result.plugins} == {p.pk for p in by_handler.values()}
    config = by_handler["example-config"]
    assert (config.slug, config.name, config.plugin_type) == (
        "example-config",
        "Example configuration",
        "configuration",
    )
    assert config.options == {"prefix": "", "max_keys": 500, "read_only": False, "mode": "normal"}
    assert by_handler["example-logs"].plugin_type == "logs"
    assert by_handler["example-logs"].options == {"interval_seconds": 60}

    assert not ServiceApplication.objects.exists()  # credentials are never created
    events = AuditEvent.objects.filter(action=AuditEvent.Action.PLUGIN_INSTALL)
    assert events.count() == 3
    assert {e.actor for e in events} == {admin}
    assert {e.plugin_slug for e in events} == {"example-config", "example-logs"}


def test_installing_the_sibling_entry_point_finds_the_same_service(org: Organization) -> None:
    first = install_from_template(org, "example-config")
    second = install_from_template(org, "example-logs")
    assert second.service.pk == first.service.pk
    assert not second.created_service and second.created_plugins == []


def test_reinstall_is_idempotent(org: Organization) -> None:
    install_from_template(org, "example-config")
    before = rows()
    again = install_from_template(org, "example-config")
    assert rows() == before
    assert (again.created_service, again.created_plugins, again.updated_service) == (
        False,
        [],
        False,
    )
    assert len(again.plugins) == 2


def test_reinstall_keeps_an_operators_edits_when_not_managed(org: Organization) -> None:
    service = install_from_template(org, "example-config").service
    ThirdPartyService.objects.filter(pk=service.pk).update(
        managed_by_manifest=False,
        name="Example (ops)",
        category="ops",
        settings={"region": "us-east-1"},
        icon="",
    )
    result = install_from_template(org, "example-config")
    service.refresh_from_db()
    assert not result.updated_service
    assert (service.name, service.category, service.icon) == ("Example (ops)", "ops", "")
    assert service.settings == {"region": "us-east-1"}


def test_reinstall_refreshes_a_managed_service(org: Organization) -> None:
    service = install_from_template(org, "example-config").service
    ThirdPartyService.objects.filter(pk=service.pk).update(
        name="Renamed",
        category="x",
        icon="",
        settings={"region": "us-east-1", "account": "123456789012"},
    )
    result = install_from_template(org, "example-config")
    service.refresh_from_db()
    assert result.updated_service and not result.created_service
    assert (service.name, service.category) == ("Example Service", "testing")
    assert service.icon.startswith("<svg")
    # the template's values win; the operator's own keys are kept
    assert service.settings == {
        "region": "eu-west-1",
        "base_url": "https://api.example.com",
        "account": "123456789012",
    }


def test_reinstall_never_touches_existing_plugins_but_restores_missing_ones(
    org: Organization,
) -> None:
    result = install_from_template(org, "example-config")
    config = Plugin.objects.get(service=result.service, handler="example-config")
    config.name, config.options, config.enabled = "Mine", {"mode": "flaky"}, False
    config.save()
    Plugin.objects.filter(service=result.service, handler="example-logs").delete()

    again = install_from_template(org, "example-config")
    config.refresh_from_db()
    assert (config.name, config.options, config.enabled) == ("Mine", {"mode": "flaky"}, False)
    assert again.created_plugins == ["example-logs"]


def test_taken_slugs_get_a_suffix(org: Organization) -> None:
    other = ThirdPartyService.objects.create(
        organization=org, vendor="other", name="Other", slug="example"
    )
    Plugin.objects.create(
        organization=org,
        service=other,
        slug="example-config",
        plugin_type="configuration",
        handler="example-static",
    )
    result = install_from_template(org, "example-config")
    assert result.service.slug == "example-2" and result.service.vendor == "example"
    assert sorted(result.created_plugins) == ["example-config-2", "example-logs"]
    assert Plugin.objects.get(slug="example-config").service == other  # untouched


def test_an_identified_account_of_the_vendor_is_a_different_service(
    org: Organization,
) -> None:
    account = ThirdPartyService.objects.create(
        organization=org, vendor="example", identity="acct-1", name="Acct", slug="acct"
    )
    result = install_from_template(org, "example-config")
    assert result.created_service and result.service.pk != account.pk


def test_organizations_are_isolated(org: Organization, other_org: Organization) -> None:
    mine = install_from_template(org, "example-config")
    theirs = install_from_template(other_org, "example-config")
    assert theirs.created_service and theirs.service.pk != mine.service.pk
    assert Plugin.objects.filter(organization=other_org).count() == 2


def test_an_entry_point_without_template_is_refused(org: Organization) -> None:
    before = rows()
    with pytest.raises(InstallError) as info:
        install_from_template(org, "example-static")
    assert info.value.code == "no_template"
    assert "example-static" in str(info.value)
    assert rows() == before


@pytest.mark.parametrize(
    "name", ["example-broken", "example-future", "example-not-a-handler", "no-such-plugin"]
)
def test_an_entry_point_that_is_not_loaded_is_refused(org: Organization, name: str) -> None:
    with pytest.raises(InstallError) as info:
        install_from_template(org, name)
    assert info.value.code == "plugin_not_loaded"
    assert name in str(info.value)
    assert not ThirdPartyService.objects.exists()


def test_a_secret_shaped_template_is_refused(org: Organization) -> None:
    template = ServiceTemplate(vendor="rogue", name="Rogue", category="testing")
    # The SDK refuses this at construction; smuggle it in to test the second line of defence.
    object.__setattr__(template, "settings", MappingProxyType({"region": "AKIAABCDEFGHIJKLMNOP"}))
    with pytest.raises(InstallError) as info:
        install_from_template(org, "rogue-config", snapshot=rogue_snapshot(template))
    assert info.value.code == "template_has_secret"
    assert "AKIA" not in str(info.value)
    assert not ThirdPartyService.objects.exists()


@pytest.mark.parametrize(
    ("svg", "reason"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "script"),
        (None, "not found"),
    ],
)
def test_a_rejected_icon_refuses_the_install(
    org: Organization,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    svg: bytes | None,
    reason: str,
) -> None:
    name = f"rogue_icons_{reason.replace(' ', '_')}"  # a fresh package per case
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    if svg is not None:
        (package / "evil.svg").write_bytes(svg)
    monkeypatch.syspath_prepend(str(tmp_path))
    template = ServiceTemplate(
        vendor="rogue", name="Rogue", category="testing", icon=f"{name}:evil.svg"
    )
    with pytest.raises(InstallError) as info:
        install_from_template(org, "rogue-config", snapshot=rogue_snapshot(template))
    assert info.value.code == "icon_rejected" and reason in str(info.value)
    assert not ThirdPartyService.objects.exists()


def test_a_failure_midway_rolls_everything_back(
    org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(install_module, "_plugins", explode)
    with pytest.raises(RuntimeError):
        install_from_template(org, "example-config")
    assert rows() == (0, 0, 0, 0)


def test_available_templates_group_entry_points_by_template() -> None:
    offers = {offer.vendor: offer for offer in available_templates()}
    example = offers["example"]
    assert example.entry_points == ("example-config", "example-logs")
    assert example.plugin_types == ("configuration", "logs")
    assert (example.name, example.category) == ("Example Service", "testing")
    assert (example.distribution, example.version) == ("imbi-plugin-example", "1.2.0")
    assert all("example-static" not in o.entry_points for o in offers.values())
    assert all("example-broken" not in o.entry_points for o in offers.values())


def test_available_templates_of_a_given_snapshot() -> None:
    template = ServiceTemplate(vendor="rogue", name="Rogue", category="testing")
    [offer] = available_templates(rogue_snapshot(template))
    assert (offer.vendor, offer.entry_points, offer.distribution) == (
        "rogue",
        ("rogue-config",),
        "rogue",
    )
