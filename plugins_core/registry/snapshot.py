"""The snapshot: what became of each entry point, as one immutable value.

``Entry`` records one discovered entry point and its ``Status`` (with the reason when it
cannot serve); ``Snapshot`` is the immutable mapping of entry-point names to entries that a
request holds from start to end. ``Candidate`` is an entry point not imported yet (the input
of ``loading.build_snapshot``). ``assemble`` is the one function that settles contested
entry-point names and slugs into a snapshot (the entry point named after a slug keeps it;
the others are ``duplicate``); with ``strict=True`` the first failure raises its named
``RegistryError`` subclass instead.

Imports only the SDK; nothing from Django and nothing else of the registry.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from imbi_plugin_sdk import SDK_API_VERSION, ApiVersion, PluginHandler, PluginManifest

HOST_API_VERSION = ApiVersion.parse(SDK_API_VERSION)


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
    trust: str = ""
    """For a distribution trusted by name: "trusted: bytes verified", or "isolated: trusted
    name, unverified bytes: <why>" (``registry.trust``); "" for every other distribution."""

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
