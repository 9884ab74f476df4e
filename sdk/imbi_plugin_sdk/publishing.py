"""From a built wheel to a signed index entry, and from entries to a signed index folder.

Owns the author's side of the plugin index:

- ``read_wheel(path)``: name, version, requirements and the file manifest (every file the
  wheel installs into site-packages with its SHA-256; ``RECORD`` and scripts excluded);
- ``manifest_facts(path)``: ``api_version`` and permissions of the wheel's entry points, read
  by importing them from the wheel in a clean interpreter;
- ``sign_wheel(...)``: the index entry for one wheel, signed by the publisher's key;
- ``publish(...)``: add entries (and publisher certificates, blocklist lines, revocations,
  root-signed name transfers) to a local index folder (``index.json`` + ``artifacts/``), bump
  ``version``, move ``expires`` forward and re-sign with the index key. Writes are atomic.

Names belong to publishers: the index's ``owners`` maps each distribution name to the
publisher that owns it (the first to publish it, or who a root-signed transfer names);
``publish`` refuses another publisher's entry for an owned name (``name_not_owned``).
Signing times are the index's: ``publish`` records when it first filed each artifact
(``indexed_at`` of its version, under the index's signature), and hosts check the
publisher's certificate at that time, never at the publisher's own ``signed_at``.

The entry's ``url`` is a location, not an identity: it is outside the publisher's signature
(the SHA-256 and size bind the bytes), so an index operator may mirror the file elsewhere.
Index layout and field meanings: docs/plugin-authors.md ("Signing and publishing").
"""

from __future__ import annotations

import datetime as dt
import email.parser
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .signing import (
    INDEX_FORMAT,
    PrivateKey,
    artifact_message,
    certificate_message,
    format_time,
    index_message,
    key_id,
    utcnow,
    verify,
)
from .versions import canonical_name, sdk_range

__all__ = [
    "INDEX_FILE",
    "PublishError",
    "WheelFacts",
    "file_manifest",
    "manifest_facts",
    "publish",
    "read_wheel",
    "sign_wheel",
    "wheel_install_path",
]

INDEX_FILE = "index.json"
ARTIFACTS_DIR = "artifacts"
MAX_WHEEL_BYTES = 256 * 1024 * 1024


class PublishError(ValueError):
    """A wheel, entry or index folder that cannot be signed or published (one-line reason)."""


class WheelFacts:
    """What ``read_wheel`` learns from a wheel without installing it."""

    def __init__(self, name: str, version: str, requires: list[str], files: dict[str, str]) -> None:
        self.name = name
        self.version = version
        self.requires = requires
        self.files = files


def wheel_install_path(member: str) -> str | None:
    """Where a wheel member lands relative to site-packages (``None``: not checked at rest).

    ``*.data/purelib|platlib/x`` lands at ``x``; other ``.data`` members (scripts, headers,
    data) are rewritten or placed outside site-packages, and ``RECORD`` is rewritten by the
    installer, so neither is part of the file manifest.
    """
    if member.endswith("/"):
        return None
    top, _, rest = member.partition("/")
    if top.endswith(".data"):
        scheme, _, inner = rest.partition("/")
        return inner if scheme in ("purelib", "platlib") and inner else None
    if top.endswith(".dist-info") and rest in ("RECORD", "RECORD.jws", "RECORD.p7s"):
        return None
    return member


def file_manifest(archive: zipfile.ZipFile) -> dict[str, str]:
    """``{installed path: sha256 hex}`` for every member checked at rest."""
    files: dict[str, str] = {}
    for info in archive.infolist():
        path = wheel_install_path(info.filename)
        if path is None:
            continue
        if path.startswith("/") or ".." in path.split("/"):
            raise PublishError(f"wheel member {info.filename!r} escapes site-packages")
        digest = hashlib.sha256()
        with archive.open(info) as handle:
            for block in iter(lambda: handle.read(1 << 16), b""):
                digest.update(block)
        files[path] = digest.hexdigest()
    return dict(sorted(files.items()))


def read_wheel(path: Path) -> WheelFacts:
    if not path.is_file():
        raise PublishError(f"{path} is not a file")
    if path.suffix != ".whl":
        raise PublishError(f"{path.name} is not a wheel (.whl); build one with `python -m build`")
    try:
        with zipfile.ZipFile(path) as archive:
            metadata = [
                n
                for n in archive.namelist()
                if n.count("/") == 1 and n.endswith(".dist-info/METADATA")
            ]
            if len(metadata) != 1:
                raise PublishError(f"{path.name} has no single .dist-info/METADATA")
            message = email.parser.BytesParser().parsebytes(archive.read(metadata[0]))
            files = file_manifest(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PublishError(f"{path.name} is not a readable wheel: {exc}") from None
    name, version = message.get("Name"), message.get("Version")
    if not name or not version:
        raise PublishError(f"{path.name}: METADATA lacks Name or Version")
    return WheelFacts(
        canonical_name(str(name)), str(version), list(message.get_all("Requires-Dist") or []), files
    )


_PROBE = r"""
import json, sys
from importlib import metadata
sys.path.insert(0, sys.argv[1])
found = []
for dist in metadata.distributions(path=[sys.argv[1]]):
    for ep in dist.entry_points:
        if ep.group != "imbi.plugins":
            continue
        manifest = ep.load().manifest
        found.append({"entry_point": ep.name, "api_version": manifest.api_version,
                      "permissions": manifest.permissions.to_dict()})
print(json.dumps(found))
"""


def manifest_facts(path: Path, python: str = sys.executable) -> list[dict[str, Any]]:
    """Each ``imbi.plugins`` entry point's ``api_version`` and permissions, read from the
    wheel in a clean interpreter (the plugin's dependencies must be importable there)."""
    try:
        result = subprocess.run(
            [python, "-I", "-c", _PROBE, str(path.resolve())],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PublishError(f"cannot import the wheel's entry points: {exc}") from None
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["failed"])[-1]
        raise PublishError(
            f"cannot import the wheel's entry points ({last}); "
            "install its dependencies or pass --api-version and --permissions"
        )
    facts: list[dict[str, Any]] = json.loads(result.stdout)
    if not facts:
        raise PublishError(f"{path.name} declares no imbi.plugins entry point")
    return facts


def _merged_permissions(facts: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    hosts = sorted({h for fact in facts for h in fact["permissions"].get("network_hosts", [])})
    storage = any(bool(fact["permissions"].get("storage")) for fact in facts)
    merged: dict[str, Any] = {"network_hosts": hosts, "storage": storage}
    if any(fact["permissions"].get("project_metadata") is True for fact in facts):
        merged["project_metadata"] = True  # contract 1.2; older entries keep their shape
    settings = sorted(
        {p for fact in facts for p in fact["permissions"].get("operator_host_settings", [])}
    )
    if settings:
        merged["operator_host_settings"] = settings
    paths = sorted(
        {p for fact in facts for p in fact["permissions"].get("operator_path_settings", [])}
    )
    if paths:
        merged["operator_path_settings"] = paths  # contract 1.2
    return merged


def sign_wheel(
    path: Path,
    key: PrivateKey,
    *,
    publisher: str,
    url: str | None = None,
    api_version: str | None = None,
    permissions: Mapping[str, Any] | None = None,
    dependencies: Iterable[str] = (),
    signed_at: dt.datetime | None = None,
    startup_files: Iterable[str] = (),
) -> dict[str, Any]:
    """The signed index entry for ``path``. ``startup_files``: the ``.pth`` files and
    top-level ``sitecustomize``/``usercustomize`` modules the wheel carries on purpose
    (hosts refuse any it does not declare: they run when an interpreter starts).
    ``api_version``/``permissions`` default to what the wheel's manifests declare;
    ``dependencies`` are pinned requirement lines with ``--hash=sha256:...`` the installer
    must use (the artifact itself installs ``--no-deps``).
    """
    wheel = read_wheel(path)
    if path.stat().st_size > MAX_WHEEL_BYTES:
        raise PublishError(f"{path.name} is larger than {MAX_WHEEL_BYTES} bytes")
    declared = sdk_range(wheel.requires)
    if declared is None:
        raise PublishError(f"{path.name} does not depend on imbi-plugin-sdk")
    if api_version is None or permissions is None:
        facts = manifest_facts(path)
        api_versions = sorted({str(f["api_version"]) for f in facts})
        if api_version is None:
            api_version = api_versions[-1]
        if permissions is None:
            permissions = _merged_permissions(facts)
    pinned = [line.strip() for line in dependencies if line.strip()]
    for line in pinned:
        if "--hash=sha256:" not in line or "==" not in line:
            raise PublishError(f"dependency {line!r} must be pinned: name==version --hash=sha256:…")
    data = path.read_bytes()
    entry: dict[str, Any] = {
        "name": wheel.name,
        "version": wheel.version,
        "filename": path.name,
        "url": url or f"{ARTIFACTS_DIR}/{path.name}",
        "sha256": hashlib.sha256(data).hexdigest(),
        "size": len(data),
        "api_version": api_version,
        "sdk_range": declared,
        "permissions": dict(permissions),
        "publisher": publisher,
        "key_id": key.key_id,
        "dependencies": pinned,
        "files": wheel.files,
        "signed_at": format_time(signed_at or utcnow()),
    }
    startup = sorted({str(p) for p in startup_files})
    if startup:
        entry["startup_files"] = startup
    entry["signature"] = key.sign(artifact_message(entry))
    return entry


# --- the index folder ---------------------------------------------------------------------


def _load_index(folder: Path, name: str | None) -> dict[str, Any]:
    path = folder / INDEX_FILE
    if not path.exists():
        return {
            "format": INDEX_FORMAT,
            "name": name or folder.resolve().name,
            "version": 0,
            "expires": "",
            "published_at": "",
            "publishers": {},
            "revoked": [],
            "blocklist": [],
            "plugins": {},
            "owners": {},
            "transfers": {},
        }
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        signed = document["signed"]
    except (OSError, ValueError, KeyError, TypeError):
        raise PublishError(f"{path} is not an index made by imbi-plugin publish") from None
    if not isinstance(signed, dict) or signed.get("format") != INDEX_FORMAT:
        raise PublishError(f"{path}: unsupported index format {signed.get('format')!r}")
    if name and signed.get("name") != name:
        raise PublishError(f"{path} is the index {signed.get('name')!r}, not {name!r}")
    return signed


def _check_certificate(certificate: Mapping[str, Any]) -> str:
    body = certificate.get("certificate")
    if not isinstance(body, dict) or not isinstance(body.get("subject"), str):
        raise PublishError("a certificate must be made by imbi-plugin certify")
    return str(body["subject"])


def _first_owner(signed: Mapping[str, Any], name: str) -> str | None:
    """The publisher of the oldest filed artifact of ``name`` (an index from before owners)."""
    plugin = (signed.get("plugins") or {}).get(name) or {}
    for item in (plugin.get("versions") or {}).values():
        for artifact in item.get("artifacts") or []:
            return str(artifact.get("publisher", ""))
    return None


def _add_entry(signed: dict[str, Any], entry: Mapping[str, Any], moment: dt.datetime) -> None:
    owners = signed.setdefault("owners", {})
    name = str(entry.get("name", ""))
    owner = owners.get(name) or _first_owner(signed, name)
    if owner is not None and owner != entry.get("publisher"):
        raise PublishError(
            f"name_not_owned: {name} belongs to publisher {owner!r} in this index, not "
            f"{entry.get('publisher')!r} (the index's operator moves a name with a root-signed "
            "transfer: imbi-plugin transfer, then publish --transfer)"
        )
    owners[name] = str(entry.get("publisher", ""))
    publisher = signed["publishers"].get(entry.get("publisher"))
    if publisher is None:
        raise PublishError(
            f"publisher {entry.get('publisher')!r} has no certificate in this index; "
            "pass --certificate"
        )
    public_key = publisher["certificate"]["public_key"]
    if key_id(public_key) != entry.get("key_id") or not verify(
        public_key, artifact_message(entry), entry.get("signature")
    ):
        raise PublishError(
            f"{entry.get('filename')}: the publisher signature does not verify with "
            f"{entry.get('publisher')!r}'s certificate"
        )
    plugin = signed["plugins"].setdefault(entry["name"], {"versions": {}})
    version = plugin["versions"].setdefault(entry["version"], {"artifacts": []})
    same = [a for a in version["artifacts"] if a == dict(entry)]
    version["artifacts"] = [
        a for a in version["artifacts"] if a.get("filename") != entry["filename"]
    ] + [dict(entry)]
    stamps = version.setdefault("indexed_at", {})
    if not same or entry["filename"] not in stamps:
        # The index's own time for this artifact (hosts check the certificate at it).
        stamps[entry["filename"]] = format_time(moment)


def _apply_transfer(signed: dict[str, Any], record: Mapping[str, Any]) -> None:
    """File a root-signed transfer (``signing.issue_transfer``); hosts verify the signature
    against the index's root keys. Here: its shape, this index, and the current owner."""
    body = record.get("transfer")
    if not isinstance(body, dict) or not isinstance(record.get("signature"), str):
        raise PublishError("a transfer must be made by imbi-plugin transfer")
    name, previous = str(body.get("name", "")), str(body.get("from", ""))
    if body.get("index") != signed.get("name"):
        raise PublishError(f"the transfer is for index {body.get('index')!r}, not this one")
    owners = signed.setdefault("owners", {})
    current = owners.get(name) or _first_owner(signed, name) or ""
    if current != previous:
        raise PublishError(
            f"the transfer moves {name} from {previous!r}, but its owner is {current!r}"
        )
    owners[name] = str(body.get("to", ""))
    signed.setdefault("transfers", {})[name] = dict(record)


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def publish(
    folder: Path,
    index_key: PrivateKey,
    *,
    entries: Iterable[Mapping[str, Any]] = (),
    wheels: Iterable[Path] = (),
    certificates: Iterable[Mapping[str, Any]] = (),
    blocklist: Iterable[Mapping[str, str]] = (),
    revocations: Iterable[Mapping[str, str]] = (),
    transfers: Iterable[Mapping[str, Any]] = (),
    expires_in: dt.timedelta = dt.timedelta(days=30),
    name: str | None = None,
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Add to the index in ``folder`` and re-sign it; returns the written document.

    Wheels are copied to ``artifacts/`` after their SHA-256 is matched to an entry. Each
    publish increases ``version`` by one and sets ``expires`` to ``now + expires_in``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    signed = _load_index(folder, name)
    for certificate in certificates:
        subject = _check_certificate(certificate)
        signed["publishers"][subject] = dict(certificate)
    entries = [dict(e) for e in entries]
    digests = {e.get("sha256"): e for e in entries}
    copies: list[tuple[Path, str]] = []
    for wheel in wheels:
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        entry = digests.get(digest)
        if entry is None:
            raise PublishError(f"{wheel.name} matches no entry being published (SHA-256 differs)")
        url = str(entry.get("url", ""))
        if url.startswith(("http://", "https://")) or ".." in url.split("/"):
            raise PublishError(f"{wheel.name}: the entry's url {url!r} is not inside the folder")
        copies.append((wheel, url))
    moment = now or utcnow()
    for transfer in transfers:
        _apply_transfer(signed, transfer)
    for entry in entries:
        _add_entry(signed, entry, moment)
    for line in blocklist:
        signed["blocklist"] = [
            b for b in signed["blocklist"] if b.get("plugin") != line["plugin"]
        ] + [dict(line)]
    for revocation in revocations:
        signed["revoked"] = [
            r for r in signed["revoked"] if r.get("serial") != revocation["serial"]
        ] + [dict(revocation)]
    signed["version"] = int(signed["version"]) + 1
    signed["published_at"] = format_time(moment)
    signed["expires"] = format_time(moment + expires_in)
    document = {
        "signed": signed,
        "signatures": [
            {"key_id": index_key.key_id, "signature": index_key.sign(index_message(signed))}
        ],
    }
    for wheel, url in copies:
        target = folder / url
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(wheel, target)
    _write_atomic(folder / INDEX_FILE, json.dumps(document, indent=2, sort_keys=True) + "\n")
    return document


def certificate_subject_ok(certificate: Mapping[str, Any], root_public_key: str) -> bool:
    """Whether ``certificate`` is signed by ``root_public_key`` (author-side sanity check)."""
    body = certificate.get("certificate")
    return isinstance(body, dict) and verify(
        root_public_key, certificate_message(body), certificate.get("signature")
    )
