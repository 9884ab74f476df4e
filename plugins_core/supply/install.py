"""Install a plugin from the followed indexes: verify everything, then hand over the bytes.

Owns ``install_from_index`` (``manage.py plugin install NAME[==VERSION]``, ``POST
/api/plugin-index/install``, the admin's install form), ``available`` (the catalog's
"available" list with badges), ``ArtifactInstaller`` (the seam to the install path: it gets
a ``VerifiedArtifact`` and installs exactly its bytes) and ``DesiredStateInstaller`` (that
path: the verified wheel and its hash-pinned dependency wheels go to
``distributions.install``, which records them in the desired state by SHA-256; every node
then builds the same environment from the same bytes).

Data path: refresh every enabled index (each verified; a refused one is recorded on its row;
its error is raised if no healthy index offers the plugin, or if it comes before the index
that does: a refused index never lets a lower-priority one shadow a name) -> ``select``
(the highest-priority index listing the name) -> ``verify_artifact`` -> fetch the pinned
dependency wheels (``dependencies.fetch``) -> ``distributions.install`` (environment built,
entry points imported in a sandbox, then in one transaction: wheels, ``InstalledDistribution``,
``IndexedArtifact`` (the signed entry: the file manifest checked at rest), generation, audit)
-> this process switches to the new generation; every other process and node follows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from imbi.core import audit
from imbi.core.models import AuditEvent
from plugins_core.distributions import desired as distributions
from plugins_core.distributions import integrity, runtime
from plugins_core.models import IndexedArtifact, InstalledDistribution, PluginIndex
from plugins_core.supply import dependencies, index, signing, trust
from plugins_core.supply.errors import (
    DowngradeRefused,
    InstallFailed,
    NoIndexConfigured,
    PermissionsMismatch,
    PublisherChanged,
    SupplyChainError,
)
from plugins_core.supply.verification import (
    VerifiedArtifact,
    parse_requirement,
    select,
    verify_artifact,
    version_sort_key,
)

__all__ = [
    "ArtifactInstaller",
    "AvailablePlugin",
    "DesiredStateInstaller",
    "available",
    "install_from_index",
]


class ArtifactInstaller(Protocol):
    """The install path: install exactly ``artifact.data`` (already verified)."""

    def install(self, artifact: VerifiedArtifact) -> None: ...


class DesiredStateInstaller:
    """The verified wheel and its pinned dependency wheels into the desired state.

    ``distributions.install`` (an upgrade when another version is installed) stores every
    wheel by SHA-256, builds this node's environment with each wheel ``--no-deps
    --require-hashes`` and imports the entry points in a sandbox before anything is
    committed; the ``IndexedArtifact`` record (index, publisher, signed entry) is written in
    the same transaction as the ``InstalledDistribution`` row."""

    def __init__(self, *, actor: Any = None, organization: Any = None) -> None:
        self.actor = actor
        self.organization = organization
        self.row: InstalledDistribution | None = None
        self.previous: str | None = None

    def install(self, artifact: VerifiedArtifact) -> None:
        owner = f"{artifact.name} {artifact.version}"
        try:
            main = distributions.wheel(artifact.filename, artifact.data)
        except distributions.DistributionError as exc:
            raise InstallFailed(f"{exc.code}: {exc.detail}") from None
        if (main.name, main.version, main.sha256) != (
            artifact.name,
            artifact.version,
            artifact.sha256,
        ):
            raise InstallFailed(
                f"invalid_wheel: {artifact.filename} is {main.name} {main.version}, "
                f"the signed entry names {owner}"
            )
        wheels = [main, *dependencies.fetch(artifact.dependencies, owner)]
        existing = InstalledDistribution.objects.filter(name=artifact.name).first()
        self.previous = existing.version if existing else None
        try:
            self.row = distributions.install(
                wheels,
                actor=self.actor,
                source=(
                    f"index {artifact.index} v{artifact.index_version}: {artifact.filename} "
                    f"(publisher {artifact.certificate.subject})"
                ),
                upgrade=existing is not None,
                provenance=lambda row: _record(artifact, self.actor, self.organization),
                check_entries=lambda entries: check_permissions(artifact, entries),
            )
        except distributions.DistributionError as exc:
            raise InstallFailed(f"{exc.code}: {exc.detail}") from None


def merged_permissions(permissions: Any) -> dict[str, Any]:
    """One comparable shape of a permissions object (the signed entry's, or a manifest's)."""
    data = permissions if isinstance(permissions, dict) else {}

    def names(key: str) -> list[str]:
        value = data.get(key) or []
        return sorted({str(v) for v in value}) if isinstance(value, list | tuple) else []

    return {
        "network_hosts": names("network_hosts"),
        "storage": data.get("storage") is True,
        "project_metadata": data.get("project_metadata") is True,
        "operator_host_settings": names("operator_host_settings"),
        "operator_path_settings": names("operator_path_settings"),
    }


def check_permissions(artifact: VerifiedArtifact, entries: dict[str, dict[str, Any]]) -> None:
    """The signed entry's permissions must equal the union of what the wheel's entry points
    declare (read by the sandboxed import check): the signature covers what runs."""
    declared: dict[str, Any] = merged_permissions({})
    for info in entries.values():
        own = merged_permissions((info.get("manifest") or {}).get("permissions"))
        for key, value in own.items():
            if isinstance(value, bool):
                declared[key] = declared[key] or value
            else:
                declared[key] = sorted(set(declared[key]) | set(value))
    signed = merged_permissions(artifact.entry.get("permissions"))
    if signed != declared:
        differ = sorted(k for k in signed if signed[k] != declared[k])
        shown = "; ".join(f"{k}: signed {signed[k]!r}, declared {declared[k]!r}" for k in differ)
        raise PermissionsMismatch(
            f"{artifact.name} {artifact.version}: the signed permissions differ from what its "
            f"manifests declare ({shown})"[:900],
            fields=differ,
        )


def _record(artifact: VerifiedArtifact, actor: Any, organization: Any) -> IndexedArtifact:
    """The signed provenance of the installed bytes, and the audit event naming it."""
    record, _ = IndexedArtifact.objects.update_or_create(
        distribution=artifact.name,
        defaults={
            "version": artifact.version,
            "sha256": artifact.sha256,
            "size": artifact.size,
            "index": artifact.index,
            "index_version": artifact.index_version,
            "publisher": artifact.certificate.subject,
            "verified_publisher": artifact.certificate.verified,
            "entry": dict(artifact.entry),
            "certificate": dict(artifact.certificate_document),
            "installed_by": getattr(actor, "username", "") or "",
        },
    )
    audit.record(
        AuditEvent.Action.PLUGIN_INSTALL,
        actor=actor,
        organization=organization,
        plugin_slug=artifact.name[:64],
        detail=(
            f"installed {artifact.name} {artifact.version} from index {artifact.index} "
            f"v{artifact.index_version} (sha256 {artifact.sha256}, publisher "
            f"{artifact.certificate.subject}, {artifact.badge})"
        )[:255],
    )
    return record


def followed_indexes() -> list[PluginIndex]:
    return list(PluginIndex.objects.filter(enabled=True).order_by("priority", "name"))


def _refreshed(
    rows: Sequence[PluginIndex],
) -> tuple[list[index.IndexDocument], dict[str, SupplyChainError]]:
    documents, errors = [], {}
    for row in rows:
        try:
            documents.append(index.refresh(row))
        except SupplyChainError as exc:
            errors[row.name] = exc
    return documents, errors


@dataclass(frozen=True, slots=True)
class InstallRecord:
    artifact: VerifiedArtifact
    record: IndexedArtifact
    previous_version: str | None
    row: InstalledDistribution | None = None  # the desired state (None: another installer)


def install_from_index(
    requirement: str,
    *,
    organization: Any = None,
    actor: Any = None,
    installer: ArtifactInstaller | None = None,
    allow_downgrade: bool = False,
    transfer_publisher: bool = False,
) -> InstallRecord:
    """Verify and install ``NAME[==VERSION]``; raises a ``SupplyChainError`` before anything
    is written, unpacked or executed when any check fails.

    An installed distribution is replaced only by a build of the same publisher from the same
    index (``publisher_changed`` otherwise) unless ``transfer_publisher`` (an admin's
    explicit transfer, audited as ``plugin.distribution_transferred``)."""
    name, version = parse_requirement(requirement)
    rows = followed_indexes()
    if not rows:
        raise NoIndexConfigured("no plugin index is followed (manage.py plugin index add)")
    documents, errors = _refreshed(rows)
    by_name = {row.name: row for row in rows}
    rules = integrity.current_block_rules()
    try:
        selection = select(documents, name, version, rules)
    except SupplyChainError:
        if errors:
            raise next(iter(errors.values())) from None
        raise
    row = by_name[selection.document.name]
    # Fail closed: a refused index ordered before the one that offers the name might list it
    # too (and would win); never fall through to a lower-priority index past a refusal.
    for earlier in rows[: rows.index(row)]:
        if earlier.name in errors:
            raise errors[earlier.name]
    artifact = verify_artifact(
        selection.document,
        selection.entry,
        signing.trust_root(row),
        verified_only=trust.verified_only(organization),
        rules=rules,
    )
    previous = InstalledDistribution.objects.filter(name=artifact.name).first()
    downgrade = previous is not None and version_sort_key(artifact.version) < version_sort_key(
        previous.version
    )
    if downgrade and not allow_downgrade:
        assert previous is not None
        raise DowngradeRefused(
            f"{artifact.name} {previous.version} is installed; {artifact.version} is older "
            "(pass --allow-downgrade, API: allow_downgrade, to install it anyway)",
            installed=previous.version,
            requested=artifact.version,
        )
    provenance = IndexedArtifact.objects.filter(distribution=artifact.name).first()
    before = (provenance.index, provenance.publisher) if provenance is not None else None
    now = (artifact.index, artifact.certificate.subject)
    transferred = before is not None and before != now
    if transferred and not transfer_publisher:
        assert before is not None
        raise PublisherChanged(
            f"{artifact.name} is installed from publisher {before[1]!r} (index {before[0]}); "
            f"{artifact.version} is published by {now[1]!r} (index {now[0]}): pass "
            "--transfer-publisher (API: transfer_publisher) to transfer it",
            installed_publisher=before[1],
            publisher=now[1],
        )
    if installer is None:
        installer = DesiredStateInstaller(actor=actor, organization=organization)
    installer.install(artifact)
    record = IndexedArtifact.objects.filter(distribution=artifact.name).first()
    if record is None:  # another installer (tests) that did not record the provenance
        record = _record(artifact, actor, organization)
    if downgrade and previous is not None:
        audit.record(
            "plugin.distribution_downgraded",
            actor=actor,
            organization=organization,
            plugin_slug=artifact.name[:64],
            detail=(
                f"downgraded {artifact.name} {previous.version} -> {artifact.version} "
                f"(allow-downgrade) from index {artifact.index} v{artifact.index_version}"
            )[:255],
        )
    if transferred and before is not None:
        audit.record(
            "plugin.distribution_transferred",
            actor=actor,
            organization=organization,
            plugin_slug=artifact.name[:64],
            detail=(
                f"transferred {artifact.name} from publisher {before[1]} (index {before[0]}) "
                f"to {now[1]} (index {now[0]}) with {artifact.version} (transfer-publisher)"
            )[:255],
        )
    runtime.switch()  # this process serves it now; the others follow the generation
    installed = InstalledDistribution.objects.filter(
        name=artifact.name, sha256=artifact.sha256
    ).first()
    return InstallRecord(artifact, record, previous.version if previous else None, installed)


@dataclass(frozen=True, slots=True)
class AvailablePlugin:
    """One plugin of the catalog's "available" list."""

    name: str
    index: str
    latest: str
    versions: tuple[str, ...]
    publisher: str
    badge: str
    installed: str | None
    blocked: tuple[str, ...]
    description: str

    @property
    def installable(self) -> str:
        """The newest version that is not blocked ("" when every one is)."""
        return next((v for v in self.versions if v not in self.blocked), "")

    @property
    def update_available(self) -> bool:
        """Installed, and the index offers a newer version that is not blocked."""
        if not self.installed or not self.installable:
            return False
        return version_sort_key(self.installable) > version_sort_key(self.installed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "index": self.index,
            "latest": self.latest,
            "versions": list(self.versions),
            "publisher": self.publisher,
            "badge": self.badge,
            "installed": self.installed,
            "installed_version": self.installed,
            "update_available": self.update_available,
            "blocked_versions": list(self.blocked),
            "description": self.description,
        }


def available(*, refresh: bool = False) -> list[AvailablePlugin]:
    """Every plugin the followed indexes offer, from their last verified documents."""
    rows = followed_indexes()
    if refresh:
        _refreshed(rows)
        rows = followed_indexes()
    rules = integrity.current_block_rules()
    installed = dict(InstalledDistribution.objects.values_list("name", "version"))
    seen: set[str] = set()
    out: list[AvailablePlugin] = []
    for row in rows:
        signed = row.document if isinstance(row.document, dict) else None
        if signed is None or row.expires is None:
            continue
        document = index.IndexDocument(
            row.name, row.url, signed, row.last_version, row.expires, "", row.last_digest
        )
        for plugin in sorted(document.plugins()):
            if plugin in seen:
                continue  # a higher-priority index already offers this name
            seen.add(plugin)
            versions = sorted(document.versions(plugin), key=version_sort_key, reverse=True)
            latest = versions[0] if versions else ""
            artifacts = document.artifacts(plugin, latest) if latest else []
            publisher = str(artifacts[0].get("publisher", "")) if artifacts else ""
            try:
                certificate: trust.Certificate | None = trust.publisher_certificate(
                    document.publishers, publisher, signing.trust_root(row)
                )
            except SupplyChainError:
                certificate = None
            out.append(
                AvailablePlugin(
                    name=plugin,
                    index=row.name,
                    latest=latest,
                    versions=tuple(versions),
                    publisher=publisher,
                    badge=trust.badge(certificate),
                    installed=installed.get(plugin),
                    blocked=tuple(v for v in versions if trust.blocked(rules, plugin, v)),
                    description=str((document.plugins()[plugin] or {}).get("description", "")),
                )
            )
    return out
