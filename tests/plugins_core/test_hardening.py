"""Regression tests from the security and robustness review (each failed before its fix):
secret options never leave the server, owners cannot set operator-only options, bad input
(deep JSON, NUL characters, out-of-range dates) is a clear error, plan caches follow
organization renames and never roll back, and admin pages list only what an operator may see.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from django.test import Client
from django.urls import reverse
from imbi_plugin_sdk import (
    ConfigKey,
    ConfigurationPlugin,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    CredentialField,
    OptionField,
    OptionType,
    PluginManifest,
    PluginType,
)
from rest_framework.test import APIClient

from imbi.core.access import load_project
from imbi.core.models import Organization, Role
from plugins_core import registry
from plugins_core.models import (
    Plugin,
    ProjectPlugin,
    ProjectTypePlugin,
    ServiceApplication,
    ThirdPartyService,
)
from plugins_core.pages import wizard
from plugins_core.serving import resolution
from tests.plugins_core.pages.test_admin import staff_admin  # noqa: F401  (fixture)
from tests.plugins_core.pages.test_forms import SIGNING_KEY, use_handler
from tests.plugins_core.pages.test_views import login, owner, secrets_everywhere  # noqa: F401


def test_huge_project_id_api(api, project):
    c = api(Role.VIEWER)
    for url in [
        "/api/orgs/acme/projects/99999999999999999999/tabs",
        "/api/orgs/acme/projects/99999999999999999999/bindings",
        f"/api/orgs/acme/projects/{project.pk}/bindings/99999999999999999999",
        "/api/orgs/acme/project-types/api/bindings/99999999999999999999",
    ]:
        r = c.get(url)
        assert r.status_code == 404


def test_huge_project_id_html(client, make_member, org, project):
    u = make_member(org, Role.ADMIN)
    client.force_login(u)
    for url in [
        "/projects/acme/99999999999999999999/",
        f"/projects/acme/{project.pk}/bindings/99999999999999999999/",
        "/projects/acme/99999999999999999999/preview/?template=x",
    ]:
        r = client.get(url)
        assert r.status_code == 404


def test_deep_json_body(api, project, config_plugin, bind_type):
    bind_type(config_plugin, default=True)
    c = api(Role.EDITOR)
    for depth in (100000, 950):
        body = '{"data_type":"json","value":' + "[" * depth + "]" * depth + "}"
        r = c.put(
            f"/api/orgs/acme/projects/{project.pk}/configuration/keys/deep",
            data=body,
            content_type="application/json",
        )
        assert r.status_code == 400, depth
        assert r.json()["code"] == "malformed_request"


def test_logs_end_year_one(api, project, logs_plugin, bind_type):
    bind_type(logs_plugin, default=True)
    c = api(Role.VIEWER)
    r = c.get(f"/api/orgs/acme/projects/{project.pk}/logs?end=0001-01-01T00:10:00Z")
    assert r.status_code == 400
    assert r.json()["code"] == "invalid_input"


def test_viewer_reads_secret_option_via_bindings_api(secrets_everywhere, make_member, org, project):
    viewer = make_member(org, Role.VIEWER, username="plainviewer")
    c = APIClient()
    c.force_authenticate(viewer)
    r1 = c.get(f"/api/orgs/acme/projects/{project.pk}/bindings")
    r2 = c.get("/api/orgs/acme/project-types/api/bindings")
    b = secrets_everywhere["binding"]
    r3 = c.get(f"/api/orgs/acme/projects/{project.pk}/bindings/{b.pk}")
    for response in (r1, r2, r3):
        assert response.status_code == 200, response.content
    assert SIGNING_KEY not in r1.content.decode() + r2.content.decode() + r3.content.decode()


def test_admin_binding_change_page_shows_secret_option(secrets_everywhere, django_user_model):
    root = django_user_model.objects.create_superuser("root2", "r@example.com", "pw")
    admin = login(root)
    b = secrets_everywhere["binding"]
    for url in (reverse("admin:plugins_core_projectplugin_change", args=(b.pk,)),):
        html = admin.get(url).content.decode()
        assert SIGNING_KEY not in html


PW = "leaky-password-9d8c7b"


OPT = "leaky-option-1a2b3c"


class Leaky(ConfigurationPlugin):
    manifest = PluginManifest(
        slug="leaky",
        name="Leaky",
        description="x",
        version="1.0.0",
        api_version="1.0",
        plugin_type=PluginType.CONFIGURATION,
        publisher="T",
        options=(OptionField(name="signing_key", label="Signing key", type=OptionType.SECRET),),
        credentials=(CredentialField(name="password", label="Password"),),
    )

    def test_connection(self) -> ConnectionResult:
        raise RuntimeError(f"cannot log in with {self.credentials['password']}")

    def list_keys(self) -> list[ConfigKey]:
        raise RuntimeError(f"bad signature with {self.context.options['signing_key']}")

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        return []

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        return ConfigKey(key=key)

    def delete_key(self, key: str) -> None:
        return None


def test_wizard_test_connection_logs_credential(monkeypatch, org, caplog):
    use_handler(monkeypatch, "leaky", Leaky)
    entry = registry.current().get("leaky")
    caplog.set_level(logging.ERROR)
    out = wizard.test_connection(entry, org, {}, {}, {"password": PW})
    assert PW not in str(out)
    logged = "\n".join(
        r.getMessage() + (str(r.exc_info[1]) if r.exc_info else "") for r in caplog.records
    )
    assert PW not in logged


def test_runner_log_keeps_secret_option(
    monkeypatch, org, project, project_type, service, install, make_member, caplog
):
    use_handler(monkeypatch, "leaky", Leaky)
    app = ServiceApplication.objects.get(service=service)
    app.credentials = {"password": PW}
    app.save()
    p = install("leaky", options={"signing_key": OPT})
    ProjectTypePlugin.objects.create(
        project_type=project_type, plugin=p, tab="configuration", default=True
    )
    viewer = make_member(org, Role.VIEWER)
    c = APIClient()
    c.force_authenticate(viewer)
    caplog.set_level(logging.ERROR)
    c.get(f"/api/orgs/acme/projects/{project.pk}/configuration")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert OPT not in logged


def test_service_credentials_fallback_form_rerenders_secret(org, django_user_model):
    svc = ThirdPartyService.objects.create(
        organization=org, vendor="bare", name="Bare", slug="bare"
    )
    root = django_user_model.objects.create_superuser("root3", "r@example.com", "pw")
    admin = login(root)
    url = reverse("admin:plugins_core_thirdpartyservice_change", args=(svc.pk,))
    data = {
        "organization": org.pk,
        "vendor": "bare",
        "name": "",
        "slug": "bare",
        "category": "",
        "identity": "",
        "settings": "{}",
        "template_source": "",
        "application-TOTAL_FORMS": "1",
        "application-INITIAL_FORMS": "0",
        "application-MIN_NUM_FORMS": "0",
        "application-MAX_NUM_FORMS": "1",
        "application-0-new_credentials": f'{{"api_token": "{PW}"}}',
        "application-0-service": svc.pk,
        "plugins-TOTAL_FORMS": "0",
        "plugins-INITIAL_FORMS": "0",
        "plugins-MIN_NUM_FORMS": "0",
        "plugins-MAX_NUM_FORMS": "1000",
    }
    r = admin.post(url, data)
    html = r.content.decode()
    assert r.status_code == 200
    assert PW not in html


def test_org_rename_leaves_stale_plan(org, project, config_plugin, bind_type, make_member):
    bind_type(config_plugin, default=True, search_template="${org}/${project}/")
    user = make_member(org, Role.ADMIN)
    p, _ = load_project(user, "acme", project.pk)
    resolution.resolve(p, "configuration", cached=True)
    o = Organization.objects.get(pk=org.pk)
    o.slug = "acme-renamed"
    o.save()
    user2 = type(user).objects.get(pk=user.pk)
    p2, _ = load_project(user2, "acme-renamed", project.pk)
    second = resolution.resolve(p2, "configuration", cached=True)
    fresh = resolution.resolve(p2, "configuration", cached=False)
    assert second.context.search_template == fresh.context.search_template


def test_org_rename_api_reads_old_namespace(org, project, config_plugin, bind_type, make_member):
    """End to end: a key written after the rename lands under the OLD org prefix."""
    bind_type(config_plugin, default=True, search_template="${org}/${project}/")
    c = APIClient()
    c.force_authenticate(make_member(org, Role.EDITOR))
    c.get(f"/api/orgs/acme/projects/{project.pk}/configuration")
    o = Organization.objects.get(pk=org.pk)
    o.slug = "acme2"
    o.save()
    c.put(
        f"/api/orgs/acme2/projects/{project.pk}/configuration/keys/K",
        {"data_type": "string", "value": "v"},
        format="json",
    )
    from plugins_core.models import PluginStorage

    assert list(PluginStorage.objects.values_list("key", flat=True)) == ["acme2/billing/K"]


def test_org_save_rolls_config_version_back(
    org, project, project_type, config_plugin, install, bind_type, make_member
):
    from plugins_core.models import ProjectTypePlugin

    static = install("example-static")
    a = bind_type(config_plugin, default=True)
    bind_type(static)
    user = make_member(org, Role.ADMIN)
    held = Organization.objects.get(pk=org.pk)
    p, _ = load_project(user, "acme", project.pk)
    a.default = False
    a.save()
    ProjectTypePlugin.objects.filter(plugin=static).update(default=True)
    from plugins_core.serving.invalidation import bump

    bump(org.pk)
    p, _ = load_project(type(user).objects.get(pk=user.pk), "acme", project.pk)
    held.name = "Acme Inc"
    held.save()
    p, _ = load_project(type(user).objects.get(pk=user.pk), "acme", project.pk)
    got = resolution.resolve(p, "configuration", cached=True).plugin.slug
    assert got == "example-static"


def test_add_plugin_through_service_inline(org, django_user_model):
    svc = ThirdPartyService.objects.create(
        organization=org, vendor="bare", name="Bare", slug="bare"
    )
    root = django_user_model.objects.create_superuser("root4", "r@example.com", "pw")
    admin = login(root)
    url = reverse("admin:plugins_core_thirdpartyservice_change", args=(svc.pk,))
    data = {
        "organization": org.pk,
        "vendor": "bare",
        "name": "Bare",
        "slug": "bare",
        "category": "",
        "identity": "",
        "settings": "{}",
        "template_source": "",
        "application-TOTAL_FORMS": "0",
        "application-INITIAL_FORMS": "0",
        "application-MIN_NUM_FORMS": "0",
        "application-MAX_NUM_FORMS": "1",
        "plugins-TOTAL_FORMS": "1",
        "plugins-INITIAL_FORMS": "0",
        "plugins-MIN_NUM_FORMS": "0",
        "plugins-MAX_NUM_FORMS": "1000",
        "plugins-0-slug": "newplug",
        "plugins-0-name": "New",
        "plugins-0-plugin_type": "configuration",
        "plugins-0-enabled": "on",
        "plugins-0-service": svc.pk,
    }
    r = admin.post(url, data)
    # plugins are added by the wizard or the plugin add page, never through this inline:
    # the admin ignores the extra row and saves the service
    assert r.status_code == 302
    assert r["Location"] == reverse("admin:plugins_core_thirdpartyservice_changelist")
    assert not Plugin.objects.filter(slug="newplug").exists()


def test_nul_in_binding_options_api(org, project, config_plugin, bind_project, make_member):
    b = bind_project(config_plugin)
    c = APIClient()
    c.force_authenticate(make_member(org, Role.ADMIN))
    r = c.patch(
        f"/api/orgs/acme/projects/{project.pk}/bindings/{b.pk}",
        data='{"options": {"prefix": "a\\u0000b"}}',
        content_type="application/json",
    )
    r2 = c.post(
        f"/api/orgs/acme/projects/{project.pk}/bindings",
        data='{"plugin": "example-config", "search_template": "", "options": {"prefix": "\\u0000"}}',
        content_type="application/json",
    )
    for response in (r, r2):
        assert response.status_code == 400
        assert response.json()["code"] == "malformed_request"
    assert ProjectPlugin.objects.get(pk=b.pk).options == {}


def test_deep_json_in_binding_page_mapping_option(org, project, install, bind_project, owner):
    static = install("example-static")
    b = bind_project(static)
    client = login(owner)
    url = reverse("ui:project-binding", args=("acme", project.pk, b.pk))
    depth = 5000
    r = client.post(url, {"search_template": "", "opt-values": "[" * depth + "]" * depth})
    r2 = client.post(url, {"search_template": "", "opt-values": '{"k": "a\\u0000b"}'})
    # the page again, with the option's error; nothing saved
    assert r.status_code == 200
    assert '<div class="error">This JSON is nested too deeply.</div>' in r.content.decode()
    assert r2.status_code == 200
    assert "options: Options cannot contain NUL characters." in r2.content.decode()
    assert ProjectPlugin.objects.get(pk=b.pk).options == {}


def test_owner_reads_other_orgs_logs_via_option_override(
    tmp_path, org, other_org, project, make_member
):
    a_dir, b_dir = (tmp_path / "acme", tmp_path / "globex")
    a_dir.mkdir()
    b_dir.mkdir()
    (b_dir / "payroll.jsonl").write_text(
        json.dumps(
            {"timestamp": "2030-01-01T00:00:00Z", "level": "info", "message": "GLOBEX-PRIVATE"}
        )
        + "\n"
    )
    sa = ThirdPartyService.objects.create(
        organization=org, vendor="local", name="L", slug="local", settings={"directory": str(a_dir)}
    )
    pa = Plugin.objects.create(
        organization=org, service=sa, slug="local-logs", plugin_type="logs", handler="local-logs"
    )
    owner = make_member(org, Role.OWNER, username="own")
    project.owners.add(owner)
    b = ProjectPlugin.objects.create(project=project, plugin=pa, tab="logs", default=True)
    c = APIClient()
    c.force_authenticate(owner)
    r = c.patch(
        f"/api/orgs/acme/projects/{project.pk}/bindings/{b.pk}",
        {"options": {"directory": str(b_dir)}, "search_template": "payroll"},
        format="json",
    )
    r = c.get(
        f"/api/orgs/acme/projects/{project.pk}/logs?start=2029-12-31T00:00:00Z&end=2030-01-02T00:00:00Z"
    )
    assert b"GLOBEX-PRIVATE" not in r.content


def _problem_code(response) -> str | None:
    if response.get("Content-Type", "").startswith("application/problem+json"):
        return response.json()["code"]
    return None


def test_sweep(org, project, config_plugin, logs_plugin, bind_type, make_member, django_user_model):
    """Hostile requests, each with the exact status and problem code it must get (a 500
    fails: the API answers it as ``internal_error``, the pages raise in the test client)."""
    bind_type(config_plugin, default=True)
    bind_type(logs_plugin, default=True)
    operator = make_member(org, Role.ADMIN, secrets=True)
    operator.is_staff = True  # installs need an operator
    operator.save()
    c = APIClient()
    c.force_authenticate(operator)
    base = f"/api/orgs/acme/projects/{project.pk}"
    gets = [
        (base + "/configuration/values?keys=" + ",".join(f"k{i}" for i in range(5000)), 200, None),
        (base + "/configuration/values?reveal=maybe", 400, "invalid_input"),
        (base + "/configuration/values?source=%C3%A9", 400, "invalid_input"),
        # the example plugin checks regex filters like every plugin that applies them locally
        (base + "/logs?filter=@x:regex:(", 400, "regex_rejected"),
        (base + "/logs?filter=a:b", 400, "invalid_input"),
        (base + "/logs?cursor=%%%%", 409, "cursor_expired"),
        (base + "/logs?cursor=eyJ4IjoxfQ", 409, "cursor_expired"),
        (base + "/logs?limit=-1", 400, "invalid_input"),
        (base + "/logs?level=nope", 400, "invalid_input"),
        (base + "/configuration/keys/" + "x" * 300, 405, "method_not_allowed"),
        ("/api/orgs/acme/plugins", 200, None),
        ("/api/orgs/%E2%98%83/plugins", 404, "not_found"),
    ]
    for u, status, code in gets:
        r = c.get(u)
        assert (r.status_code, _problem_code(r)) == (status, code), (u[:120], r.content[:300])
    puts = [
        ('{"data_type":"number","value":1e400}', 400, "invalid_input"),
        ('{"data_type":"json","value":NaN}', 400, "malformed_request"),
        ("[1,2]", 400, "invalid_input"),
        ('"str"', 400, "invalid_input"),
        ('{"data_type":"string","value":"' + "a" * 100000 + '"}', 200, None),
        ('{"data_type":"json","value":{"a":{"b":[1,2,{"c":null}]}},"secret":"yes"}', 200, None),
        ('{"data_type":"number","value":' + "9" * 5000 + "}", 400, "malformed_request"),
    ]
    for body, status, code in puts:
        r = c.put(base + "/configuration/keys/k", data=body, content_type="application/json")
        assert (r.status_code, _problem_code(r)) == (status, code), (body[:80], r.content[:300])
    for body in [
        '{"entry_point": []}',
        '{"entry_point": "nope"}',
        '{"entry_point": "example-broken"}',
    ]:
        r = c.post("/api/orgs/acme/plugins/install", data=body, content_type="application/json")
        assert (r.status_code, _problem_code(r)) == (400, "invalid_input"), (body, r.content)
    root = django_user_model.objects.create_superuser("root5", "r@example.com", "pw")
    admin = login(root)
    r = admin.get(
        "/admin/plugins_core/plugin/install/preview/?project=99999999999999999999&template=x"
    )
    assert (r.status_code, r.json()) == (404, {"ok": False, "error": "choose a sample project"})
    r = admin.get(f"/projects/acme/{project.pk}/preview/?template=%24%7Bproject_id%7D%00&tab=%00")
    # a preview only expands; saving a template with a NUL is refused by Binding.clean()
    assert (r.status_code, r.json()) == (200, {"ok": True, "value": f"{project.pk}\x00"})
    r = admin.post("/admin/plugins_core/plugin/99999999999999999999/state/", {"enabled": "1"})
    assert r.status_code == 404
    r = admin.post(
        reverse("admin:plugins_core_thirdpartyservice_add"),
        {
            "organization": org.pk,
            "vendor": "v",
            "name": "n",
            "slug": "s",
            "category": "",
            "identity": "",
            "settings": '{"region": "a\\u0000b"}',
            "template_source": "",
            "application-TOTAL_FORMS": "0",
            "application-INITIAL_FORMS": "0",
            "application-MIN_NUM_FORMS": "0",
            "application-MAX_NUM_FORMS": "1",
            "plugins-TOTAL_FORMS": "0",
            "plugins-INITIAL_FORMS": "0",
            "plugins-MIN_NUM_FORMS": "0",
            "plugins-MAX_NUM_FORMS": "1000",
        },
    )
    assert r.status_code == 200  # the form again, with the field error
    assert "Settings cannot contain NUL characters." in r.content.decode()
    assert not ThirdPartyService.objects.filter(slug="s").exists()


def test_staff_sees_foreign_org_names(staff_admin, org, other_org):
    Organization.objects.create(slug="initech-secret-merger", name="Initech Secret Merger")
    for name in ("thirdpartyservice", "plugin", "projecttypeplugin", "projectplugin"):
        html = staff_admin.get(reverse(f"admin:plugins_core_{name}_changelist")).content.decode()
        assert "Initech Secret Merger" not in html, name
    svc = ThirdPartyService.objects.create(organization=other_org, vendor="x", name="X", slug="x")
    p = Plugin.objects.create(
        organization=other_org,
        service=svc,
        slug="p",
        plugin_type="configuration",
        handler="example-config",
    )
    assert (
        staff_admin.get(reverse("admin:plugins_core_plugin_change", args=(p.pk,))).status_code
        == 404
    )
    assert (
        staff_admin.get(
            reverse("admin:plugins_core_thirdpartyservice_change", args=(svc.pk,))
        ).status_code
        == 404
    )
    assert (
        staff_admin.post(
            reverse("admin:plugins_core_plugin_state", args=(p.pk,)), {"enabled": "0"}
        ).status_code
        == 404
    )
    p.refresh_from_db()
    assert p.enabled


def test_admin_project_binding_refuses_operator_only_options(
    db, org, project, django_user_model, tmp_path
):
    root = django_user_model.objects.create_superuser("root9", "r9@example.com", "pw")
    client = Client()
    client.force_login(root)
    svc = ThirdPartyService.objects.create(
        organization=org,
        vendor="local",
        name="L",
        slug="loc",
        settings={"directory": str(tmp_path)},
    )
    plugin = Plugin.objects.create(
        organization=org, service=svc, slug="local-logs", plugin_type="logs", handler="local-logs"
    )
    response = client.post(
        reverse("admin:plugins_core_projectplugin_add"),
        {
            "project": project.pk,
            "plugin": plugin.pk,
            "tab": "logs",
            "default": "on",
            "search_template": "",
            "options": '{"directory": "/etc"}',
        },
    )
    assert response.status_code == 200  # the form is shown again with the error
    assert "only administrators set this" in response.content.decode()
    assert not ProjectPlugin.objects.filter(plugin=plugin).exists()
