"""Shared fixtures: organizations, users with roles, a service with a plugin."""

from __future__ import annotations

from typing import Any

import pytest

from imbi.core.models import Membership, Organization, Project, ProjectType, Role


@pytest.fixture
def org(db: Any) -> Organization:
    return Organization.objects.create(slug="acme", name="Acme")


@pytest.fixture
def other_org(db: Any) -> Organization:
    return Organization.objects.create(slug="globex", name="Globex")


@pytest.fixture
def project_type(org: Organization) -> ProjectType:
    return ProjectType.objects.create(organization=org, slug="api", name="API")


@pytest.fixture
def project(org: Organization, project_type: ProjectType) -> Project:
    return Project.objects.create(
        organization=org, project_type=project_type, slug="billing", name="Billing"
    )


@pytest.fixture
def make_member(db: Any, django_user_model: Any) -> Any:
    def make(
        org: Organization,
        role: str = Role.VIEWER,
        *,
        secrets: bool = False,
        username: str | None = None,
    ) -> Any:
        user = django_user_model.objects.create_user(
            username=username or f"{role}-{org.slug}", password="pw-for-tests"
        )
        Membership.objects.create(user=user, organization=org, role=role, can_read_secrets=secrets)
        return user

    return make


@pytest.fixture(scope="session", autouse=True)
def plugins_settled() -> None:
    """Tests see every plugin's final status: the registry's first snapshot has untrusted
    plugins ``loading`` while their sandboxed imports run in the background (about the
    import deadline, once per session). tests/plugins_core/registry/test_loading.py covers that
    state."""
    from plugins_core import registry

    registry.wait_loaded()
