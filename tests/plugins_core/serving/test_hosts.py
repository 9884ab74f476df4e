"""Credentials go only to declared hosts (plugins_core.serving.hosts): every save path refuses a
setting naming an undeclared host, and moving an operator-chosen host clears credentials."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.test import Client, override_settings
from django.urls import reverse
from imbi_plugin_sdk import ManifestError, Permissions, PluginManifest

from imbi.core.models import AuditEvent, Organization, Project, ProjectType
from plugins_core.models import Plugin, ProjectTypePlugin, ServiceApplication, ThirdPartyService
from plugins_core.provisioning.install import InstallError, install_from_template
from plugins_core.serving.hosts import host_errors, host_setting, operator_hosts_changed
from tests.plugins_core.pages.test_wizard import start, step_url

pytestmark = pytest.mark.django_db

TOKEN = "ghp-host-test-token-71c0e3d5a2"
EVIL = "https://collector.evil.example:8443/"


def manifest(**permissions: Any) -> PluginManifest:
    return PluginManifest(
        slug="fixed",
        name="Fixed",
        description="",
        version="1.0.0",
        api_version="1.1",
        plugin_type="configuration",
        permissions=Permissions(**permissions),
    )


# --------------------------------------------------------------------------- the function


def test_a_base_url_outside_the_declared_hosts_is_an_error_naming_them() -> None:
    aws = manifest(network_hosts=("*.amazonaws.com",))
    errors = host_errors({"base_url": EVIL, "region": "us-east-1"}, [aws])
    assert errors == {
        "base_url": "collector.evil.example:8443 is not a host the plugins of this service "
        "declare (fixed); allowed hosts: *.amazonaws.com"
    }
    assert host_errors({"base_url": "https://ssm.eu-west-1.amazonaws.com"}, [aws]) == {}
    # the suffix must be a whole label: "evilamazonaws.com" is not beneath ".amazonaws.com"
    assert "base_url" in host_errors({"base_url": "https://evilamazonaws.com"}, [aws])


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"base_url": "https://api.github.com@evil.example/"}, "user name"),
        ({"base_url": "https://evil.example\\@api.github.com/"}, "backslash"),
        ({"base_url": "ftp://api.github.com/"}, "http(s) URL"),
        ({"base_url": "api.github.com"}, "http(s) URL"),
        ({"endpoint": "evil.example:4566"}, "not a host"),
        ({"logs_url": "https://evil.example/"}, "not a host"),
        ({"anything": "http://evil.example/"}, "not a host"),
        ({"region": "x.evil.example#"}, "region code"),
        ({"base_url": "https://api.github.com:99999/"}, "invalid port"),
    ],
)
def test_every_way_of_naming_a_host_is_checked(settings: dict[str, str], message: str) -> None:
    github = manifest(network_hosts=("api.github.com",))
    errors = host_errors(settings, [github])
    assert len(errors) == 1 and message in next(iter(errors.values())), errors


def test_a_host_must_be_declared_by_every_plugin_sharing_the_credentials() -> None:
    wide = manifest(network_hosts=("*.example.com",))
    narrow = manifest(network_hosts=("api.example.com:443",))
    assert host_errors({"base_url": "https://api.example.com/v1"}, [wide, narrow]) == {}
    assert "base_url" in host_errors({"base_url": "https://api.example.com:8443/"}, [wide, narrow])
    assert "base_url" in host_errors({"base_url": "https://x.example.com/"}, [wide, narrow])
    # a plugin declaring no network at all refuses every host
    assert "none" in host_errors({"base_url": "https://api.example.com/"}, [manifest()])["base_url"]


def test_operator_chosen_setting_accepts_any_host_and_reports_a_move() -> None:
    ghe = manifest(network_hosts=("api.github.com",), operator_host_settings=("base_url",))
    assert host_errors({"base_url": "https://ghe.acme.example/api/v3"}, [ghe]) == {}
    assert host_errors({"base_url": "https://10.20.30.40/api/v3"}, [ghe]) == {}  # private LAN
    assert "endpoint" in host_errors({"endpoint": "https://ghe.acme.example"}, [ghe])
    # never the instance metadata service, loopback or the like, even operator-chosen
    for internal in ("169.254.169.254", "0.0.0.0", "localhost", "metadata.localhost"):
        with override_settings(IMBI_TEST_NETWORK_HOSTS=()):
            assert "base_url" in host_errors({"base_url": f"http://{internal}/"}, [ghe]), internal
    old = {"base_url": "https://ghe.acme.example/api/v3"}
    assert operator_hosts_changed(old, {"base_url": "https://ghe.acme.example/v4"}, [ghe]) == []
    for moved in ("https://ghe2.acme.example/api/v3", "http://ghe.acme.example/api/v3", ""):
        assert operator_hosts_changed(old, {"base_url": moved}, [ghe]) == ["base_url"], moved


def test_operator_host_settings_is_a_versioned_part_of_the_contract() -> None:
    with pytest.raises(ManifestError, match=r"operator_host_settings: needs api_version 1\.1"):
        PluginManifest(
            slug="old",
            name="Old",
            description="",
            version="1.0.0",
            api_version="1.0",
            plugin_type="configuration",
            permissions=Permissions(operator_host_settings=("base_url",)),
        )
    with pytest.raises(ManifestError, match=r"operator_host_settings\[0\]"):
        Permissions(operator_host_settings=("Base URL",))
    roundtrip = manifest(operator_host_settings=("base_url",))
    assert PluginManifest.from_dict(roundtrip.to_dict()) == roundtrip
    assert "operator_host_settings" not in manifest().to_dict()["permissions"]


def test_host_setting_parses_ports_and_bare_hosts() -> None:
    ref = host_setting("host", "Ghe.Acme.Example")
    assert ref is not None and (ref.host, ref.port) == ("ghe.acme.example", 443)
    ref = host_setting("base_url", "http://127.0.0.1:4566")
    assert ref is not None and (ref.scheme, ref.host, ref.port) == ("http", "127.0.0.1", 4566)
    assert host_setting("directory", "/srv/logs") is None


# --------------------------------------------------------------------------- save paths


@pytest.fixture
def aws_service(org: Organization) -> ThirdPartyService:
    svc = ThirdPartyService.objects.create(
        organization=org, vendor="aws", name="AWS", slug="aws", settings={"region": "us-east-1"}
    )
    Plugin.objects.create(
        organization=org,
        service=svc,
        slug="aws-ssm",
        plugin_type="configuration",
        handler="aws-ssm",
    )
    return svc


@pytest.fixture
def ghe_service(org: Organization) -> ThirdPartyService:
    svc = ThirdPartyService.objects.create(
        organization=org,
        vendor="github",
        name="GHE",
        slug="ghe",
        settings={"base_url": "https://ghe.acme.example/api/v3"},
    )
    ServiceApplication.objects.create(service=svc, credentials={"token": TOKEN})
    Plugin.objects.create(
        organization=org,
        service=svc,
        slug="github-actions",
        plugin_type="configuration",
        handler="github-actions",
    )
    return svc


@pytest.fixture
def root(django_user_model: Any) -> Client:
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def test_model_clean_refuses_an_undeclared_base_url(aws_service: ThirdPartyService) -> None:
    aws_service.settings = {"region": "us-east-1", "base_url": EVIL}
    with pytest.raises(ValidationError) as caught:
        aws_service.full_clean()
    (message,) = caught.value.message_dict["settings"]
    assert "collector.evil.example" in message and "*.amazonaws.com" in message


def test_adding_a_plugin_to_a_service_pointing_elsewhere_is_refused(
    org: Organization, ghe_service: ThirdPartyService
) -> None:
    plugin = Plugin(
        organization=org,
        service=ghe_service,
        slug="aws-ssm",
        plugin_type="configuration",
        handler="aws-ssm",
    )
    with pytest.raises(ValidationError) as caught:
        plugin.full_clean()
    assert "*.amazonaws.com" in caught.value.message_dict["service"][0]


def service_form(service: ThirdPartyService, settings: str, **credentials: str) -> dict[str, Any]:
    app = ServiceApplication.objects.filter(service=service).first()
    data: dict[str, Any] = {
        "organization": service.organization_id,
        "vendor": service.vendor,
        "name": service.name,
        "slug": service.slug,
        "category": "",
        "identity": "",
        "settings": settings,
        "template_source": "",
        "application-TOTAL_FORMS": "1",
        "application-INITIAL_FORMS": "1" if app else "0",
        "application-MIN_NUM_FORMS": "0",
        "application-MAX_NUM_FORMS": "1",
        "application-0-id": app.pk if app else "",
        "application-0-service": service.pk,
        "plugins-TOTAL_FORMS": "0",
        "plugins-INITIAL_FORMS": "0",
        "plugins-MIN_NUM_FORMS": "0",
        "plugins-MAX_NUM_FORMS": "1000",
    }
    # Services whose template declares settings get one admin field per setting.
    data.update({name: str(value) for name, value in json.loads(settings).items()})
    data.update({f"application-0-{k}": v for k, v in credentials.items()})
    return data


def test_admin_refuses_an_undeclared_base_url_with_a_field_error(
    root: Client, aws_service: ThirdPartyService
) -> None:
    url = reverse("admin:plugins_core_thirdpartyservice_change", args=(aws_service.pk,))
    response = root.post(url, service_form(aws_service, f'{{"base_url": "{EVIL}"}}'))
    assert response.status_code == 200
    page = response.content.decode()
    assert "collector.evil.example:8443 is not a host" in page and "*.amazonaws.com" in page
    aws_service.refresh_from_db()
    assert aws_service.settings == {"region": "us-east-1"}


def test_admin_moving_an_operator_chosen_host_clears_the_credentials(
    root: Client, ghe_service: ThirdPartyService
) -> None:
    url = reverse("admin:plugins_core_thirdpartyservice_change", args=(ghe_service.pk,))
    # same host, another path: the token stays
    same = '{"base_url": "https://ghe.acme.example/api/v4"}'
    assert root.post(url, service_form(ghe_service, same)).status_code == 302
    assert ServiceApplication.objects.get(service=ghe_service).credentials == {"token": TOKEN}
    # another host, token not re-entered: cleared, audited, and never shown
    moved = '{"base_url": "https://ghe2.acme.example/api/v3"}'
    response = root.post(url, service_form(ghe_service, moved))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert not ServiceApplication.objects.filter(service=ghe_service).exists()
    event = AuditEvent.objects.get(action=AuditEvent.Action.CREDENTIALS_SET)
    assert event.detail == "service ghe: cleared token because base_url moved to another host"
    assert event.actor_name == "root" and TOKEN not in event.detail


def test_admin_keeps_credentials_re_entered_in_the_same_save(
    root: Client, ghe_service: ThirdPartyService
) -> None:
    url = reverse("admin:plugins_core_thirdpartyservice_change", args=(ghe_service.pk,))
    moved = '{"base_url": "https://ghe2.acme.example/api/v3"}'
    response = root.post(url, service_form(ghe_service, moved, token="new-ghe2-token"))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert ServiceApplication.objects.get(service=ghe_service).credentials == {
        "token": "new-ghe2-token"
    }


def test_wizard_refuses_an_undeclared_base_url_at_the_service_step(
    root: Client, org: Organization, aws_service: ThirdPartyService
) -> None:
    pid = start(root, org, "aws-cloudwatch-logs")
    response = root.post(
        step_url(pid, "service"),
        {"mode": "existing", "service": aws_service.pk, "region": "us-east-1", "base_url": EVIL},
    )
    assert response.status_code == 200
    assert "collector.evil.example:8443 is not a host" in response.content.decode()


def test_wizard_never_tests_stored_credentials_against_a_moved_host(
    root: Client, org: Organization, ghe_service: ThirdPartyService
) -> None:
    from plugins_core import registry
    from plugins_core.pages import wizard

    pid = start(root, org, "github-actions")
    response = root.post(
        step_url(pid, "service"),
        {"mode": "existing", "service": ghe_service.pk, "base_url": "https://ghe2.acme.example"},
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    request = root.get(step_url(pid, "credentials")).wsgi_request
    pipeline = wizard.Pipeline.load(request, pid)
    assert pipeline is not None
    entry = registry.current().get("github-actions")
    assert entry is not None and entry.manifest is not None
    assert pipeline.stored_credentials(entry.manifest) == {}
    assert pipeline.credentials(entry.manifest) == {}


def test_template_reinstall_moving_the_host_clears_the_credentials(
    org: Organization, ghe_service: ThirdPartyService
) -> None:
    ThirdPartyService.objects.filter(pk=ghe_service.pk).update(managed_by_manifest=True)
    result = install_from_template(org, "github-actions")
    assert result.service.pk == ghe_service.pk
    assert result.service.settings["base_url"] == "https://api.github.com"
    assert not ServiceApplication.objects.filter(service=ghe_service).exists()
    assert AuditEvent.objects.filter(
        action=AuditEvent.Action.CREDENTIALS_SET, detail__contains="cleared token"
    ).exists()


def test_template_install_refuses_a_service_pointing_elsewhere(
    org: Organization, aws_service: ThirdPartyService
) -> None:
    ThirdPartyService.objects.filter(pk=aws_service.pk).update(
        settings={"region": "us-east-1", "base_url": EVIL}, managed_by_manifest=False
    )
    with pytest.raises(InstallError) as caught:
        install_from_template(org, "aws-cloudwatch-logs")
    assert caught.value.code == "host_not_allowed"
    assert not Plugin.objects.filter(handler="aws-cloudwatch-logs").exists()


def test_template_install_api_answers_a_settings_field_error(
    org: Organization, aws_service: ThirdPartyService, api: Any
) -> None:
    ThirdPartyService.objects.filter(pk=aws_service.pk).update(
        settings={"base_url": EVIL}, managed_by_manifest=False
    )
    client = api("admin")
    client.user.is_staff = True
    client.user.save()
    response = client.post(
        f"/api/orgs/{org.slug}/plugins/install", {"entry_point": "aws-ssm"}, format="json"
    )
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid_input" and "*.amazonaws.com" in body["errors"]["settings"]


def test_a_row_written_around_the_checks_never_gets_credentials(
    org: Organization,
    aws_service: ThirdPartyService,
    project_type: ProjectType,
    project: Project,
    api: Any,
) -> None:
    ServiceApplication.objects.create(
        service=aws_service,
        credentials={"access_key_id": "AKIAEXAMPLEEXAMPLE00", "secret_access_key": "s" * 40},
    )
    ThirdPartyService.objects.filter(pk=aws_service.pk).update(settings={"base_url": EVIL})
    ProjectTypePlugin.objects.create(
        project_type=project_type,
        plugin=Plugin.objects.get(service=aws_service),
        tab="configuration",
        search_template="/${org}/${project}/",
    )
    response = api("admin", secrets=True).get(
        f"/api/orgs/{org.slug}/projects/{project.pk}/configuration"
    )
    assert response.status_code == 503
    assert response.json()["code"] == "plugin_misconfigured"
    assert "base_url" in response.json()["detail"]


def test_a_wildcard_over_a_whole_top_level_domain_is_refused() -> None:
    with pytest.raises(ManifestError, match=r"network_hosts\[1\]: '\*\.com' is too broad"):
        Permissions(network_hosts=("api.example.com", "*.com"))
    assert Permissions(network_hosts=("*.example.com",)).allows_host("a.example.com", 443)


def test_the_wizard_shows_which_setting_takes_an_operator_chosen_host(root: Client) -> None:
    page = root.get(reverse("admin:plugins_core_install_start")).content.decode()
    assert "host of your choice in: base_url (changing it clears the credentials)" in page


def test_api_moving_an_operator_chosen_host_clears_the_credentials(
    org: Organization, ghe_service: ThirdPartyService, api: Any
) -> None:
    """Issue 22 (high): a credential never follows its service to another host, whatever the
    surface. The API's PATCH applies the admin's rule (ADR 0013): same host keeps the token,
    another host clears it, audited without the value; settings changes carry old and new."""
    client = api("admin")
    client.user.is_staff = True
    client.user.save()
    url = f"/api/orgs/{org.slug}/services/{ghe_service.slug}"
    same = {"settings": {"base_url": "https://ghe.acme.example/api/v4"}}
    assert client.patch(url, same, format="json").status_code == 200
    assert ServiceApplication.objects.get(service=ghe_service).credentials == {"token": TOKEN}
    changed = AuditEvent.objects.get(action=AuditEvent.Action.SERVICE_CHANGE)
    assert changed.detail == (
        "service ghe: changed settings base_url: 'https://ghe.acme.example/api/v3' -> "
        "'https://ghe.acme.example/api/v4'"
    )
    moved = {"settings": {"base_url": "https://listener.attacker.example/api/v3"}}
    response = client.patch(url, moved, format="json")
    assert response.status_code == 200, response.content
    assert TOKEN.encode() not in response.content
    assert not ServiceApplication.objects.filter(service=ghe_service).exists()
    event = AuditEvent.objects.get(action=AuditEvent.Action.CREDENTIALS_SET)
    assert event.detail == "service ghe: cleared token because base_url moved to another host"
    assert TOKEN not in str(list(AuditEvent.objects.values()))
    read = client.get(f"{url}/credentials").json()
    assert read["set"] == [] and read["missing"] == ["token"]


# --------------------------------------------------------------------------- messages (issue 22)


def test_host_errors_name_the_host_and_port_as_entered() -> None:
    github = manifest(network_hosts=("api.github.com",))
    errors = host_errors(
        {"endpoint": "evil.example:4566", "base_url": "https://evil.example/"}, [github]
    )
    assert errors["endpoint"].startswith("evil.example:4566 is not a host")
    assert errors["base_url"].startswith("evil.example is not a host")  # no port typed


@override_settings(IMBI_TEST_NETWORK_HOSTS=())
def test_a_loopback_operator_host_says_why_and_names_host_and_port() -> None:
    logz = manifest(network_hosts=("*.logz.io",), operator_host_settings=("base_url",))
    message = host_errors({"base_url": "http://127.0.0.1:8399"}, [logz])["base_url"]
    assert message.startswith("127.0.0.1:8399 is a loopback address")
    assert "*.logz.io" in message and "not a host the plugins" not in message
    # a plugin that declares the loopback host itself is served there
    local = manifest(network_hosts=("127.0.0.1:8399",), operator_host_settings=("base_url",))
    assert host_errors({"base_url": "http://127.0.0.1:8399"}, [local]) == {}
    metadata = host_errors({"base_url": "http://169.254.169.254/"}, [logz])["base_url"]
    assert metadata.startswith("169.254.169.254 is a link-local (cloud metadata) address")


@override_settings(IMBI_TEST_NETWORK_HOSTS=())
def test_wizard_logzio_emulator_url_is_refused_honestly(root: Client, org: Organization) -> None:
    from tests.served_forms import submit_as_served

    pid = start(root, org, "logzio")
    url = step_url(pid, "service")
    page = root.get(url).content.decode()
    assert "a proxy or an emulator" not in page  # the help no longer promises an emulator
    assert "refused" in page
    response = submit_as_served(
        root,
        url,
        {"mode": "template", "region": "eu", "base_url": "http://127.0.0.1:8399"},
        has="mode",
    )
    assert response.status_code == 200
    assert "127.0.0.1:8399 is a loopback address" in response.content.decode()
