"""Ed25519 keys, signatures and the exact bytes every signature of the plugin index covers.

Owns the *format* of signed things, shared by authors (``imbi-plugin keygen|certify|sign|
publish``) and the host that verifies them:

- ``canonical_json(value)``: UTF-8 JSON, keys sorted, no insignificant white space, no NaN;
- ``index_message``, ``artifact_message``, ``certificate_message``, ``rotation_message``,
  ``transfer_message``: the bytes signed for an index, an artifact statement, a publisher
  certificate, an index-key rotation and a name transfer, each behind its own
  domain-separation prefix so a signature over one can never pass as another;
- key files (``generate_key``, ``load_private_key``, ``load_public_key``, ``key_id``),
  ``sign`` and ``verify``; ``issue_certificate`` (a root key certifies a publisher key),
  ``issue_rotation`` (a root key replaces an index's keys and sets a new version floor) and
  ``issue_transfer`` (a root key moves a distribution name to another publisher);
- times (``format_time``, ``parse_time``): RFC 3339 UTC, second precision, ``Z`` suffix.

The SDK core is standard library only. Everything that touches Ed25519 imports
``cryptography`` lazily; without it, ``SigningUnavailable`` says in one line how to get it
(``pip install 'imbi-plugin-sdk[sign]'``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = [
    "ARTIFACT_DOMAIN",
    "CERTIFICATE_DOMAIN",
    "INDEX_DOMAIN",
    "INDEX_FORMAT",
    "ROTATION_DOMAIN",
    "TRANSFER_DOMAIN",
    "KeyFileError",
    "PrivateKey",
    "SigningUnavailable",
    "artifact_message",
    "canonical_json",
    "certificate_message",
    "format_time",
    "generate_key",
    "index_message",
    "issue_certificate",
    "issue_rotation",
    "issue_transfer",
    "key_id",
    "load_private_key",
    "load_public_key",
    "parse_time",
    "rotation_message",
    "sign",
    "transfer_message",
    "utcnow",
    "verify",
]

INDEX_FORMAT = 1
INDEX_DOMAIN = b"imbi-plugin-index/v1\n"
ARTIFACT_DOMAIN = b"imbi-plugin-artifact/v1\n"
CERTIFICATE_DOMAIN = b"imbi-publisher-certificate/v1\n"
ROTATION_DOMAIN = b"imbi-index-key-rotation/v1\n"
TRANSFER_DOMAIN = b"imbi-name-transfer/v1\n"
PRIVATE_KIND = "imbi-ed25519-private-key"
PUBLIC_KIND = "imbi-ed25519-public-key"
_INSTALL_HINT = "pip install 'imbi-plugin-sdk[sign]'"


class SigningUnavailable(RuntimeError):
    """Ed25519 needs the optional ``cryptography`` package."""


class KeyFileError(ValueError):
    """A key file or key text that cannot be read."""


def _ed25519() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise SigningUnavailable(
            f"signing needs the 'cryptography' package: {_INSTALL_HINT}"
        ) from None
    return ed25519


# --- canonical bytes ----------------------------------------------------------------------


def canonical_json(value: Any) -> bytes:
    """The one serialization every signature covers (sorted keys, compact, UTF-8, no NaN)."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


def index_message(signed: Mapping[str, Any]) -> bytes:
    """What an index key signs: the index's ``signed`` member."""
    return INDEX_DOMAIN + canonical_json(signed)


def artifact_message(entry: Mapping[str, Any]) -> bytes:
    """What a publisher signs: the artifact entry without its ``signature`` member."""
    return ARTIFACT_DOMAIN + canonical_json({k: v for k, v in entry.items() if k != "signature"})


def certificate_message(certificate: Mapping[str, Any]) -> bytes:
    """What a root key signs: the certificate body."""
    return CERTIFICATE_DOMAIN + canonical_json(certificate)


def rotation_message(rotation: Mapping[str, Any]) -> bytes:
    """What a root key signs to rotate an index's keys: the rotation body."""
    return ROTATION_DOMAIN + canonical_json(rotation)


def transfer_message(transfer: Mapping[str, Any]) -> bytes:
    """What a root key signs to move a distribution name to another publisher."""
    return TRANSFER_DOMAIN + canonical_json(transfer)


# --- time ---------------------------------------------------------------------------------


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def format_time(moment: dt.datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("a signed time must be timezone-aware")
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: object) -> dt.datetime:
    """``2026-11-27T10:00:00Z`` -> an aware datetime; ``ValueError`` for anything else."""
    if not isinstance(text, str) or not text.endswith("Z"):
        raise ValueError(f"{text!r} is not a UTC time like 2026-11-27T10:00:00Z")
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


# --- keys ---------------------------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: object, what: str, length: int) -> bytes:
    if not isinstance(text, str):
        raise KeyFileError(f"{what} must be base64 text")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise KeyFileError(f"{what} is not valid base64") from None
    if len(raw) != length:
        raise KeyFileError(f"{what} must be {length} bytes, got {len(raw)}")
    return raw


def key_id(public_key: str) -> str:
    """A key's id: the SHA-256 (hex) of its raw 32 public bytes."""
    return hashlib.sha256(_unb64(public_key, "public key", 32)).hexdigest()


class PrivateKey:
    """An Ed25519 private key read from a key file (its text is never shown)."""

    def __init__(self, name: str, private_key: str) -> None:
        raw = _unb64(private_key, "private key", 32)
        self._key = _ed25519().Ed25519PrivateKey.from_private_bytes(raw)
        self.name = name
        from cryptography.hazmat.primitives import serialization

        public_raw = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_key = _b64(public_raw)
        self.key_id = key_id(self.public_key)

    def __repr__(self) -> str:
        return f"<PrivateKey {self.name!r} {self.key_id[:16]}>"

    def sign(self, message: bytes) -> str:
        return _b64(self._key.sign(message))

    def public_document(self) -> dict[str, str]:
        return {
            "kind": PUBLIC_KIND,
            "name": self.name,
            "key_id": self.key_id,
            "public_key": self.public_key,
        }


def generate_key(name: str) -> tuple[dict[str, str], dict[str, str]]:
    """A new key pair as (private key document, public key document)."""
    ed25519 = _ed25519()
    from cryptography.hazmat.primitives import serialization

    private = ed25519.Ed25519PrivateKey.generate()
    raw = private.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )
    key = PrivateKey(name, _b64(raw))
    private_doc = {**key.public_document(), "kind": PRIVATE_KIND, "private_key": _b64(raw)}
    return private_doc, key.public_document()


def write_key_files(directory: Path, name: str) -> tuple[Path, Path]:
    """Write ``NAME.key`` (mode 0600) and ``NAME.pub``; refuses to overwrite either."""
    private_doc, public_doc = generate_key(name)
    private_path, public_path = directory / f"{name}.key", directory / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise KeyFileError(f"{path} already exists; refusing to overwrite a key")
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(private_doc, indent=2) + "\n")
    public_path.write_text(json.dumps(public_doc, indent=2) + "\n", encoding="utf-8")
    return private_path, public_path


def _read_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise KeyFileError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except (ValueError, UnicodeDecodeError):
        raise KeyFileError(f"{what} {path} is not JSON") from None
    if not isinstance(data, dict):
        raise KeyFileError(f"{what} {path} is not a JSON object")
    return data


def load_private_key(path: Path) -> PrivateKey:
    data = _read_json(path, "key file")
    if data.get("kind") != PRIVATE_KIND:
        raise KeyFileError(f"{path} is not a private key file (made by imbi-plugin keygen)")
    return PrivateKey(str(data.get("name", path.stem)), data.get("private_key"))  # type: ignore[arg-type]


def load_public_key(source: str | Path) -> str:
    """A public key (base64) from a ``.pub``/``.key`` file, or base64 text given directly."""
    path = Path(source)
    if path.suffix in (".pub", ".key", ".json") or path.exists():
        data = _read_json(path, "key file")
        if data.get("kind") not in (PUBLIC_KIND, PRIVATE_KIND):
            raise KeyFileError(f"{path} is not a key file (made by imbi-plugin keygen)")
        public = data.get("public_key")
    else:
        public = str(source)
    _unb64(public, "public key", 32)
    return str(public)


# --- signatures ---------------------------------------------------------------------------


def sign(key: PrivateKey, message: bytes) -> str:
    return key.sign(message)


def verify(public_key: str, message: bytes, signature: object) -> bool:
    """Whether ``signature`` (base64) is ``public_key``'s over ``message``; never raises."""
    from cryptography.exceptions import InvalidSignature

    ed25519 = _ed25519()
    try:
        public = ed25519.Ed25519PublicKey.from_public_bytes(_unb64(public_key, "public key", 32))
        public.verify(_unb64(signature, "signature", 64), message)
    except (InvalidSignature, KeyFileError):
        return False
    return True


def issue_certificate(
    root: PrivateKey,
    *,
    subject: str,
    public_key: str,
    valid_from: dt.datetime,
    valid_until: dt.datetime,
    verified: bool,
) -> dict[str, Any]:
    """A publisher certificate: ``{"certificate": {...}, "signature": <root's>}``."""
    if valid_until <= valid_from:
        raise ValueError("valid-until must be after valid-from")
    body = {
        "serial": secrets.token_hex(16),
        "subject": subject,
        "public_key": public_key,
        "key_id": key_id(public_key),
        "valid_from": format_time(valid_from),
        "valid_until": format_time(valid_until),
        "verified": verified,
        "issuer": root.key_id,
    }
    return {"certificate": body, "signature": root.sign(certificate_message(body))}


def issue_rotation(
    root: PrivateKey,
    *,
    index: str,
    index_keys: list[str],
    version_floor: int,
    issued_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """An index-key rotation: ``{"rotation": {...}, "signature": <root's>}``.

    A platform that applies it (``manage.py plugin index rotate``) trusts exactly
    ``index_keys`` for ``index`` from then on and accepts index versions from
    ``version_floor`` up, even below a version a leaked key made it see."""
    if not index_keys:
        raise ValueError("a rotation names at least one new index key")
    if version_floor < 1:
        raise ValueError("the version floor must be a positive integer")
    for key in index_keys:
        key_id(key)
    body = {
        "index": index,
        "index_keys": list(index_keys),
        "version_floor": int(version_floor),
        "issued_at": format_time(issued_at or utcnow()),
        "issuer": root.key_id,
    }
    return {"rotation": body, "signature": root.sign(rotation_message(body))}


def issue_transfer(
    root: PrivateKey,
    *,
    index: str,
    name: str,
    from_publisher: str,
    to_publisher: str,
    issued_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """A name transfer: ``{"transfer": {...}, "signature": <root's>}``; ``imbi-plugin
    publish --transfer`` files it in the index, which then names ``to_publisher`` as the
    owner of ``name`` (``from_publisher`` empty: the operator sets a first owner)."""
    body = {
        "index": index,
        "name": name,
        "from": from_publisher,
        "to": to_publisher,
        "issued_at": format_time(issued_at or utcnow()),
        "issuer": root.key_id,
    }
    return {"transfer": body, "signature": root.sign(transfer_message(body))}
