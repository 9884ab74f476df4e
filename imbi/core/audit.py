"""The audit trail: one function that records an ``AuditEvent``. Values are never recorded."""

from __future__ import annotations

from typing import Any

from .models import AuditEvent, Organization, Project


def record(
    action: str,
    *,
    actor: Any = None,
    organization: Organization | None = None,
    project: Project | None = None,
    plugin_slug: str = "",
    key: str = "",
    subject: str = "",
    detail: str = "",
) -> AuditEvent:
    user = actor if getattr(actor, "is_authenticated", False) else None
    return AuditEvent.objects.create(
        action=action,
        actor=user,
        actor_name=getattr(user, "username", "") or "system",
        organization=organization,
        project=project,
        plugin_slug=plugin_slug,
        key=key[:255],
        subject=subject[:150],
        detail=detail[:1000],
    )
