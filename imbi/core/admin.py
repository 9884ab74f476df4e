"""Admin for the core domain."""

from __future__ import annotations

from django.contrib import admin

from .models import AuditEvent, Membership, Organization, Project, ProjectType


class MembershipInline(admin.TabularInline):  # type: ignore[type-arg]
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("slug", "name", "created_at")
    search_fields = ("slug", "name")
    prepopulated_fields = {"slug": ("name",)}
    inlines = (MembershipInline,)


@admin.register(ProjectType)
class ProjectTypeAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "slug", "organization")
    list_filter = ("organization",)
    search_fields = ("slug", "name")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("name", "slug", "organization", "project_type")
    list_filter = ("organization", "project_type")
    search_fields = ("slug", "name")
    filter_horizontal = ("owners",)
    prepopulated_fields = {"slug": ("name",)}


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "created_at",
        "actor_name",
        "action",
        "organization",
        "project",
        "plugin_slug",
        "key",
    )
    list_filter = ("action", "organization")
    search_fields = ("actor_name", "key", "plugin_slug")

    def has_add_permission(self, request: object) -> bool:
        return False

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False
