"""Invalidation of cached resolution plans: bump ``Organization.config_version``.

Any save or delete of a row that resolution reads (plugins, services, credentials, bindings,
projects, project types) bumps its organization's version in the same transaction. Plans
cached by ``resolution`` are keyed by that version, so every process sees a change on its
next request, with no message bus. ``QuerySet.update()`` bypasses signals: code that
bulk-updates these models must call ``bump()`` itself.
"""

from __future__ import annotations

from typing import Any

from django.db.models import F
from django.db.models.signals import post_delete, post_save

from imbi.core.models import Organization, Project, ProjectType
from plugins_core.models import (
    Plugin,
    ProjectPlugin,
    ProjectTypePlugin,
    ServiceApplication,
    ThirdPartyService,
)


def bump(organization_id: int | None) -> None:
    if organization_id:
        Organization.objects.filter(pk=organization_id).update(
            config_version=F("config_version") + 1
        )


def _organization_id(instance: Any) -> int | None:
    if isinstance(instance, Organization):  # a renamed org changes ${org} expansions
        return int(instance.pk)
    if isinstance(instance, ServiceApplication):
        return (
            ThirdPartyService.objects.filter(pk=instance.service_id)
            .values_list("organization_id", flat=True)
            .first()
        )
    return getattr(instance, "organization_id", None)


def _changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    if kwargs.get("raw"):
        return  # fixtures being loaded
    bump(_organization_id(instance))


WATCHED = (
    Plugin,
    ThirdPartyService,
    ServiceApplication,
    ProjectTypePlugin,
    ProjectPlugin,
    Project,
    ProjectType,
    Organization,
)


def connect() -> None:
    for model in WATCHED:
        post_save.connect(_changed, sender=model, dispatch_uid=f"imbi-plan-{model.__name__}")
        post_delete.connect(_changed, sender=model, dispatch_uid=f"imbi-plan-{model.__name__}-d")
