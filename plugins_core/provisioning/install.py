"""One-click install of a service and its plugins from a manifest template (Imbi ADR 0012).

Owns ``install_from_template`` (find or create the organization's ``ThirdPartyService`` for a
template and a ``Plugin`` row for every loaded entry point that declares the same template),
``available_templates`` (what the admin wizard offers), ``InstallResult``, ``TemplateOffer``
and ``InstallError``.

Rules:
- only a loaded entry point with a ``service_template`` can be installed, and a template with
  anything secret-shaped is refused again here, defensively;
- the organization's publisher policy applies where the plugin lands
  (``check_publisher_policy``): under a verified-only policy (``PluginPolicy`` or
  ``IMBI_PLUGINS_VERIFIED_ONLY``) every entry point the template provisions must come from a
  verified publisher's signed build, however the distribution was installed
  (``publisher_not_verified``); the image's own (host-environment) plugins are the operator's
  and pass;
- the icon is sanitized (``plugins_core.provisioning.icons``); a refused icon refuses the install;
- credentials are never created: an administrator adds them afterwards;
- re-installing never creates anything twice and never touches existing ``Plugin`` rows. A
  service an operator took over (``managed_by_manifest=False``) is left exactly as it is; a
  managed one gets name, category, icon and settings refreshed from the template. For settings
  the template's non-empty values win and the operator's other keys (an account id, a
  directory the template leaves empty) are kept;
- everything happens in one transaction and is written to the audit trail.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction
from imbi_plugin_sdk import ServiceTemplate, looks_like_secret
from packaging.utils import canonicalize_name

from imbi.core import audit
from imbi.core.models import AuditEvent, Organization
from plugins_core import registry
from plugins_core.models import (
    IndexedArtifact,
    InstalledDistribution,
    Plugin,
    ThirdPartyService,
    validate_service_settings,
)
from plugins_core.provisioning.icons import IconError, load_icon
from plugins_core.serving.hosts import clear_stale_credentials, service_host_errors
from plugins_core.supply import trust

__all__ = [
    "InstallError",
    "InstallResult",
    "TemplateOffer",
    "available_templates",
    "check_publisher_policy",
    "install_from_template",
    "policy_refusal",
    "template_key",
]

_SLUG_MAX = 64


class InstallError(ValueError):
    """The install was refused; ``code`` is stable, the message says why (never a secret)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class InstallResult:
    """What an install found or made. ``plugins`` lists every plugin of the template."""

    service: ThirdPartyService
    plugins: list[Plugin]
    created_service: bool
    created_plugins: list[str]
    updated_service: bool


@dataclass(frozen=True, slots=True)
class TemplateOffer:
    """One installable template and the entry points that share it."""

    vendor: str
    name: str
    category: str
    entry_points: tuple[str, ...]
    plugin_types: tuple[str, ...]
    distribution: str
    version: str
    template: ServiceTemplate


def template_key(template: ServiceTemplate) -> str:
    """A canonical text of a template: equal templates, equal keys."""
    return json.dumps(template.to_dict(), sort_keys=True)


def _sharing(snapshot: registry.Snapshot, template: ServiceTemplate) -> list[registry.Entry]:
    """Loaded entry points whose manifest declares an equal template, by name."""
    key = template_key(template)
    return sorted(
        (
            entry
            for entry in snapshot.loaded()
            if entry.manifest is not None
            and entry.manifest.service_template is not None
            and template_key(entry.manifest.service_template) == key
        ),
        key=lambda entry: entry.name,
    )


def available_templates(snapshot: registry.Snapshot | None = None) -> list[TemplateOffer]:
    """Every template offered by a loaded entry point, grouped, by category then name."""
    snapshot = snapshot or registry.current()
    groups: dict[str, tuple[ServiceTemplate, list[registry.Entry]]] = {}
    for entry in sorted(snapshot.loaded(), key=lambda e: e.name):
        template = entry.manifest.service_template if entry.manifest else None
        if template is not None:
            groups.setdefault(template_key(template), (template, []))[1].append(entry)
    offers = []
    for template, entries in groups.values():
        offers.append(
            TemplateOffer(
                vendor=template.vendor,
                name=template.name,
                category=template.category,
                entry_points=tuple(e.name for e in entries),
                plugin_types=tuple(
                    sorted({e.manifest.plugin_type.value for e in entries if e.manifest})
                ),
                distribution=", ".join(sorted({e.distribution for e in entries})),
                version=", ".join(sorted({e.version for e in entries})),
                template=template,
            )
        )
    return sorted(offers, key=lambda o: (o.category, o.name, o.vendor))


# --- checks -----------------------------------------------------------------------------


def _template(snapshot: registry.Snapshot, entry_point: str) -> ServiceTemplate:
    """The entry point's template, or why it cannot be installed."""
    entry = snapshot.get(entry_point)
    if entry is None:
        raise InstallError(
            "plugin_not_loaded",
            f"no plugin entry point {entry_point!r} is installed on this server",
        )
    if not entry.ok or entry.manifest is None:
        raise InstallError(
            "plugin_not_loaded",
            f"plugin {entry_point!r} is not loaded ({entry.status}): {entry.reason}",
        )
    template = entry.manifest.service_template
    if template is None:
        raise InstallError(
            "no_template",
            f"plugin {entry_point!r} declares no service "
            "template; create the service and plugin by hand",
        )
    return template


def _check_no_secrets(template: ServiceTemplate) -> None:
    """Defence in depth: the SDK refuses these at manifest construction already."""
    values: Iterable[tuple[str, object]] = [
        ("base_url", template.base_url),
        *((f"links[{i}]", link[1]) for i, link in enumerate(template.links)),
        *((f"settings.{k}", v) for k, v in template.settings.items()),
    ]
    for path, value in values:
        if isinstance(value, str) and looks_like_secret(value):
            raise InstallError(
                "template_has_secret", f"service template {path} looks like a secret; refusing it"
            )


def _settings(template: ServiceTemplate) -> dict[str, Any]:
    settings: dict[str, Any] = dict(template.settings)
    if template.base_url:
        settings["base_url"] = template.base_url
    try:
        validate_service_settings(settings)
    except ValidationError as exc:
        raise InstallError(
            "invalid_template", f"service template settings: {'; '.join(exc.messages)}"
        ) from None
    return settings


def _icon(template: ServiceTemplate, env: str = "") -> str:
    if not template.icon:
        return ""
    try:
        return load_icon(template.icon, env)
    except IconError as exc:
        raise InstallError("icon_rejected", f"icon {template.icon!r} refused: {exc}") from None


def policy_refusal(organization: Organization, entries: Iterable[registry.Entry]) -> str:
    """Why ``organization``'s publisher policy refuses one of ``entries`` ("" when none)."""
    if not trust.verified_only(organization):
        return ""
    badges = trust.installed_badges()
    runtime = set(InstalledDistribution.objects.values_list("name", flat=True))
    for entry in entries:
        badge = trust.badge_of(entry.distribution, badges)
        name = canonicalize_name(entry.distribution) if entry.distribution else ""
        if badge == trust.VERIFIED or (badge == trust.UNSIGNED and name not in runtime):
            continue  # a verified publisher's build, or the image's own plugin
        record = IndexedArtifact.objects.filter(distribution=name).first()
        origin = (
            f"publisher {record.publisher!r} is not verified"
            if record is not None
            else "it was installed from a local wheel, with no publisher signature"
        )
        return (
            f"organization {organization.slug!r} installs plugins from verified publishers "
            f"only; {entry.name} comes from {entry.distribution} {entry.version} and {origin}"
        )
    return ""


def check_publisher_policy(organization: Organization, entries: Iterable[registry.Entry]) -> None:
    """``InstallError("publisher_not_verified")`` when the policy refuses one of ``entries``."""
    reason = policy_refusal(organization, entries)
    if reason:
        raise InstallError("publisher_not_verified", reason)


# --- rows ---------------------------------------------------------------------------------


def _free_slug(taken: set[str], base: str) -> str:
    if base not in taken:
        return base
    for number in range(2, 10_000):
        suffix = f"-{number}"
        candidate = base[: _SLUG_MAX - len(suffix)] + suffix
        if candidate not in taken:
            return candidate
    raise InstallError("slug_exhausted", f"no free slug for {base!r}")  # pragma: no cover


def _merged_settings(current: dict[str, Any], template: dict[str, Any]) -> dict[str, Any]:
    """The template's non-empty values over the current settings (operator keys are kept)."""
    merged = dict(current)
    for key, value in template.items():
        if value != "" or key not in merged:
            merged[key] = value
    return merged


def _service(
    organization: Organization,
    template: ServiceTemplate,
    entry_point: str,
    settings: dict[str, Any],
    icon: str,
) -> tuple[ThirdPartyService, bool, bool]:
    """The service for the template: (service, created, updated)."""
    service = (
        ThirdPartyService.objects.select_for_update()
        .filter(organization=organization, vendor=template.vendor, identity="")
        .first()
    )
    if service is None:
        taken = set(
            ThirdPartyService.objects.filter(organization=organization).values_list(
                "slug", flat=True
            )
        )
        service = ThirdPartyService(
            organization=organization,
            vendor=template.vendor,
            identity="",
            slug=_free_slug(taken, template.vendor),
            name=template.name[:200],
            category=template.category[:64],
            settings=settings,
            icon=icon,
            managed_by_manifest=True,
            template_source=entry_point[:200],
        )
        _clean(service)
        service.save()
        return service, True, False
    if not service.managed_by_manifest:
        return service, False, False
    wanted = {
        "name": template.name[:200],
        "category": template.category[:64],
        "settings": _merged_settings(dict(service.settings), settings),
        "icon": icon,
        "template_source": entry_point[:200],
    }
    changed = [field for field, value in wanted.items() if getattr(service, field) != value]
    for field in changed:
        setattr(service, field, wanted[field])
    if changed:
        _clean(service)
        service.save(update_fields=[*changed, "updated_at"])
    return service, False, bool(changed)


def _current_settings(
    organization: Organization, template: ServiceTemplate
) -> dict[str, Any] | None:
    row = (
        ThirdPartyService.objects.filter(
            organization=organization, vendor=template.vendor, identity=""
        )
        .values_list("settings", flat=True)
        .first()
    )
    return dict(row) if isinstance(row, dict) else None


def _clean(service: ThirdPartyService) -> None:
    try:
        service.full_clean(
            exclude=["organization"], validate_unique=False, validate_constraints=False
        )
    except ValidationError as exc:
        raise InstallError(
            "invalid_template", f"service template: {'; '.join(exc.messages)}"
        ) from None


def _plugins(
    organization: Organization, service: ThirdPartyService, entries: list[registry.Entry]
) -> tuple[list[Plugin], list[str]]:
    """A plugin row per entry on the service: existing rows are kept untouched."""
    on_service = {p.handler: p for p in Plugin.objects.filter(service=service)}
    slugs_on_service = {p.slug: p for p in on_service.values()}
    taken = set(Plugin.objects.filter(organization=organization).values_list("slug", flat=True))
    plugins: list[Plugin] = []
    created: list[str] = []
    for entry in entries:
        manifest = entry.manifest
        assert manifest is not None  # loaded entries have one
        existing = on_service.get(entry.name) or slugs_on_service.get(manifest.slug)
        if existing is not None:
            plugins.append(existing)
            continue
        slug = _free_slug(taken, manifest.slug)
        taken.add(slug)
        plugin = Plugin.objects.create(
            organization=organization,
            service=service,
            slug=slug,
            name=manifest.name[:200],
            plugin_type=manifest.plugin_type.value,
            handler=entry.name,
            options={o.name: o.default for o in manifest.options if o.default is not None},
        )
        plugins.append(plugin)
        created.append(slug)
    return plugins, created


# --- install ------------------------------------------------------------------------------


def install_from_template(
    organization: Organization,
    entry_point: str,
    *,
    actor: Any = None,
    snapshot: registry.Snapshot | None = None,
) -> InstallResult:
    """Install ``entry_point``'s service template, and every plugin sharing it, in ``org``.

    Raises ``InstallError`` (``plugin_not_loaded``, ``no_template``, ``template_has_secret``,
    ``icon_rejected``, ``invalid_template``, ``publisher_not_verified``, ``host_not_allowed``)
    before anything is written.
    """
    snapshot = snapshot or registry.current()
    template = _template(snapshot, entry_point)
    _check_no_secrets(template)
    settings = _settings(template)
    entry = snapshot.get(entry_point)
    icon = _icon(template, entry.env if entry is not None else "")
    entries = _sharing(snapshot, template)
    check_publisher_policy(organization, entries)
    with transaction.atomic():
        before = _current_settings(organization, template)
        service, created_service, updated_service = _service(
            organization, template, entry_point, settings, icon
        )
        plugins, created_plugins = _plugins(organization, service, entries)
        errors = service_host_errors(service)
        if errors:  # rolls the whole install back
            raise InstallError(
                "host_not_allowed",
                "service settings: " + "; ".join(f"{k}: {v}" for k, v in sorted(errors.items())),
            )
        if before is not None:
            clear_stale_credentials(service, before, actor=actor)
        if created_service or updated_service:
            verb = "created" if created_service else "refreshed"
            audit.record(
                AuditEvent.Action.PLUGIN_INSTALL,
                actor=actor,
                organization=organization,
                plugin_slug=entry_point[:64],
                detail=f"{verb} service {service.slug} from template {template.vendor}",
            )
        for slug in created_plugins:
            audit.record(
                AuditEvent.Action.PLUGIN_INSTALL,
                actor=actor,
                organization=organization,
                plugin_slug=slug,
                detail=f"installed on service {service.slug} from template {template.vendor}",
            )
    return InstallResult(
        service=service,
        plugins=plugins,
        created_service=created_service,
        created_plugins=created_plugins,
        updated_service=updated_service,
    )
