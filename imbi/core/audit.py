"""The audit trail: ``record`` writes an ``AuditEvent`` (values are never recorded) and
``events`` reads an organization's events, filtered and keyset-paginated."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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


@dataclass(frozen=True, slots=True)
class Page:
    events: list[AuditEvent]
    next_before: int | None


def events(
    organization: Organization,
    *,
    action: str | None = None,
    actor: str | None = None,
    plugin: str | None = None,
    project_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> Page:
    """One page of ``organization``'s events, newest first, keyset-paginated by id."""
    rows = AuditEvent.objects.filter(organization=organization)
    if action:
        rows = rows.filter(action=action)
    if actor:
        rows = rows.filter(actor_name=actor)
    if plugin:
        rows = rows.filter(plugin_slug=plugin)
    if project_id:
        rows = rows.filter(project_id=project_id)
    if since:
        rows = rows.filter(created_at__gte=since)
    if until:
        rows = rows.filter(created_at__lt=until)
    if before_id:
        rows = rows.filter(id__lt=before_id)
    found = list(rows.order_by("-id")[: limit + 1])
    more = len(found) > limit
    found = found[:limit]
    return Page(found, found[-1].pk if more and found else None)


def event_out(event: AuditEvent) -> dict[str, Any]:
    return {
        "id": event.pk,
        "created_at": event.created_at,
        "actor": event.actor_name,
        "action": event.action,
        "project": event.project_id,
        "plugin": event.plugin_slug,
        "key": event.key,
        "detail": event.detail,
    }
