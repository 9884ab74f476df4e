"""Service functions for third-party services, their credentials and installed plugins.

What the REST API calls (the admin has its own forms over the same rows): create, change and
delete a ``ThirdPartyService``; set, replace and clear its write-only credentials (reads say
which names are set, never a value); change a plugin's options. Each validates before
writing (``InvalidInput`` naming the field), writes in one transaction, drops stale
connection tests (``plugins_core.serving.health.forget``) and writes the audit trail without values.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from imbi_plugin_sdk import CredentialField, OptionValidationError, PluginManifest
from imbi_plugin_sdk.errors import InvalidInput

from imbi.core import audit
from imbi.core.models import AuditEvent, Organization
from plugins_core import registry
from plugins_core.models import Plugin, ServiceApplication, ThirdPartyService
from plugins_core.provisioning.bindings import keep_masked, mask_options
from plugins_core.provisioning.credentials import apply_credentials, credential_fields_for
from plugins_core.serving import health
from plugins_core.serving.hosts import clear_stale_credentials
from plugins_core.serving.resolution import ResolutionError, manifest_for

SERVICE_FIELDS = ("name", "vendor", "slug", "category", "identity", "settings")


class Conflict(ResolutionError):
    code, http_status = "conflict", 409


def _invalid(exc: ValidationError) -> InvalidInput:
    by_field = exc.message_dict if hasattr(exc, "error_dict") else {"": exc.messages}
    fields = {name or "non_field_errors": " ".join(m) for name, m in by_field.items()}
    first = next(iter(fields.values()), "invalid input")
    return InvalidInput(first, fields=fields)


def _clean(service: ThirdPartyService) -> None:
    try:
        service.full_clean(exclude=["organization"], validate_constraints=False)
    except ValidationError as exc:
        raise _invalid(exc) from None


def _save(service: ThirdPartyService, **kwargs: Any) -> None:
    try:
        with transaction.atomic():
            service.save(**kwargs)
    except IntegrityError:
        raise Conflict(
            "another service of this organization has that slug, or that vendor and identity"
        ) from None


def create_service(
    organization: Organization, data: Mapping[str, Any], actor: Any
) -> ThirdPartyService:
    service = ThirdPartyService(
        organization=organization, **{k: v for k, v in data.items() if k in SERVICE_FIELDS}
    )
    _clean(service)
    with transaction.atomic():
        _save(service)
        audit.record(
            AuditEvent.Action.SERVICE_CHANGE,
            actor=actor,
            organization=organization,
            detail=f"created service {service.slug}",
        )
    return service


def settings_diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """``name: 'old' -> 'new'`` for each changed setting (settings are never secret)."""
    changes = []
    for name in sorted(set(old) | set(new)):
        if old.get(name) != new.get(name):
            was = repr(old[name]) if name in old else "unset"
            now = repr(new[name]) if name in new else "unset"
            changes.append(f"{name}: {was} -> {now}")
    return "settings " + "; ".join(changes) if changes else ""


def update_service(
    service: ThirdPartyService, data: Mapping[str, Any], actor: Any
) -> ThirdPartyService:
    """Change a service's fields. A change of an operator-chosen host (``base_url`` and the
    like, ADR 0013) clears the stored credentials in the same transaction, exactly as the
    admin and the wizard do (``plugins_core.serving.hosts.clear_stale_credentials``): a
    credential never follows its service to another host. Settings changes are audited with
    their old and new values."""
    changed = [k for k in SERVICE_FIELDS if k in data and getattr(service, k) != data[k]]
    if not changed:
        return service
    old_settings = dict(service.settings) if isinstance(service.settings, dict) else {}
    for name in changed:
        setattr(service, name, data[name])
    if "settings" in changed:
        check_settings(service)
    _clean(service)
    parts = [name for name in changed if name != "settings"]
    if "settings" in changed:
        new_settings = service.settings if isinstance(service.settings, dict) else {}
        parts.append(settings_diff(old_settings, new_settings) or "settings")
    with transaction.atomic():
        _save(service, update_fields=[*changed, "updated_at"])
        if "settings" in changed:
            health.forget(service.plugins.all())
        audit.record(
            AuditEvent.Action.SERVICE_CHANGE,
            actor=actor,
            organization=service.organization,
            detail=f"service {service.slug}: changed {', '.join(parts)}"[:255],
        )
        if "settings" in changed:
            clear_stale_credentials(service, old_settings, actor=actor)
    return service


def check_settings(service: ThirdPartyService) -> None:
    """The settings against every setting field its plugins' templates declare."""
    for manifest in service_manifests(service):
        template = manifest.service_template
        if template is None or not template.setting_fields:
            continue
        try:
            template.validate_settings(dict(service.settings))
        except OptionValidationError as exc:
            raise InvalidInput(
                "settings: " + "; ".join(f"{n} {m}" for n, m in sorted(exc.errors.items())),
                fields={f"settings.{n}": m for n, m in exc.errors.items()},
            ) from None


def delete_service(service: ThirdPartyService, actor: Any) -> None:
    with transaction.atomic():
        slugs = sorted(service.plugins.values_list("slug", flat=True))
        audit.record(
            AuditEvent.Action.SERVICE_CHANGE,
            actor=actor,
            organization=service.organization,
            detail=f"deleted service {service.slug}"
            + (f" and plugins {', '.join(slugs)}" if slugs else "")[:200],
        )
        service.delete()


# --- credentials ------------------------------------------------------------------------


def service_manifests(service: ThirdPartyService) -> list[PluginManifest]:
    snapshot = registry.current()
    found = []
    for plugin in Plugin.objects.filter(service=service).order_by("slug"):
        manifest = manifest_for(plugin, snapshot)
        if manifest is not None:
            found.append(manifest)
    return found


def credential_fields(service: ThirdPartyService) -> list[CredentialField]:
    return credential_fields_for(service_manifests(service))


def credential_names(service: ThirdPartyService) -> list[str]:
    """Names of the stored credentials (no decryption: see ``ServiceApplication.names``)."""
    names = (
        ServiceApplication.objects.filter(service=service).values_list("names", flat=True).first()
    )
    return list(names or [])


def credentials_status(service: ThirdPartyService) -> dict[str, Any]:
    """Which credentials the service's plugins declare, which are set, which are missing."""
    fields = credential_fields(service)
    stored = set(credential_names(service))
    return {
        "set": sorted(stored),
        "fields": [
            {
                "name": f.name,
                "label": f.label,
                "required": f.required,
                "secret": f.secret,
                "set": f.name in stored,
            }
            for f in fields
        ],
        "missing": [f.name for f in fields if f.required and f.name not in stored],
    }


def change_credentials(
    service: ThirdPartyService,
    changes: Mapping[str, str | None],
    actor: Any,
    *,
    replace: bool = False,
) -> list[str]:
    """Apply ``changes`` (name -> value, ``None`` clears); with ``replace`` every stored
    credential not in ``changes`` is removed. Names must be declared by a plugin of the
    service (when it has any loaded); the result must satisfy every manifest's credential
    rules. Returns the names that changed."""
    fields = credential_fields(service)
    known = {f.name for f in fields}
    unknown = sorted(name for name in changes if known and name not in known)
    if unknown:
        raise InvalidInput(
            f"unknown credential {', '.join(unknown)}; declared: {', '.join(sorted(known))}",
            fields={name: "not declared by any plugin of this service" for name in unknown},
        )
    for name, value in changes.items():
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise InvalidInput(
                f"credential {name} must be a non-empty string (null clears it)",
                fields={name: "must be a non-empty string; null clears it"},
            )
    with transaction.atomic():
        app = ServiceApplication.objects.select_for_update().filter(service=service).first()
        stored: dict[str, str] = dict(app.credentials) if app and app.credentials else {}
        merged = apply_credentials({} if replace else stored, changes)
        for manifest in service_manifests(service):
            names = {f.name for f in manifest.credentials}
            try:
                manifest.validate_credentials({k: v for k, v in merged.items() if k in names})
            except OptionValidationError as exc:
                raise InvalidInput(
                    "credentials: " + "; ".join(f"{n} {m}" for n, m in sorted(exc.errors.items())),
                    fields=dict(exc.errors),
                ) from None
        changed = sorted(n for n in set(stored) | set(merged) if stored.get(n) != merged.get(n))
        if not changed:
            return []
        if app is None:
            app = ServiceApplication(service=service)
        app.credentials = merged
        app.save()
        health.forget(service.plugins.all())
        audit.record(
            AuditEvent.Action.CREDENTIALS_SET,
            actor=actor,
            organization=service.organization,
            detail=f"service {service.slug}: {', '.join(changed)}"[:255],
        )
    return changed


# --- plugins ------------------------------------------------------------------------------


def plugin_options(plugin: Plugin) -> dict[str, Any]:
    """The plugin's options as clients see them (secret-typed values masked)."""
    return mask_options(plugin, dict(plugin.options))


def update_plugin_options(plugin: Plugin, options: Mapping[str, Any], actor: Any) -> Plugin:
    """Replace the plugin's options (a masked secret sent back keeps its stored value),
    validated against its manifest."""
    incoming = keep_masked(plugin, dict(options), dict(plugin.options))
    manifest = manifest_for(plugin)
    if manifest is not None:
        try:
            manifest.validate_options(incoming)
        except OptionValidationError as exc:
            raise InvalidInput(
                "options are invalid: " + "; ".join(f"{n} {m}" for n, m in exc.errors.items()),
                fields={f"options.{n}": m for n, m in exc.errors.items()},
            ) from None
    changed = sorted(
        k for k in set(incoming) | set(plugin.options) if incoming.get(k) != plugin.options.get(k)
    )
    if not changed:
        return plugin
    with transaction.atomic():
        plugin.options = incoming
        plugin.save(update_fields=["options"])
        health.forget([plugin])
        audit.record(
            AuditEvent.Action.PLUGIN_CHANGE,
            actor=actor,
            organization=plugin.organization,
            plugin_slug=plugin.slug,
            detail=f"changed {', '.join(changed)}"[:255],
        )
    return plugin
