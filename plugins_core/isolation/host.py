"""``IsolatedRunner``: the host's side of a call to a plugin in a runner process.

Same interface as ``InProcessRunner`` (``call(target, method, *args)``): it consults the
plugin's circuit breaker, takes a warm runner from the pool (one pool per distribution,
version, entry point and organization, so no runner ever holds two tenants' credentials),
sends the call, answers the runner's requests back to the host, and turns the reply into
the method's SDK result, the plugin's ``PluginError``, or ``plugin_failed``. Deadlines and
crashes come from ``supervisor``; before a runner is used the call takes its plugin's and
its organization's concurrency slots (``concurrency``: 503 ``plugin_busy`` when full).

Requests back to the host are checked here: ``net.connect`` by the call's egress broker
(``egress``: the declared hosts and ports, the call's deadline); ``storage.*`` only when the
manifest declares ``permissions.storage``, always against the installed plugin's own rows
(the runner cannot name a scope; a request carrying any field other than the operation's own
is refused), with bounded key and value sizes. ``project.current`` and ``project.get``
(slug) only when the host-side manifest declares ``permissions.project_metadata`` and the
installed plugin's approved permissions include it, always within the calling binding's
organization (``context.projects`` of the host-side context; the runner cannot name an
organization): another organization's project answers ``not_found`` like a missing one.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from imbi_plugin_sdk import (
    InvalidInput,
    PermissionDenied,
    Permissions,
    PluginError,
    PluginManifest,
    UpstreamUnavailable,
    redact,
    secret_values,
)
from imbi_plugin_sdk.wire import Call, Reply, WireError

from imbi.core import metrics
from plugins_core.models.plugins import unapproved_permissions

from . import concurrency, egress
from .breaker import Breaker, MemoryBreaker, RedisBreaker
from .errors import (
    PluginBusy,
    PluginCrashed,
    PluginFailed,
    PluginMisconfigured,
    PluginTimeout,
)
from .paths import granted_paths
from .policy import Limits, runner_spec
from .supervisor import Pool, RunnerSpec
from .targets import CallTarget

logger = logging.getLogger("imbi.plugins.isolation")

STORAGE_FIELDS = {
    "storage.get": {"key"},
    "storage.set": {"key", "value"},
    "storage.delete": {"key"},
    "storage.keys": {"prefix"},
}
PROJECT_FIELDS = {"project.current": set(), "project.get": {"slug"}}
MAX_KEY, MAX_VALUE = 512, 64 * 1024
MAX_HOST_REQUESTS = 1000  # per call: storage is a database query each
DEADLINE_GRACE = 0.5  # seconds the hard deadline allows past the context's timeout

_ids = itertools.count(1)
_lock = threading.Lock()
_pool: Pool | None = None
_breaker: Breaker | None = None


def _idle_runners() -> float:
    current = _pool
    return float(len(current.runners())) if current is not None else 0.0


metrics.watch_pool(_idle_runners)


def pool() -> Pool:
    global _pool
    with _lock:
        if _pool is None:
            _pool = Pool(
                max_idle=settings.IMBI_PLUGIN_RUNNERS_IDLE,
                max_rss=settings.IMBI_PLUGIN_RUNNER_RSS_BYTES,
                max_tmp=settings.IMBI_PLUGIN_RUNNER_TMP_RETAIN_BYTES,
            )
        return _pool


def breaker() -> Breaker:
    global _breaker
    with _lock:
        if _breaker is None:
            fail_max = settings.IMBI_PLUGIN_BREAKER_FAILURES
            reset = settings.IMBI_PLUGIN_BREAKER_RESET
            url = settings.IMBI_PLUGIN_BREAKER_REDIS_URL
            if url:
                import redis

                _breaker = RedisBreaker(
                    redis.Redis.from_url(url), fail_max=fail_max, reset_timeout=reset
                )
            else:
                _breaker = MemoryBreaker(fail_max=fail_max, reset_timeout=reset)
        return _breaker


def reset_runtime() -> None:
    """Kill every warm runner and forget breaker state (tests, settings changes)."""
    global _pool, _breaker
    with _lock:
        old, _pool, _breaker = _pool, None, None
    if old is not None:
        old.close()


def limits() -> Limits:
    return Limits(
        timeout=settings.IMBI_PLUGIN_TIMEOUT,
        import_timeout=settings.IMBI_PLUGIN_IMPORT_TIMEOUT,
        cpu_seconds=settings.IMBI_PLUGIN_CPU_SECONDS,
        address_space=settings.IMBI_PLUGIN_MEMORY_BYTES,
        open_files=settings.IMBI_PLUGIN_OPEN_FILES,
        processes=settings.IMBI_PLUGIN_PROCESSES,
        max_frame=settings.IMBI_PLUGIN_MAX_REPLY_BYTES + 256,  # the reply plus its frame envelope
        tmp_bytes=settings.IMBI_PLUGIN_TMP_BYTES,
    )


@functools.lru_cache(maxsize=1)
def _deployment() -> str:
    """This platform node's identity: its database and node id (shared by every process of
    the node), so two platforms, or two nodes, sharing a temp folder never share slots."""
    import socket

    db = settings.DATABASES["default"]
    node = getattr(settings, "IMBI_NODE_ID", "") or socket.gethostname()
    return f"{db.get('ENGINE')}:{db.get('HOST')}:{db.get('PORT')}:{db.get('NAME')}:{node}"


def plugin_breaker_key(plugin_id: int) -> str:
    return f"plugin:{plugin_id}"


def breaker_key(target: CallTarget) -> str:
    """Per installed plugin; per entry point for a target without a row (the wizard)."""
    plugin = getattr(target, "plugin", None)
    if plugin is None:
        return f"entry:{target.entry.name}"
    return plugin_breaker_key(plugin.pk)


def manifest_of(target: CallTarget) -> PluginManifest:
    """The host-side manifest: the one checked at install, never the runner's."""
    manifest = getattr(target, "manifest", None) or target.entry.manifest
    assert manifest is not None
    return manifest


def slug_of(target: CallTarget) -> str:
    plugin = getattr(target, "plugin", None)
    return str(plugin.slug) if plugin is not None else target.entry.slug


class HostRequests:
    """Answers a runner's requests back to the host during one call."""

    def __init__(
        self, target: CallTarget, *, deadline: float = 0.0, secrets: list[str] | None = None
    ) -> None:
        self.target = target
        self.count = 0
        self.deadline = deadline or time.monotonic() + float(target.context.timeout)
        self.secrets = secrets or []
        self._broker: egress.Broker | None = None

    def broker(self) -> egress.Broker:
        """The call's egress broker (its allowlist from the host-side manifest and the
        service's operator-chosen host settings)."""
        if self._broker is None:
            allowlist = egress.Allowlist.build(
                manifest_of(self.target).permissions,
                getattr(self.target.context, "service_settings", None),
            )
            self._broker = egress.Broker(
                allowlist,
                deadline=self.deadline,
                slug=slug_of(self.target),
                secrets=self.secrets,
            )
        return self._broker

    def __call__(self, request: dict[str, Any]) -> Any:
        self.count += 1
        if self.count > MAX_HOST_REQUESTS:
            raise PermissionDenied(f"more than {MAX_HOST_REQUESTS} host requests in one call")
        op = request.get("op")
        fields = set(request) - {"t", "id", "op"}
        if op in PROJECT_FIELDS:
            return self.project(str(op), fields, request)
        if op == egress.OP:
            try:
                return self.broker()(request)
            except PermissionDenied:
                metrics.EGRESS_REFUSALS.labels(slug_of(self.target)).inc()
                raise
        if op not in STORAGE_FIELDS:
            raise PermissionDenied(f"unknown host request {str(op)[:40]!r}")
        store = self.target.context.storage
        if not manifest_of(self.target).permissions.storage:
            raise PermissionDenied("storage is not declared in the plugin's manifest")
        if store is None:  # declared, but this call has none (as in-process: context.storage)
            raise UpstreamUnavailable("the host did not provide key-value storage")
        if fields != STORAGE_FIELDS[op]:
            logger.warning(
                "plugin %s sent a storage request with fields %s (refused)",
                slug_of(self.target),
                sorted(fields)[:10],
            )
            raise PermissionDenied("storage requests carry only their key, value or prefix")
        key = request.get("key", request.get("prefix", ""))
        value = request.get("value", "")
        if not isinstance(key, str) or len(key) > MAX_KEY:
            raise PermissionDenied(f"storage keys are strings of at most {MAX_KEY} characters")
        if not isinstance(value, str) or len(value) > MAX_VALUE:
            raise PermissionDenied(f"storage values are strings of at most {MAX_VALUE} characters")
        if op == "storage.get":
            return store.get(key)
        if op == "storage.set":
            store.set(key, value)
            return None
        if op == "storage.delete":
            store.delete(key)
            return None
        return list(store.keys(key))

    def project(self, op: str, fields: set[str], request: dict[str, Any]) -> Any:
        """A project-metadata read, scoped by the host to the binding's organization."""
        reader = self.target.context.projects
        manifest = manifest_of(self.target)
        plugin = getattr(self.target, "plugin", None)
        if (
            reader is None
            or not manifest.permissions.project_metadata
            or (plugin is not None and unapproved_permissions(plugin, manifest))
        ):
            raise PermissionDenied("project metadata is not a declared, approved permission")
        if fields != PROJECT_FIELDS[op]:
            logger.warning(
                "plugin %s sent a project request with fields %s (refused)",
                slug_of(self.target),
                sorted(str(name)[:40] for name in fields)[:10],
            )
            raise PermissionDenied("project requests carry only a slug")
        if op == "project.current":
            current = reader.current()
            return None if current is None else current.to_dict()
        return reader.get(request["slug"]).to_dict()


@functools.lru_cache(maxsize=512)
def _spec(
    key: tuple[str, ...],
    slug: str,
    target: str,
    permissions: Permissions,
    limits: Limits,
    env: str = "",
    data_paths: tuple[str, ...] = (),
) -> RunnerSpec:
    """The runner spec of one pool (its read paths take a directory listing to compute).
    ``env``: the per-version environment of a runtime-installed distribution;
    ``data_paths``: the host directories granted for this call (``paths.granted_paths``),
    part of the pool key so runners with different grants are never shared."""
    pool_key = (
        *key,
        *permissions.network_hosts,
        f"storage={permissions.storage}",
        f"project_metadata={permissions.project_metadata}",
        *(f"read={path}" for path in data_paths),
    )
    return runner_spec(
        key=pool_key,
        slug=slug,
        entries={key[2]: target},
        permissions=permissions,
        limits=limits,
        env=env,
        data_paths=data_paths,
    )


def retire(live: set[tuple[str, str]]) -> int:
    """Drain the runners of every (distribution, version) not in ``live``: idle ones exit
    now, busy ones when their call ends (the registry switched to a new snapshot)."""
    current = _pool
    return current.retire(live) if current is not None else 0


class IsolatedRunner:
    def __init__(self, *, runner_pool: Pool | None = None, circuit: Breaker | None = None) -> None:
        self._pool = runner_pool
        self._breaker = circuit

    @staticmethod
    def _granted(target: CallTarget, manifest: Any) -> tuple[str, ...]:
        """The host directories this call's runner may read: the service settings named in
        ``operator_path_settings``, once approved (``paths.granted_paths`` checks them)."""
        permissions = manifest.permissions
        if not permissions.operator_path_settings:
            return ()
        plugin = getattr(target, "plugin", None)
        if plugin is not None and unapproved_permissions(plugin, manifest):
            return ()  # resolution refuses the call first; never grant before approval
        return granted_paths(permissions, target.context.service_settings or {})

    def call(self, target: CallTarget, method: str, *args: Any) -> Any:
        slug = slug_of(target)
        entry = target.entry
        manifest = manifest_of(target)
        context = target.context
        circuit = self._breaker or breaker()
        key = breaker_key(target)
        try:  # a refused directory: before any runner, the operator's to fix
            granted = self._granted(target, manifest)
        except InvalidInput as exc:
            reasons = "; ".join(f"{name}: {why}" for name, why in sorted(exc.fields.items()))
            raise PluginMisconfigured(
                f"plugin '{slug}' cannot be given its service's directory setting ({reasons})"
            ) from None
        # arguments the wire cannot carry fail here, before a runner is checked out, and
        # answer like in-process mode: the host's own arguments, a host bug, still not a 500
        try:
            call = Call.build(
                entry.name,
                method,
                *args,
                context=context,
                credentials=dict(target.credentials),
            )
        except WireError as exc:
            raise PluginFailed(f"call to plugin '{slug}' is invalid: {exc}") from None
        held = contextlib.ExitStack()
        try:  # first: a busy refusal never takes a half-open trial
            held.enter_context(
                concurrency.slots(
                    scope=_deployment(),
                    plugin=key,
                    organization=str(context.organization),
                    slug=slug,
                    per_plugin=settings.IMBI_PLUGIN_CONCURRENCY_PER_PLUGIN,
                    per_organization=settings.IMBI_PLUGIN_CONCURRENCY_PER_ORGANIZATION,
                    timeout=float(context.timeout) + DEADLINE_GRACE,
                )
            )
        except PluginBusy:
            metrics.PLUGIN_BUSY.labels(slug, str(context.organization)).inc()
            raise
        with held:
            circuit.before(key, slug)
            return self._run(target, method, call, granted, circuit, key)

    def _run(
        self,
        target: CallTarget,
        method: str,
        call: Call,
        granted: tuple[str, ...],
        circuit: Breaker,
        key: str,
    ) -> Any:
        """The call in a runner of the pool (the breaker and concurrency slots are held)."""
        slug = slug_of(target)
        entry = target.entry
        manifest = manifest_of(target)
        context = target.context
        runners = self._pool or pool()
        spec = _spec(
            (entry.distribution, entry.version, entry.name, context.organization),
            slug,
            entry.target,
            manifest.permissions,
            limits(),
            getattr(entry, "env", ""),
            granted,
        )
        # the plugin's own (cooperative) timeout answers first; the hard deadline follows
        timeout = float(context.timeout) + DEADLINE_GRACE
        secrets = secret_values(manifest, context.options, target.credentials)
        try:
            runner = runners.acquire(spec, wait_limit=timeout)
        except (PluginTimeout, PluginCrashed, PluginFailed):
            circuit.failure(key)
            raise
        if runner.calls == 0:  # just started: no warm runner was idle
            metrics.RUNNER_STARTS.labels(slug).inc()
        loaded = runner.entries.get(entry.name) or {}
        if not loaded.get("ok"):
            runners.release(runner)
            circuit.failure(key)
            reason = redact(str(loaded.get("reason", "not loaded"))[:300], secrets)
            raise PluginFailed(f"plugin '{slug}' cannot load in its runner: {reason}")
        message = {"id": next(_ids), "call": call.to_dict()}
        crashed = False
        try:
            requests = HostRequests(target, deadline=time.monotonic() + timeout, secrets=secrets)
            reply = runner.call(message, timeout=timeout, on_host=requests, secrets=secrets)
        except PluginCrashed:
            crashed = True
            circuit.failure(key)
            raise
        except (PluginTimeout, PluginFailed):
            circuit.failure(key)
            raise
        finally:
            runners.release(runner, crashed=crashed)
        try:
            result = self._result(slug, method, reply, secrets)
        except PluginFailed:
            circuit.failure(key)
            raise
        except PluginError:  # the plugin answered as designed (not_found, upstream down, ...)
            circuit.success(key)
            raise
        circuit.success(key)
        return result

    def _result(self, slug: str, method: str, frame: dict[str, Any], secrets: list[str]) -> Any:
        """The method's result from a ``reply`` frame, or the error it carries."""
        data = frame.get("reply")
        try:
            if not isinstance(data, dict) or set(data) - {"wire", "result", "error"}:
                raise WireError("reply: not a Reply object")
            if ("error" in data) == ("result" in data):
                raise WireError("reply: needs exactly one of result and error")
            reply = Reply(result=data.get("result"), error=data.get("error"))
        except WireError as exc:
            logger.error("plugin %s.%s sent a malformed reply (%s)", slug, method, exc)
            raise PluginFailed(f"plugin '{slug}' sent a malformed {method} reply") from None
        if reply.error is not None and reply.error.get("code") == PluginFailed.code:
            reason = redact(str(reply.error.get("detail", ""))[:300], secrets)
            logger.error("plugin %s failed in %s (isolated): %s", slug, method, reason)
            raise PluginFailed(reason or f"plugin '{slug}' failed")
        try:
            return reply.unwrap(method)
        except PluginFailed:
            logger.error("plugin %s.%s returned a malformed result", slug, method)
            raise
        except PluginError as exc:
            exc.detail = redact(str(exc.detail)[:1000], secrets)
            raise exc from None  # nothing of the transport chained to the plugin's error


def call_entry(
    entry: Any,
    context: Any,
    credentials: Any,
    method: str,
    *args: Any,
    permissions: Permissions | None = None,
    circuit: Breaker | None = None,
) -> Any:
    """Call an entry point in a runner without an installed plugin row (the install
    wizard's test connection, the catalog's isolated tests). Its breaker is keyed by the
    entry-point name; ``permissions`` replaces the manifest's (tests point a plugin's
    declared network host at a loopback emulator)."""
    import dataclasses

    manifest = entry.manifest
    if permissions is not None:
        manifest = dataclasses.replace(manifest, permissions=permissions)
    target = IsolatedTarget(entry, context, credentials, manifest)
    return IsolatedRunner(circuit=circuit).call(target, method, *args)


@dataclass(frozen=True, slots=True)
class IsolatedTarget:
    """A call target with its own manifest (granted permissions) and no plugin row."""

    entry: Any
    context: Any
    credentials: Any = field(repr=False)
    manifest: Any = None
