"""Encryption at rest: the key ring built from ``IMBI_ENCRYPTION_KEYS``.

The first key encrypts; every key decrypts (rotation). Keys are read from settings on each
use (cached per key list), so ``override_settings`` and a reload both take effect. A token no
key can open raises ``DecryptionError``; nothing ever hands ciphertext back as if it were
the value. Errors name key *fingerprints* (a short SHA-256 prefix), never keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class EncryptionKeyError(ImproperlyConfigured):
    """No usable encryption key is configured."""


class DecryptionError(Exception):
    """Stored ciphertext cannot be opened with any configured key.

    ``str()`` names the row and the key fingerprints (for the server log); ``detail`` is the
    operator-facing reason an API answer carries (503 ``credentials_unreadable``).
    """

    code = "credentials_unreadable"
    http_status = 503

    def __init__(self, message: str, *, where: str = "value") -> None:
        super().__init__(message)
        self.detail = (
            f"stored data ({where}) cannot be decrypted with the configured keys; an operator "
            "must add the key that encrypted it to IMBI_ENCRYPTION_KEYS"
        )


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


@lru_cache(maxsize=8)
def _ring(keys: tuple[str, ...]) -> tuple[MultiFernet, Fernet]:
    if not keys:
        raise EncryptionKeyError(
            "IMBI_ENCRYPTION_KEYS is empty: set at least one Fernet key (the first one encrypts)"
        )
    fernets = []
    for position, key in enumerate(keys, start=1):
        try:
            fernets.append(Fernet(key))
        except (ValueError, TypeError) as exc:
            raise EncryptionKeyError(
                f"IMBI_ENCRYPTION_KEYS entry {position} is not a valid Fernet key"
            ) from exc
    return MultiFernet(fernets), fernets[0]


def configured_keys() -> tuple[str, ...]:
    keys: Sequence[str] = getattr(settings, "IMBI_ENCRYPTION_KEYS", ())
    if isinstance(keys, str):  # a plain comma string means a list of keys
        keys = [k for k in keys.split(",") if k]
    return tuple(k.strip() for k in keys)


def encrypt_json(value: Any) -> str:
    """Encrypt with the platform's write key: the configured key the key canary names, the
    first one before there is a canary (``imbi.core.keycheck``; raises ``KeyMismatch`` when
    this node does not have it)."""
    from . import keycheck

    _ring(configured_keys())  # a missing or invalid key is a clear error before anything else
    plaintext = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    return keycheck.write_key().encrypt(plaintext).decode()


def decrypt_json(token: str, *, where: str = "value") -> Any:
    keys = configured_keys()
    ring, _ = _ring(keys)
    try:
        plaintext = ring.decrypt(token.encode())
    except InvalidToken:
        prints = ", ".join(fingerprint(k) for k in keys)
        raise DecryptionError(
            f"cannot decrypt {where}: no configured key opens it "
            f"(configured key fingerprints: {prints}); check IMBI_ENCRYPTION_KEYS",
            where=where,
        ) from None
    return json.loads(plaintext)


def is_current(token: str) -> bool:
    """True when ``token`` is encrypted with the primary (first) key."""
    _, primary = _ring(configured_keys())
    try:
        primary.decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def rotate(token: str) -> str:
    """Re-encrypt ``token`` with the primary key (raises ``DecryptionError`` if unreadable)."""
    ring, _ = _ring(configured_keys())
    try:
        return ring.rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("cannot rotate: no configured key opens the value") from None
