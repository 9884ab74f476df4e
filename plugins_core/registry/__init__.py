"""The plugin registry: an immutable snapshot of the ``imbi.plugins`` entry-point group.

``build_snapshot()`` is the one way to make a snapshot. It refuses a distribution whose declared
``imbi-plugin-sdk`` range excludes the host's SDK (before importing it), imports each entry
point, checks its handler class and manifest, accepts an ``api_version`` whose major equals the
host's and whose minor is at most the host's, and refuses duplicate slugs. Plugins that import
the deprecated ``plugins_core.sdk`` load and are marked ``legacy_sdk``. A plugin that fails never
stops the service: it is recorded with a ``Status`` and a reason (shown in the admin, the API
and ``manage.py plugin list``). With ``strict=True`` (``IMBI_PLUGINS_STRICT=1``) the first
failure raises its named error instead.

Trust is a policy, never a default: distributions the operator trusts (``configure(trusted=
...)``, from ``IMBI_TRUSTED_PLUGIN_DISTRIBUTIONS``; before ``configure`` only the first-party
catalog, ``FIRST_PARTY``) are imported in this process and may run in-process. Every other
distribution is imported only inside a sandboxed runner with a deadline
(``plugins_core.isolation.inspect``): its entries carry the manifest the runner reported,
no handler class, and ``isolated=True``. A plugin that hangs or crashes at import is
recorded ``import_failed`` with the reason; the host never runs its code.

Imports stay off the request path. ``current()`` builds a process's first snapshot at once:
trusted plugins imported, untrusted ones ``loading``; a background thread of this process
inspects them (each distribution in its sandboxed runner, with the import deadline) and
publishes a new snapshot as each distribution's results arrive. A request for a loading
plugin is answered 503 ``plugin_loading`` (``plugins_core.serving.resolution``). A process forked
while entries are loading (Celery's pool children) inspects them again itself, on its first
``current()``: threads do not survive a fork.

``rebuild()`` re-reads the installed distributions and, by default, waits for the
inspections (the CLI, installs, strict start-up). ``set_managed()`` adds runtime-installed
distributions. All three publish through ``_publish``, the one function that settles names
and slugs (``assemble``) and swaps in a new immutable snapshot with the next generation
number. A request that already holds a snapshot keeps it (in-flight calls finish against
the handlers they started with). This module imports nothing from Django.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import metadata
from types import MappingProxyType

import imbi_plugin_sdk
from imbi_plugin_sdk import (
    SDK_API_VERSION,
    ApiVersion,
    ManifestError,
    PluginHandler,
    PluginManifest,
    check_handler_class,
    is_compatible,
)
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

ENTRY_POINT_GROUP = "imbi.plugins"
HOST_API_VERSION = ApiVersion.parse(SDK_API_VERSION)
HOST_SDK_VERSION = imbi_plugin_sdk.__version__
SDK_DISTRIBUTION = "imbi-plugin-sdk"


class RegistryError(Exception):
    """Base of the errors a strict registry build raises."""


class PluginImportError(RegistryError):
    """An entry point could not be imported."""


class InvalidPluginError(RegistryError):
    """An entry point's object is not a valid handler class or its manifest is invalid."""


class IncompatiblePluginError(RegistryError):
    """A plugin targets a contract version this host does not support."""


class DuplicatePluginError(RegistryError):
    """Two entry points declare the same manifest slug."""


class RefusedPluginError(RegistryError):
    """A supply-chain guard refused a distribution (blocklisted, modified, unsigned)."""


class Status(enum.StrEnum):
    LOADED = "loaded"
    LOADING = "loading"  # being imported in a sandboxed runner (background, with a deadline)
    IMPORT_FAILED = "import_failed"
    INVALID = "invalid"
    INCOMPATIBLE = "incompatible"
    DUPLICATE = "duplicate"
    BLOCKED = "blocked"
    MODIFIED = "modified"
    UNSIGNED = "unsigned"

    @property
    def label(self) -> str:
        """Human-readable status, as shown on the admin pages ("import failed")."""
        return self.value.replace("_", " ")


_ERRORS: Mapping[Status, type[RegistryError]] = {
    Status.IMPORT_FAILED: PluginImportError,
    Status.INVALID: InvalidPluginError,
    Status.INCOMPATIBLE: IncompatiblePluginError,
    Status.DUPLICATE: DuplicatePluginError,
    Status.BLOCKED: RefusedPluginError,
    Status.MODIFIED: RefusedPluginError,
    Status.UNSIGNED: RefusedPluginError,
}

Refusals = Mapping[str, tuple[Status, str]]
"""Per canonical distribution name: why a guard refuses it (checked before import)."""

Guard = Callable[[Sequence["Candidate"]], Refusals]


@dataclass(frozen=True, slots=True)
class Entry:
    """One discovered entry point and what became of it."""

    name: str
    target: str
    distribution: str
    version: str
    status: Status
    reason: str = ""
    handler: type[PluginHandler] | None = None
    manifest: PluginManifest | None = None
    legacy_sdk: bool = False
    """The plugin imports the deprecated ``plugins_core.sdk`` shim (it still loads)."""
    isolated: bool = False  # imported only in a sandboxed runner; no handler in this process
    env: str = ""  # a runtime-installed distribution's own environment (its runners' python)

    @property
    def ok(self) -> bool:
        return self.status is Status.LOADED

    @property
    def slug(self) -> str:
        return self.manifest.slug if self.manifest else self.name


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An immutable view of every entry point; look handlers up by entry-point name."""

    generation: int
    entries: Mapping[str, Entry]
    built_at: float = field(default_factory=time.time)
    host_api: ApiVersion = HOST_API_VERSION

    def get(self, name: str) -> Entry | None:
        return self.entries.get(name)

    def loaded(self) -> list[Entry]:
        return [entry for entry in self.entries.values() if entry.ok]

    def failed(self) -> list[Entry]:
        """Entries that cannot serve (loading ones included: they cannot serve yet)."""
        return [entry for entry in self.entries.values() if not entry.ok]

    def loading(self) -> list[Entry]:
        """Entries still being imported in a sandboxed runner."""
        return [e for e in self.entries.values() if e.status is Status.LOADING]


@dataclass(frozen=True, slots=True)
class Candidate:
    """Input to ``build_snapshot``: an entry point not yet imported."""

    name: str
    target: str
    distribution: str
    version: str
    load: object  # a zero-argument callable returning the handler class
    sdk_range: str | None = None
    """The distribution's ``imbi-plugin-sdk`` requirement ("" for none, ``None``: unknown)."""


def sdk_range_of(requires: Iterable[str] | None) -> str | None:
    """The version range a distribution declares for ``imbi-plugin-sdk`` (``""`` if none)."""
    for line in requires or ():
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            continue
        if canonicalize_name(requirement.name) != SDK_DISTRIBUTION:
            continue
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        return str(requirement.specifier)
    return ""


def sdk_range_problem(sdk_range: str | None, host_version: str = HOST_SDK_VERSION) -> str:
    """Why a declared SDK range refuses this host's SDK ("" when it accepts it)."""
    if not sdk_range:
        return ""
    try:
        accepted = SpecifierSet(sdk_range).contains(host_version, prereleases=True)
    except InvalidSpecifier:
        return f"declares an invalid {SDK_DISTRIBUTION} range {sdk_range!r}"
    if accepted:
        return ""
    return (
        f"requires {SDK_DISTRIBUTION}{sdk_range} but this host runs "
        f"{SDK_DISTRIBUTION} {host_version}"
    )


def discover(group: str = ENTRY_POINT_GROUP) -> list[Candidate]:
    """Enumerate installed entry points in ``group`` through importlib.metadata."""
    found = []
    for ep in metadata.entry_points(group=group):
        dist = ep.dist
        found.append(
            Candidate(
                name=ep.name,
                target=ep.value,
                distribution=dist.name if dist else "",
                version=dist.version if dist else "",
                load=ep.load,
                sdk_range=sdk_range_of(dist.requires) if dist else None,
            )
        )
    return sorted(found, key=lambda c: (c.name, c.distribution))


def _summary(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".strip().rstrip(":")


def uses_legacy_sdk(target: str) -> bool:
    """Whether a module of ``target``'s top-level package imported ``plugins_core.sdk``."""
    legacy = sys.modules.get("plugins_core.sdk")
    importers: set[str] = getattr(legacy, "LEGACY_IMPORTERS", set())
    package = target.split(":", 1)[0].split(".", 1)[0]
    return any(name == package or name.startswith(f"{package}.") for name in importers)


def _examine(candidate: Candidate, refusals: Refusals | None = None) -> Entry:
    def entry(
        status: Status,
        reason: str = "",
        *,
        handler: type[PluginHandler] | None = None,
        manifest: PluginManifest | None = None,
    ) -> Entry:
        return Entry(
            candidate.name,
            candidate.target,
            candidate.distribution,
            candidate.version,
            status,
            reason,
            handler,
            manifest,
            legacy_sdk=uses_legacy_sdk(candidate.target),
        )

    # Refused before import: blocklisted, modified or unsigned distributions never run.
    guarded = (refusals or {}).get(canonicalize_name(candidate.distribution))
    if guarded is not None:
        return entry(*guarded)
    # Refused before import: a plugin built for another SDK may not even import on this one.
    refusal = sdk_range_problem(candidate.sdk_range)
    if refusal:
        return entry(Status.INCOMPATIBLE, refusal)
    try:
        obj = candidate.load()  # type: ignore[operator]
    except ManifestError as exc:
        return entry(Status.INVALID, f"invalid manifest: {exc}")
    except Exception as exc:  # any import-time failure is recorded, never raised
        return entry(Status.IMPORT_FAILED, _summary(exc))
    if not isinstance(obj, type):
        return entry(Status.INVALID, f"{candidate.target} is not a handler class")
    manifest = getattr(obj, "manifest", None)
    if isinstance(manifest, PluginManifest):
        compatible, reason = is_compatible(manifest.api, HOST_API_VERSION)
        if not compatible:
            return entry(Status.INCOMPATIBLE, reason, manifest=manifest)
    try:
        manifest = check_handler_class(obj)
    except ManifestError as exc:
        return entry(Status.INVALID, str(exc))
    return entry(Status.LOADED, handler=obj, manifest=manifest)


def _duplicate(entry: Entry, reason: str) -> Entry:
    return Entry(
        entry.name,
        entry.target,
        entry.distribution,
        entry.version,
        Status.DUPLICATE,
        reason,
        None,
        entry.manifest,
        legacy_sdk=entry.legacy_sdk,
        isolated=entry.isolated,
        env=entry.env,
    )


def normalize(distribution: str) -> str:
    return distribution.lower().replace("_", "-").replace(".", "-")


FIRST_PARTY = frozenset(
    {"imbi-plugin-aws", "imbi-plugin-github", "imbi-plugin-logzio", "imbi-plugin-local"}
)
"""The first-party catalog: trusted until ``configure`` says otherwise."""


@dataclass
class Settings:
    """What ``apps.ready`` configures from Django settings."""

    trusted: frozenset[str] = FIRST_PARTY
    import_timeout: float = 10.0


settings = Settings()


def configure(*, trusted: Iterable[str], import_timeout: float = 10.0) -> None:
    """The trust policy (``IMBI_TRUSTED_PLUGIN_DISTRIBUTIONS``) and the import deadline."""
    settings.trusted = frozenset(normalize(d) for d in trusted)
    settings.import_timeout = import_timeout


def is_trusted(distribution: str) -> bool:
    """Whether the policy lets this process import ``distribution`` (and run it in-process)."""
    return normalize(distribution) in settings.trusted


def _isolated_entry(
    name: str,
    target: str,
    distribution: str,
    version: str,
    status: Status,
    reason: str = "",
    manifest: PluginManifest | None = None,
) -> Entry:
    return Entry(
        name, target, distribution, version, status, reason, manifest=manifest, isolated=True
    )


def _examine_isolated(candidates: list[Candidate]) -> list[Entry]:
    """Import ``candidates`` (one distribution) in a sandboxed runner; see the docstring."""
    from imbi_plugin_sdk import Permissions

    from plugins_core.isolation.inspect import inspect_entries
    from plugins_core.isolation.policy import Limits, runner_spec

    by_name = {c.name: c for c in candidates}
    limits = Limits(import_timeout=settings.import_timeout)

    def spec_for(entries: dict[str, str]) -> object:
        spec = runner_spec(
            key=("inspect", candidates[0].distribution),
            slug=candidates[0].distribution,
            entries=entries,
            permissions=Permissions(),
            limits=limits,
        )
        return dataclasses.replace(spec, inspect=True)

    found = inspect_entries({c.name: c.target for c in candidates}, spec_for)  # type: ignore[arg-type]
    entries = []
    for name, result in found.items():
        c = by_name[name]
        entry = functools.partial(_isolated_entry, c.name, c.target, c.distribution, c.version)
        if not result.ok or result.manifest is None:
            entries.append(entry(Status.IMPORT_FAILED, result.reason or "import failed"))
            continue
        try:
            manifest = PluginManifest.from_dict(result.manifest)
        except ManifestError as exc:
            entries.append(entry(Status.INVALID, f"invalid manifest: {exc}"))
            continue
        compatible, reason = is_compatible(manifest.api, HOST_API_VERSION)
        status = Status.LOADED if compatible else Status.INCOMPATIBLE
        entries.append(
            dataclasses.replace(entry(status, reason, manifest), legacy_sdk=result.legacy_sdk)
        )
    return entries


Untrusted = dict[str, list[Candidate]]
"""Untrusted candidates to inspect in a sandboxed runner, by distribution."""


def _sort_out(
    candidates: Iterable[Candidate], trust: Callable[[str], bool], refusals: Refusals | None
) -> tuple[list[Entry], Untrusted]:
    """Trusted candidates examined in this process, refused ones recorded, and the untrusted
    rest (to inspect in a runner). Refusals apply before anything is imported."""
    examined: list[Entry] = []
    untrusted: Untrusted = {}
    for c in candidates:
        if trust(c.distribution):
            examined.append(_examine(c, refusals))
            continue
        guarded = (refusals or {}).get(canonicalize_name(c.distribution))
        refusal = sdk_range_problem(c.sdk_range)  # refused before import, like _examine
        if guarded is not None:  # blocklisted, modified or unsigned: never started
            examined.append(_isolated_entry(c.name, c.target, c.distribution, c.version, *guarded))
        elif refusal:
            examined.append(
                _isolated_entry(
                    c.name, c.target, c.distribution, c.version, Status.INCOMPATIBLE, refusal
                )
            )
        else:
            untrusted.setdefault(c.distribution, []).append(c)
    return examined, untrusted


def _inspect(untrusted: Untrusted, publish: Callable[[list[Entry]], None]) -> None:
    """Inspect each distribution in its runner (four at a time); ``publish`` each result."""
    if not untrusted:
        return
    with ThreadPoolExecutor(max_workers=4, thread_name_prefix="imbi-plugin-import") as pool:
        for found in pool.map(_examine_isolated, untrusted.values()):
            publish(found)


def _loading(untrusted: Untrusted) -> list[Entry]:
    deadline = f"{settings.import_timeout:g}s"
    reason = f"importing in a sandboxed runner (deadline {deadline} per entry point)"
    return [
        _isolated_entry(c.name, c.target, c.distribution, c.version, Status.LOADING, reason)
        for found in untrusted.values()
        for c in found
    ]


def build_snapshot(
    candidates: Iterable[Candidate],
    *,
    generation: int,
    strict: bool = False,
    trusted: Callable[[str], bool] | None = None,
    refusals: Refusals | None = None,
) -> Snapshot:
    """Import and validate every candidate, waiting for the sandboxed inspections.

    ``refusals`` (from the supply-chain guard) are applied before anything is imported.
    ``trusted(distribution)`` says which candidates may be imported in this process
    (default: the configured policy, ``is_trusted``); the others are inspected in a
    sandboxed runner with the import deadline."""
    examined, untrusted = _sort_out(candidates, trusted or is_trusted, refusals)
    _inspect(untrusted, examined.extend)
    return assemble(examined, generation=generation, strict=strict)


def assemble(examined: Iterable[Entry], *, generation: int, strict: bool = False) -> Snapshot:
    """A snapshot of already examined entries: settles contested names and slugs."""
    examined = list(examined)
    # Who keeps a contested slug: the entry point named after it, then the first by name.
    examined.sort(key=lambda e: (e.slug != e.name, bool(e.env), e.name, e.distribution))
    owners: dict[str, Entry] = {}
    for entry in examined:
        if entry.ok and entry.manifest is not None:
            owners.setdefault(entry.manifest.slug, entry)
    entries: dict[str, Entry] = {}
    for entry in sorted(examined, key=lambda e: e.name):  # stable: owners stay first
        key = entry.name
        if key in entries:
            key = f"{entry.name}@{entry.distribution}"
            entry = _duplicate(
                entry,
                f"entry point {entry.name!r} is also registered by "
                f"{entries[entry.name].distribution}",
            )
        elif entry.ok and entry.manifest is not None:
            owner = owners[entry.manifest.slug]
            if owner is not entry:
                entry = _duplicate(
                    entry,
                    f"slug {entry.manifest.slug!r} is already provided "
                    f"by entry point {owner.name!r}",
                )
        if strict and not entry.ok:
            raise _ERRORS[entry.status](f"plugin {entry.name!r}: {entry.reason}")
        entries[key] = entry
    return Snapshot(generation=generation, entries=MappingProxyType(dict(sorted(entries.items()))))


_lock = threading.Lock()
_current: Snapshot | None = None
_guard: Guard | None = None
_examined: tuple[Entry, ...] = ()  # the host environment's entries, as examined
_managed: tuple[
    Entry, ...
] = ()  # runtime-installed distributions (plugins_core.distributions.runtime)
_pending: Untrusted = {}  # untrusted distributions still loading
_epoch = 0  # which rebuild (or fork) the running inspection belongs to
_inspector_pid = 0  # the process whose thread inspects ``_pending``
_inspection_started = 0.0  # time.monotonic() of that inspection's start
_settled = threading.Condition(_lock)


def set_guard(guard: Guard | None) -> None:
    """Install the supply-chain guard ``rebuild`` consults
    (``plugins_core.distributions.integrity``)."""
    global _guard
    _guard = guard


def _refusals(candidates: Sequence[Candidate]) -> Refusals:
    if _guard is None:
        return {}
    try:
        return _guard(candidates)
    except Exception as exc:  # fail closed: an unverifiable distribution does not load
        reason = f"integrity check failed: {_summary(exc)}"
        return {canonicalize_name(c.distribution): (Status.MODIFIED, reason) for c in candidates}


def _publish() -> Snapshot:
    """The one way a process's snapshot changes (called with ``_lock`` held): the host
    environment's entries and the runtime-installed ones, settled by ``assemble``, as a new
    immutable snapshot with the next generation number."""
    global _current
    generation = (_current.generation + 1) if _current else 1
    _current = assemble([*_examined, *_managed], generation=generation)
    _settled.notify_all()
    return _current


def current() -> Snapshot:
    """This process's snapshot, built on first use without waiting for untrusted imports."""
    snapshot = _current
    if snapshot is None:
        return _rebuild(strict=False, wait=False, first=True)
    if _pending and _inspector_pid != os.getpid():
        _resume()  # forked while loading: this process has no inspection thread
    return snapshot


def rebuild(*, strict: bool = False, wait: bool = True) -> Snapshot:
    """Build a new snapshot from the installed distributions and make it current.

    With ``wait`` (the default) the untrusted distributions' inspections finish first; without
    it their entries are ``loading`` and a background thread publishes their results.
    ``strict`` (``IMBI_PLUGINS_STRICT`` at start-up, ``apps.ready``) always waits and raises
    the first failure's named error."""
    return _rebuild(strict=strict, wait=wait, first=False)


def _rebuild(*, strict: bool, wait: bool, first: bool) -> Snapshot:
    global _examined, _pending, _epoch
    with _lock:
        if first and _current is not None:  # another thread built it meanwhile
            return _current
        importlib.invalidate_caches()  # see distributions installed since start
        candidates = discover()
        examined, untrusted = _sort_out(candidates, is_trusted, _refusals(candidates))
        if wait or strict:
            _inspect(untrusted, examined.extend)
            untrusted = {}
        if strict:  # the first failure is fatal, by request: nothing changes
            assemble(examined, generation=0, strict=True)
        _examined = (*examined, *_loading(untrusted))
        _pending = untrusted
        _epoch += 1
        snapshot = _publish()
        if untrusted:
            _start_inspection()
    return snapshot


def _start_inspection() -> None:
    """Inspect ``_pending`` in a daemon thread of this process (called with ``_lock`` held)."""
    global _inspector_pid, _inspection_started
    _inspector_pid = os.getpid()
    _inspection_started = time.monotonic()
    epoch, pending = _epoch, dict(_pending)

    def settle(found: list[Entry]) -> None:
        global _examined
        with _lock:
            if epoch != _epoch:  # a newer rebuild owns the loading entries now
                return
            keys = {(e.name, e.distribution) for e in found}
            _examined = (
                *(e for e in _examined if (e.name, e.distribution) not in keys),
                *found,
            )
            for e in found:
                _pending.pop(e.distribution, None)
            _publish()

    # Daemon threads, not an executor: an executor's threads are joined when the interpreter
    # exits, so a command or a worker shutting down would wait for a hanging import.
    slots = threading.BoundedSemaphore(4)

    def inspect(candidates: list[Candidate]) -> None:
        try:
            with slots:
                found = _examine_isolated(candidates)
        except Exception as exc:  # never leave entries loading forever
            reason = f"inspection failed: {_summary(exc)}"
            found = [
                _isolated_entry(
                    c.name, c.target, c.distribution, c.version, Status.IMPORT_FAILED, reason
                )
                for c in candidates
            ]
        settle(found)

    for distribution, candidates in pending.items():
        threading.Thread(
            target=inspect,
            args=(candidates,),
            name=f"imbi-plugin-import-{distribution}"[:60],
            daemon=True,
        ).start()


def _resume() -> None:
    global _epoch
    with _lock:
        if _pending and _inspector_pid != os.getpid():
            _epoch += 1
            _start_inspection()


def wait_loaded(timeout: float | None = None) -> Snapshot:
    """The current snapshot once nothing is loading (or when ``timeout`` passes)."""
    current()
    with _lock:
        _settled.wait_for(lambda: not _pending, timeout)
        assert _current is not None
        return _current


def settled() -> Snapshot:
    """For commands and other batch work: the snapshot once this process's sandboxed imports
    finished. Bounded: each loading entry point by the import deadline, plus a margin."""
    loading = current().loading()
    if not loading:
        return current()
    return wait_loaded(timeout=settings.import_timeout * len(loading) + 30)


def inspecting_here() -> bool:
    """Whether entries are loading and a thread of this process imports them (``False`` in a
    forked child until its first ``current()``)."""
    return bool(_pending) and _inspector_pid == os.getpid()


def retry_after() -> int:
    """Seconds a client should wait before asking again for a loading plugin (at least 1)."""
    left = _inspection_started + settings.import_timeout - time.monotonic()
    return max(1, math.ceil(left))


def set_managed(entries: Iterable[Entry]) -> Snapshot:
    """Swap in a snapshot with ``entries`` (runtime-installed distributions, already
    inspected) beside the host environment's, without importing anything again. A caller
    that already holds the previous snapshot keeps it."""
    global _managed
    if _current is None:
        current()
    with _lock:
        _managed = tuple(entries)
        return _publish()


def _after_fork_in_child() -> None:
    """A forked child has only the forking thread: a lock another thread held stays held,
    and no inspection runs here (``current()`` starts one when entries are loading)."""
    global _lock, _settled
    _lock = threading.Lock()
    _settled = threading.Condition(_lock)


os.register_at_fork(after_in_child=_after_fork_in_child)
