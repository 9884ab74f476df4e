"""The signed plugin index: fetch, verify (signature, freshness, rollback), remember.

Owns ``IndexDocument`` (a verified index: plugins -> versions -> artifacts, publishers,
revocations, blocklist), ``parse_index`` (bytes -> verified document, pure), ``fetch`` (a local
folder or an http(s) URL, size-capped), ``refresh`` (fetch + verify + persist the version seen
on the ``PluginIndex`` row, under a row lock so two nodes cannot race the rollback check) and
``read_artifact`` (the artifact's bytes, never more than its signed size + 1).

Checks, in order (each its own error in ``supply_errors``): JSON shape and format
(``index_malformed``); a signature by one of the index's pinned keys (``index_untrusted_key``
when no pinned key signed, ``index_signature_invalid`` when a pinned key's signature does not
verify); ``expires`` in the future (``index_expired``: a frozen mirror); ``version`` not below
the last version seen, and the same version only with the same content (``index_rollback``).
``refresh`` then checks that no name changed owner since the last document seen without a
transfer signed by a root key (``name_not_owned``, ``check_owner_changes``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import urllib.parse
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from imbi_plugin_sdk import signing as formats
from packaging.utils import canonicalize_name

from plugins_core.supply import fetching
from plugins_core.supply.errors import (
    ArtifactSizeMismatch,
    ArtifactUnreachable,
    FetchRefused,
    IndexExpired,
    IndexMalformed,
    IndexNameMismatch,
    IndexRollback,
    IndexSignatureInvalid,
    IndexUnreachable,
    IndexUntrustedKey,
    NameNotOwned,
    SupplyChainError,
)
from plugins_core.supply.signing import TrustRoot, signed_by, trust_root
from plugins_core.supply.trust import BlockRule, block_rules

__all__ = [
    "INDEX_FILE",
    "MAX_INDEX_BYTES",
    "IndexDocument",
    "fetch",
    "parse_index",
    "read_artifact",
    "refresh",
]

INDEX_FILE = "index.json"
MAX_INDEX_BYTES = 16 * 1024 * 1024
MAX_ARTIFACT_BYTES = 50 * 1024 * 1024  # distributions.MAX_WHEEL_BYTES: refused before download


@dataclass(frozen=True, slots=True)
class IndexDocument:
    """A verified index. ``source`` is where it came from (artifact URLs are relative to it)."""

    name: str
    source: str
    signed: Mapping[str, Any]
    version: int
    expires: dt.datetime
    key_id: str
    digest: str

    @property
    def publishers(self) -> Mapping[str, Any]:
        return self.signed.get("publishers") or {}

    @property
    def revoked(self) -> list[Mapping[str, Any]]:
        return list(self.signed.get("revoked") or [])

    def owner(self, plugin: str) -> str | None:
        """Who owns the distribution name ``plugin`` in this index (see ``owner_of``)."""
        return owner_of(self.signed, plugin)

    def indexed_at(self, entry: Mapping[str, Any]) -> dt.datetime | None:
        """The index's own signed time for ``entry`` (when it filed it), or None."""
        name, version = canonicalize_name(str(entry.get("name", ""))), entry.get("version")
        for plugin, item in self.plugins().items():
            if canonicalize_name(plugin) != name:
                continue
            stamps = ((item.get("versions") or {}).get(version) or {}).get("indexed_at") or {}
            text = stamps.get(entry.get("filename")) if isinstance(stamps, dict) else None
            return None if text is None else formats.parse_time(text)
        return None

    def block_rules(self) -> list[BlockRule]:
        return block_rules(self.signed.get("blocklist") or [], f"index {self.name!r}")

    def plugins(self) -> Mapping[str, Any]:
        return self.signed.get("plugins") or {}

    def versions(self, plugin: str) -> list[str]:
        return list(((self.plugins().get(plugin) or {}).get("versions") or {}).keys())

    def artifacts(self, plugin: str, version: str) -> list[Mapping[str, Any]]:
        versions = (self.plugins().get(plugin) or {}).get("versions") or {}
        return list((versions.get(version) or {}).get("artifacts") or [])

    def entries(self) -> Iterator[Mapping[str, Any]]:
        for plugin in self.plugins():
            for version in self.versions(plugin):
                yield from self.artifacts(plugin, version)


def _shape(signed: Any) -> None:
    if not isinstance(signed, dict):
        raise IndexMalformed("the index has no 'signed' object")
    if signed.get("format") != formats.INDEX_FORMAT:
        raise IndexMalformed(f"unsupported index format {signed.get('format')!r}")
    if not isinstance(signed.get("version"), int) or signed["version"] < 1:
        raise IndexMalformed("the index 'version' must be a positive integer")
    for member, kind in (
        ("plugins", dict),
        ("publishers", dict),
        ("revoked", list),
        ("blocklist", list),
        ("owners", dict),
        ("transfers", dict),
    ):
        if not isinstance(signed.get(member, kind()), kind):
            raise IndexMalformed(f"the index '{member}' must be a JSON {kind.__name__}")
    for name, plugin in signed.get("plugins", {}).items():
        versions = plugin.get("versions") if isinstance(plugin, dict) else None
        if not isinstance(versions, dict):
            raise IndexMalformed(f"plugin {name!r} has no 'versions' object")
        for version, item in versions.items():
            if not isinstance(item, dict) or not isinstance(item.get("artifacts"), list):
                raise IndexMalformed(f"{name} {version} has no 'artifacts' list")
            if not isinstance(item.get("indexed_at", {}), dict):
                raise IndexMalformed(f"{name} {version}: 'indexed_at' must be a JSON dict")
    if not all(isinstance(v, str) for v in signed.get("owners", {}).values()):
        raise IndexMalformed("the index 'owners' must map names to publishers")


def owner_of(signed: Mapping[str, Any], plugin: str) -> str | None:
    """The publisher owning ``plugin`` in a signed document: its ``owners`` line, else
    (an index from before owners) the publisher of the first artifact filed for it."""
    name = canonicalize_name(plugin)
    owners = signed.get("owners") or {}
    for key, owner in owners.items():
        if canonicalize_name(key) == name:
            return str(owner)
    for key, item in (signed.get("plugins") or {}).items():
        if canonicalize_name(key) != name:
            continue
        for version in (item.get("versions") or {}).values():
            for artifact in version.get("artifacts") or []:
                return str(artifact.get("publisher", ""))
    return None


def _transfer_proves(
    signed: Mapping[str, Any], index: str, name: str, previous: str, owner: str, root: TrustRoot
) -> bool:
    """Whether the document carries a root-signed transfer of ``name`` from ``previous``
    to ``owner`` for this index."""
    for key, record in (signed.get("transfers") or {}).items():
        if canonicalize_name(key) != name or not isinstance(record, dict):
            continue
        body = record.get("transfer")
        if not isinstance(body, dict):
            return False
        if (body.get("index"), body.get("from"), body.get("to")) != (index, previous, owner):
            return False
        if canonicalize_name(str(body.get("name", ""))) != name:
            return False
        try:
            message = formats.transfer_message(body)
        except (ValueError, RecursionError):
            return False
        _, ok = signed_by(
            root.root_key_ids(),
            message,
            [{"key_id": body.get("issuer"), "signature": record.get("signature")}],
        )
        return ok
    return False


def check_owner_changes(
    signed: Mapping[str, Any],
    previous: Mapping[str, Any] | None,
    *,
    index: str,
    root: TrustRoot,
) -> None:
    """Every name the last document seen gave an owner keeps it, unless the new document
    carries a transfer of it signed by one of the index's root keys (an index-key holder
    alone cannot hand a name to another publisher)."""
    if not previous:
        return
    for plugin in previous.get("plugins") or {}:
        name = canonicalize_name(plugin)
        before, now = owner_of(previous, name), owner_of(signed, name)
        if before is None or now is None or before == now:
            continue
        if not _transfer_proves(signed, index, name, before, now, root):
            raise NameNotOwned(
                f"index {index!r} moves {name} from publisher {before!r} to {now!r} without "
                "a transfer signed by its root key",
                index=index,
                plugin=name,
                owner=before,
            )


def parse_index(
    raw: bytes,
    *,
    name: str,
    source: str,
    root: TrustRoot,
    last_version: int = 0,
    last_digest: str = "",
    now: dt.datetime | None = None,
) -> IndexDocument:
    """Verify ``raw`` against ``root`` and the last version seen; the document, or a refusal."""
    if len(raw) > MAX_INDEX_BYTES:
        raise IndexMalformed(f"the index is larger than {MAX_INDEX_BYTES} bytes", index=name)
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise IndexMalformed(f"index {name!r} is not JSON", index=name) from None
    if not isinstance(document, dict) or not isinstance(document.get("signatures"), list):
        raise IndexMalformed(f"index {name!r} has no 'signatures' list", index=name)
    signed = document.get("signed")
    try:
        message = formats.index_message(signed) if isinstance(signed, dict) else b""
    except (ValueError, RecursionError):
        raise IndexMalformed(f"index {name!r} holds values JSON cannot sign", index=name) from None
    _shape(signed)
    assert isinstance(signed, dict)  # _shape refused anything else
    signatures = [s for s in document["signatures"] if isinstance(s, dict)]
    key, ok = signed_by(root.index_key_ids(), message, signatures)
    if key is None:
        named = ", ".join(str(s.get("key_id", "?"))[:16] for s in signatures) or "none"
        raise IndexUntrustedKey(
            f"index {name!r} is not signed by a key this platform trusts for it "
            f"(signed by: {named})",
            index=name,
        )
    if not ok:
        raise IndexSignatureInvalid(
            f"index {name!r}: the signature of key {key[:16]} does not verify; the index was "
            "altered after signing",
            index=name,
        )
    try:
        expires = formats.parse_time(signed.get("expires"))
    except ValueError as exc:
        raise IndexMalformed(f"index {name!r}: expires: {exc}", index=name) from None
    if signed.get("name") != name:
        raise IndexNameMismatch(
            f"the index fetched for {name!r} names itself {str(signed.get('name'))[:100]!r}; "
            "a document of another index (staging, a mirror's other index) is refused",
            index=name,
        )
    moment = now or dt.datetime.now(dt.UTC)
    version = int(signed["version"])
    if expires <= moment:
        raise IndexExpired(
            f"index {name!r} version {version} expired at {formats.format_time(expires)}; "
            "the mirror may be frozen",
            index=name,
            version=version,
        )
    digest = hashlib.sha256(message).hexdigest()
    if version < last_version:
        raise IndexRollback(
            f"index {name!r} offers version {version}, older than version {last_version} "
            "already seen (rollback)",
            index=name,
            version=version,
            last_version=last_version,
        )
    if version == last_version and last_digest and digest != last_digest:
        raise IndexRollback(
            f"index {name!r} version {version} differs from the version {version} already "
            "seen; a new index must have a higher version",
            index=name,
            version=version,
            last_version=last_version,
        )
    return IndexDocument(name, source, signed, version, expires, key, digest)


# --- transport ----------------------------------------------------------------------------


def _is_url(source: str) -> bool:
    return urllib.parse.urlsplit(source).scheme in ("http", "https")


def _read_url(url: str, limit: int, error: type[SupplyChainError], what: str, **kw: Any) -> bytes:
    return fetching.get(
        url, limit=limit, error=error, what=what, limits=fetching.Limits.from_settings(), **kw
    )


def _read_file(path: Path, limit: int, error: type[Exception], what: str) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(limit + 1)
    except OSError as exc:
        raise error(f"{what} {path}: {exc.strerror or exc}") from None


def fetch(source: str) -> bytes:
    """The index document's bytes from a folder (``index.json`` inside) or a URL."""
    if _is_url(source):
        url = source if source.endswith(".json") else source.rstrip("/") + "/" + INDEX_FILE
        return _read_url(url, MAX_INDEX_BYTES, IndexUnreachable, "index")
    folder = Path(source)
    path = folder if folder.suffix == ".json" else folder / INDEX_FILE
    return _read_file(path, MAX_INDEX_BYTES, IndexUnreachable, "index")


def _base(source: str) -> str:
    """The location relative artifact URLs are resolved against."""
    if _is_url(source):
        if source.endswith(".json"):
            return source.rsplit("/", 1)[0] + "/"
        return source if source.endswith("/") else source + "/"
    folder = Path(source)
    return str(folder.parent if folder.suffix == ".json" else folder)


def artifact_hosts() -> set[str]:
    """Hosts besides the index's own that artifact URLs may name (the operator's list)."""
    from django.conf import settings

    hosts = getattr(settings, "IMBI_PLUGIN_ARTIFACT_HOSTS", []) or []
    return {str(h).strip().lower() for h in hosts if str(h).strip()}


def _check_artifact_host(document: IndexDocument, url: str) -> None:
    """An absolute artifact URL is on the index's own origin or a host the operator listed."""
    scheme, host, port = fetching.origin(url)
    if _is_url(document.source) and (scheme, host, port) == fetching.origin(document.source):
        return
    listed = artifact_hosts()
    if host in listed or f"{host}:{port}" in listed:
        return
    raise FetchRefused(
        f"artifact url {url[:200]} is not on the index's host and {host or '(none)'} is not "
        "in IMBI_PLUGIN_ARTIFACT_HOSTS",
        host=host,
    )


def read_artifact(document: IndexDocument, url: str, size: int) -> bytes:
    """An artifact's bytes, reading at most ``size + 1`` (a longer file is a size mismatch).

    A relative ``url`` is resolved against the index's location and may not leave it; an
    absolute one must be on the index's host or one the operator listed. A signed size
    above ``MAX_ARTIFACT_BYTES`` is refused before anything is fetched."""
    if size > MAX_ARTIFACT_BYTES:
        raise ArtifactSizeMismatch(
            f"artifact {url[:200]}: the index signed {size} bytes, more than the "
            f"{MAX_ARTIFACT_BYTES} a wheel may have",
            expected=size,
        )

    def too_large(announced: int) -> SupplyChainError:
        return ArtifactSizeMismatch(
            f"artifact {url[:200]}: more than {size} bytes ({announced} announced), the index "
            f"signed {size}",
            expected=size,
            actual=announced,
        )

    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("http", "https"):
        _check_artifact_host(document, url)
        return _read_url(url, size, ArtifactUnreachable, "artifact", too_large=too_large)
    if parts.scheme or url.startswith("/") or ".." in url.split("/") or "\\" in url:
        raise ArtifactUnreachable(f"artifact url {url!r} must be http(s) or inside the index")
    base = _base(document.source)
    if _is_url(base):
        return _read_url(
            urllib.parse.urljoin(base, url),
            size,
            ArtifactUnreachable,
            "artifact",
            too_large=too_large,
        )
    return _read_file(Path(base) / url, size, ArtifactUnreachable, "artifact")


# --- persistence --------------------------------------------------------------------------


def _blocklist_changed() -> None:
    """Every process re-checks its runtime-installed distributions against the new list."""
    from plugins_core.distributions.desired import new_generation
    from plugins_core.models import InstalledDistribution

    if InstalledDistribution.objects.exists():
        new_generation()


def refresh(index: Any, *, now: dt.datetime | None = None) -> IndexDocument:
    """Fetch and verify ``index`` (a ``PluginIndex`` row), then remember what was seen.

    The rollback check and the update run under ``select_for_update`` in one transaction.
    A refusal is recorded on the row (``last_error_code``/``last_error``) and re-raised.
    """
    from django.db import transaction
    from django.utils import timezone

    from plugins_core.models import PluginIndex

    try:
        raw = fetch(index.url)
    except SupplyChainError as exc:
        PluginIndex.objects.filter(pk=index.pk).update(
            last_error_code=exc.code, last_error=exc.detail[:1000], checked_at=timezone.now()
        )
        raise
    with transaction.atomic():
        row = PluginIndex.objects.select_for_update().get(pk=index.pk)
        try:
            document = parse_index(
                raw,
                name=row.name,
                source=row.url,
                root=trust_root(row),
                last_version=row.last_version,
                last_digest=row.last_digest,
                now=now,
            )
            check_owner_changes(
                document.signed,
                row.document if isinstance(row.document, dict) else None,
                index=row.name,
                root=trust_root(row),
            )
        except SupplyChainError as exc:
            error: SupplyChainError | None = exc
        else:
            error = None
            previous = row.document if isinstance(row.document, dict) else {}
            if previous.get("blocklist", []) != document.signed.get("blocklist", []):
                _blocklist_changed()
            row.last_version = document.version
            row.last_digest = document.digest
            row.expires = document.expires
            row.document = dict(document.signed)
            row.last_error_code = ""
            row.last_error = ""
            row.checked_at = timezone.now()
            row.save(
                update_fields=[
                    "last_version",
                    "last_digest",
                    "expires",
                    "document",
                    "last_error_code",
                    "last_error",
                    "checked_at",
                ]
            )
    if error is not None:
        PluginIndex.objects.filter(pk=index.pk).update(
            last_error_code=error.code, last_error=error.detail[:1000], checked_at=timezone.now()
        )
        raise error
    return document
