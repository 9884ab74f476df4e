"""Host side of Ed25519: trust roots and "which trusted key signed this".

Owns ``TrustRoot`` (the index keys and publisher-root keys an operator pins for one index)
and ``signed_by`` (the first trusted key whose signature over a message verifies). The bytes
signed are defined once, in ``imbi_plugin_sdk.signing`` (canonical JSON behind a domain
prefix), so authors' tools and the host can never disagree about them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from imbi_plugin_sdk import signing as formats

if TYPE_CHECKING:
    from plugins_core.models import PluginIndex

__all__ = ["TrustRoot", "key_id", "signed_by", "trust_root", "valid_public_key"]

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
