"""Host side of Ed25519: trust roots and "which trusted key signed this".

Owns ``TrustRoot`` (the index keys and publisher-root keys an operator pins for one index)
and ``signed_by`` (the first trusted key whose signature over a message verifies). The bytes
signed are defined once, in ``imbi_plugin_sdk.signing`` (canonical JSON behind a domain
prefix), so authors' tools and the host can never disagree about them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from imbi_plugin_sdk import signing as formats

if TYPE_CHECKING:
    from plugins_core.models import PluginIndex

__all__ = [
    "TrustRoot",
    "key_id",
    "parse_public_keys",
    "signed_by",
    "trust_root",
    "valid_public_key",
]

# DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the 32 key bytes follow.
_SPKI_ED25519 = bytes.fromhex("302a300506032b6570032100")
_PEM_BLOCK = re.compile(r"-----BEGIN [A-Z0-9 ]+-----(.*?)-----END [A-Z0-9 ]+-----", re.DOTALL)


def _one_key(text: str) -> str:
    """A base64 Ed25519 key from base64 text (whitespace ignored) or a PEM body."""
    compact = "".join(text.split())
    try:
        raw = base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"not a base64 Ed25519 public key: {compact[:16]}…") from None
    if len(raw) == len(_SPKI_ED25519) + 32 and raw.startswith(_SPKI_ED25519):
        raw = raw[len(_SPKI_ED25519) :]
    key = base64.b64encode(raw).decode()
    if len(raw) != 32 or not valid_public_key(key):
        raise ValueError(f"not a base64 Ed25519 public key (32 bytes): {compact[:16]}…")
    return key


def _from_json(data: Any) -> list[str]:
    items = data if isinstance(data, list) else [data]
    keys = []
    for item in items:
        if isinstance(item, Mapping):
            item = item.get("public_key")
        if not isinstance(item, str):
            raise ValueError("a JSON key entry is neither a key nor a .pub document")
        keys.append(_one_key(item))
    return keys


def parse_public_keys(text: str) -> list[str]:
    """Public keys as an operator pastes them: the ``.pub`` file(s) of ``imbi-plugin keygen``
    (JSON), a JSON list, PEM blocks (``-----BEGIN PUBLIC KEY-----``), or base64 keys one per
    line; header lines and whitespace are ignored. Raises ``ValueError`` naming the problem."""
    text = text.strip()
    if not text:
        raise ValueError("List at least one base64 Ed25519 public key.")
    keys: list[str]
    try:
        keys = _from_json(json.loads(text))
    except json.JSONDecodeError:
        documents = re.findall(r"\{.*?\}", text, re.DOTALL) if text.startswith("{") else []
        if documents:
            keys = [k for doc in documents for k in _from_json(json.loads(doc))]
        elif "-----BEGIN" in text:
            keys = [_one_key(body) for body in _PEM_BLOCK.findall(text)]
        else:
            try:  # one key, perhaps wrapped over lines
                keys = [_one_key(text)]
            except ValueError:
                keys = [_one_key(line) for line in text.splitlines() if line.strip()]
    if not keys:
        raise ValueError("List at least one base64 Ed25519 public key.")
    return list(dict.fromkeys(keys))


key_id = formats.key_id


def valid_public_key(text: str) -> bool:
    try:
        formats.key_id(text)
    except formats.KeyFileError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class TrustRoot:
    """The keys pinned for one index: who may sign the index, who may certify publishers."""

    index_keys: tuple[str, ...]
    root_keys: tuple[str, ...]

    @classmethod
    def of(cls, index_keys: Iterable[str], root_keys: Iterable[str]) -> TrustRoot:
        return cls(tuple(index_keys), tuple(root_keys))

    def index_key_ids(self) -> dict[str, str]:
        return {formats.key_id(k): k for k in self.index_keys}

    def root_key_ids(self) -> dict[str, str]:
        return {formats.key_id(k): k for k in self.root_keys}


def trust_root(index: PluginIndex) -> TrustRoot:
    """The trust root an operator pinned for a followed index (its two key lists)."""
    return TrustRoot.of(index.index_keys or [], index.root_keys or [])


def signed_by(
    keys: Mapping[str, str], message: bytes, signatures: Sequence[Mapping[str, object]]
) -> tuple[str | None, bool]:
    """(key id, verified) for the signatures made by a key in ``keys``.

    ``(None, False)``: no signature names a trusted key. ``(id, False)``: a trusted key is
    named but its signature does not verify. ``(id, True)``: verified.
    """
    named: str | None = None
    for item in signatures:
        kid = item.get("key_id")
        if not isinstance(kid, str) or kid not in keys:
            continue
        named = kid
        if formats.verify(keys[kid], message, item.get("signature")):
            return kid, True
    return named, False
