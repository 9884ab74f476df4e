"""The one writer of the desired state: install, upgrade and remove plugin distributions.

Used by ``manage.py plugin install|upgrade|remove``, the admin and the REST API alike.

An install or upgrade takes a wheel (or a wheelhouse folder: the plugin's wheel and its
dependencies' wheels; exactly one of them declares ``imbi.plugins`` entry points) and, before
anything changes:

1. checks each file is a well-formed wheel within the size cap, and that the distribution
   neither shadows a distribution of the host environment nor reuses a host entry-point name;
2. builds the version's environment on this node (``environments.build``) and imports every
   entry point in a sandboxed runner started from it (the manifests are recorded);
3. only then, in one transaction: stores the wheels, writes the ``InstalledDistribution`` row,
   increments the registry generation and records the audit event.

A failure at any step raises ``DistributionError`` (a stable ``code`` and a one-line reason)
and leaves the previous version serving. After the commit the new generation is published
to the cache and a Celery broadcast nudges every node (``control.nudge``); a lost nudge is
harmless (``runtime`` checks the generation on every request and task).

Permissions: instance-wide, so only superusers (``can_manage``) — see docs/operations.md.
Runtime-installed distributions always run isolated; trusted in-process plugins are
installed into the host environment by the operator (see docs/decisions/0017).
"""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from django.db import transaction
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from imbi.core import audit
from plugins_core import registry
from plugins_core.distributions import environments, runtime
from plugins_core.models import (
    DistributionArtifact,
    IndexedArtifact,
    InstalledDistribution,
    RegistryState,
)

logger = logging.getLogger("imbi.plugins.distributions")

MAX_WHEEL_BYTES = 50 * 1024 * 1024
MAX_WHEELS = 100
MAX_UNPACKED_BYTES = 512 * 1024 * 1024  # declared sizes of every member (a zip bomb)
# Never replaced at runtime: the host itself and what it is made of.
RESERVED = frozenset({"imbi", "imbi-plugin-sdk", "django", "celery", "uv", "pip", "setuptools"})


class DistributionError(Exception):
    """A refused or failed change; nothing was changed. ``detail`` is one line."""

    http_status = 400

    def __init__(self, code: str, detail: str, http_status: int = 400) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail
        self.http_status = http_status


@dataclass(frozen=True)
class Wheel:
    filename: str
    content: bytes
    name: str
    version: str

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def entry_points(self) -> dict[str, str]:
        """``imbi.plugins`` entry points declared in the wheel's metadata."""
        with zipfile.ZipFile(io.BytesIO(self.content)) as archive:
            names = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
            if not names:
                return {}
            text = archive.read(names[0]).decode("utf-8", "replace")
        found: dict[str, str] = {}
        section = ""
        for line in text.splitlines():
            line = line.strip()
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1].strip()
            elif section == registry.ENTRY_POINT_GROUP and "=" in line:
                key, _, value = line.partition("=")
                found[key.strip()] = value.strip()
        return found


def can_manage(user: Any) -> bool:
    """Instance-wide plugin distributions: superusers only."""
    return bool(getattr(user, "is_active", False) and getattr(user, "is_superuser", False))


def wheel(filename: str, content: bytes) -> Wheel:
    """Validate one uploaded or read wheel file."""
    base = Path(filename).name
    if len(content) > MAX_WHEEL_BYTES:
        raise DistributionError(
            "wheel_too_large", f"{base} is larger than {MAX_WHEEL_BYTES // 2**20} MiB"
        )
    try:
        name, version, _, _ = parse_wheel_filename(base)
    except InvalidWheelFilename:
        raise DistributionError(
            "invalid_wheel", f"{base[:100]!r} is not a wheel file name"
        ) from None
    try:
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            _check_members(archive)
            if archive.testzip() is not None:
                raise zipfile.BadZipFile("corrupt member")
            if not any(n.endswith(".dist-info/METADATA") for n in archive.namelist()):
                raise zipfile.BadZipFile("no METADATA")
    except (zipfile.BadZipFile, ValueError) as exc:
        raise DistributionError("invalid_wheel", f"{base} is not a valid wheel ({exc})") from None
    return Wheel(base, content, str(canonicalize_name(name)), str(version))


def _check_members(archive: zipfile.ZipFile) -> None:
    """Refuse, before anything decompresses or installs it, a member that would land outside
    the environment (absolute, ``..``, backslash) or archives that unpack past the limit."""
    total = 0
    for info in archive.infolist():
        name = info.filename
        if name.startswith("/") or "\\" in name or ".." in name.split("/"):
            raise zipfile.BadZipFile(f"member {name[:100]!r} is outside the wheel")
        total += info.file_size
    if total > MAX_UNPACKED_BYTES:
        raise zipfile.BadZipFile(f"unpacks to more than {MAX_UNPACKED_BYTES // 2**20} MiB")


def read_source(source: Path) -> list[Wheel]:
    """The wheels of a wheel file or a wheelhouse folder."""
    if source.is_dir():
        paths = sorted(source.glob("*.whl"))
        if not paths:
            raise DistributionError("invalid_source", f"{source} holds no wheel files")
    elif source.is_file():
        paths = [source]
    else:
        raise DistributionError("invalid_source", f"{source} does not exist")
    if len(paths) > MAX_WHEELS:
        raise DistributionError("invalid_source", f"{source} holds more than {MAX_WHEELS} wheels")
    wheels = []
    for path in paths:
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise DistributionError(
                "invalid_source", f"{path} cannot be read ({exc.strerror})"
            ) from None
        wheels.append(wheel(path.name, content))
    return wheels


def plugin_wheel(wheels: list[Wheel]) -> Wheel:
    found = [w for w in wheels if w.entry_points()]
    if not found:
        raise DistributionError(
            "not_a_plugin", "no wheel declares entry points in the 'imbi.plugins' group"
        )
    if len(found) > 1:
        names = ", ".join(sorted(w.name for w in found))
        raise DistributionError("ambiguous_source", f"several wheels declare plugins: {names}")
    return found[0]


def _check_host_conflicts(main: Wheel) -> None:
    if main.name in RESERVED:
        raise DistributionError("reserved_name", f"{main.name} is part of the host")
    host = {canonicalize_name(d.metadata["Name"] or "") for d in metadata.distributions()}
    if main.name in host:
        raise DistributionError(
            "conflicts_with_host",
            f"{main.name} is installed in the host environment; remove it there first",
        )
    host_entries = {c.name: c.distribution for c in registry.discover()}
    for other in InstalledDistribution.objects.exclude(name=main.name):
        host_entries.update(dict.fromkeys(other.entries or {}, other.name))
    for name in main.entry_points():
        if name in host_entries:
            raise DistributionError(
                "entry_point_taken",
                f"entry point {name!r} is already provided by {host_entries[name]}",
            )


def _inspect(env: environments.Env, main: Wheel) -> dict[str, dict[str, Any]]:
    """Import every entry point in a sandboxed runner from ``env``; refuse any failure."""
    import dataclasses

    from django.conf import settings
    from imbi_plugin_sdk import ManifestError, Permissions, PluginManifest, is_compatible

    from plugins_core.isolation.inspect import inspect_entries
    from plugins_core.isolation.policy import Limits, runner_spec

    targets = env.entry_points(main.name)
    if not targets:
        raise DistributionError("not_a_plugin", f"{main.name} installed no 'imbi.plugins' entries")
    limits = Limits(import_timeout=float(settings.IMBI_PLUGIN_IMPORT_TIMEOUT))

    def spec_for(entries: dict[str, str]) -> Any:
        spec = runner_spec(
            key=("inspect", main.name, main.version),
            slug=main.name,
            entries=entries,
            permissions=Permissions(),
            limits=limits,
            env=str(env.path),
        )
        return dataclasses.replace(spec, inspect=True)

    results = inspect_entries(targets, spec_for)
    entries: dict[str, dict[str, Any]] = {}
    for name, target in sorted(targets.items()):
        result = results.get(name)
        if result is None or not result.ok or result.manifest is None:
            reason = result.reason if result else "not reported"
            raise DistributionError("import_failed", f"entry point {name!r}: {reason}"[:400])
        try:
            manifest = PluginManifest.from_dict(result.manifest)
        except ManifestError as exc:
            raise DistributionError("invalid_manifest", f"entry point {name!r}: {exc}") from None
        ok, why = is_compatible(manifest.api, registry.HOST_API_VERSION)
        if not ok:
            raise DistributionError("incompatible", f"entry point {name!r}: {why}")
        entries[name] = {"target": target, "manifest": result.manifest}
    return entries


def _bump() -> int:
    state, _ = RegistryState.objects.select_for_update().get_or_create(pk=1)
    state.generation += 1
    state.save(update_fields=["generation", "changed_at"])
    return state.generation


def _after_commit(generation: int) -> None:
    runtime.publish(generation)
    from plugins_core.distributions.control import nudge

    nudge(generation)


def install(
    wheels: list[Wheel],
    *,
    actor: Any = None,
    source: str = "",
    upgrade: bool = False,
    provenance: Callable[[InstalledDistribution], object] | None = None,
    check_entries: Callable[[dict[str, dict[str, Any]]], object] | None = None,
) -> InstalledDistribution:
    """Install (``upgrade=False``) or upgrade/downgrade (``upgrade=True``) a distribution.

    ``check_entries(entries)`` sees the manifests the sandboxed import check read and may
    refuse them by raising (the signed permissions must equal them); the environment is
    discarded then. ``provenance(row)`` runs inside the transaction that writes the row (the
    signed index's install record: ``index_install``), so every node sees both or neither.
    Idempotent: the same wheel again changes nothing and returns the current row."""
    main = plugin_wheel(wheels)
    existing = InstalledDistribution.objects.filter(name=main.name).first()
    if existing is not None and existing.sha256 == main.sha256:
        if provenance is not None:
            with transaction.atomic():
                provenance(existing)
        return existing
    if existing is not None and not upgrade:
        raise DistributionError(
            "already_installed",
            f"{main.name} {existing.version} is installed; use upgrade to change its version",
            409,
        )
    if existing is None and upgrade:
        raise DistributionError("not_installed", f"{main.name} is not installed", 404)
    _check_host_conflicts(main)
    key = f"{main.name}-{main.version}-{main.sha256[:12]}"
    try:
        env = environments.build(
            key, main.name, main.version, {w.filename: w.content for w in wheels}
        )
    except environments.EnvironmentError_ as exc:
        environments.discard(key)  # the copied wheels too: nothing of a refused install stays
        raise DistributionError(exc.code, str(exc), exc.http_status) from None
    try:
        entries = _inspect(env, main)
        if check_entries is not None:
            check_entries(entries)
    except Exception:
        environments.discard(key)  # never desired: nothing drains from it
        raise
    with transaction.atomic():
        for w in wheels:
            DistributionArtifact.objects.get_or_create(
                sha256=w.sha256,
                defaults={"filename": w.filename, "size": len(w.content), "content": w.content},
            )
        generation = _bump()  # locks the generation row: installs are serialized here
        now = InstalledDistribution.objects.filter(name=main.name).first()
        if (now.sha256 if now else None) != (existing.sha256 if existing else None):
            raise DistributionError(
                "concurrent_change",
                f"{main.name} was changed by someone else meanwhile; check and retry",
                409,
            )
        user = actor if getattr(actor, "is_authenticated", False) else None
        row, _ = InstalledDistribution.objects.select_for_update().update_or_create(
            name=main.name,
            defaults={
                "version": main.version,
                "sha256": main.sha256,
                "size": len(main.content),
                "filename": main.filename,
                "source": (source or main.filename)[:500],
                "execution_mode": "isolated",
                "artifacts": sorted({w.sha256 for w in wheels}),
                "entries": entries,
                "generation": generation,
                "installed_by": user,
                "installed_by_name": getattr(user, "username", "") or "system",
            },
        )
        # The signed provenance describes these bytes or none: a local wheel replaces it.
        IndexedArtifact.objects.filter(distribution=main.name).exclude(sha256=main.sha256).delete()
        if provenance is not None:
            provenance(row)
        before = f"{existing.version} -> " if existing else ""
        audit.record(
            "plugin.distribution_upgraded" if existing else "plugin.distribution_installed",
            actor=actor,
            plugin_slug=main.name[:64],
            detail=f"{before}{main.version} sha256 {main.sha256[:16]} generation {generation}",
        )
        transaction.on_commit(lambda: _after_commit(generation))
    logger.info(
        "plugin distribution %s %s installed (generation %s)", row.name, row.version, generation
    )
    return row


def new_generation() -> int:
    """A change to what may be served that changes no row here (a followed index's blocklist):
    every process re-checks its distributions at its next generation check. Call inside the
    transaction that makes the change."""
    generation = _bump()
    transaction.on_commit(lambda: _after_commit(generation))
    return generation


def remove(name: str, *, actor: Any = None) -> int:
    """Remove a distribution from the desired state; returns the new generation."""
    normalized = str(canonicalize_name(name))
    with transaction.atomic():
        row = InstalledDistribution.objects.select_for_update().filter(name=normalized).first()
        if row is None:
            raise DistributionError("not_installed", f"{normalized[:200]} is not installed", 404)
        generation = _bump()
        row.delete()
        IndexedArtifact.objects.filter(distribution=normalized).delete()
        audit.record(
            "plugin.distribution_removed",
            actor=actor,
            plugin_slug=normalized[:64],
            detail=f"{row.version} generation {generation}",
        )
        transaction.on_commit(lambda: _after_commit(generation))
    return generation
