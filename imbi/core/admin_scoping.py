"""Organization scoping and auditing for every model the admin shows.

Owns the two kinds of ``ModelAdmin`` the site may hold (``lock_down`` at start-up, and
tests/imbi/core/test_admin_scoping.py, make sure there is no third):

- ``OrgScopedAdmin`` (and ``OrgScopedInline``) for rows that belong to an organization. The
  role decides, not Django's model permissions: a superuser sees everything; an operator
  (active staff with the admin role, ``imbi.core.access.administers``) sees and changes only
  rows of organizations they administer, on the change list, the change/delete/history
  pages, list filters (only values present in their rows), foreign-key and many-to-many
  choices, autocomplete and raw-id popups (both served from the related admin's scoped
  queryset). A row of another organization answers 404 exactly like a missing one; staff
  who administer nothing get 403 everywhere, for existing and missing rows alike. Query
  string lookups (``?organization__id__exact=``) filter the already scoped queryset, and a
  row's organization is read-only once it exists: nothing moves between organizations.
  Every add, change and delete made through it writes one ``AuditEvent`` (``audit_action``,
  with Django's change message and ``audit_detail``).
- ``SuperuserOnlyAdmin`` for everything that spans organizations (users, groups, API tokens,
  and any third-party admin registered later: ``lock_down`` wraps it at start-up).

The user admin additionally answers the membership inline's autocomplete for operators, with
the smallest answer that lets them add a member: users already in an organization they
administer (substring match on the username) and any other active user only on an exact,
case-insensitive username match. Nothing lists the members of other organizations.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from django.contrib import admin
from django.contrib.admin import RelatedOnlyFieldListFilter
from django.contrib.admin.models import LogEntry
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from . import access, audit
from .models import AuditEvent, Organization


def change_text(message: Any) -> str:
    """Django's admin change message (a JSON list, or text) as the sentence it shows."""
    if not message:
        return ""
    text = message if isinstance(message, str) else json.dumps(message)
    return str(LogEntry(change_message=text).get_change_message())


def _user_queryset_for(request: HttpRequest) -> QuerySet[Any] | None:
    """Users an operator may pick as project owners: members of organizations they run."""
    ids = access.administered_organization_ids(request.user)
    if ids is None:
        return None
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(memberships__organization_id__in=ids).distinct()


class _ScopedChoices:
    """Foreign-key and many-to-many choices limited to what the operator administers."""

    admin_site: admin.AdminSite
    unscoped_user_fields: ClassVar[tuple[str, ...]] = ()

    def _scoped_queryset(self, db_field: Any, request: HttpRequest) -> QuerySet[Any] | None:
        if access.administered_organization_ids(request.user) is None:
            return None
        related = db_field.related_model
        if related is Organization:
            return access.administered_organizations(request.user)
        from django.contrib.auth import get_user_model

        if related is get_user_model():
            if db_field.name in self.unscoped_user_fields:
                return None  # chosen through the narrow autocomplete (see the module docstring)
            return _user_queryset_for(request)
        related_admin = self.admin_site._registry.get(related)
        if isinstance(related_admin, OrgScopedAdmin):
            return related_admin.get_queryset(request)
        nothing: QuerySet[Any] = related._default_manager.none()
        return nothing  # never offer rows the admin cannot scope

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        queryset = self._scoped_queryset(db_field, request)
        if queryset is not None:
            kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        queryset = self._scoped_queryset(db_field, request)
        if queryset is not None:
            kwargs["queryset"] = queryset
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]


class _AuditedAdmin:
    """Every add, change and delete made through the admin writes one ``AuditEvent``."""

    audit_action: ClassVar[str] = AuditEvent.Action.OBJECT_CHANGE
    # Name the row by its str() in the event? Not for third-party models, whose str() may be
    # a secret (an API token's is its key): those are named by their primary key only.
    audit_repr: ClassVar[bool] = False

    def organization_id_of(self, obj: Any) -> int | None:
        return None

    # -- audit: one event per add, change or delete --

    def audit_detail(self, request: HttpRequest, obj: Any) -> str:
        """Extra words for the audit event (never a secret value)."""
        return ""

    def audit_fields(self, obj: Any) -> dict[str, Any]:
        """``AuditEvent`` fields besides organization and detail (project, plugin slug)."""
        return {}

    def _audit(self, request: HttpRequest, obj: Any, verb: str, message: Any = "") -> None:
        org_id = self.organization_id_of(obj)
        organization = Organization.objects.filter(pk=org_id).first() if org_id else None
        name = f"'{obj}'" if self.audit_repr else f"#{obj.pk}"
        parts = [f"{verb} {obj._meta.verbose_name} {name}"]
        text = change_text(message)
        if text and verb != "deleted":
            parts.append(text)
        extra = self.audit_detail(request, obj)
        if extra:
            parts.append(extra)
        audit.record(
            self.audit_action,
            actor=request.user,
            organization=organization,
            key=f"{obj._meta.label_lower}:{obj.pk}",
            detail=" ".join(parts),
            **self.audit_fields(obj),
        )

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        self._audit(request, obj, "created", message)
        return super().log_addition(request, obj, message)  # type: ignore[misc]

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        if message:  # Django logs "no fields changed" saves too; those change nothing
            self._audit(request, obj, "changed", message)
        return super().log_change(request, obj, message)  # type: ignore[misc]

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        for obj in queryset:
            self._audit(request, obj, "deleted")
        return super().log_deletions(request, queryset)  # type: ignore[misc]


class OrgScopedAdmin(_AuditedAdmin, _ScopedChoices, admin.ModelAdmin):  # type: ignore[type-arg]
    """A ``ModelAdmin`` for rows of one organization (see the module docstring).

    ``org_path`` is the lookup from the model to its organization (``"pk"`` for
    ``Organization`` itself); ``audit_action`` names the audit event its changes write.
    """

    org_path: ClassVar[str] = "organization"
    audit_repr = True

    # -- which rows --

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        ids = access.administered_organization_ids(request.user)
        if ids is None:
            return queryset
        return queryset.filter(**{f"{self.org_path}__in": ids})

    def organization_id_of(self, obj: Any) -> int | None:
        if self.org_path == "pk":
            return obj.pk  # type: ignore[no-any-return]
        *hops, last = self.org_path.split("__")
        value = obj
        for hop in hops:
            value = getattr(value, hop, None)
            if value is None:
                return None
        return getattr(value, f"{last}_id", None)

    def _may(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None:
            return access.administers_any(request.user)
        return access.administers(request.user, self.organization_id_of(obj))

    # -- permissions: the role decides, Django's model permissions are not consulted --

    def has_module_permission(self, request: HttpRequest) -> bool:
        return access.administers_any(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return access.administers_any(request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._may(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A row never moves to another organization: its bindings, plugins and owners are tied
        # to it (composite foreign keys on PostgreSQL), and the move would cross tenants.
        fields = tuple(super().get_readonly_fields(request, obj))
        if obj is not None and self.org_path == "organization" and "organization" not in fields:
            fields += ("organization",)
        return fields

    def _get_obj_does_not_exist_redirect(
        self, request: HttpRequest, opts: Any, object_id: str
    ) -> Any:
        # Django redirects to the index; another organization's row must look exactly like a
        # missing one, and both are a plain 404.
        raise Http404

    # -- list filters: only values present in the operator's own rows --

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = super().get_list_filter(request)
        if access.administered_organization_ids(request.user) is None:
            return filters
        scoped: list[Any] = []
        for item in filters:
            if isinstance(item, str) and self._is_relation(item):
                scoped.append((item, RelatedOnlyFieldListFilter))
            else:
                scoped.append(item)
        return tuple(scoped)

    def _is_relation(self, path: str) -> bool:
        model: Any = self.model
        field = None
        for part in path.split("__"):
            try:
                field = model._meta.get_field(part)
            except Exception:
                return False
            model = getattr(field, "related_model", None)
            if model is None:
                break
        return bool(field is not None and field.is_relation)


class OrgScopedInline(_ScopedChoices):
    """Mixin for inlines on an ``OrgScopedAdmin`` page: ``obj`` is the parent row, whose
    admin already answered 404 for other organizations; the role decides here too."""

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        """The formset with every input named for assistive technology: a tabular row's
        inputs sit under column headers, not labels, so each carries its field's label
        (and the row's "Delete" box says so) as ``aria-label``."""
        formset = super().get_formset(request, obj, **kwargs)  # type: ignore[misc]

        class LabelledFormSet(formset):  # type: ignore[misc,valid-type]
            def add_fields(self, form: Any, index: Any) -> None:
                super().add_fields(form, index)
                row = "new row" if index is None else f"row {index + 1}"
                for name, field in form.fields.items():
                    label = "Delete" if name == "DELETE" else str(field.label or name)
                    field.widget.attrs.setdefault("aria-label", f"{label} ({row})")

        LabelledFormSet.__name__ = formset.__name__
        return LabelledFormSet

    def _parent_ok(self, request: HttpRequest, obj: Any) -> bool:
        if obj is None:
            return access.administers_any(request.user)
        parent_admin = self.admin_site._registry.get(type(obj))
        if isinstance(parent_admin, OrgScopedAdmin):
            return access.administers(request.user, parent_admin.organization_id_of(obj))
        return access.is_superuser(request.user)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._parent_ok(request, obj)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._parent_ok(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._parent_ok(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self._parent_ok(request, obj)


class SuperuserOnlyAdmin(_AuditedAdmin):
    """Mixin: the model spans organizations, so only superusers see or change it (audited,
    without an organization: visible to superusers in the audit trail). It only narrows: an
    admin that refuses something (a read-only page) still refuses it to superusers."""

    def has_module_permission(self, request: HttpRequest) -> bool:
        return access.is_superuser(request.user) and super().has_module_permission(request)  # type: ignore[misc]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access.is_superuser(request.user) and super().has_view_permission(request, obj)  # type: ignore[misc]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        return access.is_superuser(request.user) and super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access.is_superuser(request.user) and super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access.is_superuser(request.user) and super().has_delete_permission(request, obj)  # type: ignore[misc]


def is_scoped(model_admin: Any) -> bool:
    return isinstance(model_admin, OrgScopedAdmin | SuperuserOnlyAdmin)


def lock_down(site: admin.AdminSite) -> list[str]:
    """Wrap every admin on ``site`` that is neither org-scoped nor superuser-only (Django's
    and third-party apps' admins) in ``SuperuserOnlyAdmin``. Returns the models wrapped."""
    wrapped = []
    for model, model_admin in list(site._registry.items()):
        if is_scoped(model_admin):
            continue
        cls = type(model_admin)
        locked = type(f"SuperuserOnly{cls.__name__}", (SuperuserOnlyAdmin, cls), {})
        site.unregister(model)
        site.register(model, locked)
        wrapped.append(model._meta.label)
    return wrapped
