"""Admin for the core domain: organizations with their members, project types, projects, the
audit trail, and users (superusers only; operators get the narrow member autocomplete).

Scoping and the audit of every change come from ``imbi.core.admin_scoping``. Membership
changes are audited one event per member: who, whom, old and new role, and the read-secrets
grant. Creating and deleting organizations, and changing an organization's slug (it is part
of every API URL and of ``${org}`` in search templates), are for superusers only.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import ManyToManyField, Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest

from . import access, audit
from .admin_scoping import OrgScopedAdmin, OrgScopedInline, SuperuserOnlyAdmin
from .models import AuditEvent, Membership, Organization, Project, ProjectType, Role

User = get_user_model()


def _grant_text(role: str, secrets: bool) -> str:
    return f"{role}{' + read secrets' if secrets else ''}"


class MembershipFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    """Operators cannot leave their organization without an admin (a superuser can)."""

    keep_an_admin = False

    def clean(self) -> None:
        super().clean()
        if not self.keep_an_admin or any(self.errors):
            return
        posted = [f.instance.pk for f in self.initial_forms if f.instance.pk]
        untouched = (
            Membership.objects.filter(organization=self.instance, role=Role.ADMIN)
            .exclude(pk__in=posted)
            .exists()
        )
        kept = any(
            f.cleaned_data.get("role") == Role.ADMIN and not f.cleaned_data.get("DELETE")
            for f in self.forms
            if f.cleaned_data
        )
        if not (untouched or kept):
            raise forms.ValidationError(
                "The organization must keep at least one admin; a superuser can remove the last."
            )


class MembershipInline(OrgScopedInline, admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    formset = MembershipFormSet
    extra = 0
    autocomplete_fields = ("user",)
    unscoped_user_fields = ("user",)  # picked through ImbiUserAdmin's narrow autocomplete

    def get_formset(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        formset = super().get_formset(request, obj, **kwargs)
        formset.keep_an_admin = not access.is_superuser(request.user)
        return formset


@admin.register(Organization)
class OrganizationAdmin(OrgScopedAdmin):
    org_path = "pk"
    audit_action = AuditEvent.Action.ORGANIZATION_CHANGE
    list_display = ("slug", "name", "created_at")
    search_fields = ("slug", "name")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (MembershipInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return access.is_superuser(request.user)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return access.is_superuser(request.user)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is not None and not access.is_superuser(request.user):
            return ("slug",)
        return ()

    def get_prepopulated_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return {} if self.get_readonly_fields(request, obj) else self.prepopulated_fields

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not Membership:
            return super().save_formset(request, form, formset, change)
        # The forms' instances already hold the posted values: read the stored ones.
        pks = [f.instance.pk for f in formset.initial_forms if f.instance.pk]
        before = {
            pk: (m.role, m.can_read_secrets) for pk, m in Membership.objects.in_bulk(pks).items()
        }
        # deleting clears the instances' pk: pair them with their stored values first
        removed = [
            (f.instance, before[f.instance.pk])
            for f in formset.deleted_forms
            if f.instance.pk in before
        ]
        super().save_formset(request, form, formset, change)
        organization = form.instance
        for member, old in removed:
            self._record_member(
                request, AuditEvent.Action.MEMBERSHIP_REMOVE, organization, member, old, None
            )
        for member in formset.new_objects:
            self._record_member(
                request,
                AuditEvent.Action.MEMBERSHIP_ADD,
                organization,
                member,
                None,
                (member.role, member.can_read_secrets),
            )
        for member, _ in formset.changed_objects:
            self._record_member(
                request,
                AuditEvent.Action.MEMBERSHIP_CHANGE,
                organization,
                member,
                before.get(member.pk),
                (member.role, member.can_read_secrets),
            )

    def _record_member(
        self,
        request: HttpRequest,
        action: str,
        organization: Organization,
        member: Membership,
        old: tuple[str, bool] | None,
        new: tuple[str, bool] | None,
    ) -> None:
        username = member.user.get_username()
        was = _grant_text(*old) if old else "none"
        now = _grant_text(*new) if new else "none"
        audit.record(
            action,
            actor=request.user,
            organization=organization,
            subject=username,
            key=f"user:{username}",
            detail=f"{username}: {was} -> {now}",
        )


@admin.register(ProjectType)
class ProjectTypeAdmin(OrgScopedAdmin):
    audit_action = AuditEvent.Action.PROJECT_TYPE_CHANGE
    list_display = ("name", "slug", "organization")
    list_filter = ("organization",)
    search_fields = ("slug", "name")
    prepopulated_fields = {"slug": ("name",)}


class ProjectAdminForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = Project
        fields = ("organization", "project_type", "slug", "name", "description", "owners")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        organization = cleaned.get("organization")
        if organization is None and self.instance.organization_id:  # read-only on change
            organization = self.instance.organization
        owners = cleaned.get("owners")
        if organization is not None and owners:
            members = set(
                Membership.objects.filter(organization=organization).values_list(
                    "user_id", flat=True
                )
            )
            outsiders = [str(u) for u in owners if u.pk not in members]
            if outsiders:
                self.add_error(
                    "owners",
                    f"Owners must be members of {organization}: {', '.join(outsiders)}.",
                )
        return cleaned


@admin.register(Project)
class ProjectAdmin(OrgScopedAdmin):
    form = ProjectAdminForm
    audit_action = AuditEvent.Action.PROJECT_CHANGE
    list_display = ("name", "slug", "organization", "project_type")
    list_filter = ("organization", "project_type")
    search_fields = ("slug", "name")
    prepopulated_fields = {"slug": ("name",)}
    # A checkbox per member, not ``filter_horizontal``: Django's SelectFilter2.js labels
    # its search icon with an aria-label on a bare span, which assistive technology ignores.
    formfield_overrides = {ManyToManyField: {"widget": forms.CheckboxSelectMultiple}}

    def audit_fields(self, obj: Any) -> dict[str, Any]:
        return {"project": obj if obj.pk else None}


@admin.register(AuditEvent)
class AuditEventAdmin(OrgScopedAdmin):
    """Read-only for everybody: the trail cannot be added to, edited or pruned here.
    Events without an organization (system-wide) are for superusers only."""

    list_display = (
        "created_at",
        "actor_name",
        "action",
        "organization",
        "project",
        "subject",
        "plugin_slug",
        "key",
    )
    list_filter = ("action", "organization")
    search_fields = ("actor_name", "key", "plugin_slug", "subject")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# --------------------------------------------------------------------------- branding

# The admin's <title>, header and index heading (Django says "Django administration").
admin.site.site_header = "Imbi administration"
admin.site.site_title = "Imbi administration"
admin.site.index_title = "Organizations, projects and plugins"

# --------------------------------------------------------------------------- users


admin.site.unregister(User)


@admin.register(User)
class ImbiUserAdmin(SuperuserOnlyAdmin, UserAdmin):  # type: ignore[type-arg]
    """Users span organizations: superusers only, except the membership inline's user
    autocomplete, which answers operators narrowly (see ``imbi.core.admin_scoping``)."""

    audit_repr = True  # the username

    def _member_autocomplete(self, request: HttpRequest) -> bool:
        match = getattr(request, "resolver_match", None)
        return bool(
            match is not None
            and match.url_name == "autocomplete"
            and request.GET.get("app_label") == Membership._meta.app_label
            and request.GET.get("model_name") == Membership._meta.model_name
            and request.GET.get("field_name") == "user"
            and access.administers_any(request.user)
        )

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is None and self._member_autocomplete(request):
            return True
        return super().has_view_permission(request, obj)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        if access.is_superuser(request.user):
            return super().get_search_results(request, queryset, search_term)
        ids = access.administered_organization_ids(request.user) or frozenset()
        term = search_term.strip()
        visible = Q(memberships__organization_id__in=ids)
        if term:
            visible &= Q(username__icontains=term)
            visible |= Q(username__iexact=term, is_active=True)
        return queryset.filter(visible).distinct(), False
