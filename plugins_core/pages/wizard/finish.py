"""The install wizard's finish: ``finish_install``, the only function that writes the install.

Owns ``InstallPlan`` (everything the wizard collected), ``Finished`` (what was written),
``WizardError`` (the install could not be finished; its message names no secret value) and
``finish_install``: in ONE transaction it installs from the service template
(``plugins_core.provisioning.install``) or uses an existing or new service and creates the
plugin row, applies the service settings, saves the credentials (clearing the ones meant for
a host the operator moved), the options and the project-type bindings
(``plugins_core.provisioning.bindings``), records the connection test as the plugin's health
(``plugins_core.serving.health``) and writes the audit trail. Any failure rolls everything
back. It re-checks permission itself (``imbi.core.access.can_install``); its caller
(``review.FinishStep``) discards the pipeline's state, with its encrypted secrets, once it
returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from imbi_plugin_sdk import OptionValidationError
from imbi_plugin_sdk.errors import InvalidInput

from imbi.core import audit
from imbi.core.access import can_install
from imbi.core.models import AuditEvent, Organization, ProjectType
from plugins_core import registry
from plugins_core.models import (
    ConnectionCheck,
    Plugin,
    ProjectTypePlugin,
    ServiceApplication,
    ThirdPartyService,
)
from plugins_core.pages.forms import ServiceForm, apply_credentials
from plugins_core.provisioning import bindings as binding_service
from plugins_core.provisioning.install import (
    InstallError,
    install_from_template,
    policy_refusal,
)
from plugins_core.serving import health
from plugins_core.serving.hosts import clear_stale_credentials, service_host_errors
from plugins_core.serving.resolution import ResolutionError


class WizardError(Exception):
    """The install could not be finished; the message names no secret value."""


@dataclass(slots=True)
class InstallPlan:
    """Everything the wizard collected; ``finish_install`` turns it into rows."""

    organization: Organization
    entry: registry.Entry
    service_mode: str
    service_id: int | None
    new_service: dict[str, str]
    settings: dict[str, str]
    credential_changes: dict[str, str | None]
    options: dict[str, object]
    project_type_ids: list[int]
    default: bool
    search_template: str
    connection: dict[str, Any] | None = None
    replace_default: bool = False


@dataclass(slots=True)
class Finished:
    service: ThirdPartyService
    plugin: Plugin
    created_service: bool
    created_plugins: list[str]
    credentials_changed: list[str]
    bindings: list[ProjectTypePlugin] = field(default_factory=list)


def _install_plugin(
    plan: InstallPlan, service: ThirdPartyService, actor: Any
) -> tuple[Plugin, list[str]]:
    manifest = plan.entry.manifest
    assert manifest is not None
    existing = Plugin.objects.filter(service=service, handler=plan.entry.name).first()
    if existing is not None:
        return existing, []
    refusal = policy_refusal(plan.organization, [plan.entry])
    if refusal:
        raise WizardError(f"publisher_not_verified: {refusal}")
    taken = set(
        Plugin.objects.filter(organization=plan.organization).values_list("slug", flat=True)
    )
    slug = manifest.slug
    number = 2
    while slug in taken:
        slug = f"{manifest.slug[:58]}-{number}"
        number += 1
    errors = service_host_errors(service, extra=[manifest])
    if errors:
        raise WizardError(
            "service settings: " + "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
        )
    plugin = Plugin.objects.create(
        organization=plan.organization,
        service=service,
        slug=slug,
        name=manifest.name[:200],
        plugin_type=manifest.plugin_type.value,
        handler=plan.entry.name,
    )
    audit.record(
        AuditEvent.Action.PLUGIN_INSTALL,
        actor=actor,
        organization=plan.organization,
        plugin_slug=slug,
        detail=f"installed on service {service.slug} (wizard)",
    )
    return plugin, [slug]


def _service_for(
    plan: InstallPlan, actor: Any
) -> tuple[ThirdPartyService, Plugin, bool, list[str]]:
    if plan.service_mode == ServiceForm.TEMPLATE:
        result = install_from_template(plan.organization, plan.entry.name, actor=actor)
        plugin = next((p for p in result.plugins if p.handler == plan.entry.name), None)
        if plugin is None:
            raise WizardError("the template install did not create this plugin")
        return result.service, plugin, result.created_service, list(result.created_plugins)
    created = False
    if plan.service_mode == ServiceForm.EXISTING:
        service = (
            ThirdPartyService.objects.select_for_update()
            .filter(pk=plan.service_id or 0, organization=plan.organization)
            .first()
        )
        if service is None:
            raise WizardError("the chosen service no longer exists")
    else:
        service = ThirdPartyService(organization=plan.organization, **plan.new_service)
        try:
            service.full_clean()
        except ValidationError as exc:
            raise WizardError(f"new service: {'; '.join(exc.messages)}") from None
        service.save()
        created = True
    plugin, created_plugins = _install_plugin(plan, service, actor)
    return service, plugin, created, created_plugins


def _apply_settings(service: ThirdPartyService, entered: Mapping[str, str]) -> dict[str, Any]:
    """Apply the entered settings; returns the settings as they were before."""
    before = dict(service.settings)
    settings = dict(service.settings)
    for name, value in entered.items():
        if value:
            settings[name] = value
        else:
            settings.pop(name, None)
    if settings != service.settings:
        service.settings = settings
        try:
            service.full_clean(
                exclude=["organization"], validate_unique=False, validate_constraints=False
            )
        except ValidationError as exc:
            raise WizardError(f"service settings: {'; '.join(exc.messages)}") from None
        service.save(update_fields=["settings", "updated_at"])
    return before


def _save_credentials(plan: InstallPlan, service: ThirdPartyService, actor: Any) -> list[str]:
    manifest = plan.entry.manifest
    assert manifest is not None
    app = ServiceApplication.objects.select_for_update().filter(service=service).first()
    stored: dict[str, str] = dict(app.credentials) if app and app.credentials else {}
    merged = apply_credentials(stored, plan.credential_changes)
    known = {f.name for f in manifest.credentials}
    try:
        manifest.validate_credentials({k: v for k, v in merged.items() if k in known})
    except OptionValidationError as exc:
        raise WizardError(
            "credentials: "
            + "; ".join(f"{name} {message}" for name, message in sorted(exc.errors.items()))
        ) from None
    changed = sorted(
        name for name in set(stored) | set(merged) if stored.get(name) != merged.get(name)
    )
    if not changed and app is not None:
        return []
    if app is None:
        app = ServiceApplication(service=service)
    app.credentials = merged
    app.full_clean(exclude=["service"])
    app.save()
    if changed:
        audit.record(
            AuditEvent.Action.CREDENTIALS_SET,
            actor=actor,
            organization=plan.organization,
            detail=f"service {service.slug}: {', '.join(changed)}"[:255],
        )
    return changed


def _bind(plan: InstallPlan, plugin: Plugin, actor: Any) -> list[ProjectTypePlugin]:
    made = []
    types = ProjectType.objects.filter(
        organization=plan.organization, pk__in=plan.project_type_ids
    ).order_by("slug")
    if len(types) != len(set(plan.project_type_ids)):
        raise WizardError("a chosen project type no longer exists")
    data = {
        "plugin": plugin.slug,
        "tab": plugin.plugin_type,
        "default": plan.default,
        "search_template": plan.search_template,
        "replace_default": plan.replace_default,
    }
    for project_type in types:
        existing = ProjectTypePlugin.objects.filter(
            project_type=project_type, plugin=plugin
        ).first()
        try:
            if existing is not None:
                binding: Any = binding_service.update_binding(
                    existing,
                    {k: data[k] for k in ("default", "search_template", "replace_default")},
                    actor,
                )
            else:
                binding = binding_service.create_type_binding(project_type, data, actor)
        except InvalidInput as exc:
            fields = "; ".join(f"{k}: {v}" for k, v in sorted(exc.fields.items()))
            raise WizardError(f"binding to {project_type.name}: {exc.detail} {fields}") from None
        except ResolutionError as exc:
            raise WizardError(f"binding to {project_type.name}: {exc.detail}") from None
        made.append(binding)
    return made


def finish_install(plan: InstallPlan, actor: Any) -> Finished:
    """Write the whole install in ONE transaction; any failure writes nothing.

    Raises ``WizardError`` (rolled back) with a message naming no secret value, and
    ``PermissionDenied`` when ``actor`` may not install in the plan's organization (the step
    checked it on this request already; this writer does not rely on its callers).
    """
    if not can_install(actor, plan.organization):
        raise PermissionDenied
    manifest = plan.entry.manifest
    assert manifest is not None
    try:
        with transaction.atomic():
            service, plugin, created_service, created_plugins = _service_for(plan, actor)
            before = _apply_settings(service, plan.settings)
            changed = _save_credentials(plan, service, actor)
            entered = {k for k, v in plan.credential_changes.items() if v}
            clear_stale_credentials(service, before, kept=entered, actor=actor)
            try:
                manifest.validate_options(plan.options)
            except OptionValidationError as exc:
                raise WizardError(f"options: {', '.join(sorted(exc.errors))} invalid") from None
            plugin.options = dict(plan.options)
            plugin.save(update_fields=["options"])
            made = _bind(plan, plugin, actor)
            tested = plan.connection
            if tested is not None:  # the wizard's test becomes the plugin's health record
                health.record(
                    plugin,
                    bool(tested["ok"]),
                    str(tested.get("message", "")),
                    int(tested.get("duration_ms", 0)),
                    ConnectionCheck.Trigger.WIZARD,
                )
            audit.record(
                AuditEvent.Action.PLUGIN_INSTALL,
                actor=actor,
                organization=plan.organization,
                plugin_slug=plugin.slug,
                detail=(
                    f"install wizard: {plan.entry.name} {plan.entry.version} on service "
                    f"{service.slug}, {len(made)} project-type binding(s), connection "
                    f"{'ok' if tested and tested['ok'] else 'not ok' if tested else 'untested'}"
                )[:255],
            )
    except InstallError as exc:
        raise WizardError(f"{exc.code}: {exc.message}") from None
    return Finished(
        service=service,
        plugin=plugin,
        created_service=created_service,
        created_plugins=created_plugins,
        credentials_changed=changed,
        bindings=made,
    )
