"""The admin install wizard: a full run, abandoning halfway, permissions, a changed plugin."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from imbi.core.models import AuditEvent, Organization, Project, ProjectType, Role
from plugins_core import registry
from plugins_core.models import (
    Plugin,
    ProjectTypePlugin,
    ServiceApplication,
    ThirdPartyService,
)
from plugins_core.pages import wizard

pytestmark = pytest.mark.django_db

TOKEN = "wizard-token-8c1d77e2f4"


def counts() -> dict[str, int]:
    return {
        model.__name__: model.objects.count()
        for model in (ThirdPartyService, ServiceApplication, Plugin, ProjectTypePlugin, AuditEvent)
    }


@pytest.fixture
def operator(django_user_model: Any, org: Organization) -> Client:
    user = django_user_model.objects.create_superuser("operator", "op@example.com", "pw")
    client = Client()
    client.force_login(user)
    return client


def start(client: Client, org: Organization, entry_point: str = "example-config") -> str:
    response = client.post(
        reverse("admin:plugins_core_install_start"),
        {"entry_point": entry_point, "organization": org.pk},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    match = re.search(r"/install/([^/]+)/service/$", response["Location"])
    assert match, response["Location"]
    return match.group(1)


def step_url(pid: str, step: str) -> str:
    return reverse("admin:plugins_core_install_step", args=(pid, step))


def errors(response: Any) -> str:
    page = response.content.decode()
    found = re.findall(
        r'<ul class="errorlist[^"]*"[^>]*>.*?</ul>|class="errornote">.*?</div>', page, re.S
    )
    return "\n".join(found) or page[:2000]


def post(client: Client, pid: str, step: str, data: dict[str, Any], follow_to: str) -> None:
    response = client.post(step_url(pid, step), data)
    assert response.status_code == 302, f"{step}: {errors(response)}"
    assert response["Location"].endswith(f"/{follow_to}/"), response["Location"]


def run_to_options(client: Client, org: Organization) -> str:
    pid = start(client, org)
    post(
        client,
        pid,
        "service",
        {"mode": "template", "region": "eu-west-1", "base_url": ""},
        "credentials",
    )
    post(client, pid, "credentials", {"api_token": TOKEN}, "options")
    post(client, pid, "options", {"prefix": "cfg/", "max_keys": "50", "mode": "normal"}, "test")
    return pid


def test_step_one_lists_plugins_with_their_facts(operator: Client) -> None:
    page = operator.get(reverse("admin:plugins_core_install_start")).content.decode()
    for text in (
        "Example configuration",
        "example-config",
        "1.2.0",
        "Imbi",
        "imbi-plugin-example",
        "api.example.com",
        "host storage",
        "one click also installs example-logs",
        "cannot be installed",
        "example-future",
        "import_failed",
    ):
        assert text in page, text


def test_full_install_writes_everything_in_the_last_step(
    operator: Client, org: Organization, project_type: ProjectType, project: Project
) -> None:
    before = counts()
    pid = run_to_options(operator, org)

    response = operator.post(step_url(pid, "test"), {"action": "test", "search_template": "${x"})
    assert response.status_code == 200 and "use ${name}" in response.content.decode()
    response = operator.post(
        step_url(pid, "test"),
        {"action": "test", "sample_project": project.pk, "search_template": "${org}/${project}/"},
    )
    assert response.status_code == 302
    page = operator.get(step_url(pid, "test")).content.decode()
    assert "example backend reachable" in page and 'class="connection ok"' in page
    assert TOKEN not in page
    post(operator, pid, "test", {"action": "Next"}, "bind")
    bind_page = operator.get(step_url(pid, "bind")).content.decode()
    assert 'value="${org}/${project}/"' in bind_page  # carried over from the test

    preview = operator.get(
        reverse("admin:plugins_core_install_preview"),
        {"template": "/${org}/${project}/", "project": project.pk},
    ).json()
    assert preview == {"ok": True, "value": "/acme/billing/"}
    bad = operator.get(
        reverse("admin:plugins_core_install_preview"),
        {"template": "/${secret}/", "project": project.pk},
    ).json()
    assert bad["ok"] is False and "unknown variable" in bad["error"]

    response = operator.post(step_url(pid, "bind"), {"search_template": "/${nope}/"})
    assert response.status_code == 200 and "unknown variable" in response.content.decode()
    post(
        operator,
        pid,
        "bind",
        {
            "project_types": [project_type.pk],
            "default": "on",
            "search_template": "${org}/${project}/",
            "sample_project": project.pk,
        },
        "finish",
    )

    summary = operator.get(step_url(pid, "finish")).content.decode()
    assert "acme/billing/" in summary and "will be set" in summary and TOKEN not in summary
    assert counts() == before, "nothing may be written before the last step"

    response = operator.post(step_url(pid, "finish"), {"install": "Install"})
    assert response.status_code == 302, response.content.decode()[:3000]
    done = operator.get(response["Location"]).content.decode()
    assert "is installed in Acme" in done

    service = ThirdPartyService.objects.get(organization=org, vendor="example")
    assert service.settings == {"region": "eu-west-1"}  # a blank base URL removes it
    assert service.application.credentials == {"api_token": TOKEN}
    plugin = Plugin.objects.get(organization=org, handler="example-config")
    assert plugin.options == {
        "prefix": "cfg/",
        "max_keys": 50,
        "mode": "normal",
        "read_only": False,
    }
    assert Plugin.objects.filter(organization=org, handler="example-logs").exists()
    binding = ProjectTypePlugin.objects.get(project_type=project_type, plugin=plugin)
    assert (binding.tab, binding.default, binding.search_template) == (
        "configuration",
        True,
        "${org}/${project}/",
    )
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"plugin.install", "credentials.set", "binding.change"} <= actions
    assert not AuditEvent.objects.filter(detail__contains=TOKEN).exists()
    # the wizard's state (with the encrypted credentials) is gone from the session
    assert not operator.session.get(wizard.SESSION_KEY)


def test_abandoning_after_step_four_leaves_nothing(
    operator: Client, org: Organization, project_type: ProjectType
) -> None:
    before = counts()
    pid = run_to_options(operator, org)
    assert counts() == before
    # the session holds the credentials only encrypted
    state = operator.session[wizard.SESSION_KEY][pid]
    assert TOKEN not in str(state) and state["credentials"]
    response = operator.post(reverse("admin:plugins_core_install_cancel", args=(pid,)))
    assert response.status_code == 302
    assert counts() == before
    assert pid not in operator.session.get(wizard.SESSION_KEY, {})


def test_steps_cannot_be_skipped(operator: Client, org: Organization) -> None:
    pid = start(operator, org)
    response = operator.get(step_url(pid, "finish"))
    assert response.status_code == 302 and response["Location"].endswith("/service/")
    response = operator.get(step_url("not-a-wizard", "service"))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:plugins_core_install_start")


def test_secret_credentials_are_write_only(operator: Client, org: Organization) -> None:
    pid = start(operator, org)
    post(
        operator, pid, "service", {"mode": "template", "region": "", "base_url": ""}, "credentials"
    )
    post(operator, pid, "credentials", {"api_token": TOKEN}, "options")
    page = operator.get(step_url(pid, "credentials")).content.decode()
    assert TOKEN not in page
    assert 'type="password"' in page and "Currently set." in page
    # blank keeps the value entered before
    post(operator, pid, "credentials", {"api_token": ""}, "options")
    assert wizard.Pipeline.load(_request(operator), pid).credential_changes() == {  # type: ignore[union-attr]
        "api_token": TOKEN
    }


def _request(client: Client) -> Any:
    class _R:
        session = client.session

    return _R()


def test_existing_service_keeps_stored_credentials(
    operator: Client, org: Organization, service: ThirdPartyService
) -> None:
    pid = start(operator, org, "example-static")
    post(operator, pid, "service", {"mode": "existing", "service": service.pk}, "credentials")
    post(operator, pid, "credentials", {}, "options")
    post(operator, pid, "options", {"values": '{"A": "1"}'}, "test")
    post(operator, pid, "test", {"action": "Next"}, "bind")
    post(operator, pid, "bind", {"search_template": ""}, "finish")
    response = operator.post(step_url(pid, "finish"))
    assert response.status_code == 302
    plugin = Plugin.objects.get(service=service, handler="example-static")
    assert plugin.options == {"values": {"A": "1"}}
    service.refresh_from_db()
    assert service.application.credentials["api_token"].startswith("example-token")


def test_a_failing_finish_rolls_everything_back(
    operator: Client, org: Organization, project_type: ProjectType, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = counts()
    pid = run_to_options(operator, org)
    post(operator, pid, "test", {"action": "Next"}, "bind")
    post(
        operator, pid, "bind", {"project_types": [project_type.pk], "search_template": ""}, "finish"
    )

    def boom(*args: Any, **kwargs: Any) -> Any:
        raise wizard.WizardError("binding refused for the test")

    monkeypatch.setattr("plugins_core.pages.wizard.finish._bind", boom)
    response = operator.post(step_url(pid, "finish"))
    assert response.status_code == 200
    assert "Nothing was saved: binding refused" in response.content.decode()
    assert counts() == before


def test_a_plugin_changed_mid_flow_restarts_the_wizard(
    operator: Client, org: Organization, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = counts()
    pid = run_to_options(operator, org)
    snapshot = registry.current()
    entry = snapshot.entries["example-config"]
    changed = dataclasses.replace(entry, version="1.3.0")
    fake = registry.Snapshot(
        generation=snapshot.generation + 1, entries={**snapshot.entries, "example-config": changed}
    )
    monkeypatch.setattr(registry, "current", lambda: fake)
    response = operator.get(step_url(pid, "test"), follow=True)
    page = response.content.decode()
    assert "changed while you were installing it" in page and "1.3.0" in page
    assert pid not in operator.session.get(wizard.SESSION_KEY, {})
    assert counts() == before


def test_every_step_rechecks_permission(
    operator: Client,
    org: Organization,
    django_user_model: Any,
    make_member: Any,
    other_org: Organization,
) -> None:
    pid = run_to_options(operator, org)
    # the same session loses its superuser bit: every step refuses
    user = django_user_model.objects.get(username="operator")
    user.is_superuser = False
    user.save()
    for step in ("service", "credentials", "options", "test", "bind", "finish"):
        assert operator.get(step_url(pid, step)).status_code == 403, step
    assert operator.post(step_url(pid, "finish")).status_code == 403
    # an org admin who is staff may install into their own organization only
    admin = make_member(org, Role.ADMIN, username="org-admin")
    admin.is_staff = True
    admin.save()
    client = Client()
    client.force_login(admin)
    page = client.get(reverse("admin:plugins_core_install_start"))
    assert page.status_code == 200
    refused = client.post(
        reverse("admin:plugins_core_install_start"),
        {"entry_point": "example-config", "organization": other_org.pk},
    )
    assert refused.status_code == 200 and "Select a valid choice" in refused.content.decode()
    assert start(client, org)


def test_project_owner_cannot_use_the_wizard(
    org: Organization, make_member: Any, project: Project
) -> None:
    owner = make_member(org, Role.OWNER, username="owner")
    project.owners.add(owner)
    client = Client()
    client.force_login(owner)
    response = client.get(reverse("admin:plugins_core_install_start"))
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    owner.is_staff = True  # even as staff, an owner is not an org admin
    owner.save()
    assert client.get(reverse("admin:plugins_core_install_start")).status_code == 403
    assert (
        client.post(
            reverse("admin:plugins_core_install_start"),
            {"entry_point": "example-config", "organization": org.pk},
        ).status_code
        == 403
    )


def test_test_connection_scrubs_secret_values(org: Organization) -> None:
    entry = registry.current().entries["example-config"]

    class Leaky(entry.handler):  # type: ignore[misc,name-defined]
        def test_connection(self) -> Any:
            from imbi_plugin_sdk import ConnectionResult

            return ConnectionResult.problem(
                f"rejected {self.credentials['api_token']}", token=self.credentials["api_token"]
            )

    leaky = dataclasses.replace(entry, handler=Leaky)
    outcome = wizard.test_connection(leaky, org, {}, {}, {"api_token": TOKEN})
    assert outcome["ok"] is False
    assert TOKEN not in str(outcome) and "***" in outcome["message"]

    class Crashing(entry.handler):  # type: ignore[misc,name-defined]
        def test_connection(self) -> Any:
            raise RuntimeError(self.credentials["api_token"])

    crashing = dataclasses.replace(entry, handler=Crashing)
    outcome = wizard.test_connection(crashing, org, {}, {}, {"api_token": TOKEN})
    assert outcome.pop("duration_ms") >= 0
    assert outcome == {
        "ok": False,
        "message": "plugin 'example-config' failed (RuntimeError)",
        "details": {},
    }


def test_test_connection_goes_through_the_runners_json_contract(org: Organization) -> None:
    """The wizard has no Plugin row yet; the runner still serializes the call and reply."""
    from plugins_core.serving.runner import InProcessRunner

    entry = registry.current().entries["example-config"]
    texts: list[str] = []

    class Recording(InProcessRunner):
        def transport(self, call_text: str, *args: Any, **kwargs: Any) -> str:
            texts.append(call_text)
            reply = super().transport(call_text, *args, **kwargs)
            texts.append(reply)
            return reply

    outcome = wizard.test_connection(entry, org, {}, {}, {"api_token": TOKEN}, runner=Recording())
    call, reply = (json.loads(text) for text in texts)
    assert (call["entry_point"], call["method"]) == ("example-config", "test_connection")
    assert call["context"]["organization"] == org.slug
    assert reply["result"]["ok"] is outcome["ok"]

    class Garbage(entry.handler):  # type: ignore[misc,name-defined]
        def test_connection(self) -> Any:
            return {"ok": True}

    outcome = wizard.test_connection(
        dataclasses.replace(entry, handler=Garbage), org, {}, {}, {"api_token": TOKEN}
    )
    assert outcome["ok"] is False
    assert outcome["message"] == (
        "plugin 'example-config' returned an invalid test_connection result: "
        "expected ConnectionResult, got dict"
    )


def test_test_connection_runs_in_the_sample_projects_context(
    org: Organization, project: Project
) -> None:
    entry = registry.current().entries["example-static"]

    class Echo(entry.handler):  # type: ignore[misc,name-defined]
        def test_connection(self) -> Any:
            from imbi_plugin_sdk import ConnectionResult

            ctx = self.context
            return ConnectionResult.success(
                f"{ctx.project_slug} {ctx.project_type} {ctx.tab} {ctx.search_template}"
            )

    echo = dataclasses.replace(entry, handler=Echo)
    outcome = wizard.test_connection(
        echo, org, {}, {}, {}, project=project, search_template="/${org}/${project}/"
    )
    assert outcome["message"] == "billing api configuration /acme/billing/"
    outcome = wizard.test_connection(echo, org, {}, {}, {})
    assert outcome["message"] == "None None  "
