"""Who may do what: the one module every surface (REST API, project pages, admin, install
wizard) asks. The table in docs/operators.md and docs/api.md is checked against these
functions and real requests (tests/imbi/core/test_permission_table.py); ADR 0010 explains it.

Members (by organization role, viewer < editor < owner < admin):

- every member reads keys, values (secrets masked), logs and the bindings of the
  organization's projects; revealing a secret value needs the ``can_read_secrets`` grant;
- configuration writes need editor or above;
- a project's own bindings need admin, or owner of that very project;
- project-type bindings need admin.

Operators (``is_operator``: active staff who are admins of the organization) additionally
work in the admin and the install wizard: plugins, services, credentials, bindings,
memberships and roles, project types, projects and the audit trail of *their* organizations
only (``administered_organizations``). Installing a plugin is an operator action on every
surface (API included), because it creates the service that credentials are sent to.

Superusers are admins and operators everywhere; only they create or delete organizations and
manage users, groups and tokens (they span organizations).

Anything outside the caller's organizations answers 404, exactly like something missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import OuterRef, QuerySet, Subquery
from django.http import Http404

from .models import ROLE_RANK, Membership, Organization, Project, ProjectType, Role


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


def is_org_admin(user: Any, organization: Organization) -> bool:
    return _rank(user, organization) >= ROLE_RANK[Role.ADMIN]


def is_superuser(user: Any) -> bool:
    return bool(getattr(user, "is_active", False) and getattr(user, "is_superuser", False))


def _is_staff(user: Any) -> bool:
    return bool(getattr(user, "is_active", False) and getattr(user, "is_staff", False))


def administered_organizations(user: Any) -> QuerySet[Organization]:
    """Organizations whose admin surfaces ``user`` may use: every one for an active superuser,
    the ones where an active staff user holds the admin role, none for anybody else."""
    if is_superuser(user):
        return Organization.objects.all()
    if not _is_staff(user):
        return Organization.objects.none()
    return Organization.objects.filter(memberships__user_id=user.pk, memberships__role=Role.ADMIN)


def administered_organization_ids(user: Any) -> frozenset[int] | None:
    """Ids of ``administered_organizations``; ``None`` means every organization (superuser).
    Cached on the user object for the request."""
    if is_superuser(user):
        return None
    cached: frozenset[int] | None = user.__dict__.get("_imbi_administered")
    if cached is None:
        cached = frozenset(administered_organizations(user).values_list("pk", flat=True))
        user.__dict__["_imbi_administered"] = cached
    return cached


def administers(user: Any, organization_id: int | None) -> bool:
    """May ``user`` operate organization ``organization_id`` in the admin and the wizard?"""
    ids = administered_organization_ids(user)
    if ids is None:
        return True
    return organization_id is not None and organization_id in ids


def administers_any(user: Any) -> bool:
    """Does ``user`` see anything at all in the admin (superuser, or operator somewhere)?"""
    ids = administered_organization_ids(user)
    return ids is None or bool(ids)


def is_operator(user: Any, organization: Organization) -> bool:
    """Active staff who are superusers or admins of ``organization``: installs plugins
    (wizard and API), edits its services, credentials, plugins, bindings and members."""
    return _is_staff(user) and administers(user, organization.pk)


# Plugin installation is an operator action (see the module docstring).
installable_organizations = administered_organizations
can_install = is_operator


@dataclass(frozen=True, slots=True)
class Grant:
    """What a user may do in one organization, loaded with the object in one query."""

    role: str
    read_secrets: bool

    @property
    def rank(self) -> int:
        return ROLE_RANK.get(self.role, 0)

    def at_least(self, role: str) -> bool:
        return self.rank >= ROLE_RANK[role]


def _grant_annotations(user: Any, org_ref: str) -> dict[str, Any]:
    members = Membership.objects.filter(user_id=user.pk, organization_id=OuterRef(org_ref))
    return {
        "grant_role": Subquery(members.values("role")[:1]),
        "grant_secrets": Subquery(members.values("can_read_secrets")[:1]),
    }


def _grant(user: Any, obj: Any) -> Grant | None:
    if getattr(user, "is_superuser", False):
        return Grant(role=Role.ADMIN, read_secrets=True)
    if not obj.grant_role:
        return None
    return Grant(role=obj.grant_role, read_secrets=bool(obj.grant_secrets))


# Hand-written because it runs on every tab request: the ORM spends longer compiling the
# equivalent select_related + subquery annotation than PostgreSQL spends answering it.
_PROJECT_SQL = """
SELECT p.id, p.slug, p.name, p.organization_id, p.project_type_id,
       o.slug, o.name, o.config_version, t.slug, t.name, m.role, m.can_read_secrets
  FROM core_project p
  JOIN core_organization o ON o.id = p.organization_id
  JOIN core_projecttype t ON t.id = p.project_type_id
  LEFT JOIN core_membership m ON m.organization_id = o.id AND m.user_id = %s
 WHERE o.slug = %s AND p.id = %s
"""


def _instance(model: Any, db: str, **values: Any) -> Any:
    """A model instance from selected columns; the rest stay deferred (loaded on access).
    ``from_db`` pairs values with the model's concrete fields in *their* order."""
    names = [f.attname for f in model._meta.concrete_fields if f.attname in values]
    return model.from_db(db, names, [values[name] for name in names])


_PRELOADED = "_imbi_preloaded_project"


def preload_project(user: Any, org_slug: str, project_id: int, row: tuple[Any, ...] | None) -> None:
    """Hand ``load_project`` the row of ``_PROJECT_SQL``'s columns (``None``: no such
    project) that an authentication already read for this request's user, so the request
    does not ask the database again (``imbi.api.authentication``: token and project in one
    query). Only for the same organization and project, and only once."""
    setattr(user, _PRELOADED, (org_slug, project_id, row))


def load_project(user: Any, org_slug: str, project_id: int) -> tuple[Project, Grant]:
    """The project (with its organization and type) and the user's grant, in one query
    (none when the request's authentication already read them: ``preload_project``).

    Raises ``Http404`` when the project does not exist, is in another organization, or the
    user is not a member: another organization's resources are indistinguishable from none.
    """
    if not getattr(user, "is_authenticated", False):
        raise Http404
    preloaded = getattr(user, _PRELOADED, None)
    if preloaded is not None and preloaded[:2] == (org_slug, project_id):
        delattr(user, _PRELOADED)
        row = preloaded[2]
    else:
        with connection.cursor() as cursor:
            cursor.execute(_PROJECT_SQL, [user.pk, org_slug, project_id])
            row = cursor.fetchone()
    if row is None:
        raise Http404
    pid, slug, name, org_id, type_id, org_slug_, org_name, version, t_slug, t_name, role, sec = row
    if getattr(user, "is_superuser", False):
        grant = Grant(role=Role.ADMIN, read_secrets=True)
    elif role:
        grant = Grant(role=role, read_secrets=bool(sec))
    else:
        raise Http404
    db = connection.alias
    project = _instance(
        Project, db, id=pid, slug=slug, name=name, organization_id=org_id, project_type_id=type_id
    )
    project.organization = _instance(
        Organization, db, id=org_id, slug=org_slug_, name=org_name, config_version=version
    )
    project.project_type = _instance(
        ProjectType, db, id=type_id, organization_id=org_id, slug=t_slug, name=t_name
    )
    return project, grant


def load_organization(user: Any, org_slug: str) -> tuple[Organization, Grant]:
    """The organization and the user's grant in it, in one query (``Http404`` otherwise)."""
    if not getattr(user, "is_authenticated", False):
        raise Http404
    org = (
        Organization.objects.annotate(**_grant_annotations(user, "pk"))
        .filter(slug=org_slug)
        .first()
    )
    grant = _grant(user, org) if org is not None else None
    if org is None or grant is None:
        raise Http404
    return org, grant


def can_bind_project_grant(user: Any, grant: Grant, project: Project) -> bool:
    """Org admins bind anywhere; owners (role owner) bind on projects they own."""
    if grant.at_least(Role.ADMIN):
        return True
    return grant.at_least(Role.OWNER) and project.owners.filter(pk=user.pk).exists()
