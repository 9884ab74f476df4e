"""Admin forms submitted exactly as served: fetch the page, post what its form contains.

Issue 22: the service change form of a service whose template declares settings served no
``organization`` input and then refused the submit with "organization: This field is
required"; the tests posted ``organization`` themselves and missed it. Here every registered
admin model's change page is submitted unchanged, and every add page's errors must land on
fields the page serves, for a superuser and for an organization's operator
(``tests/served_forms.py`` builds the data a browser would send).
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.test import Client, RequestFactory
from django.urls import reverse
from rest_framework.authtoken.models import TokenProxy

from imbi.core.models import Membership, Organization, Role
from plugins_core.models import ThirdPartyService
from plugins_core.provisioning.install import install_from_template
from tests.imbi.core.test_admin_audit import _admin_url, _object_id, _rows
from tests.served_forms import form_in, submit_as_served

pytestmark = pytest.mark.django_db


def _error_fields(response: Any) -> set[str]:
    """Names (as posted) of the fields with errors on a re-rendered admin form."""
    context = response.context
    names: set[str] = set()
    adminform = context.get("adminform")
    if adminform is not None:
        form = adminform.form
        names |= {form.add_prefix(n) for n in form.errors if n != "__all__"}
    for inline in context.get("inline_admin_formsets") or []:
        for form in inline.formset.forms:
            names |= {form.add_prefix(n) for n in form.errors if n != "__all__"}
    return names


def test_service_with_declared_settings_saves_as_served(
    django_user_model: Any, org: Organization
) -> None:
    """The defect itself: GET the change page, change one setting, POST exactly that."""
    operator = django_user_model.objects.create_user("op", password="pw", is_staff=True)
    Membership.objects.create(user=operator, organization=org, role=Role.ADMIN)
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    service = install_from_template(org, "aws-ssm").service
    url = reverse("admin:plugins_core_thirdpartyservice_change", args=[service.pk])
    for user, region in ((root, "eu-central-1"), (operator, "us-east-1")):
        client = Client()
        client.force_login(user)
        page = client.get(url).content.decode()
        served = form_in(page, id="thirdpartyservice_form")
        assert "region" in served.names() and "organization" not in served.names()
        response = submit_as_served(client, url, {"region": region}, id="thirdpartyservice_form")
        assert response.status_code == 302, response.content.decode()[:3000]
        assert ThirdPartyService.objects.get(pk=service.pk).settings["region"] == region


def _clients(org: Organization, django_user_model: Any) -> dict[str, Any]:
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    operator = django_user_model.objects.create_user("op", password="pw", is_staff=True)
    Membership.objects.create(user=operator, organization=org, role=Role.ADMIN)
    return {"superuser": root, "operator": operator}


@pytest.mark.parametrize("who", ["superuser", "operator"])
def test_every_admin_change_form_saves_unchanged_as_served(
    who: str, org: Organization, django_user_model: Any
) -> None:
    user = _clients(org, django_user_model)[who]
    rows = _rows(org, user, django_user_model)
    templated = install_from_template(org, "aws-ssm").service
    client = Client()
    client.force_login(user)
    request = RequestFactory().get("/")
    request.user = user
    saved = []
    items = [(m, rows[m]) for m in sorted(admin.site._registry, key=lambda m: m._meta.label)]
    items.append((ThirdPartyService, templated))
    for model, obj in items:
        model_admin = admin.site._registry[model]
        if not model_admin.has_change_permission(request, obj):
            continue
        url = reverse(_admin_url(model, "change"), args=(_object_id(model, obj),))
        page = client.get(url)
        assert page.status_code == 200, (model, page.status_code)
        form_id = f"{model._meta.model_name}_form"
        if f'id="{form_id}"' not in page.content.decode():
            continue  # a read-only page
        response = submit_as_served(client, url, id=form_id)
        assert response.status_code == 302, (
            model,
            _error_fields(response) if response.status_code == 200 else response.status_code,
            response.content.decode()[:2000],
        )
        saved.append(model._meta.label)
    assert "plugins_core.ThirdPartyService" in saved and "core.Project" in saved, saved
    if who == "superuser":
        assert {"auth.User", "core.Organization"} <= set(saved), saved


@pytest.mark.parametrize("who", ["superuser", "operator"])
def test_every_admin_add_form_errs_only_on_fields_it_serves(
    who: str, org: Organization, django_user_model: Any
) -> None:
    user = _clients(org, django_user_model)[who]
    _rows(org, user, django_user_model)
    client = Client()
    client.force_login(user)
    request = RequestFactory().get("/")
    request.user = user
    checked = []
    for model in sorted(admin.site._registry, key=lambda m: m._meta.label):
        model_admin = admin.site._registry[model]
        if model is TokenProxy or not model_admin.has_add_permission(request):
            continue
        url = reverse(_admin_url(model, "add"))
        page = client.get(url)
        if page.status_code == 302:
            continue  # the add page leads elsewhere (the install wizard)
        assert page.status_code == 200, (model, page.status_code)
        form_id = f"{model._meta.model_name}_form"
        served = form_in(page.content.decode(), id=form_id)
        response = submit_as_served(client, url, id=form_id)
        assert response.status_code in (200, 302), (model, response.status_code)
        if response.status_code == 200:
            unserved = _error_fields(response) - served.names()
            assert not unserved, (model, unserved)
        checked.append(model._meta.label)
    assert "plugins_core.ThirdPartyService" in checked, checked
    assert get_user_model()._meta.label in checked or who == "operator"
