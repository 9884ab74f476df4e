"""Integrity at rest: every installed plugin file against a signed file manifest.

Owns the install record written after an index install (``write_record``: the publisher's
signed entry, whose ``files`` map every installed path to its SHA-256, plus the publisher's
certificate) in ``IMBI_PLUGINS_STATE_DIR/integrity/<distribution>.json``; ``check_distribution``
(re-verify the record's signatures and hash every file: ``file_modified`` names the file);
``verify_installed`` (``manage.py plugin verify``, ``GET /api/plugins/integrity``) and
``load_guard`` (the registry refuses a modified, unsigned or blocklisted distribution before
importing it: status ``modified``, ``unsigned`` or ``blocked`` with the reason).

Unsigned distributions (installed without an index: editable checkouts, ``pip install``) load
only when ``IMBI_PLUGINS_UNSIGNED_ALLOWED`` lists them (``"*"``: all, for development). Even
then they are checked against the hashes of their own ``RECORD``: an allow-list admits
unsigned plugins, never modified ones.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from imbi_plugin_sdk import signing as formats
from packaging.utils import canonicalize_name

from . import registry, trust
from .supply_errors import (
    CertificateInvalid,
    FileModified,
    PublisherSignatureInvalid,
    SupplyChainError,
    UnsignedPlugin,
)

__all__ = [
    "IntegrityResult",
    "check_distribution",
    "load_guard",
    "read_record",
    "record_path",
    "verify_installed",
    "write_record",
]

logger = logging.getLogger(__name__)


def add_plugin_site(folder: str) -> None:
    """Put the index-install folder on ``sys.path`` (appended: it never shadows the host;
    ``.pth`` files there are never executed, unlike ``site.addsitedir``)."""
    import sys

    if folder and folder not in sys.path:
        sys.path.append(folder)


def state_dir() -> Path:
    from django.conf import settings

    return Path(settings.IMBI_PLUGINS_STATE_DIR)


def record_path(distribution: str) -> Path:
    return state_dir() / "integrity" / f"{canonicalize_name(distribution)}.json"


def write_record(artifact: Any) -> Path:
    """Record a ``VerifiedArtifact`` as installed (atomic; mode 0644 in a 0755 folder)."""
    path = record_path(artifact.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "distribution": artifact.name,
        "version": artifact.version,
        "index": artifact.index,
        "sha256": artifact.sha256,
        "entry": dict(artifact.entry),
        "certificate": dict(artifact.certificate_document),
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2, sort_keys=True)
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    return path


def remove_record(distribution: str) -> None:
    record_path(distribution).unlink(missing_ok=True)


def read_record(distribution: str) -> dict[str, Any] | None:
    path = record_path(distribution)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise FileModified(f"the integrity record {path} is unreadable: {exc}") from None
    return data if isinstance(data, dict) else None


def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 16), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _check_signed(record: Mapping[str, Any], distribution: str) -> Mapping[str, str]:
    """The record's file manifest, after re-verifying the publisher's signature over it."""
    entry, certificate = record.get("entry"), record.get("certificate")
    if not isinstance(entry, dict) or not isinstance(certificate, dict):
        raise FileModified(f"{distribution}: the integrity record is malformed")
    body = certificate.get("certificate") or {}
    public_key = body.get("public_key", "")
    try:
        ok = entry.get("key_id") == formats.key_id(public_key) and formats.verify(
            public_key, formats.artifact_message(entry), entry.get("signature")
        )
    except formats.KeyFileError:
        raise CertificateInvalid(f"{distribution}: the recorded certificate is malformed") from None
    if not ok:
        raise PublisherSignatureInvalid(
            f"{distribution}: the recorded file manifest is not signed by its publisher"
        )
    files = entry.get("files")
    if not isinstance(files, dict):
        raise FileModified(f"{distribution}: the integrity record has no file manifest")
    return files


def _check_files(dist: metadata.Distribution, files: Mapping[str, str], name: str) -> int:
    for relative, expected in sorted(files.items()):
        path = Path(str(dist.locate_file(relative)))
        actual = _sha256(path)
        if actual is None:
            raise FileModified(f"{name}: installed file {relative} is missing", file=relative)
        if actual != expected:
            raise FileModified(
                f"{name}: installed file {relative} was modified (sha256 {actual}, "
                f"signed {expected})",
                file=relative,
            )
    return len(files)


def _record_hashes(dist: metadata.Distribution) -> dict[str, str]:
    """The installer's own RECORD (``path,sha256=urlsafe-b64,size``) of an unsigned plugin."""
    text = dist.read_text("RECORD") or ""
    hashes: dict[str, str] = {}
    for row in csv.reader(io.StringIO(text)):
        if not row or "__pycache__/" in row[0]:
            continue  # byte code is derived and may be rewritten by the interpreter
        if len(row) >= 2 and row[1].startswith("sha256="):
            raw = base64.urlsafe_b64decode(row[1][7:] + "=" * (-len(row[1][7:]) % 4))
            hashes[row[0]] = raw.hex()
    return hashes


def _allowed_unsigned(name: str) -> bool:
    from django.conf import settings

    allowed = {canonicalize_name(n) if n != "*" else n for n in _setting_list(settings)}
    return "*" in allowed or canonicalize_name(name) in allowed


def _setting_list(settings: Any) -> list[str]:
    return list(getattr(settings, "IMBI_PLUGINS_UNSIGNED_ALLOWED", []))


@dataclass(frozen=True, slots=True)
class IntegrityResult:
    distribution: str
    version: str
    status: str  # "signed", "unsigned-allowed", or the error code
    detail: str
    files: int = 0

    @property
    def ok(self) -> bool:
        return self.status in ("signed", "unsigned-allowed")


def check_distribution(dist: metadata.Distribution) -> IntegrityResult:
    """Verify one installed distribution; raises its ``SupplyChainError`` when refused."""
    name = canonicalize_name(dist.metadata["Name"] or "")
    version = dist.version
    record = read_record(name)
    if record is not None and record.get("version") == version:
        files = _check_signed(record, name)
        count = _check_files(dist, files, name)
        return IntegrityResult(name, version, "signed", f"{count} files match", count)
    if not _allowed_unsigned(name):
        raise UnsignedPlugin(
            f"{name} {version} was not installed from a signed index and is not on "
            "IMBI_PLUGINS_UNSIGNED_ALLOWED",
            distribution=name,
        )
    count = _check_files(dist, _record_hashes(dist), name)
    return IntegrityResult(
        name, version, "unsigned-allowed", f"unsigned, allowed; {count} files match RECORD", count
    )


def plugin_distributions() -> list[metadata.Distribution]:
    """Every installed distribution with an ``imbi.plugins`` entry point, once each."""
    seen: dict[str, metadata.Distribution] = {}
    for ep in metadata.entry_points(group=registry.ENTRY_POINT_GROUP):
        if ep.dist is not None:
            seen.setdefault(canonicalize_name(ep.dist.metadata["Name"] or ""), ep.dist)
    return [seen[name] for name in sorted(seen)]


def verify_installed() -> list[IntegrityResult]:
    """``manage.py plugin verify``: every plugin distribution, checked; never raises."""
    results = []
    for dist in plugin_distributions():
        try:
            results.append(check_distribution(dist))
        except SupplyChainError as exc:
            name = canonicalize_name(dist.metadata["Name"] or "")
            results.append(IntegrityResult(name, dist.version, exc.code, exc.detail))
    return results


# --- at load ------------------------------------------------------------------------------


def current_block_rules() -> list[trust.BlockRule]:
    """The blocklists of every followed index (last verified document) and the setting."""
    from django.conf import settings

    rules = trust.block_rules(getattr(settings, "IMBI_PLUGINS_BLOCKLIST", []), "this platform")
    try:
        from .models import PluginIndex

        for name, document in PluginIndex.objects.filter(enabled=True).values_list(
            "name", "document"
        ):
            if isinstance(document, dict):
                rules += trust.block_rules(document.get("blocklist") or [], f"index {name!r}")
    except Exception as exc:  # no database yet (start-up, migrations): say so, go on
        logger.warning("plugin blocklist from the indexes unavailable: %s", type(exc).__name__)
    return rules


def load_guard(
    candidates: Iterable[registry.Candidate],
) -> dict[str, tuple[registry.Status, str]]:
    """Per distribution: a refusal (status, reason) the registry applies before importing."""
    rules = current_block_rules()
    refusals: dict[str, tuple[registry.Status, str]] = {}
    distributions = {canonicalize_name(c.distribution) for c in candidates if c.distribution}
    for dist in plugin_distributions():
        name = canonicalize_name(dist.metadata["Name"] or "")
        if name not in distributions:
            continue
        rule = trust.blocked(rules, name, dist.version)
        if rule is not None:
            refusals[name] = (registry.Status.BLOCKED, rule.message(name, dist.version))
            continue
        try:
            check_distribution(dist)
        except UnsignedPlugin as exc:
            refusals[name] = (registry.Status.UNSIGNED, exc.detail)
        except SupplyChainError as exc:
            refusals[name] = (registry.Status.MODIFIED, f"{exc.code}: {exc.detail}")
    return refusals
