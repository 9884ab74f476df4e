"""Verify one artifact of a verified index; hand exactly the verified bytes onwards.

Owns ``VerifiedArtifact`` (the bytes and the facts proven about them), ``select`` (which
index entry a requirement ``name[==version]`` means, across the followed indexes) and
``verify_artifact`` (the whole chain for one entry). Nothing here unpacks, writes or
executes the artifact; the installer receives ``VerifiedArtifact.data`` and nothing else.

Order of checks for an entry (each refusal its own error in ``supply_errors``):
 1. entry shape (``index_malformed``);
 2. the publisher's certificate in the index, signed by the index's root key
    (``publisher_unknown``, ``certificate_invalid``), not revoked (``certificate_revoked``);
    the publisher owns the entry's name in the index (``name_not_owned``);
 3. the publisher's signature over the entry (``publisher_signature_invalid``);
 4. the certificate valid at the index's own signed time for the entry (``indexed_at``: when
    the index filed it; the publisher's ``signed_at`` is a claim and proves nothing about an
    expired key) (``certificate_not_yet_valid``, ``certificate_expired``);
 5. the policy (``publisher_not_verified``), the blocklist (``version_blocked``), the SDK
    range and contract version against this host (``sdk_range_unsupported``,
    ``api_version_unsupported``);
 6. then the bytes are read (never more than the signed size + 1): size
    (``artifact_size_mismatch``), SHA-256 (``artifact_hash_mismatch``, or
    ``artifact_tampered`` when a file inside differs from the signed file manifest),
    and the wheel's files against the signed manifest.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from imbi_plugin_sdk import ApiVersion, is_compatible
from imbi_plugin_sdk import signing as formats
from imbi_plugin_sdk.publishing import wheel_install_path
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from plugins_core import registry
from plugins_core.supply import trust
from plugins_core.supply.errors import (
    ApiVersionUnsupported,
    ArtifactHashMismatch,
    ArtifactNotFound,
    ArtifactSizeMismatch,
    ArtifactTampered,
    IndexMalformed,
    InvalidRequirement,
    InvalidWheel,
    NameNotOwned,
    PublisherSignatureInvalid,
    SdkRangeUnsupported,
    VersionMismatch,
)
from plugins_core.supply.index import IndexDocument, read_artifact

__all__ = [
    "Selection",
    "VerifiedArtifact",
    "check_entry",
    "parse_requirement",
    "select",
    "verify_artifact",
    "version_sort_key",
]

MAX_UNPACKED_BYTES = 256 * 1024 * 1024
CLOCK_SKEW = dt.timedelta(minutes=5)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_FILENAME = re.compile(r"^[A-Za-z0-9_.+-]+\.whl$")


@dataclass(frozen=True, slots=True)
class VerifiedArtifact:
    """An artifact whose every check passed; ``data`` are exactly the verified bytes."""

    index: str
    index_version: int
    name: str
    version: str
    filename: str
    sha256: str
    size: int
    data: bytes = field(repr=False)
    entry: Mapping[str, Any]
    certificate: trust.Certificate
    certificate_document: Mapping[str, Any]

    @property
    def dependencies(self) -> tuple[str, ...]:
        return tuple(self.entry.get("dependencies") or ())

    @property
    def files(self) -> Mapping[str, str]:
        return self.entry.get("files") or {}

    @property
    def badge(self) -> str:
        return trust.badge(self.certificate)

    def write_to(self, directory: Path) -> Path:
        """The verified bytes in ``directory`` under the wheel's file name (for pip)."""
        path = directory / self.filename
        path.write_bytes(self.data)
        if hashlib.sha256(path.read_bytes()).hexdigest() != self.sha256:  # pragma: no cover
            raise ArtifactHashMismatch(f"{path} changed while being written")
        return path


@dataclass(frozen=True, slots=True)
class Selection:
    document: IndexDocument
    entry: Mapping[str, Any]


def parse_requirement(text: str) -> tuple[str, str | None]:
    """``name`` or ``name==version`` -> (canonical name, version or None)."""
    name, sep, version = text.strip().partition("==")
    name, version = name.strip(), version.strip()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or (
        sep and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.+!_-]*", version)
    ):
        raise InvalidRequirement(f"{text[:100]!r} is not NAME or NAME==VERSION")
    return canonicalize_name(name), (version or None)


def version_sort_key(version: str) -> tuple[int, Version | str]:
    try:
        return (1, Version(version))
    except InvalidVersion:
        return (0, version)


def select(
    documents: Sequence[IndexDocument],
    name: str,
    version: str | None = None,
    rules: Iterable[trust.BlockRule] = (),
) -> Selection:
    """The entry for ``name[==version]``: the first index (by priority) that lists the name
    wins outright (a lower-priority index can never shadow it); without a version, the newest
    version that is not blocklisted. ``acme-demo`` means ``imbi-plugin-acme-demo`` when the
    index has no distribution named ``acme-demo`` itself."""
    rules = list(rules)
    for document in documents:
        listed: dict[str, str] = {canonicalize_name(p): p for p in document.plugins()}
        # ``acme-demo`` also finds the conventional distribution ``imbi-plugin-acme-demo``.
        key = name if name in listed else f"imbi-plugin-{name}"
        if key not in listed:
            continue
        plugin = listed[key]
        name = canonicalize_name(plugin)
        versions = sorted(document.versions(plugin), key=version_sort_key, reverse=True)
        if version is not None:
            if version not in versions:
                raise ArtifactNotFound(
                    f"index {document.name!r} has no {name} {version} "
                    f"(it has: {', '.join(versions) or 'none'})",
                    index=document.name,
                )
            chosen = version
        else:
            good = [v for v in versions if trust.blocked(rules, name, v) is None]
            chosen = (good or versions or [""])[0]
        artifacts = document.artifacts(plugin, chosen)
        wheels = [a for a in artifacts if str(a.get("filename", "")).endswith(".whl")]
        if not wheels:
            raise ArtifactNotFound(f"index {document.name!r} lists no wheel for {name} {chosen}")
        check_filed(document, plugin, chosen, wheels[0])
        return Selection(document, wheels[0])
    raise ArtifactNotFound(f"no followed index offers {name!r}")


# --- the checks ---------------------------------------------------------------------------


def check_filed(
    document: IndexDocument, plugin: str, version: str, entry: Mapping[str, Any]
) -> None:
    """The entry is filed under its own name and version (an index-key holder cannot file
    0.1.0's signed entry as 0.3.0 and have 0.1.0 installed as the newest)."""
    named, signed = str(entry.get("name", "")), str(entry.get("version", ""))
    if canonicalize_name(named) != canonicalize_name(plugin) or signed != version:
        raise VersionMismatch(
            f"index {document.name!r} files the signed entry of {named[:100]} {signed[:64]} "
            f"under {plugin} {version}",
            index=document.name,
            filed=version,
            signed=signed[:64],
        )


# Files the interpreter runs by itself at start-up (``site``): never without the publisher
# saying so in the signed entry (``startup_files``).
STARTUP_MODULES = frozenset({"sitecustomize", "usercustomize"})


def startup_files(files: Iterable[str]) -> list[str]:
    """The installed paths that ``site`` would execute or import at interpreter start."""
    found = []
    for path in files:
        top, sep, _ = path.partition("/")
        if (not sep and top.endswith(".pth")) or top.split(".")[0] in STARTUP_MODULES:
            found.append(path)
    return sorted(found)


def check_startup_files(entry: Mapping[str, Any]) -> None:
    """``invalid_wheel`` for a ``.pth`` or top-level ``sitecustomize``/``usercustomize`` the
    signed entry does not list under ``startup_files``."""
    declared = entry.get("startup_files") or []
    declared = set(declared) if isinstance(declared, list) else set()
    undeclared = [p for p in startup_files(entry.get("files") or {}) if p not in declared]
    if undeclared:
        raise InvalidWheel(
            f"{entry.get('filename')}: {undeclared[0]} would run when an interpreter starts "
            "and the publisher's signed entry does not declare it (startup_files)",
            file=undeclared[0],
        )


def check_metadata_version(entry: Mapping[str, Any], data: bytes) -> None:
    """The wheel's own METADATA names the signed entry's distribution and version."""
    import email.parser

    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [
                n
                for n in archive.namelist()
                if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
            ]
            if len(names) != 1:
                raise InvalidWheel(f"{entry['filename']}: no single .dist-info/METADATA")
            message = email.parser.BytesParser().parsebytes(archive.read(names[0]))
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError) as exc:
        raise InvalidWheel(f"{entry['filename']} is not a readable wheel: {exc}") from None
    name, version = str(message.get("Name") or ""), str(message.get("Version") or "")
    if canonicalize_name(name) != canonicalize_name(entry["name"]) or version != entry["version"]:
        raise VersionMismatch(
            f"{entry['filename']}: the wheel's metadata says {name[:100]} {version[:64]}, the "
            f"signed entry {entry['name']} {entry['version']}",
            signed=entry["version"],
            wheel=version[:64],
        )


def _entry_shape(entry: Mapping[str, Any], index: str) -> None:
    problems = []
    if not isinstance(entry.get("name"), str) or not isinstance(entry.get("version"), str):
        problems.append("name and version must be text")
    if not _FILENAME.match(str(entry.get("filename", ""))):
        problems.append("filename must be a wheel file name")
    if not _SHA256.match(str(entry.get("sha256", ""))):
        problems.append("sha256 must be 64 lower-case hex digits")
    size = entry.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        problems.append("size must be a positive integer")
    if not isinstance(entry.get("url"), str):
        problems.append("url must be text")
    files = entry.get("files")
    if not isinstance(files, dict) or not all(
        isinstance(v, str) and _SHA256.match(v) for v in files.values()
    ):
        problems.append("files must map paths to sha256 digests")
    if not isinstance(entry.get("dependencies", []), list):
        problems.append("dependencies must be a list")
    if problems:
        raise IndexMalformed(
            f"index {index!r}: entry {entry.get('filename', '?')!r}: {'; '.join(problems)}",
            index=index,
        )


def check_entry(
    document: IndexDocument,
    entry: Mapping[str, Any],
    root: Any,
    *,
    verified_only: bool,
    rules: Iterable[trust.BlockRule],
    host_sdk: str = registry.HOST_SDK_VERSION,
) -> trust.Certificate:
    """Everything that can be proven before reading a byte of the artifact (steps 1-5)."""
    _entry_shape(entry, document.name)
    check_startup_files(entry)
    name, version = canonicalize_name(entry["name"]), entry["version"]
    publisher = str(entry.get("publisher", ""))
    certificate = trust.publisher_certificate(document.publishers, publisher, root)
    trust.check_not_revoked(certificate, document.revoked)
    owner = document.owner(name)
    if owner is not None and owner != publisher:
        raise NameNotOwned(
            f"index {document.name!r}: {name} belongs to publisher {owner!r}; the entry of "
            f"{name} {version} is signed by {publisher[:100]!r}",
            index=document.name,
            plugin=name,
            owner=owner,
        )
    if entry.get("key_id") != certificate.key_id or not formats.verify(
        certificate.public_key, formats.artifact_message(entry), entry.get("signature")
    ):
        raise PublisherSignatureInvalid(
            f"{entry['filename']}: the signature is not {publisher!r}'s over this entry "
            "(entry or signature altered)",
            publisher=publisher,
        )
    try:
        signed_at = formats.parse_time(entry.get("signed_at"))
    except ValueError:
        raise IndexMalformed(f"{entry['filename']}: signed_at is not a UTC time") from None
    if signed_at > dt.datetime.now(dt.UTC) + CLOCK_SKEW:
        raise PublisherSignatureInvalid(
            f"{entry['filename']}: signed_at {formats.format_time(signed_at)} is in the future",
            publisher=publisher,
        )
    try:
        indexed_at = document.indexed_at(entry)
    except ValueError:
        raise IndexMalformed(f"{entry['filename']}: indexed_at is not a UTC time") from None
    if indexed_at is None:
        raise IndexMalformed(
            f"index {document.name!r} does not timestamp {entry['filename']} (indexed_at); "
            "the publisher's own signed_at proves nothing about when it signed",
            index=document.name,
        )
    if signed_at > indexed_at + CLOCK_SKEW:
        raise PublisherSignatureInvalid(
            f"{entry['filename']}: signed at {formats.format_time(signed_at)}, after the index "
            f"filed it ({formats.format_time(indexed_at)})",
            publisher=publisher,
        )
    trust.check_signing_time(certificate, indexed_at)
    trust.check_policy(certificate, verified_only=verified_only)
    trust.check_blocklist(rules, name, version)
    problem = registry.sdk_range_problem(str(entry.get("sdk_range", "")), host_sdk)
    if problem:
        raise SdkRangeUnsupported(
            f"{name} {version} {problem}", sdk_range=entry.get("sdk_range"), host_sdk=host_sdk
        )
    try:
        api = ApiVersion.parse(str(entry.get("api_version", "")))
    except ValueError as exc:
        raise ApiVersionUnsupported(f"{name} {version}: {exc}") from None
    compatible, reason = is_compatible(api, registry.HOST_API_VERSION)
    if not compatible:
        raise ApiVersionUnsupported(f"{name} {version}: {reason}")
    return certificate


def _first_modified(data: bytes, files: Mapping[str, str]) -> str | None:
    """A file of the (unverified) wheel whose content differs from the signed manifest.

    Only on the failure path, in memory, bounded: diagnosis for the error message."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        seen, total = set(), 0
        for info in archive.infolist():
            path = wheel_install_path(info.filename)
            if path is None:
                continue
            total += info.file_size
            if total > MAX_UNPACKED_BYTES:
                return None
            seen.add(path)
            digest = hashlib.sha256()
            with archive.open(info) as member:  # never more than the declared file_size
                for block in iter(lambda: member.read(1 << 16), b""):
                    digest.update(block)
            if files.get(path) != digest.hexdigest():
                return path
        missing = sorted(set(files) - seen)
        return missing[0] if missing else None
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError, EOFError):
        return None


def check_bytes(entry: Mapping[str, Any], data: bytes) -> None:
    """Step 6: exactly the signed size, the signed SHA-256 and the signed file manifest."""
    size, expected = int(entry["size"]), str(entry["sha256"])
    name = entry["filename"]
    if len(data) != size:
        shown = f"more than {size}" if len(data) > size else str(len(data))
        raise ArtifactSizeMismatch(
            f"{name}: {shown} bytes, the index signed {size}", expected=size, actual=len(data)
        )
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        modified = _first_modified(data, entry.get("files") or {})
        if modified is not None:
            raise ArtifactTampered(
                f"{name}: the file {modified} differs from the publisher's signed file "
                f"manifest (sha256 {actual}, signed {expected})",
                file=modified,
                expected=expected,
                actual=actual,
            )
        raise ArtifactHashMismatch(
            f"{name}: sha256 {actual} does not match the signed {expected}",
            expected=expected,
            actual=actual,
        )
    modified = _first_modified(data, entry.get("files") or {})
    if modified is not None:
        raise ArtifactTampered(
            f"{name}: the file {modified} differs from the publisher's signed file manifest",
            file=modified,
        )


def verify_artifact(
    document: IndexDocument,
    entry: Mapping[str, Any],
    root: Any,
    *,
    verified_only: bool,
    rules: Iterable[trust.BlockRule] = (),
    data: bytes | None = None,
) -> VerifiedArtifact:
    """The whole chain for one entry of a verified index. ``data`` (tests) skips the read."""
    rules = list(rules) + document.block_rules()
    certificate = check_entry(document, entry, root, verified_only=verified_only, rules=rules)
    if data is None:
        data = read_artifact(document, str(entry["url"]), int(entry["size"]))
    check_bytes(entry, data)
    check_metadata_version(entry, data)
    return VerifiedArtifact(
        index=document.name,
        index_version=document.version,
        name=canonicalize_name(entry["name"]),
        version=str(entry["version"]),
        filename=str(entry["filename"]),
        sha256=str(entry["sha256"]),
        size=int(entry["size"]),
        data=data,
        entry=dict(entry),
        certificate=certificate,
        certificate_document=dict(document.publishers[certificate.subject]),
    )
