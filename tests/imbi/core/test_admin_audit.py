"""Every change made through the admin is audited.

``test_every_admin_change_and_delete_is_audited`` walks ``admin.site._registry``: for each
model whose admin lets a superuser change rows, it submits the real change form (built from
the admin's own form and inline formsets) with one field changed, then deletes the row, and
proves each writes an ``AuditEvent``. A newly registered model fails here until it has a row
in ``_rows`` below, so nobody registers an unaudited admin by accident. The other tests check
that membership events name who, whom, the old and new role and the read-secrets grant
(plugin-data details: tests/plugins_core/pages/test_admin_audit.py).
"""

from __future__ import annotations

import base64
from html.parser import HTMLParser
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db.models import Model
from django.test import Client, RequestFactory
from django.urls import reverse
from rest_framework.authtoken.models import Token, TokenProxy

from imbi.core.models import AuditEvent, Membership, Organization, Project, ProjectType, Role
from plugins_core.models import (
    IndexedArtifact,
    InstalledDistribution,
    Plugin,
    PluginIndex,
    PluginPolicy,
    ProjectPlugin,
    ProjectTypePlugin,
    ServiceApplication,
    ThirdPartyService,
)

pytestmark = pytest.mark.django_db

# Fields the walk may change, in order of preference; the value must stay valid.
EDITABLE = {
    "priority": lambda value: str(int(value) + 1),  # plugin indexes: their name is a slug
    "name": lambda value: f"{value} (renamed)",
    "first_name": lambda value: f"{value}x",
    "description": lambda value: f"{value} more",
    "search_template": lambda value: "${org}/${project}/audited/",
}


def _public_key() -> str:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    raw = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def _rows(org: Organization, superuser: Any, django_user_model: Any) -> dict[type[Model], Any]:
    """One row of every model the admin shows (``TokenProxy`` is addressed by user id)."""
    member = django_user_model.objects.create_user("member", password="pw")
    Membership.objects.create(user=member, organization=org, role=Role.VIEWER)
    ptype = ProjectType.objects.create(organization=org, slug="api", name="API")
    project = Project.objects.create(organization=org, project_type=ptype, slug="p", name="P")
    service = ThirdPartyService.objects.create(
        organization=org, vendor="example", name="Example", slug="example"
    )
    ServiceApplication.objects.create(service=service, credentials={"api_token": "t"})
    plugin = Plugin.objects.create(
        organization=org,
        service=service,
        slug="cfg",
        name="Config",
        plugin_type="configuration",
        handler="example-config",
    )
    token_user = django_user_model.objects.create_user("token-user", password="pw")
    Token.objects.create(user=token_user)
    return {
        Organization: org,
        ProjectType: ptype,
        Project: project,
        ThirdPartyService: service,
        Plugin: plugin,
        ProjectTypePlugin: ProjectTypePlugin.objects.create(
            project_type=ptype, plugin=plugin, tab="configuration"
        ),
        ProjectPlugin: ProjectPlugin.objects.create(
            project=project, plugin=plugin, tab="configuration"
        ),
        django_user_model: member,
        Group: Group.objects.create(name="readers"),
        TokenProxy: TokenProxy.objects.get(user=token_user),
        AuditEvent: AuditEvent.objects.create(action=AuditEvent.Action.CONFIG_SET, key="k"),
        PluginIndex: PluginIndex.objects.create(
            name="curated", url="/srv/index", index_keys=[_public_key()], root_keys=[_public_key()]
        ),
        IndexedArtifact: IndexedArtifact.objects.create(
            distribution="imbi-plugin-demo",
            version="1.0.0",
            sha256="0" * 64,
            size=1,
            index="curated",
            index_version=1,
            publisher="acme",
            entry={},
            certificate={},
        ),
        PluginPolicy: PluginPolicy.objects.create(organization=org),
        InstalledDistribution: InstalledDistribution.objects.create(
            name="imbi-plugin-demo",
            version="1.0.0",
            sha256="0" * 64,
            size=1,
            filename="imbi_plugin_demo-1.0.0-py3-none-any.whl",
            source="test",
            generation=1,
        ),
    }


class FormReader(HTMLParser):
    """The fields of the admin's change form, as a browser would submit them unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self.in_form = False
        self.select: tuple[str, bool] | None = None
        self.textarea: str | None = None
        self.text = ""

    def _add(self, name: str, value: str) -> None:
        self.data.setdefault(name, []).append(value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("id", "").endswith("_form"):
            self.in_form = True
        if not self.in_form or "disabled" in a:
            return
        name = a.get("name", "")
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self._add(name, a.get("value") or "on")
            elif kind not in ("submit", "button", "file"):
                self._add(name, a.get("value", ""))
        elif tag == "select" and name:
            self.select = (name, "multiple" in a)
        elif tag == "option" and self.select and "selected" in a:
            self._add(self.select[0], a.get("value", ""))
        elif tag == "textarea" and name:
            self.textarea, self.text = name, ""

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.in_form = False
        elif tag == "select":
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            self._add(self.textarea, self.text.removeprefix("\n"))
            self.textarea = None


def change_post(client: Client, url: str) -> tuple[dict[str, Any], str | None]:
    """The change page's form data, unchanged but for one field from ``EDITABLE``."""
    response = client.get(url)
    assert response.status_code == 200, url
    reader = FormReader()
    reader.feed(response.content.decode())
    data: dict[str, Any] = {k: v if len(v) > 1 else v[0] for k, v in reader.data.items()}
    edited = next((name for name in EDITABLE if name in data), None)
    if edited is not None:
        data[edited] = EDITABLE[edited](data[edited])
    return data, edited


def _object_id(model: type[Model], obj: Any) -> Any:
    return obj.user_id if model is TokenProxy else obj.pk


@pytest.fixture
def root(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw")


def test_every_admin_change_and_delete_is_audited(
    org: Organization, root: Any, django_user_model: Any
) -> None:
    rows = _rows(org, root, django_user_model)
    client = Client()
    client.force_login(root)
    request = RequestFactory().get("/")
    request.user = root
    changed, deleted = [], []
    registry = sorted(admin.site._registry.items(), key=lambda i: i[0]._meta.label)
    for model, model_admin in registry:
        assert model in rows, f"add a row of {model._meta.label} to _rows"
        obj = rows[model]
        if not model_admin.has_change_permission(request, obj):
            continue
        url = reverse(_admin_url(model, "change"), args=(_object_id(model, obj),))
        data, edited = change_post(client, url)
        if edited is None:
            continue
        before = AuditEvent.objects.count()
        response = client.post(url, data)
        assert response.status_code == 302, (model, response.content.decode()[:3000])
        events = list(AuditEvent.objects.order_by("id")[before:])
        assert len(events) == 1, (model, events)
        label = str(model._meta.get_field(edited).verbose_name)
        assert events[0].actor == root, model
        assert f"changed {label}".lower() in events[0].detail.lower(), model
        assert events[0].key == f"{model._meta.label_lower}:{obj.pk}"
        changed.append(model._meta.label)
    # Delete rows nothing else points at first, so that no cascade takes a row before its turn.
    for model in _deletion_order([m for m, _ in registry]):
        model_admin, obj = admin.site._registry[model], rows[model]
        if not model_admin.has_delete_permission(request, obj):
            continue
        assert _exists(model, obj), f"{model} went in a cascade"
        before = AuditEvent.objects.count()
        url = reverse(_admin_url(model, "delete"), args=(_object_id(model, obj),))
        response = client.post(url, {"post": "yes"})
        assert response.status_code == 302, (model, response.content.decode()[:3000])
        assert not _exists(model, obj), model
        events = list(AuditEvent.objects.order_by("id")[before:])
        assert [e.detail.split(" ")[0] for e in events] == ["deleted"], (model, events)
        deleted.append(model._meta.label)
    assert {"core.Organization", "core.Project", "plugins_core.Plugin"} <= set(changed)
    assert {"auth.User", "auth.Group", "plugins_core.ProjectPlugin"} <= set(deleted)
    assert "core.Organization" in deleted
    assert "core.AuditEvent" not in changed + deleted  # the trail is append-only
    token = rows[TokenProxy].key
    assert not AuditEvent.objects.filter(detail__contains=token).exists()  # str(token) is key


def _exists(model: type[Model], obj: Any) -> bool:
    lookup = {"key": obj.key} if model is TokenProxy else {"pk": obj.pk}
    return bool(model._default_manager.filter(**lookup).exists())


def _admin_url(model: type[Model], view: str) -> str:
    return f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}"


def _deletion_order(models: list[type[Model]]) -> list[type[Model]]:
    """Models that point at others come before those they point at (no cascade steals a row
    the walk has not reached yet)."""

    def targets(model: type[Model]) -> set[type[Model]]:
        return {
            f.related_model._meta.concrete_model
            for f in model._meta.get_fields()
            if f.is_relation and f.concrete and f.related_model is not None
        } - {model._meta.concrete_model}

    order: list[type[Model]] = []
    remaining = list(models)
    while remaining:
        # a model is ready when no other remaining model points at it
        ready = [
            m
            for m in remaining
            if not any(m._meta.concrete_model in targets(o) for o in remaining if o is not m)
        ] or remaining[:1]
        order += ready
        remaining = [m for m in remaining if m not in ready]
    return order


# --------------------------------------------------------------------------- the details


@pytest.fixture
def operator_client(org: Organization, django_user_model: Any) -> Client:
    user = django_user_model.objects.create_user("op", password="pw", is_staff=True)
    Membership.objects.create(user=user, organization=org, role=Role.ADMIN)
    client = Client()
    client.force_login(user)
    return client


def _org_post(org: Organization, rows: list[dict[str, Any]], initial: int) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": org.name,
        "memberships-TOTAL_FORMS": str(len(rows)),
        "memberships-INITIAL_FORMS": str(initial),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        data.update({f"memberships-{i}-{k}": v for k, v in row.items() if v is not None})
    return data


def test_membership_changes_record_who_whom_roles_and_grant(
    org: Organization, operator_client: Client, django_user_model: Any
) -> None:
    bob = django_user_model.objects.create_user("bob", password="pw")
    url = reverse("admin:core_organization_change", args=(org.pk,))
    op = Membership.objects.get(organization=org)
    own = {"id": op.pk, "user": op.user_id, "role": Role.ADMIN, "organization": org.pk}
    response = operator_client.post(
        url, _org_post(org, [own, {"user": bob.pk, "role": Role.VIEWER}], 1)
    )
    assert response.status_code == 302
    bob_row = Membership.objects.get(user=bob)
    bob_form = {"id": bob_row.pk, "user": bob.pk, "organization": org.pk}
    response = operator_client.post(
        url,
        _org_post(org, [own, {**bob_form, "role": Role.ADMIN, "can_read_secrets": "on"}], 2),
    )
    assert response.status_code == 302
    response = operator_client.post(
        url, _org_post(org, [own, {**bob_form, "role": Role.ADMIN, "DELETE": "on"}], 2)
    )
    assert response.status_code == 302
    events = list(
        AuditEvent.objects.filter(action__startswith="membership.")
        .order_by("id")
        .values_list("action", "actor_name", "subject", "organization__slug", "detail")
    )
    assert events == [
        ("membership.add", "op", "bob", "acme", "bob: none -> viewer"),
        ("membership.change", "op", "bob", "acme", "bob: viewer -> admin + read secrets"),
        ("membership.remove", "op", "bob", "acme", "bob: admin + read secrets -> none"),
    ]
