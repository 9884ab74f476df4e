"""The admin: registry page, enable/disable (audited), manifest-generated option and credential
forms, organization scoping, and project owners kept out."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from imbi.core.models import AuditEvent, Organization, Project, Role
from plugins_core.models import Plugin, ServiceApplication, ThirdPartyService
from tests.plugins_core.conftest import API_TOKEN
from tests.plugins_core.pages.test_forms import PASSWORD, SIGNING_KEY, Secretive, use_handler

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(django_user_model: Any) -> Client:
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def staff_admin(make_member: Any, org: Organization) -> Client:
    """Staff, admin of ``org`` only, without any Django model permission: the role decides."""
    user = make_member(org, Role.ADMIN, username="org-admin")
    user.is_staff = True
    user.save()
    client = Client()
    client.force_login(user)
    return client


def test_app_index_links_to_registry_and_wizard(superuser: Client) -> None:
    page = superuser.get(reverse("admin:app_list", args=("plugins_core",))).content.decode()
    assert reverse("admin:plugins_core_registry") in page
    assert reverse("admin:plugins_core_install_start") in page
    changelist = superuser.get(reverse("admin:plugins_core_plugin_changelist")).content.decode()
    assert "Install a plugin" in changelist and reverse("admin:plugins_core_registry") in changelist


def test_registry_page_shows_every_entry_point_with_its_status(
    superuser: Client, config_plugin: Plugin
) -> None:
    page = superuser.get(reverse("admin:plugins_core_registry")).content.decode()
    for text in (
        "example-config",
        "imbi-plugin-example",
        "1.2.0",
        "loaded",
        "example-broken",
        "import failed",
        "ModuleNotFoundError",
        "example-future",
        "incompatible",
        "plugin targets api 2.0",
        "example-not-a-handler",
        "invalid",
        "aws-ssm",
    ):
        assert text in page, text
    assert "Disable" in page  # the installed example-config row


def test_enable_and_disable_are_audited(superuser: Client, config_plugin: Plugin) -> None:
    url = reverse("admin:plugins_core_plugin_state", args=(config_plugin.pk,))
    response = superuser.post(
        url, {"enabled": "0", "next": "https://evil.example/", "confirm": "yes"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:plugins_core_registry")
    config_plugin.refresh_from_db()
    assert config_plugin.enabled is False
    page = superuser.get(reverse("admin:plugins_core_registry")).content.decode()
    assert "disabled" in page and "Enable" in page
    superuser.post(url, {"enabled": "1"})
    config_plugin.refresh_from_db()
    assert config_plugin.enabled is True
    events = list(
        AuditEvent.objects.filter(action=AuditEvent.Action.PLUGIN_STATE)
        .order_by("id")
        .values_list("detail", "plugin_slug", "actor_name")
    )
    assert events == [("disabled", "example-config", "root"), ("enabled", "example-config", "root")]
    assert superuser.get(url).status_code == 200  # GET asks to confirm; only POST acts
    config_plugin.refresh_from_db()
    assert config_plugin.enabled is True


def test_changelist_actions_are_audited(
    superuser: Client, config_plugin: Plugin, logs_plugin: Plugin
) -> None:
    chosen = {"action": "disable_plugins", "_selected_action": [config_plugin.pk, logs_plugin.pk]}
    changelist = reverse("admin:plugins_core_plugin_changelist")
    response = superuser.post(changelist, chosen)
    assert response.status_code == 200 and "Yes, disable them" in response.content.decode()
    assert Plugin.objects.filter(enabled=True).count() == 2  # asked first
    response = superuser.post(changelist, {**chosen, "confirm": "yes"})
    assert response.status_code == 302
    assert not Plugin.objects.filter(enabled=True).exists()
    assert AuditEvent.objects.filter(action=AuditEvent.Action.PLUGIN_STATE).count() == 2


def test_org_admin_sees_and_toggles_only_their_organization(
    staff_admin: Client, config_plugin: Plugin, other_org: Organization
) -> None:
    foreign_service = ThirdPartyService.objects.create(
        organization=other_org, vendor="x", name="Foreign", slug="foreign"
    )
    foreign = Plugin.objects.create(
        organization=other_org,
        service=foreign_service,
        slug="foreign-config",
        plugin_type="configuration",
        handler="example-config",
    )
    page = staff_admin.get(reverse("admin:plugins_core_registry")).content.decode()
    assert "example-config" in page and "foreign-config" not in page
    url = reverse("admin:plugins_core_plugin_state", args=(foreign.pk,))
    assert staff_admin.post(url, {"enabled": "0"}).status_code == 404  # as if missing
    foreign.refresh_from_db()
    assert foreign.enabled
    listing = staff_admin.get(reverse("admin:plugins_core_thirdpartyservice_changelist"))
    assert "Foreign" not in listing.content.decode()
    change = reverse("admin:plugins_core_thirdpartyservice_change", args=(foreign_service.pk,))
    assert staff_admin.get(change).status_code == 404
    own = reverse("admin:plugins_core_plugin_state", args=(config_plugin.pk,))
    assert staff_admin.post(own, {"enabled": "0", "confirm": "yes"}).status_code == 302


def test_plugin_change_page_uses_the_manifest_and_hides_secret_options(
    superuser: Client, install: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_handler(monkeypatch, "secretive", Secretive)
    plugin = install("secretive", options={"endpoint": "https://x", "signing_key": SIGNING_KEY})
    url = reverse("admin:plugins_core_plugin_change", args=(plugin.pk,))
    page = superuser.get(url).content.decode()
    assert SIGNING_KEY not in page
    assert 'name="signing_key"' in page and 'type="password"' in page
    assert 'name="retries"' in page and "Currently set." in page
    data = {
        "service": plugin.service_id,
        "slug": plugin.slug,
        "name": "Secretive",
        "enabled": "on",
        "endpoint": "https://y",
        "retries": "7",
        "region": "us",
        "headers": "",
        "signing_key": "",
    }
    response = superuser.post(url, data)
    assert response.status_code == 302, response.content.decode()[:3000]
    plugin.refresh_from_db()
    assert plugin.options == {
        "endpoint": "https://y",
        "retries": 7,
        "verbose": False,
        "region": "us",
        "signing_key": SIGNING_KEY,
    }
    response = superuser.post(url, {**data, "retries": "many"})
    assert response.status_code == 200 and SIGNING_KEY not in response.content.decode()


def test_service_change_page_credentials_are_write_only(
    superuser: Client, install: Any, service: ThirdPartyService, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_handler(monkeypatch, "secretive", Secretive)
    install("secretive")
    url = reverse("admin:plugins_core_thirdpartyservice_change", args=(service.pk,))
    page = superuser.get(url).content.decode()
    assert API_TOKEN not in page
    assert "api_token: set" in page and 'name="application-0-password"' in page
    app = ServiceApplication.objects.get(service=service)
    data = {
        "organization": service.organization_id,
        "vendor": service.vendor,
        "name": service.name,
        "slug": service.slug,
        "category": "",
        "identity": "",
        "settings": "{}",
        "template_source": "",
        "application-TOTAL_FORMS": "1",
        "application-INITIAL_FORMS": "1",
        "application-MIN_NUM_FORMS": "0",
        "application-MAX_NUM_FORMS": "1",
        "application-0-id": app.pk,
        "application-0-service": service.pk,
        "application-0-username": "svc-user",
        "application-0-password": PASSWORD,
        "plugins-TOTAL_FORMS": "0",
        "plugins-INITIAL_FORMS": "0",
        "plugins-MIN_NUM_FORMS": "0",
        "plugins-MAX_NUM_FORMS": "1000",
    }
    response = superuser.post(url, data)
    assert response.status_code == 302, response.content.decode()[:4000]
    app.refresh_from_db()
    assert app.credentials == {"api_token": API_TOKEN, "username": "svc-user", "password": PASSWORD}
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CREDENTIALS_SET).count() == 1
    page = superuser.get(url).content.decode()
    assert PASSWORD not in page and "svc-user" not in page and API_TOKEN not in page
    # blank keeps every stored value
    response = superuser.post(
        url, {**data, "application-0-username": "", "application-0-password": ""}
    )
    assert response.status_code == 302
    app.refresh_from_db()
    assert app.credentials["password"] == PASSWORD


def test_service_without_known_manifest_falls_back_to_json(
    superuser: Client, service: ThirdPartyService
) -> None:
    page = superuser.get(
        reverse("admin:plugins_core_thirdpartyservice_change", args=(service.pk,))
    ).content.decode()
    assert "Replace credentials" in page and API_TOKEN not in page


def test_project_owner_cannot_open_service_credentials(
    org: Organization,
    make_member: Any,
    project: Project,
    service: ThirdPartyService,
    config_plugin: Plugin,
) -> None:
    owner = make_member(org, Role.OWNER, username="owner")
    project.owners.add(owner)
    client = Client()
    client.force_login(owner)
    urls = [
        reverse("admin:plugins_core_thirdpartyservice_change", args=(service.pk,)),
        reverse("admin:plugins_core_plugin_change", args=(config_plugin.pk,)),
        reverse("admin:plugins_core_registry"),
    ]
    for url in urls:  # not staff: the admin sends them to its login page
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url
    owner.is_staff = True  # staff without the admin role: the admin shows them nothing
    owner.save()
    for url in urls[:2]:
        response = client.get(url)
        assert response.status_code == 403, url
        assert API_TOKEN not in response.content.decode()
    state = reverse("admin:plugins_core_plugin_state", args=(config_plugin.pk,))
    assert client.post(state, {"enabled": "0"}).status_code == 403


def test_add_pages_render(superuser: Client) -> None:
    for name in ("plugin", "thirdpartyservice", "projecttypeplugin", "projectplugin"):
        response = superuser.get(reverse(f"admin:plugins_core_{name}_add"))
        assert response.status_code == 200, name


def test_service_changelist_query_count_does_not_grow_with_rows(
    superuser: Client, org: Organization, service: ThirdPartyService
) -> None:
    url = reverse("admin:plugins_core_thirdpartyservice_changelist")
    superuser.get(url)  # warm per-process caches (content types, site, session)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert superuser.get(url).status_code == 200
        return len(queries)

    one = count()
    for n in range(9):
        svc = ThirdPartyService.objects.create(
            organization=org, vendor=f"vendor-{n}", name=f"Service {n}", slug=f"service-{n}"
        )
        if n % 2:
            ServiceApplication.objects.create(service=svc, credentials={"api_token": "t"})
    assert one == count()
