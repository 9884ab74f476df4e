"""Plugin health: run an installed plugin's connection test, record it, derive its badge.

Owns ``check_connection`` (resolve the plugin's options and the service's credentials the way a
tab request would, call ``test_connection`` through the runner, record a ``ConnectionCheck``),
``record`` (store an outcome computed elsewhere, e.g. by the install wizard) and ``badge``,
the one function every surface (admin, project page, REST API) uses to say whether a plugin
can serve. A badge combines three facts, first failing one wins:

1. the registry: enabled, its handler installed, loaded and compatible
   (``plugin_disabled``, ``plugin_unavailable``, ``plugin_incompatible``; ``plugin_loading``
   while its sandboxed import is still running);
2. the service's credentials: every required credential of the manifest stored
   (``credentials_missing``) -- read from the stored *names*, nothing is decrypted;
3. the last connection test: ``connection_failed`` with its message, ``ok`` after a passing
   test, ``untested`` when there was none since the credentials or options last changed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core.exceptions import ObjectDoesNotExist
from django.db.models import ExpressionWrapper, F, QuerySet, TextField
from django.utils import timezone
from imbi_plugin_sdk import ConnectionResult, PluginContext, PluginError, redact, secret_values

from imbi.core import audit
from imbi.core.models import AuditEvent, Project
from plugins_core import registry
from plugins_core.isolation import capabilities
from plugins_core.isolation.modes import ISOLATED, effective_mode
from plugins_core.models import ConnectionCheck, Plugin, ProjectPlugin, ServiceApplication
from plugins_core.serving.projects import DatabaseProjectMetadata
from plugins_core.serving.resolution import (
    EffectiveBinding,
    ResolutionError,
    Resolved,
    check_entry,
    credentials_for,
    merged_options,
    resolve,
)
from plugins_core.serving.runner import default_runner
from plugins_core.serving.storage import DatabaseKeyValueStore

logger = logging.getLogger(__name__)

OK = "ok"
UNTESTED = "untested"
CONNECTION_FAILED = "connection_failed"
CREDENTIALS_MISSING = "credentials_missing"
PLUGIN_LOADING = "plugin_loading"  # the registry is still importing it (not a failure yet)
CANNOT_RUN_HERE = capabilities.CANNOT_RUN_HERE  # an untrusted plugin this host cannot sandbox
MESSAGE_MAX = 500


@dataclass(frozen=True, slots=True)
class Badge:
    """What a plugin's badge says: a stable ``status`` code, a reason, the last test."""

    status: str
    reason: str = ""
    tested_at: datetime | None = None
    duration_ms: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == OK

    @property
    def level(self) -> str:
        """For styling: ``ok``, ``unknown`` (untested) or ``error``."""
        return {OK: "ok", UNTESTED: "unknown", PLUGIN_LOADING: "unknown"}.get(self.status, "error")

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "tested_at": self.tested_at,
            "duration_ms": self.duration_ms,
        }


def with_health(plugins: QuerySet[Plugin]) -> QuerySet[Plugin]:
    """``plugins`` with what ``badge`` reads loaded in the same query (no decryption)."""
    return plugins.select_related("service", "connection").annotate(
        credential_names=F("service__application__names")
    )


def _stored_names(plugin: Plugin) -> set[str]:
    if hasattr(plugin, "credential_names"):  # annotated by with_health()
        names = plugin.credential_names
    else:
        names = (
            ServiceApplication.objects.filter(service_id=plugin.service_id)
            .values_list("names", flat=True)
            .first()
        )
    return set(names or ())


def _last_check(plugin: Plugin) -> ConnectionCheck | None:
    try:
        return plugin.connection
    except ObjectDoesNotExist:
        return None


def badge(plugin: Plugin, snapshot: registry.Snapshot | None = None) -> Badge:
    """The plugin's badge (see the module docstring for the order of the checks)."""
    snapshot = snapshot or registry.current()
    try:
        entry = check_entry(plugin, snapshot)
    except ResolutionError as exc:
        return Badge(exc.code, exc.detail)
    assert entry.manifest is not None  # checked by check_entry
    refused = capabilities.entry_refusal(
        entry, isolated=effective_mode(plugin.execution_mode, entry) == ISOLATED
    )
    if refused:
        return Badge(CANNOT_RUN_HERE, f"cannot run here: {refused}")
    stored = _stored_names(plugin)
    missing = [f.name for f in entry.manifest.credentials if f.required and f.name not in stored]
    if missing:
        return Badge(
            CREDENTIALS_MISSING,
            f"service '{plugin.service.slug}' has no {', '.join(missing)} credentials",
        )
    check = _last_check(plugin)
    if check is None:
        return Badge(UNTESTED, "no connection test since the last change")
    if check.status == ConnectionCheck.Status.OK:
        return Badge(OK, check.message, check.tested_at, check.duration_ms)
    return Badge(CONNECTION_FAILED, check.message, check.tested_at, check.duration_ms)


def record(
    plugin: Plugin, ok: bool, message: str, duration_ms: int, trigger: str
) -> ConnectionCheck:
    """Store ``plugin``'s latest connection test (replacing the previous one)."""
    check, _ = ConnectionCheck.objects.update_or_create(
        plugin=plugin,
        defaults={
            "status": ConnectionCheck.Status.OK if ok else ConnectionCheck.Status.FAILED,
            "message": message[:MESSAGE_MAX],
            "tested_at": timezone.now(),
            "duration_ms": max(0, int(duration_ms)),
            "trigger": trigger,
        },
    )
    plugin.connection = check
    return check


def forget(plugins: Iterable[Plugin] | QuerySet[Plugin]) -> None:
    """Drop the last tests of ``plugins``: their credentials or options changed."""
    ids = [p.pk for p in plugins]
    if ids:
        ConnectionCheck.objects.filter(plugin_id__in=ids).delete()


def sample_project(plugin: Plugin) -> Project | None:
    """A project the plugin serves (bound to it directly, else through its type), if any."""
    pk: int | None = (
        ProjectPlugin.objects.filter(plugin=plugin)
        .order_by("project_id")
        .values_list("project_id", flat=True)
        .first()
    )
    if pk is None:
        pk = (
            Project.objects.filter(
                project_type__plugin_bindings__plugin=plugin,
                organization_id=plugin.organization_id,
            )
            .order_by("pk")
            .values_list("pk", flat=True)
            .first()
        )
    if pk is None:
        return None
    return Project.objects.select_related("organization", "project_type").get(pk=pk)


def _resolved(plugin: Plugin, snapshot: registry.Snapshot, project: Project | None) -> Resolved:
    """What a tab request would get for ``plugin``: in ``project`` (the plugin bound there,
    with its options and expanded search template), else with the plugin's own options."""
    if project is not None:
        return resolve(
            project,
            plugin.plugin_type,
            plugin.slug,
            snapshot=snapshot,
            timeout=float(settings.IMBI_PLUGIN_TIMEOUT),
            storage_factory=DatabaseKeyValueStore,
        )
    entry = check_entry(plugin, snapshot)
    manifest = entry.manifest
    assert manifest is not None
    token = (
        ServiceApplication.objects.filter(service_id=plugin.service_id)
        .annotate(token=ExpressionWrapper(F("credentials"), output_field=TextField()))
        .values_list("token", flat=True)
        .first()
    )
    binding = EffectiveBinding(
        plugin=plugin,
        tab=plugin.plugin_type,
        default=False,
        project_default=False,
        search_template="",
        options={},
        scope="plugin",
        credentials_token=token,
    )
    context = PluginContext(
        organization=plugin.organization.slug,
        tab=plugin.plugin_type,
        options=merged_options(manifest, plugin, {}),
        timeout=float(settings.IMBI_PLUGIN_TIMEOUT),
        logger=logging.getLogger(f"imbi.plugins.{manifest.slug}"),
        storage=DatabaseKeyValueStore(plugin.pk) if manifest.permissions.storage else None,
        service_settings=dict(plugin.service.settings),
        projects=(
            DatabaseProjectMetadata(plugin.organization_id)
            if manifest.permissions.project_metadata
            else None
        ),
    )
    return Resolved(binding, entry, manifest, context, credentials_for(manifest, binding))


def check_connection(
    plugin: Plugin,
    *,
    trigger: str,
    actor: Any = None,
    project: Project | None = None,
    snapshot: registry.Snapshot | None = None,
) -> ConnectionCheck:
    """Run ``plugin``'s connection test with its stored options and credentials; record it.

    The test runs as the plugin serves ``project`` (default: ``sample_project``), so a
    plugin that needs a binding's search template gets one; with no binding anywhere it
    runs with the plugin's own options.

    Never raises for a plugin problem: a plugin that cannot be resolved (disabled, missing
    credentials, invalid options) or fails records a failed test saying why. Messages are
    scrubbed of every credential and secret option value. A test someone asked for
    (``actor``) is audited; the periodic check is not.
    """
    snapshot = snapshot or registry.current()
    started = time.monotonic()
    secrets: list[str] = []
    try:
        resolved = _resolved(plugin, snapshot, project or sample_project(plugin))
        secrets = secret_values(resolved.manifest, resolved.context.options, resolved.credentials)
        result: ConnectionResult = default_runner().call(resolved, "test_connection")
        ok, message = result.ok, result.message or ("connected" if result.ok else "failed")
    except ResolutionError as exc:
        ok, message = False, f"{exc.code}: {exc.detail}"
    except PluginError as exc:
        ok, message = False, f"{exc.code}: {exc.detail}"
    elapsed = int((time.monotonic() - started) * 1000)
    check = record(plugin, ok, redact(message, secrets), elapsed, trigger)
    if actor is not None:
        audit.record(
            AuditEvent.Action.CONNECTION_TEST,
            actor=actor,
            organization=plugin.organization,
            plugin_slug=plugin.slug,
            detail=f"{check.status} in {check.duration_ms} ms ({trigger})",
        )
    return check


def check_all(
    plugins: QuerySet[Plugin] | None = None, *, trigger: str = ConnectionCheck.Trigger.PERIODIC
) -> dict[str, int]:
    """Test every enabled plugin (the periodic check); counts of ``ok`` and ``failed``, and
    of ``loading`` plugins, left for the next round (a test now would record "still loading"
    as a failed connection and show it after the plugin loaded)."""
    snapshot = registry.current()
    counts = {"ok": 0, "failed": 0, "loading": 0}
    rows = plugins if plugins is not None else Plugin.objects.all()
    rows = rows.filter(enabled=True).select_related("service", "organization")
    for plugin in rows.order_by("organization__slug", "slug"):
        entry = snapshot.get(plugin.handler)
        if entry is not None and entry.status is registry.Status.LOADING:
            counts["loading"] += 1
            continue
        check = check_connection(plugin, trigger=trigger, snapshot=snapshot)
        counts[check.status] += 1
        logger.log(  # the message is already scrubbed of secrets
            logging.INFO if check.status == "ok" else logging.WARNING,
            "connection test %s/%s: %s %s",
            plugin.organization.slug,
            plugin.slug,
            check.status,
            check.message,
        )
    logger.info("connection tests: %(ok)d ok, %(failed)d failed, %(loading)d still loading", counts)
    return counts
