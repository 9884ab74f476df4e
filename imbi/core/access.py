"""Who may do what, by organization role. Every permission check in views calls these.

Roles rank viewer < editor < owner < admin. Viewers read keys and logs; secret values need
the explicit ``can_read_secrets`` grant; configuration writes need editor or above; project
bindings need admin, or owner of that very project; project-type bindings need admin.
Superusers are admins everywhere. A user with no membership sees nothing (callers answer 404).
"""

from __future__ import annotations

from typing import Any

from .models import ROLE_RANK, Membership, Organization, Project, Role


def membership(user: Any, organization: Organization) -> Membership | None:
    if not getattr(user, "is_authenticated", False):
        return None
    cache: dict[int, Membership | None] = user.__dict__.setdefault("_imbi_memberships", {})
    if organization.pk not in cache:
        cache[organization.pk] = Membership.objects.filter(
            user=user, organization=organization
        ).first()
    return cache[organization.pk]


def _rank(user: Any, organization: Organization) -> int:
    if getattr(user, "is_superuser", False):
        return ROLE_RANK[Role.ADMIN]
    member = membership(user, organization)
    return ROLE_RANK.get(member.role, 0) if member else 0


def can_view(user: Any, organization: Organization) -> bool:
    return _rank(user, organization) >= ROLE_RANK[Role.VIEWER]


def can_write_config(user: Any, organization: Organization) -> bool:
    return _rank(user, organization) >= ROLE_RANK[Role.EDITOR]


def can_read_secrets(user: Any, organization: Organization) -> bool:
    if getattr(user, "is_superuser", False):
        return True
    member = membership(user, organization)
    return bool(member and member.can_read_secrets)


def is_org_admin(user: Any, organization: Organization) -> bool:
    return _rank(user, organization) >= ROLE_RANK[Role.ADMIN]


def can_bind_project(user: Any, project: Project) -> bool:
    organization = project.organization
    if is_org_admin(user, organization):
        return True
    if _rank(user, organization) < ROLE_RANK[Role.OWNER]:
        return False
    return project.owners.filter(pk=user.pk).exists()
