"""Authorization lookups: one query, correct objects, 404 for outsiders."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.http import Http404
from django.test.utils import CaptureQueriesContext

from imbi.core import access
from imbi.core.models import Organization, Project, Role


def test_load_project_builds_the_right_objects_in_one_query(
    project: Project, org: Organization, make_member: Any
) -> None:
    user = make_member(org, Role.EDITOR, secrets=True)
    with CaptureQueriesContext(connection) as queries:
        loaded, grant = access.load_project(user, org.slug, project.pk)
        assert (loaded.pk, loaded.slug, loaded.name) == (project.pk, "billing", "Billing")
        assert (
            loaded.organization_id == org.pk and loaded.project_type_id == project.project_type_id
        )
        assert (loaded.organization.slug, loaded.organization.name) == ("acme", "Acme")
        assert loaded.project_type.slug == "api"
        assert loaded.project_type.organization_id == org.pk
    assert len(queries) == 1
    assert (grant.role, grant.read_secrets) == (Role.EDITOR, True)
    assert loaded.description == ""  # deferred fields still load on access


def test_load_project_is_404_for_outsiders_and_wrong_org(
    project: Project, org: Organization, other_org: Organization, make_member: Any
) -> None:
    outsider = make_member(other_org, Role.ADMIN)
    with pytest.raises(Http404):
        access.load_project(outsider, org.slug, project.pk)
    with pytest.raises(Http404):
        access.load_project(outsider, other_org.slug, project.pk)
    member = make_member(org, Role.VIEWER, username="member")
    with pytest.raises(Http404):
        access.load_project(member, org.slug, project.pk + 1000)
    assert access.load_project(member, org.slug, project.pk)[1].role == Role.VIEWER
