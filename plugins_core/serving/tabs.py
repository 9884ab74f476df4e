"""Tab services: what the REST API (and the project page) call to read and write tab data.

Each function takes the project (loaded with the caller's grant by ``imbi.core.access``),
checks what the grant allows, resolves the plugin (``resolution``), invokes it (``runner``),
masks secrets and writes the audit trail. Reads need only membership, which loading the
project already proved.
Secret values are masked unless the caller asks to reveal them *and* holds the read-secrets
grant; every revealed secret and every write is audited, never with its value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.db import transaction
from imbi_plugin_sdk import (
    ConfigKey,
    ConfigValue,
    ConfigWrite,
    Histogram,
    LogQuery,
    LogResult,
    check_log_filters,
    validate_config_key,
)
from imbi_plugin_sdk.errors import InvalidInput

from imbi.core import audit
from imbi.core.access import Grant
from imbi.core.models import AuditEvent, Project, Role
from plugins_core import registry
from plugins_core.serving import caching, health
from plugins_core.serving.resolution import (
    EffectiveBinding,
    ResolutionError,
    Resolved,
    effective_bindings,
    resolve,
    select,
)
from plugins_core.serving.runner import Runner, default_runner
from plugins_core.serving.storage import DatabaseKeyValueStore

logger = logging.getLogger(__name__)
T = TypeVar("T")


class Forbidden(ResolutionError):
    code, http_status = "permission_denied", 403


def _resolve(project: Project, tab: str, source: str | None) -> Resolved:
    return resolve(
        project,
        tab,
        source,
        timeout=settings.IMBI_PLUGIN_TIMEOUT,
        storage_factory=DatabaseKeyValueStore,
        cached=True,
    )


def _require(grant: Grant, role: str, what: str) -> None:
    if not grant.at_least(role):
        raise Forbidden(f"{what} needs the {role} role or above")


# --- the tabs a project shows ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TabSource:
    binding: EffectiveBinding
    status: str
    reason: str
    selected: bool
    tested_at: Any = None


def project_tabs(project: Project) -> dict[str, list[TabSource]]:
    """Every tab with bindings, its sources, and which one a plain request would use."""
    snapshot = registry.current()
    bindings = effective_bindings(project)
    tabs: dict[str, list[TabSource]] = {}
    for tab in sorted({b.tab for b in bindings}):
        try:
            chosen: EffectiveBinding | None = select(bindings, tab, None)
        except ResolutionError:
            chosen = None
        sources = []
        for binding in (b for b in bindings if b.tab == tab):
            found = health.badge(binding.plugin, snapshot)
            sources.append(
                TabSource(binding, found.status, found.reason, binding is chosen, found.tested_at)
            )
        tabs[tab] = sources
    return tabs


# --- configuration -----------------------------------------------------------------


def list_keys(
    project: Project, grant: Grant, source: str | None, *, runner: Runner | None = None
) -> tuple[Resolved, list[ConfigKey]]:
    resolved = _resolve(project, "configuration", source)
    keys = caching.cached(
        resolved,
        project.organization.config_version,
        "list_keys",
        None,
        lambda: list((runner or default_runner()).call(resolved, "list_keys")),
        ConfigKey.to_dict,
        ConfigKey.from_dict,
    )
    return resolved, keys


def get_values(
    project: Project,
    grant: Grant,
    user: Any,
    source: str | None,
    keys: Sequence[str] | None,
    *,
    reveal: bool = False,
    runner: Runner | None = None,
) -> tuple[Resolved, list[ConfigValue]]:
    if reveal and not grant.read_secrets:
        raise Forbidden("revealing secret values needs the read-secrets permission")
    if keys is not None:
        for key in keys:
            _check_key(key)
    resolved = _resolve(project, "configuration", source)
    wanted = list(keys) if keys else None

    def fetch() -> list[ConfigValue]:
        return list((runner or default_runner()).call(resolved, "get_values", wanted))

    if not reveal:  # masked results hold no secret value, so they may be cached
        masked = caching.cached(
            resolved,
            project.organization.config_version,
            "get_values",
            wanted,
            lambda: [v.masked() if v.secret else v for v in fetch()],
            ConfigValue.to_dict,
            ConfigValue.from_dict,
        )
        return resolved, masked
    values = fetch()
    for value in values:
        if value.secret:
            audit.record(
                AuditEvent.Action.SECRET_READ,
                actor=user,
                organization=project.organization,
                project=project,
                plugin_slug=resolved.plugin.slug,
                key=value.key,
            )
    return resolved, values


def _check_key(key: str) -> None:
    try:
        validate_config_key(key)
    except InvalidInput as exc:
        raise InvalidInput(exc.detail, fields={"key": exc.detail}) from None


def _write(
    resolved: Resolved,
    call: Callable[[], T],
    action: str,
    *,
    user: Any,
    project: Project,
    key: str,
    detail: str = "",
) -> tuple[T, str]:
    """Run a write, invalidate the cache and record the audit event, all or nothing.

    One transaction holds the plugin call (a plugin on host storage writes in it), the
    invalidation (which falls back to a database-side one while Redis is down, see
    ``caching.invalidate``) and the audit event. Returns the result and how the cache was
    invalidated: ``"immediate"`` or ``"deferred"``.
    """
    try:
        with transaction.atomic():
            result = call()
            invalidation = caching.invalidate(resolved)
            audit.record(
                action,
                actor=user,
                organization=project.organization,
                project=project,
                plugin_slug=resolved.plugin.slug,
                key=key,
                detail=detail,
            )
    except Exception:
        # A failed call may still have reached the backend: forget what is cached for it.
        try:
            caching.invalidate(resolved)
        except Exception:  # the original error is the one to report
            logger.warning("cache invalidation after a failed write of %s failed", key)
        raise
    return result, invalidation


def set_value(
    project: Project,
    grant: Grant,
    user: Any,
    source: str | None,
    key: str,
    write: ConfigWrite,
    *,
    runner: Runner | None = None,
) -> tuple[Resolved, ConfigKey, str]:
    """Write one value. Returns the plugin, the key and how the cache was invalidated."""
    _require(grant, Role.EDITOR, "changing configuration")
    _check_key(key)
    resolved = _resolve(project, "configuration", source)
    result, invalidation = _write(
        resolved,
        lambda: (runner or default_runner()).call(resolved, "set_value", key, write),
        AuditEvent.Action.CONFIG_SET,
        user=user,
        project=project,
        key=key,
        detail=f"{write.data_type.value}{' secret' if write.secret else ''}",
    )
    return resolved, result, invalidation


def delete_key(
    project: Project,
    grant: Grant,
    user: Any,
    source: str | None,
    key: str,
    *,
    runner: Runner | None = None,
) -> tuple[Resolved, str]:
    """Delete one key. Returns the plugin and how the cache was invalidated."""
    _require(grant, Role.EDITOR, "deleting configuration")
    _check_key(key)
    resolved = _resolve(project, "configuration", source)
    _, invalidation = _write(
        resolved,
        lambda: (runner or default_runner()).call(resolved, "delete_key", key),
        AuditEvent.Action.CONFIG_DELETE,
        user=user,
        project=project,
        key=key,
    )
    return resolved, invalidation


# --- logs ----------------------------------------------------------------------------
# Every regex filter is checked here, on the host, before any plugin is called (400
# ``regex_rejected`` naming the filter): a plugin that forgets ``check_regex`` never sees
# lookaround, backreferences or nested repetition.


def search_logs(
    project: Project,
    grant: Grant,
    source: str | None,
    query: LogQuery,
    *,
    runner: Runner | None = None,
) -> tuple[Resolved, LogResult]:
    check_log_filters(query.filters)
    resolved = _resolve(project, "logs", source)
    result: LogResult = (runner or default_runner()).call(resolved, "search", query)
    return resolved, result


class HistogramNotSupported(ResolutionError):
    code, http_status = "not_supported", 501


def logs_histogram(
    project: Project,
    grant: Grant,
    source: str | None,
    query: LogQuery,
    bucket_count: int,
    *,
    runner: Runner | None = None,
) -> tuple[Resolved, Histogram]:
    """Entry counts over the query's range from a source whose manifest declares
    ``hints.supports_histogram`` (else 501 ``not_supported``)."""
    check_log_filters(query.filters)
    resolved = _resolve(project, "logs", source)
    if not resolved.manifest.hints.supports_histogram:
        raise HistogramNotSupported(
            f"log source '{resolved.plugin.slug}' does not provide a histogram"
        )
    result: Histogram = (runner or default_runner()).call(
        resolved, "histogram", query, bucket_count
    )
    return resolved, result
