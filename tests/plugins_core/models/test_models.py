"""Invariants of plugin data, enforced by the database and by clean()."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from imbi.core.models import Organization, Project, ProjectType
from plugins_core.models import (
    Plugin,
    ProjectPlugin,
    ProjectTypePlugin,
    ThirdPartyService,
)


def make_plugin(
    org: Organization,
    slug: str = "aws-ssm",
    plugin_type: str = "configuration",
    service: ThirdPartyService | None = None,
) -> Plugin:
    service = (
        service
        or ThirdPartyService.objects.get_or_create(
            organization=org, slug="svc", defaults={"vendor": "aws", "name": "AWS"}
        )[0]
    )
    return Plugin.objects.create(
        organization=org, service=service, slug=slug, plugin_type=plugin_type, handler=slug
    )


def test_second_default_for_a_tab_is_rejected_by_the_database(
    project_type: ProjectType, org: Organization
) -> None:
    first = make_plugin(org, "one")
    second = make_plugin(org, "two")
    ProjectTypePlugin.objects.create(
        project_type=project_type, plugin=first, tab="configuration", default=True
    )
    with pytest.raises(IntegrityError, match="projecttypeplugin_one_default"), transaction.atomic():
        ProjectTypePlugin.objects.create(
            project_type=project_type, plugin=second, tab="configuration", default=True
        )
    # Non-default second binding is fine.
    ProjectTypePlugin.objects.create(project_type=project_type, plugin=second, tab="configuration")


def test_second_default_on_a_project_is_rejected_by_the_database(
    project: Project, org: Organization
) -> None:
    ProjectPlugin.objects.create(
        project=project, plugin=make_plugin(org, "a", "logs"), tab="logs", default=True
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        ProjectPlugin.objects.create(
            project=project, plugin=make_plugin(org, "b", "logs"), tab="logs", default=True
        )


def test_cross_org_binding_is_rejected(
    project: Project, project_type: ProjectType, other_org: Organization
) -> None:
    foreign = make_plugin(other_org, "foreign")
    binding = ProjectPlugin(project=project, plugin=foreign, tab="configuration")
    with pytest.raises(ValidationError) as caught:
        binding.full_clean()
    assert "another organization" in str(caught.value.message_dict["plugin"])
    # And the database refuses it even when clean() is bypassed.
    with pytest.raises(IntegrityError, match="plugin_same_org"), transaction.atomic():
        ProjectPlugin.objects.create(project=project, plugin=foreign, tab="configuration")
    with pytest.raises(IntegrityError, match="plugin_same_org"), transaction.atomic():
        ProjectTypePlugin.objects.create(
            project_type=project_type, plugin=foreign, tab="configuration"
        )
    # Forging the organization column to match the plugin trips the scope's key instead.
    with pytest.raises(IntegrityError, match="scope_same_org"), transaction.atomic():
        ProjectPlugin.objects.create(
            project=project, plugin=foreign, tab="configuration", organization=other_org
        )


def test_plugin_on_another_orgs_service_is_rejected(
    org: Organization, other_org: Organization
) -> None:
    service = ThirdPartyService.objects.create(
        organization=other_org, vendor="x", name="X", slug="x"
    )
    plugin = Plugin(organization=org, service=service, slug="p", plugin_type="logs", handler="p")
    with pytest.raises(ValidationError):
        plugin.full_clean()
    with pytest.raises(IntegrityError, match="plugin_service_same_org"), transaction.atomic():
        plugin.save()


def test_project_with_another_orgs_type_is_rejected(
    org: Organization, other_org: Organization
) -> None:
    foreign_type = ProjectType.objects.create(organization=other_org, slug="t", name="T")
    project = Project(organization=org, project_type=foreign_type, slug="p", name="P")
    with pytest.raises(ValidationError):
        project.full_clean()
    with pytest.raises(IntegrityError, match="project_type_same_org"), transaction.atomic():
        project.save()


def test_tab_must_match_plugin_type(project: Project, org: Organization) -> None:
    logs_plugin = make_plugin(org, "logs-plugin", "logs")
    binding = ProjectPlugin(project=project, plugin=logs_plugin, tab="configuration")
    with pytest.raises(ValidationError) as caught:
        binding.full_clean()
    assert "cannot serve the configuration tab" in str(caught.value.message_dict["tab"])
    with pytest.raises(IntegrityError, match="tab_is_plugin_type"), transaction.atomic():
        binding.save()


def test_slugs_are_unique_per_organization(org: Organization, other_org: Organization) -> None:
    make_plugin(org, "same")
    make_plugin(other_org, "same")  # another organization may reuse it
    with pytest.raises(IntegrityError, match="plugin_slug_org"), transaction.atomic():
        make_plugin(org, "same")
    ProjectType.objects.create(organization=other_org, slug="api", name="API")
    with pytest.raises(IntegrityError), transaction.atomic():
        ProjectType.objects.create(organization=org, slug="api", name="Again")
        ProjectType.objects.create(organization=org, slug="api", name="Again")


def test_service_settings_refuse_secrets(org: Organization) -> None:
    service = ThirdPartyService(
        organization=org, vendor="v", name="V", slug="v", settings={"api_token": "abc"}
    )
    with pytest.raises(ValidationError) as caught:
        service.full_clean()
    assert "settings" in caught.value.message_dict
    service.settings = {"region": "us-east-1", "base_url": "https://api.example.com"}
    service.full_clean()


def test_binding_organization_is_derived_from_its_scope(
    project: Project, org: Organization, **_: Any
) -> None:
    binding = ProjectPlugin.objects.create(
        project=project, plugin=make_plugin(org), tab="configuration"
    )
    assert binding.organization_id == org.pk
