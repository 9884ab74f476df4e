"""Plugin *data*: services, their credentials, installed plugins and tab bindings.

Code (manifests, handler classes) lives in ``imbi_plugin_sdk`` and the registry; these rows
only name a handler by its entry-point name. Shared credentials (``ServiceApplication``) are
kept apart from per-plugin and per-binding options.

Invariants, in the database where possible:
- slugs are unique per organization;
- at most one default binding per (scope, tab) (partial unique indexes);
- a binding's tab equals its plugin's type (check + composite FK on PostgreSQL);
- nothing binds across organizations (composite FKs on PostgreSQL, ``clean()`` everywhere).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ValidationError
from django.db import models

from imbi.core.fields import EncryptedJSONField
from imbi.core.models import Organization, Project, ProjectType
from plugins_core.models import seams

if TYPE_CHECKING:
    from imbi_plugin_sdk import PluginManifest


class PluginType(models.TextChoices):
    CONFIGURATION = "configuration", "Configuration"
    LOGS = "logs", "Logs"
    IDENTITY = "identity", "Identity"


class Tab(models.TextChoices):
    CONFIGURATION = "configuration", "Configuration"
    LOGS = "logs", "Logs"


SERVICE_SETTING_KEYS = ("account", "region", "base_url", "project", "repository", "directory")


def has_nul(value: Any) -> bool:
    """True when a JSON value holds a NUL character (PostgreSQL cannot store one)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(has_nul(k) or has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(has_nul(v) for v in value)
    return False


def validate_service_settings(value: Any) -> None:
    """Per-tenant settings are a flat object of short scalar values, never secrets."""
    from imbi_plugin_sdk.manifest import ServiceTemplate

    if not isinstance(value, dict):
        raise ValidationError("Settings must be a JSON object.")
    if has_nul(value):
        raise ValidationError("Settings cannot contain NUL characters.")
    for key, item in value.items():
        if not isinstance(key, str) or not key.replace("_", "").isalnum():
            raise ValidationError(f"Setting name {key!r} must be letters, digits and '_'.")
        if not isinstance(item, str | int | bool) or (isinstance(item, str) and len(item) > 500):
            raise ValidationError(f"Setting {key!r} must be a short string, number or boolean.")
    try:
        ServiceTemplate(vendor="check", name="check", category="check", settings=value)
    except ValueError as exc:
        raise ValidationError(str(exc).replace("service_template.", "")) from None


class ThirdPartyService(models.Model):
    """A vendor account an organization uses, e.g. "AWS Production"."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="services"
    )
    vendor = models.SlugField(max_length=64)
    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64)
    category = models.CharField(max_length=64, blank=True)
    identity = models.CharField(
        max_length=200,
        blank=True,
        help_text="Distinguishes two accounts of one vendor (e.g. an AWS account id).",
    )
    settings = models.JSONField(
        default=dict,
        blank=True,
        validators=[validate_service_settings],
        help_text="Non-secret per-tenant settings: account, region, base URL.",
    )
    managed_by_manifest = models.BooleanField(
        default=False,
        help_text="Re-installing the manifest template may overwrite this service's fields.",
    )
    template_source = models.CharField(max_length=200, blank=True)
    icon = models.TextField(blank=True, help_text="Sanitized SVG markup.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "third-party service"
        verbose_name_plural = "third-party services"
        ordering: ClassVar = ["organization__slug", "slug"]
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["organization", "slug"], name="service_slug_org"),
            models.UniqueConstraint(
                fields=["organization", "vendor", "identity"], name="service_vendor_identity"
            ),
            models.UniqueConstraint(fields=["id", "organization"], name="service_id_org"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if isinstance(self.settings, dict):
            errors = seams.service_host_errors(self, [])
            if errors:
                raise ValidationError(
                    {"settings": [f"{key}: {message}" for key, message in errors.items()]}
                )


class ServiceApplication(models.Model):
    """A service's credentials, encrypted at rest, shared by every plugin on the service."""

    service = models.OneToOneField(
        ThirdPartyService, on_delete=models.CASCADE, related_name="application"
    )
    credentials = EncryptedJSONField(default=dict)
    names = models.JSONField(
        default=list,
        blank=True,
        editable=False,
        help_text="Names of the stored credentials (never values), kept in step by save(); "
        "lets listings and badges say what is set without decrypting anything.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Credentials for {self.service}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if isinstance(self.credentials, dict):
            self.names = sorted(k for k, v in self.credentials.items() if v)
        if kwargs.get("update_fields") is not None and "credentials" in kwargs["update_fields"]:
            kwargs["update_fields"] = [*kwargs["update_fields"], "names"]
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if not isinstance(self.credentials, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.credentials.items()
        ):
            raise ValidationError({"credentials": "Credentials must map names to strings."})


class ExecutionMode(models.TextChoices):
    AUTO = "auto", "Automatic (in-process if the distribution is trusted, else isolated)"
    IN_PROCESS = "in_process", "In-process (trusted)"
    ISOLATED = "isolated", "Isolated (sandboxed runner process)"


class Plugin(models.Model):
    """One installed capability of a service, e.g. aws-ssm on "AWS Production"."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="plugins")
    service = models.ForeignKey(ThirdPartyService, on_delete=models.CASCADE, related_name="plugins")
    slug = models.SlugField(max_length=64)
    name = models.CharField(max_length=200, blank=True)
    plugin_type = models.CharField(max_length=16, choices=PluginType.choices)
    handler = models.CharField(max_length=200, help_text="Entry-point name in imbi.plugins.")
    options = models.JSONField(default=dict, blank=True)
    enabled = models.BooleanField(default=True)
    execution_mode = models.CharField(
        max_length=16,
        choices=ExecutionMode.choices,
        default=ExecutionMode.AUTO,
        help_text="Where the handler runs. Untrusted distributions always run isolated.",
    )
    approved_permissions = models.JSONField(
        null=True,
        blank=True,
        editable=False,
        help_text="The manifest permissions an admin accepted (set at install). A version "
        "that asks for more stays unavailable until an admin approves them.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering: ClassVar = ["organization__slug", "slug"]
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=models.Q(execution_mode__in=[m.value for m in ExecutionMode]),
                name="plugin_execution_mode_valid",
            ),
            models.UniqueConstraint(fields=["organization", "slug"], name="plugin_slug_org"),
            models.UniqueConstraint(fields=["id", "organization"], name="plugin_id_org"),
            models.UniqueConstraint(fields=["id", "plugin_type"], name="plugin_id_type"),
            models.CheckConstraint(
                condition=models.Q(plugin_type__in=[t.value for t in PluginType]),
                name="plugin_type_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name or self.slug

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.approved_permissions is None:  # installing: what it declares now is accepted
            declared = seams.declared_permissions(self.handler)
            if declared is not None:
                self.approved_permissions = declared
        super().save(*args, **kwargs)

    def clean(self) -> None:
        if (
            self.service_id
            and self.organization_id
            and self.service.organization_id != self.organization_id
        ):
            raise ValidationError({"service": "The service belongs to another organization."})
        if self.service_id and isinstance(self.service.settings, dict):
            errors = seams.service_host_errors(self.service, [self])
            if errors:
                raise ValidationError(
                    {
                        "service": [
                            f"its setting {key}: {message}" for key, message in errors.items()
                        ]
                    }
                )
        if not isinstance(self.options, dict):
            raise ValidationError({"options": "Options must be a JSON object."})
        if has_nul(self.options):
            raise ValidationError({"options": "Options cannot contain NUL characters."})


def unapproved_permissions(plugin: Plugin, manifest: PluginManifest) -> list[str]:
    """What ``manifest`` asks for beyond the plugin's approved permissions ([] if nothing)."""
    approved = plugin.approved_permissions
    if approved is None:
        return []
    granted = approved if isinstance(approved, dict) else {}
    hosts = set(granted.get("network_hosts") or [])
    extra = [f"network {h}" for h in manifest.permissions.network_hosts if h not in hosts]
    if manifest.permissions.storage and granted.get("storage") is not True:
        extra.append("storage")
    if manifest.permissions.project_metadata and granted.get("project_metadata") is not True:
        extra.append("project metadata")
    paths = set(granted.get("operator_path_settings") or [])
    extra.extend(
        f"read files in setting {name}"
        for name in manifest.permissions.operator_path_settings
        if name not in paths
    )
    return extra


class Binding(models.Model):
    """Fields shared by project-type and project bindings of a plugin to a tab."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="+")
    plugin = models.ForeignKey(Plugin, on_delete=models.CASCADE, related_name="+")
    tab = models.CharField(max_length=16, choices=Tab.choices)
    default = models.BooleanField(default=False)
    search_template = models.CharField(max_length=500, blank=True)
    identity_plugin = models.ForeignKey(
        Plugin,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        limit_choices_to={"plugin_type": PluginType.IDENTITY},
    )
    options = models.JSONField(default=dict, blank=True)

    class Meta:
        abstract = True

    scope_field: ClassVar[str]

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self.organization_id and getattr(self, f"{self.scope_field}_id", None):
            self.organization_id = self.scope().organization_id
        super().save(*args, **kwargs)

    def scope(self) -> Any:
        return getattr(self, self.scope_field)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        scope_org = None
        if getattr(self, f"{self.scope_field}_id", None):
            scope_org = self.scope().organization_id
            if self.organization_id and scope_org != self.organization_id:
                errors[self.scope_field] = "It belongs to another organization."
        org_id = self.organization_id or scope_org
        if self.plugin_id:
            if org_id and self.plugin.organization_id != org_id:
                errors["plugin"] = "The plugin belongs to another organization."
            elif self.tab and self.plugin.plugin_type != self.tab:
                errors["tab"] = (
                    f"A {self.plugin.plugin_type} plugin cannot serve the {self.tab} tab."
                )
        if self.identity_plugin_id and self.identity_plugin is not None:
            if self.identity_plugin.plugin_type != PluginType.IDENTITY:
                errors["identity_plugin"] = "Choose a plugin of type identity."
            elif org_id and self.identity_plugin.organization_id != org_id:
                errors["identity_plugin"] = "The plugin belongs to another organization."
        if not isinstance(self.options, dict):
            errors["options"] = "Options must be a JSON object."
        elif has_nul(self.options):
            errors["options"] = "Options cannot contain NUL characters."
        if has_nul(self.search_template):
            errors["search_template"] = "The search template cannot contain NUL characters."
        if errors:
            raise ValidationError(errors)


def _binding_constraints(scope: str, prefix: str) -> list[models.BaseConstraint]:
    return [
        models.UniqueConstraint(fields=[scope, "plugin"], name=f"{prefix}_unique"),
        models.UniqueConstraint(
            fields=[scope, "tab"], condition=models.Q(default=True), name=f"{prefix}_one_default"
        ),
        models.CheckConstraint(
            condition=models.Q(tab__in=[t.value for t in Tab]), name=f"{prefix}_tab_valid"
        ),
    ]


class ProjectTypePlugin(Binding):
    """A plugin bound to a tab for every project of a project type."""

    project_type = models.ForeignKey(
        ProjectType, on_delete=models.CASCADE, related_name="plugin_bindings"
    )
    scope_field = "project_type"

    class Meta:
        verbose_name = "project-type binding"
        verbose_name_plural = "project-type bindings"
        constraints: ClassVar = _binding_constraints("project_type", "projecttypeplugin")

    def __str__(self) -> str:
        return f"{self.project_type} {self.tab}: {self.plugin}"


class ProjectPlugin(Binding):
    """A project's own binding; overrides or adds to its project type's bindings."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="plugin_bindings")
    scope_field = "project"

    class Meta:
        verbose_name = "project binding"
        verbose_name_plural = "project bindings"
        constraints: ClassVar = _binding_constraints("project", "projectplugin")

    def __str__(self) -> str:
        return f"{self.project} {self.tab}: {self.plugin}"


class ConnectionCheck(models.Model):
    """The last connection test of an installed plugin: what it said, when, and how long it
    took. One row per plugin, overwritten by every test (wizard, API, admin, periodic)."""

    class Status(models.TextChoices):
        OK = "ok", "OK"
        FAILED = "failed", "Failed"

    class Trigger(models.TextChoices):
        WIZARD = "wizard", "Install wizard"
        API = "api", "REST API"
        ADMIN = "admin", "Admin button"
        PERIODIC = "periodic", "Periodic check"

    plugin = models.OneToOneField(Plugin, on_delete=models.CASCADE, related_name="connection")
    status = models.CharField(max_length=8, choices=Status.choices)
    message = models.CharField(max_length=500, blank=True)
    tested_at = models.DateTimeField()
    duration_ms = models.PositiveIntegerField(default=0)
    trigger = models.CharField(max_length=16, choices=Trigger.choices)

    class Meta:
        constraints: ClassVar = [
            models.CheckConstraint(
                condition=models.Q(status__in=["ok", "failed"]), name="connectioncheck_status"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.plugin.slug}: {self.status} at {self.tested_at:%Y-%m-%d %H:%M}"


class PluginStorage(models.Model):
    """Host key-value storage for plugins that declare ``permissions.storage``.

    Scoped to one installed plugin; values are encrypted at rest.
    """

    plugin = models.ForeignKey(Plugin, on_delete=models.CASCADE, related_name="storage")
    key = models.CharField(max_length=512)
    value = EncryptedJSONField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints: ClassVar = [
            models.UniqueConstraint(fields=["plugin", "key"], name="pluginstorage_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.plugin.slug}:{self.key}"


def binding_impact(plugins: models.QuerySet[Plugin]) -> dict[str, int]:
    """What turning ``plugins`` off (or removing them) reaches: how many installed plugins,
    projects (bound directly or through their project type) and bindings. The confirmation
    pages of destructive actions say so before anything happens."""
    ids = list(plugins.values_list("pk", flat=True))
    type_ids = ProjectTypePlugin.objects.filter(plugin_id__in=ids).values("project_type_id")
    projects = Project.objects.filter(
        models.Q(plugin_bindings__plugin_id__in=ids) | models.Q(project_type_id__in=type_ids)
    )
    return {
        "plugins": len(ids),
        "projects": projects.distinct().count(),
        "bindings": ProjectPlugin.objects.filter(plugin_id__in=ids).count()
        + ProjectTypePlugin.objects.filter(plugin_id__in=ids).count(),
    }
