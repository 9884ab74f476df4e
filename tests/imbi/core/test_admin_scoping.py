"""The admin's tenant boundary, driven from ``admin.site._registry`` so that a newly registered
model is covered without editing this file.

An operator (staff, admin of organization A only, no Django model permissions) sees nothing of
organization B on any change list (filters and raw-id popups included), change, history or
delete page, add-page choice, or autocomplete; B's rows answer 404 exactly like missing ones;
every attempt to add or change a membership in B fails. Staff who administer nothing see
nothing. Superuser-only admins (users, groups, tokens, third-party apps) refuse operators.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group
from django.db.models import Model
from django.test import Client, RequestFactory
from django.urls import NoReverseMatch, reverse
from rest_framework.authtoken.models import Token, TokenProxy

from imbi.core import audit
from imbi.core.admin_scoping import OrgScopedAdmin, SuperuserOnlyAdmin, is_scoped
from imbi.core.models import AuditEvent, Membership, Organization, Project, ProjectType, Role
from plugins_core.models import (
    Plugin,
    ProjectPlugin,
    ProjectTypePlugin,
    ServiceApplication,
    ThirdPartyService,
)

pytestmark = pytest.mark.django_db

MARK = "globex-secret"  # every name in organization B carries it


@dataclass
class World:
    a: Organization
    b: Organization
    rows: dict[str, dict[type[Model], Model]]  # "a" / "b" -> model -> one row
    operator: Any
    b_admin: Any
    superuser: Any


def _org_rows(org: Organization, name: str, member: Any) -> dict[type[Model], Model]:
    ptype = ProjectType.objects.create(organization=org, slug=f"{name}-type", name=f"{name} type")
    project = Project.objects.create(
        organization=org, project_type=ptype, slug=f"{name}-proj", name=f"{name} project"
    )
    project.owners.add(member)
    service = ThirdPartyService.objects.create(
        organization=org, vendor=f"{name}-vendor", name=f"{name} service", slug=f"{name}-svc"
    )
    ServiceApplication.objects.create(service=service, credentials={"api_token": f"{name}-tok"})
    plugin = Plugin.objects.create(
        organization=org,
        service=service,
        slug=f"{name}-plugin",
        name=f"{name} plugin",
        plugin_type="configuration",
        handler="example-config",
    )
    type_binding = ProjectTypePlugin.objects.create(
        project_type=ptype, plugin=plugin, tab="configuration", search_template=f"{name}/"
    )
    project_binding = ProjectPlugin.objects.create(
        project=project, plugin=plugin, tab="configuration", search_template=f"{name}/"
    )
    event = audit.record(
        AuditEvent.Action.CONFIG_SET, actor=member, organization=org, key=f"{name}-key"
    )
    return {
        Organization: org,
        ProjectType: ptype,
        Project: project,
        ThirdPartyService: service,
        Plugin: plugin,
        ProjectTypePlugin: type_binding,
        ProjectPlugin: project_binding,
        AuditEvent: event,
    }


@pytest.fixture
def world(django_user_model: Any) -> World:
    a = Organization.objects.create(slug="acme", name="Acme")
    b = Organization.objects.create(slug=MARK, name=f"{MARK} org")
    operator = django_user_model.objects.create_user("operator", password="pw", is_staff=True)
    Membership.objects.create(user=operator, organization=a, role=Role.ADMIN)
    b_admin = django_user_model.objects.create_user(f"{MARK}-admin", password="pw", is_staff=True)
    Membership.objects.create(user=b_admin, organization=b, role=Role.ADMIN)
    b_viewer = django_user_model.objects.create_user(f"{MARK}-viewer", password="pw")
    Membership.objects.create(user=b_viewer, organization=b, role=Role.VIEWER)
    superuser = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    Token.objects.create(user=b_admin)
    return World(
        a=a,
        b=b,
        rows={"a": _org_rows(a, "acme", operator), "b": _org_rows(b, MARK, b_admin)},
        operator=operator,
        b_admin=b_admin,
        superuser=superuser,
    )


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _url(model: type[Model], view: str, *args: Any) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def _request(user: Any) -> Any:
    request = RequestFactory().get("/")
    request.user = user
    return request


def _registry() -> list[tuple[type[Model], Any]]:
    return sorted(admin.site._registry.items(), key=lambda item: item[0]._meta.label)


def _scoped() -> list[tuple[type[Model], OrgScopedAdmin]]:
    return [(m, a) for m, a in _registry() if isinstance(a, OrgScopedAdmin)]


def test_every_registered_admin_is_scoped_or_superuser_only() -> None:
    unscoped = [m._meta.label for m, a in _registry() if not is_scoped(a)]
    assert unscoped == []
    labels = {m._meta.label for m, _ in _scoped()}
    assert {"core.Organization", "core.Project", "plugins_core.Plugin"} <= labels


def test_the_world_has_a_row_for_every_scoped_admin(world: World) -> None:
    missing = [m._meta.label for m, _ in _scoped() if m not in world.rows["b"]]
    assert missing == [], "add a row of this model to both organizations in _org_rows"


def test_change_lists_filters_and_popups_show_nothing_of_b(world: World) -> None:
    client = _client(world.operator)
    for model, model_admin in _scoped():
        own = world.rows["a"][model]
        foreign = world.rows["b"][model]
        for query in ("", "?_popup=1&_to_field=id", "?q=secret", "?o=-1"):
            response = client.get(_url(model, "changelist") + query)
            assert response.status_code == 200, (model, query)
            html = response.content.decode()
            assert MARK not in html, (model, query)  # rows, list filter choices, counts
            assert _url(model, "change", foreign.pk) not in html, (model, query)
            if not query.startswith("?q="):
                assert _url(model, "change", own.pk) in html, (model, query)
        # every relational list filter, asked for B's value, still shows nothing of B
        for spec in model_admin.get_list_filter(client.get("/").wsgi_request):
            name = spec[0] if isinstance(spec, tuple) else spec
            if name == "organization":
                query = f"?organization__id__exact={world.b.pk}"
                response = client.get(_url(model, "changelist") + query)
                assert response.status_code == 200
                assert MARK not in response.content.decode()
                assert _url(model, "change", foreign.pk) not in response.content.decode()


def test_b_rows_answer_404_exactly_like_missing_ones(world: World) -> None:
    client = _client(world.operator)
    for model, model_admin in _scoped():
        foreign = world.rows["b"][model]
        missing = model._default_manager.order_by("-pk").first().pk + 1000  # type: ignore[union-attr]
        request = client.get("/").wsgi_request
        request.user = world.operator
        # 404 for both; an admin that refuses the view for every row (the audit trail cannot
        # be deleted) answers 403 for both
        refused = {"delete": not model_admin.has_delete_permission(request)}
        for view in ("change", "history", "delete"):
            answers = []
            for pk in (foreign.pk, missing):
                response = client.get(_url(model, view, pk))
                answers.append((response.status_code, response.content))
                expected = 403 if refused.get(view) else 404
                assert response.status_code == expected, (model, view, pk)
            assert answers[0] == answers[1], (model, view)
        response = client.post(_url(model, "delete", foreign.pk), {"post": "yes"})
        assert response.status_code == (403 if refused["delete"] else 404)
        assert model._default_manager.filter(pk=foreign.pk).exists()
        own = world.rows["a"][model]
        assert client.get(_url(model, "change", own.pk)).status_code == 200, model


def test_add_pages_offer_no_choice_of_b(world: World) -> None:
    client = _client(world.operator)
    for model, model_admin in _scoped():
        response = client.get(_url(model, "add"))
        request = response.wsgi_request
        if not model_admin.has_add_permission(request):
            assert response.status_code == 403, model
            continue
        assert response.status_code == 200, model
        assert MARK not in response.content.decode(), model


def test_change_pages_offer_no_choice_of_b(world: World) -> None:
    client = _client(world.operator)
    for model, _ in _scoped():
        html = client.get(_url(model, "change", world.rows["a"][model].pk)).content.decode()
        assert MARK not in html, model


def test_autocomplete_shows_nothing_of_b(world: World) -> None:
    """Every autocomplete the admin declares (model admins and their inlines)."""
    client = _client(world.operator)
    asked = 0
    for model, model_admin in _registry():
        request = client.get("/").wsgi_request
        request.user = world.operator
        sources = [(model, model_admin)] + [
            (inline.model, inline) for inline in model_admin.get_inline_instances(request)
        ]
        for source_model, source in sources:
            for field in source.get_autocomplete_fields(request):
                for term in ("", MARK[:4], MARK):
                    response = client.get(
                        reverse("admin:autocomplete"),
                        {
                            "app_label": source_model._meta.app_label,
                            "model_name": source_model._meta.model_name,
                            "field_name": field,
                            "term": term,
                        },
                    )
                    asked += 1
                    assert response.status_code == 200, (source_model, field)
                    texts = [r["text"] for r in response.json()["results"]]
                    assert not [t for t in texts if MARK in t], (source_model, field, term)
    assert asked >= 3


def test_member_autocomplete_lists_own_members_and_exact_usernames_only(world: World) -> None:
    client = _client(world.operator)
    url = reverse("admin:autocomplete")
    params = {"app_label": "core", "model_name": "membership", "field_name": "user"}
    texts = [r["text"] for r in client.get(url, {**params, "term": ""}).json()["results"]]
    assert texts == ["operator"]
    exact = client.get(url, {**params, "term": f"{MARK.upper()}-ADMIN"}).json()["results"]
    assert [r["text"] for r in exact] == [f"{MARK}-admin"]  # to add someone you name them
    # anyone else's autocomplete on the user admin is refused
    response = client.get(url, {"app_label": "core", "model_name": "project", "field_name": "x"})
    assert response.status_code == 403
    assert client.get(_url(type(world.operator), "changelist")).status_code == 403


def _membership_post(org: Organization, rows: list[dict[str, Any]], initial: int) -> dict:
    data: dict[str, Any] = {
        "name": org.name,
        "memberships-TOTAL_FORMS": str(len(rows)),
        "memberships-INITIAL_FORMS": str(initial),
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for i, row in enumerate(rows):
        for key, value in row.items():
            data[f"memberships-{i}-{key}"] = value
    return data


def test_memberships_in_b_cannot_be_added_or_changed(world: World) -> None:
    client = _client(world.operator)
    before = sorted(Membership.objects.values_list("user_id", "organization_id", "role"))
    grab = {
        "user": world.operator.pk,
        "role": Role.ADMIN,
        "can_read_secrets": "on",
        "organization": world.b.pk,
    }
    # B's own page: 404, as for a missing organization
    response = client.post(
        _url(Organization, "change", world.b.pk), _membership_post(world.b, [grab], 0)
    )
    assert response.status_code == 404
    # a new organization (to become its admin): superusers only
    response = client.post(_url(Organization, "add"), {"slug": "mine", "name": "Mine"})
    assert response.status_code == 403
    assert not Organization.objects.filter(slug="mine").exists()
    # B's membership smuggled into A's page: refused by the formset, nothing changes
    b_membership = Membership.objects.get(organization=world.b, user=world.b_admin)
    response = client.post(
        _url(Organization, "change", world.a.pk),
        _membership_post(
            world.a,
            [{"id": b_membership.pk, "user": world.b_admin.pk, "role": Role.VIEWER}],
            1,
        ),
    )
    assert response.status_code == 302  # A's page saved; the foreign row was ignored
    assert sorted(Membership.objects.values_list("user_id", "organization_id", "role")) == before
    # a new row on A's page naming B as its organization: refused with a field error
    response = client.post(
        _url(Organization, "change", world.a.pk),
        _membership_post(world.a, [{**grab, "user": world.b_admin.pk}], 0),
    )
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.errors == [
        {"organization": ["The inline value did not match the parent instance."]}
    ]
    assert sorted(Membership.objects.values_list("user_id", "organization_id", "role")) == before
    assert not Membership.objects.filter(user=world.operator, organization=world.b).exists()
    # there is no membership admin to go around the organization page
    assert "core.Membership" not in {m._meta.label for m, _ in _registry()}


def test_staff_without_an_organization_see_nothing(world: World, django_user_model: Any) -> None:
    nobody = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    Membership.objects.create(user=nobody, organization=world.a, role=Role.OWNER)
    client = _client(nobody)
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert "have permission to view or edit anything" in index.content.decode()
    for model, _ in _registry():
        assert client.get(_url(model, "changelist")).status_code == 403, model
    for model, _ in _scoped():
        for pk in (world.rows["a"][model].pk, 10**9):
            assert client.get(_url(model, "change", pk)).status_code == 403, model


def test_superuser_only_admins_refuse_operators_and_serve_superusers(world: World) -> None:
    operator, root = _client(world.operator), _client(world.superuser)
    objects: dict[type[Model], Any] = {
        type(world.operator): world.operator.pk,
        Group: Group.objects.create(name="g").pk,
        TokenProxy: world.b_admin.pk,  # the token admin is addressed by user id
    }
    locked = [(m, a) for m, a in _registry() if isinstance(a, SuperuserOnlyAdmin)]
    assert {m for m, _ in locked} >= set(objects)
    for model, _ in locked:
        assert operator.get(_url(model, "changelist")).status_code == 403, model
        assert root.get(_url(model, "changelist")).status_code == 200, model
        if model in objects:
            assert operator.get(_url(model, "change", objects[model])).status_code == 403
            assert root.get(_url(model, "change", objects[model])).status_code == 200


def test_custom_admin_endpoints_answer_b_like_missing(world: World) -> None:
    client = _client(world.operator)
    plugin_b = world.rows["b"][Plugin]
    state = [
        client.post(reverse("admin:plugins_core_plugin_state", args=(pk,)), {"enabled": "0"})
        for pk in (plugin_b.pk, 10**9)
    ]
    assert [r.status_code for r in state] == [404, 404]
    plugin_b.refresh_from_db()
    assert plugin_b.enabled
    preview = reverse("admin:plugins_core_install_preview")
    answers = [
        client.get(preview, {"project": pk, "template": "${project}"})
        for pk in (world.rows["b"][Project].pk, 10**9)
    ]
    assert [r.status_code for r in answers] == [404, 404]
    assert answers[0].content == answers[1].content
    own = client.get(preview, {"project": world.rows["a"][Project].pk, "template": "${project}"})
    assert (own.status_code, own.json()) == (200, {"ok": True, "value": "acme-proj"})


def test_every_relation_autocomplete_shows_nothing_of_b(world: World) -> None:
    """Django's autocomplete endpoint accepts any relation of any model (not only the declared
    ones): every one answers from the target admin's scoped queryset, or refuses."""
    from django.apps import apps

    client = _client(world.operator)
    answers: dict[int, int] = {}
    for source in apps.get_models():
        for field in source._meta.get_fields():
            if not (field.is_relation and field.concrete and field.related_model):
                continue
            response = client.get(
                reverse("admin:autocomplete"),
                {
                    "app_label": source._meta.app_label,
                    "model_name": source._meta.model_name,
                    "field_name": field.name,
                    "term": "",
                },
            )
            answers[response.status_code] = answers.get(response.status_code, 0) + 1
            target = admin.site._registry.get(field.related_model)
            if response.status_code == 200:
                member_picker = source is Membership and field.name == "user"
                assert isinstance(target, OrgScopedAdmin) or member_picker, field
                texts = [r["text"] for r in response.json()["results"]]
                assert not [t for t in texts if MARK in t], (source, field.name)
            elif target is None:
                assert response.status_code == 403, (source, field.name)  # not in the admin
            elif not target.get_search_fields(None):
                assert response.status_code == 404, (source, field.name)  # nothing to search
            else:
                assert response.status_code == 403, (source, field.name)  # superuser-only
    assert answers.get(200, 0) >= 10


def test_rows_never_move_to_another_organization(world: World) -> None:
    """Not even a superuser can re-home a row: its change form has no organization field."""
    root = _client(world.superuser)
    checked = 0
    for model, model_admin in _scoped():
        if model_admin.org_path != "organization":
            continue
        response = root.get(_url(model, "change", world.rows["a"][model].pk))
        assert response.status_code == 200, model
        assert "organization" not in response.context["adminform"].form.fields, model
        checked += 1
    assert checked >= 5


def test_project_owners_must_be_members_of_its_organization(world: World) -> None:
    root = _client(world.superuser)
    project = world.rows["a"][Project]
    url = _url(Project, "change", project.pk)
    data = {
        "project_type": project.project_type_id,
        "slug": project.slug,
        "name": project.name,
        "description": "",
        "owners": [world.operator.pk, world.b_admin.pk],
    }
    response = root.post(url, data)
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "owners": [f"Owners must be members of Acme: {MARK}-admin."]
    }
    assert list(project.owners.all()) == [world.operator]
    assert root.post(url, {**data, "owners": [world.operator.pk]}).status_code == 302


def test_an_operator_cannot_leave_the_organization_without_an_admin(world: World) -> None:
    client = _client(world.operator)
    own = Membership.objects.get(user=world.operator, organization=world.a)
    row = {"id": own.pk, "user": world.operator.pk, "organization": world.a.pk}
    url = _url(Organization, "change", world.a.pk)
    for change in ({"role": Role.VIEWER}, {"role": Role.ADMIN, "DELETE": "on"}):
        response = client.post(url, _membership_post(world.a, [{**row, **change}], 1))
        assert response.status_code == 200
        formset = response.context["inline_admin_formsets"][0].formset
        assert formset.non_form_errors() == [
            "The organization must keep at least one admin; a superuser can remove the last."
        ]
    own.refresh_from_db()
    assert own.role == Role.ADMIN
    # with a second admin, stepping down is fine
    response = client.post(
        url,
        _membership_post(
            world.a,
            [{**row, "role": Role.VIEWER}, {"user": world.b_admin.pk, "role": Role.ADMIN}],
            1,
        ),
    )
    assert response.status_code == 302
    own.refresh_from_db()
    assert own.role == Role.VIEWER


def test_model_permissions_grant_nothing(world: World, django_user_model: Any) -> None:
    """The reported attack: staff holding every model permission (core, plugins, auth) but no
    admin role could open every organization and make themselves admin with read-secrets."""
    from django.contrib.auth.models import Permission

    holder = django_user_model.objects.create_user("perm-holder", password="pw", is_staff=True)
    holder.user_permissions.set(Permission.objects.all())
    client = _client(holder)
    for model, model_admin in _registry():
        assert client.get(_url(model, "changelist")).status_code == 403, model
        try:
            add = _url(model, "add")
        except NoReverseMatch:  # a page of its own, no add view (plugin distributions)
            assert not model_admin.has_add_permission(_request(holder)), model
            continue
        assert client.get(add).status_code == 403, model
    response = client.post(
        _url(Organization, "change", world.b.pk),
        _membership_post(world.b, [{"user": holder.pk, "role": Role.ADMIN}], 0),
    )
    assert response.status_code == 403
    assert not Membership.objects.filter(user=holder).exists()
    response = client.post(
        _url(type(holder), "change", holder.pk), {"username": "perm-holder", "is_superuser": "on"}
    )
    assert response.status_code == 403
    holder.refresh_from_db()
    assert not holder.is_superuser


def test_an_admin_registered_after_start_up_fails_the_system_check() -> None:
    from django.contrib.admin.models import LogEntry

    from imbi.core.checks import check_admin_scoped

    assert check_admin_scoped() == []
    admin.site.register(LogEntry)
    try:
        errors = check_admin_scoped()
    finally:
        admin.site.unregister(LogEntry)
    assert [e.id for e in errors] == ["imbi.E001"]
    assert "admin.LogEntry" in errors[0].msg
