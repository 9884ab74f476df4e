"""The plugin registry: an immutable snapshot of the ``imbi.plugins`` entry-point group.

``build_snapshot()`` is the one way to make a snapshot. It refuses a distribution whose declared
``imbi-plugin-sdk`` range excludes the host's SDK (before importing it), imports each entry
point, checks its handler class and manifest, accepts an ``api_version`` whose major equals the
host's and whose minor is at most the host's, and refuses duplicate slugs. Plugins that import
the deprecated ``plugins_core.sdk`` load and are marked ``legacy_sdk``. A plugin that fails never
stops the service: it is recorded with a ``Status`` and a reason (shown in the admin, the API
and ``manage.py plugin list``). With ``strict=True`` (``IMBI_PLUGINS_STRICT=1``) the first
failure raises its named error instead.

Distributions the operator trusts (``configure(trusted=...)``, from
``IMBI_TRUSTED_PLUGIN_DISTRIBUTIONS``) are imported in this process and may run in-process.
Every other distribution is imported only inside a sandboxed runner with a deadline
(``plugins_core.isolation.inspect``): its entries carry the manifest the runner reported,
no handler class, and ``isolated=True``. A plugin that hangs or crashes at import is
recorded ``import_failed`` with the reason; the host never runs its code.

``current()`` returns the process's snapshot; ``rebuild()`` swaps in a new one with the next
generation number. A request that already holds a snapshot keeps it (in-flight calls finish
against the handlers they started with). This module imports nothing from Django.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import importlib
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
        return [entry for entry in self.entries.values() if not entry.ok]


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


@dataclass
class Settings:
    """What ``apps.ready`` configures from Django settings (``None``: trust everything)."""

    trusted: frozenset[str] | None = None
    import_timeout: float = 10.0


settings = Settings()


def configure(*, trusted: Iterable[str] | None, import_timeout: float = 10.0) -> None:
    settings.trusted = None if trusted is None else frozenset(normalize(d) for d in trusted)
    settings.import_timeout = import_timeout


def is_trusted(distribution: str) -> bool:
    return settings.trusted is None or normalize(distribution) in settings.trusted


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


def build_snapshot(
    candidates: Iterable[Candidate],
    *,
    generation: int,
    strict: bool = False,
    trusted: Callable[[str], bool] | None = None,
    refusals: Refusals | None = None,
) -> Snapshot:
    """Import and validate every candidate; the only constructor of a ``Snapshot``.

    ``refusals`` (from the supply-chain guard) are applied before anything is imported.
    ``trusted(distribution)`` says which candidates may be imported in this process; the
    others are inspected in a sandboxed runner (default: every candidate is trusted)."""
    candidates = list(candidates)
    trust = trusted or (lambda _: True)
    examined = [_examine(c, refusals) for c in candidates if trust(c.distribution)]
    untrusted: dict[str, list[Candidate]] = {}
    for c in candidates:
        if trust(c.distribution):
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
    if untrusted:
        with ThreadPoolExecutor(max_workers=4) as pool:
            for found in pool.map(_examine_isolated, untrusted.values()):
                examined.extend(found)
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


def set_guard(guard: Guard | None) -> None:
    """Install the supply-chain guard ``rebuild`` consults (``plugins_core.integrity``)."""
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


_host: Snapshot | None = None  # the host environment's entries, imported at the last rebuild
_managed: tuple[Entry, ...] = ()  # runtime-installed distributions (plugins_core.runtime)


def current() -> Snapshot:
    """This process's snapshot, built on first use."""
    snapshot = _current
    return snapshot if snapshot is not None else rebuild()


def rebuild(*, strict: bool = False) -> Snapshot:
    """Build a new snapshot from the installed distributions and make it current.

    ``strict`` comes from the ``IMBI_PLUGINS_STRICT`` setting at start-up (``apps.ready``)."""
    global _current, _host
    with _lock:
        generation = (_current.generation + 1) if _current else 1
        importlib.invalidate_caches()  # see distributions installed since start
        candidates = discover()
        _host = build_snapshot(
            candidates,
            generation=generation,
            strict=strict,
            trusted=is_trusted,
            refusals=_refusals(candidates),
        )
        snapshot = _compose(_host, _managed, generation)
        _current = snapshot
    return snapshot


def _compose(host: Snapshot, managed: Iterable[Entry], generation: int) -> Snapshot:
    managed = list(managed)
    if not managed:
        return Snapshot(generation=generation, entries=host.entries)
    return assemble([*host.entries.values(), *managed], generation=generation)


def set_managed(entries: Iterable[Entry]) -> Snapshot:
    """Swap in a snapshot with ``entries`` (runtime-installed distributions, already
    inspected) beside the host environment's, without importing anything again. A caller
    that already holds the previous snapshot keeps it."""
    global _current, _managed
    if _host is None:
        current()
    with _lock:
        assert _host is not None
        _managed = tuple(entries)
        generation = (_current.generation + 1) if _current else 1
        _current = _compose(_host, _managed, generation)
        return _current
