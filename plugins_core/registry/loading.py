"""Loading: from installed entry points to examined entries, under the trust policy.

``discover`` enumerates the ``imbi.plugins`` entry-point group through importlib.metadata.
``build_snapshot`` imports and validates candidates: it refuses a distribution whose declared
``imbi-plugin-sdk`` range excludes the host's SDK (``sdk_range_problem``, before importing
it) or that the supply-chain guard refused, imports each entry point, checks its handler
class and manifest, and accepts an ``api_version`` whose major equals the host's and whose
minor is at most the host's. Plugins that import the deprecated ``plugins_core.sdk`` load and
are marked ``legacy_sdk``. A plugin that fails is recorded with a ``Status`` and a reason,
never raised (unless ``strict``).

Trust is a policy, never a default, and it follows the bytes: distributions the operator
trusts (``configure(trusted=...)``, from ``IMBI_TRUSTED_PLUGIN_DISTRIBUTIONS``; before
``configure`` only the first-party catalog, ``FIRST_PARTY``) are imported in this process and
may run in-process only when their installed files are the ones the trust lock records
(``configure(lock=...)``, ``IMBI_TRUSTED_PLUGIN_LOCK``; ``registry.trust``). A distribution
with a trusted name and other bytes is isolated like any other, its entries saying why
(``Entry.trust``). Every other
distribution is imported only inside a sandboxed runner with a deadline
(``plugins_core.isolation.inspect``, ``_examine_isolated``): its entries carry the manifest
the runner reported, no handler class, and ``isolated=True``. A plugin that hangs or crashes
at import is recorded ``import_failed`` with the reason; the host never runs its code.

Imports ``snapshot``, the SDK and (lazily, for the sandboxed runner) ``plugins_core.isolation``.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib import metadata

import imbi_plugin_sdk
from imbi_plugin_sdk import (
    ManifestError,
    PluginHandler,
    PluginManifest,
    check_handler_class,
    is_compatible,
)
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from plugins_core.registry import trust as trust_lock
from plugins_core.registry.snapshot import (
    HOST_API_VERSION,
    Candidate,
    Entry,
    Refusals,
    Snapshot,
    Status,
    assemble,
)

ENTRY_POINT_GROUP = "imbi.plugins"
HOST_SDK_VERSION = imbi_plugin_sdk.__version__
SDK_DISTRIBUTION = "imbi-plugin-sdk"


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
            trust=trust_note(candidate.distribution),
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


def normalize(distribution: str) -> str:
    return distribution.lower().replace("_", "-").replace(".", "-")


FIRST_PARTY = frozenset(
    {
        "imbi-plugin-aws",
        "imbi-plugin-github",
        "imbi-plugin-logzio",
        "imbi-plugin-local",
        "imbi-plugin-oidc",
    }
)
"""The first-party catalog: trusted until ``configure`` says otherwise."""


@dataclass
class Settings:
    """What ``apps.ready`` configures from Django settings."""

    trusted: frozenset[str] = FIRST_PARTY
    import_timeout: float = 10.0
    lock: str | None = None  # the trust lock's path; None: trust by name (development)
    notes: dict[str, str] = dataclasses.field(default_factory=dict)  # last verdicts' words


settings = Settings()


def configure(
    *, trusted: Iterable[str], import_timeout: float = 10.0, lock: str | None = None
) -> None:
    """The trust policy (``IMBI_TRUSTED_PLUGIN_DISTRIBUTIONS``, the trust lock
    ``IMBI_TRUSTED_PLUGIN_LOCK``) and the import deadline."""
    settings.trusted = frozenset(normalize(d) for d in trusted)
    settings.import_timeout = import_timeout
    settings.lock = lock or None
    settings.notes = {}


def is_trusted(distribution: str) -> bool:
    """Whether the policy lets this process import ``distribution`` (and run it in-process):
    a trusted name whose installed bytes the trust lock records (``trust.verdict``)."""
    found = trust_lock.verdict(distribution, settings.trusted, settings.lock)
    settings.notes[normalize(distribution)] = found.note
    return found.in_process


def trust_note(distribution: str) -> str:
    """The words of the last trust verdict on ``distribution`` ("" when not trusted)."""
    return settings.notes.get(normalize(distribution), "")


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
        name,
        target,
        distribution,
        version,
        status,
        reason,
        manifest=manifest,
        isolated=True,
        trust=trust_note(distribution),
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
    trust = functools.cache(trust)  # one verdict (one hash of its files) per distribution
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
