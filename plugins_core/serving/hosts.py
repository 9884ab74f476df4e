"""Credentials go only to declared hosts: the host-side half of the network permission.

A service's settings are shared by every plugin installed on it, and so are its credentials.
A setting that names a host (``base_url``, ``endpoint``, any ``*_url``/``*_host``/``*_endpoint``
key, any ``scheme://`` value) decides where those credentials travel, so at save time it must
name a host that EVERY plugin of the service declares in ``permissions.network_hosts``, unless
the plugin lists that setting in ``permissions.operator_host_settings`` (contract 1.1: a
self-hosted GitHub Enterprise, a private Logz.io listener); even there a loopback,
link-local (cloud metadata), unspecified or multicast address is refused. A ``region`` (or
``*_region``) setting, from which plugins derive a host, must be a single DNS label, so that
it can never move the derived host out from under the declared suffix.

When the host of an operator-chosen setting changes, the stored credentials were meant for
the old host: ``clear_stale_credentials`` drops every one not re-entered in the same save,
and records it in the audit trail.

``host_errors`` is the one validation function; every surface reaches it through
``service_host_errors`` (the model's ``clean()``, the admin, the wizard, the template install)
and resolution checks it again before credentials are decrypted for a call.

Tests only: ``settings.IMBI_TEST_NETWORK_HOSTS`` (set in ``imbi.settings.test`` alone, never
read from the environment) adds loopback hosts so services can point at local emulators.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from django.conf import settings as django_settings
from imbi_plugin_sdk import PluginManifest

from plugins_core.isolation.hostnames import HostRef, host_setting

if TYPE_CHECKING:
    from plugins_core.models import Plugin, ThirdPartyService

__all__ = [
    "HostRef",
    "clear_stale_credentials",
    "host_errors",
    "host_setting",
    "operator_hosts_changed",
    "service_host_errors",
    "service_manifests",
]

_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)


def _is_region(key: str) -> bool:
    return key == "region" or key.endswith("_region")


def _test_hosts() -> frozenset[str]:
    return frozenset(getattr(django_settings, "IMBI_TEST_NETWORK_HOSTS", ()))


def _internal_kind(host: str) -> str:
    """What makes ``host`` internal ("loopback", "link-local", ...); "" when it is not."""
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return ""
    for kind, flag in (
        ("loopback", address.is_loopback),
        ("link-local (cloud metadata)", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("reserved", address.is_reserved),
    ):
        if flag:
            return kind
    return ""


def _internal(host: str) -> bool:
    """Loopback, link-local (cloud metadata), unspecified or multicast: never operator-chosen."""
    return bool(_internal_kind(host))


def _declared(manifest: PluginManifest, key: str, ref: HostRef) -> bool:
    permissions = manifest.permissions
    if ref.host in _test_hosts() or permissions.allows_host(ref.host, ref.port):
        return True
    return key in permissions.operator_host_settings and not _internal(ref.host)


def host_errors(settings: Mapping[str, Any], manifests: Iterable[PluginManifest]) -> dict[str, str]:
    """Every setting naming a host some plugin of the service does not declare, by key.

    The message names the hosts allowed; no manifests (a service with no plugin yet) means
    nothing can use its credentials, and the check runs again when a plugin is added.
    """
    manifests = list(manifests)
    errors: dict[str, str] = {}
    for key, value in settings.items():
        if _is_region(key) and isinstance(value, str) and value and not _LABEL_RE.match(value):
            errors[key] = "must be a region code (letters, digits and '-')"
            continue
        try:
            ref = host_setting(key, value)
        except ValueError as exc:
            errors[key] = str(exc)
            continue
        if ref is None:
            continue
        refusing = [m for m in manifests if not _declared(m, key, ref)]
        if refusing:
            allowed = sorted({p for m in refusing for p in m.permissions.network_hosts})
            names = ", ".join(sorted(m.slug for m in refusing))
            hosts = ", ".join(allowed) if allowed else "none"
            kind = _internal_kind(ref.host)
            chosen = all(key in m.permissions.operator_host_settings for m in refusing)
            if kind and chosen:
                # The plugins let the operator choose this host, but never an internal one:
                # say so, rather than "not declared" (a local emulator lands here).
                errors[key] = (
                    f"{ref.shown} is a {kind} address: a service's {key} may name any host "
                    f"but a loopback, link-local, unspecified or multicast one, unless the "
                    f"plugins declare it ({names} declare {hosts})"
                )
            else:
                errors[key] = (
                    f"{ref.shown} is not a host the plugins of this service declare "
                    f"({names}); allowed hosts: {hosts}"
                )
    return errors


def service_manifests(
    service: ThirdPartyService, extra: Iterable[Plugin] = ()
) -> list[PluginManifest]:
    """The loaded manifests of the plugins on ``service`` (and of ``extra`` unsaved rows)."""
    from plugins_core import registry
    from plugins_core.models import Plugin

    snapshot = registry.current()
    rows: list[Plugin] = list(Plugin.objects.filter(service=service)) if service.pk else []
    extra = list(extra)
    rows = [r for r in rows if all(r.pk != e.pk for e in extra if e.pk)] + extra
    entries = [snapshot.get(row.handler) for row in rows]  # resolution.manifest_for, inlined
    return [e.manifest for e in entries if e is not None and e.manifest is not None]


def service_host_errors(
    service: ThirdPartyService,
    settings: Mapping[str, Any] | None = None,
    *,
    extra: Iterable[PluginManifest | Plugin] = (),
) -> dict[str, str]:
    """``host_errors`` for ``service`` (or the ``settings`` about to be saved on it), with
    the manifests of its plugins plus ``extra`` ones (a plugin being added)."""
    from plugins_core.models import Plugin

    extra = list(extra)
    rows = [e for e in extra if isinstance(e, Plugin)]
    manifests = service_manifests(service, rows)
    manifests += [e for e in extra if isinstance(e, PluginManifest)]
    value = service.settings if settings is None else settings
    return host_errors(value if isinstance(value, Mapping) else {}, manifests)


def operator_hosts_changed(
    old: Mapping[str, Any], new: Mapping[str, Any], manifests: Iterable[PluginManifest]
) -> list[str]:
    """The operator-chosen settings whose host (scheme, name or port) differs."""
    keys = {k for m in manifests for k in m.permissions.operator_host_settings}

    def ref(settings: Mapping[str, Any], key: str) -> HostRef | None:
        try:
            return host_setting(key, settings.get(key))
        except ValueError:
            return None

    return sorted(k for k in keys if ref(old, k) != ref(new, k))


def clear_stale_credentials(
    service: ThirdPartyService,
    old_settings: Mapping[str, Any],
    *,
    kept: Iterable[str] = (),
    actor: Any = None,
    manifests: Iterable[PluginManifest] | None = None,
) -> list[str]:
    """After an operator-chosen host changed, drop the stored credentials not re-entered in
    the same save (``kept``); returns the names dropped (audited, values never recorded)."""
    from imbi.core import audit
    from imbi.core.models import AuditEvent
    from plugins_core.models import ServiceApplication

    manifests = service_manifests(service) if manifests is None else list(manifests)
    changed = operator_hosts_changed(old_settings, service.settings, manifests)
    if not changed:
        return []
    app = ServiceApplication.objects.select_for_update().filter(service=service).first()
    if app is None or not isinstance(app.credentials, dict):
        return []
    keep = set(kept)
    dropped = sorted(name for name in app.credentials if name not in keep)
    if not dropped:
        return []
    remaining = {k: v for k, v in app.credentials.items() if k in keep}
    if remaining:
        app.credentials = remaining
        app.save()
    else:
        app.delete()
    audit.record(
        AuditEvent.Action.CREDENTIALS_SET,
        actor=actor,
        organization=service.organization,
        detail=(
            f"service {service.slug}: cleared {', '.join(dropped)} because "
            f"{', '.join(changed)} moved to another host"
        ),
    )
    return dropped
