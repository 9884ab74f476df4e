"""Core domain rows: organizations, memberships with a role, project types and projects.

Every project-scoped row carries its organization so that cross-organization references can
be refused by the database (composite foreign keys on PostgreSQL, see the migrations) as well
as by ``clean()``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models


class Role(models.TextChoices):
    VIEWER = "viewer", "Viewer"
    EDITOR = "editor", "Editor"
    OWNER = "owner", "Owner"
    ADMIN = "admin", "Admin"


ROLE_RANK: dict[str, int] = {Role.VIEWER: 1, Role.EDITOR: 2, Role.OWNER: 3, Role.ADMIN: 4}


class Organization(models.Model):
    slug = models.SlugField(max_length=64, unique=True)
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)
    config_version = models.BigIntegerField(
        default=0,
        editable=False,
        help_text="Bumped on every change to this organization's plugins, services, "
        "credentials or bindings; resolution plans cached under an older version are unused.",
    )

    class Meta:
        ordering: ClassVar = ["slug"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        # config_version only moves forward, by UPDATE ... + 1 (plugins_core.serving.invalidation);
        # saving an instance loaded earlier must never write an older version back.
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name != "config_version"
            ]
        super().save(*args, **kwargs)


class Membership(models.Model):
    """A user's role in an organization. ``can_read_secrets`` is granted explicitly."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.VIEWER)
    can_read_secrets = models.BooleanField(
        default=False, help_text="May reveal secret configuration values (audited)."
    )

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["user", "organization"], name="membership_unique"),
            models.CheckConstraint(
                condition=models.Q(role__in=[r.value for r in Role]), name="membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization.slug} ({self.role})"


class ProjectType(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="project_types"
    )
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)

    class Meta:
        ordering: ClassVar = ["organization__slug", "slug"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["organization", "slug"], name="projecttype_slug_org"),
            # Target of composite foreign keys (id, organization) from bindings.
            models.UniqueConstraint(fields=["id", "organization"], name="projecttype_id_org"),
        ]

    def __str__(self) -> str:
        return self.name


class Project(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="projects"
    )
    project_type = models.ForeignKey(ProjectType, on_delete=models.PROTECT, related_name="projects")
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    owners = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="owned_projects"
    )

    class Meta:
        ordering: ClassVar = ["organization__slug", "slug"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["organization", "slug"], name="project_slug_org"),
            models.UniqueConstraint(fields=["id", "organization"], name="project_id_org"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if (
            self.project_type_id
            and self.organization_id
            and self.project_type.organization_id != self.organization_id
        ):
            raise ValidationError(
                {"project_type": "The project type belongs to another organization."}
            )


class AuditEvent(models.Model):
    """Who did what to which configuration key, secret, member or admin row. Never holds a
    secret value (service settings, which are non-secret by validation, may appear)."""

    class Action(models.TextChoices):
        CONFIG_SET = "config.set", "Configuration value set"
        CONFIG_DELETE = "config.delete", "Configuration key deleted"
        SECRET_READ = "secret.read", "Secret value read"
        CREDENTIALS_SET = "credentials.set", "Credentials changed"
        BINDING_CHANGE = "binding.change", "Binding changed"
        PLUGIN_INSTALL = "plugin.install", "Plugin installed"
        PLUGIN_STATE = "plugin.state", "Plugin enabled or disabled"
        PLUGIN_CHANGE = "plugin.change", "Plugin added, changed or deleted"
        SERVICE_CHANGE = "service.change", "Service added, changed or deleted"
        ORGANIZATION_CHANGE = "organization.change", "Organization added, changed or deleted"
        MEMBERSHIP_ADD = "membership.add", "Member added"
        MEMBERSHIP_CHANGE = "membership.change", "Member's role or grant changed"
        MEMBERSHIP_REMOVE = "membership.remove", "Member removed"
        PROJECT_TYPE_CHANGE = "project_type.change", "Project type added, changed or deleted"
        PROJECT_CHANGE = "project.change", "Project added, changed or deleted"
        OBJECT_CHANGE = "admin.change", "Other admin change"
        CONNECTION_TEST = "plugin.test", "Connection tested"

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_name = models.CharField(max_length=150, blank=True)
    organization = models.ForeignKey(Organization, null=True, blank=True, on_delete=models.SET_NULL)
    project = models.ForeignKey(Project, null=True, blank=True, on_delete=models.SET_NULL)
    plugin_slug = models.CharField(max_length=64, blank=True)
    key = models.CharField(max_length=255, blank=True)
    action = models.CharField(max_length=32, choices=Action.choices)
    subject = models.CharField(
        max_length=150, blank=True, help_text="Whom a membership event is about (username)."
    )
    detail = models.CharField(max_length=1000, blank=True)

    class Meta:
        ordering: ClassVar = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_name} {self.action} {self.key}"


class KeyCanary(models.Model):
    """One row: a known value encrypted with the platform's current write key
    (``imbi.core.keycheck``). ``token`` is ciphertext kept as plain text on purpose (the check
    must see it without decrypting through a field); ``fingerprint`` names the key."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    token = models.TextField()
    fingerprint = models.CharField(max_length=12)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"key canary ({self.fingerprint})"
