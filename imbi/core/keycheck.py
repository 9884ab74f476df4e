"""The encryption key check: every node must read and write with the same keys.

A **canary** (one ``KeyCanary`` row) holds a known value encrypted with the platform's write
key, and that key's fingerprint (never the key).

- **Start-up** (``check_at_start``; gunicorn's master and every WSGI/ASGI worker, Celery
  workers): a process whose ``IMBI_ENCRYPTION_KEYS`` cannot open the canary refuses to start
  with one line naming the fix and exit status 3, like a missing key. The first process that
  starts on a database without a canary writes it with its first key, after checking that its
  keys open the data already stored (so an upgrade with a wrong key cannot claim the canary).
- **Writes** (``write_key``, used by ``imbi.core.crypto.encrypt_json``): a value is encrypted
  with the configured key the canary names, not blindly with the first one. A node that
  does not have it refuses the write (503 ``encryption_keys_mismatch``). So no node writes
  what the others cannot read, whatever order a key roll-out reaches the nodes in.
- **Rotation**: ``rotate_encryption_keys`` moves the canary to the first key *before* it
  re-encrypts the rows, so every write from then on uses the new key.
- **Readiness**: ``current_problem()`` is the ``keys`` check of ``/healthz``.

When the database is unreachable at start-up the check is deferred (logged); ``/healthz``
and every write still check.
"""

from __future__ import annotations

import logging

from cryptography.fernet import Fernet, InvalidToken
from django.db import DatabaseError, connection

from . import crypto

logger = logging.getLogger(__name__)

CANARY_PLAINTEXT = b"imbi-key-canary-v1"
REFUSED_EXIT_STATUS = 3  # as imbi.settings.production: gunicorn halts on a worker's 3
FIX = (
    "give this node the same IMBI_ENCRYPTION_KEYS as the nodes that wrote the data "
    "(docs/operations.md, Keys and rotation)"
)


class KeyMismatch(crypto.DecryptionError):
    """This node does not have the platform's write key: writing would strand the value."""

    code = "encryption_keys_mismatch"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.detail = f"{message}; {FIX}"


_migrated = False  # the canary table was seen (it never disappears again)


def _table_exists() -> bool:
    global _migrated
    if not _migrated:
        from .models import KeyCanary

        _migrated = KeyCanary._meta.db_table in connection.introspection.table_names()
    return _migrated


def _fernets() -> dict[str, Fernet]:
    keys = crypto.configured_keys()
    crypto._ring(keys)  # raises EncryptionKeyError on an empty or invalid list
    return {crypto.fingerprint(key): Fernet(key) for key in keys}


def _canary() -> tuple[str, str] | None:
    from .models import KeyCanary

    row = KeyCanary.objects.filter(pk=1).values_list("token", "fingerprint").first()
    return (str(row[0]), str(row[1])) if row else None


def _problem(token: str, fingerprint: str) -> str | None:
    fernets = _fernets()
    mine = ", ".join(fernets)
    fernet = fernets.get(fingerprint)
    if fernet is None:
        return (
            f"IMBI_ENCRYPTION_KEYS cannot read the key canary: the platform writes with the key "
            f"whose fingerprint is {fingerprint}, this node has {mine}"
        )
    try:
        if fernet.decrypt(token.encode()) != CANARY_PLAINTEXT:
            raise InvalidToken
    except InvalidToken:
        return f"the key canary does not open with key {fingerprint}: it was altered"
    return None


def current_problem() -> str | None:
    """Why this process must not serve (``None``: its keys match, or no canary yet)."""
    canary = _canary()
    return _problem(*canary) if canary else None


def write_key() -> Fernet:
    """The key every encryption uses: the one the canary names (the first key without one)."""
    fernets = _fernets()
    if not _table_exists():  # before migrate
        return next(iter(fernets.values()))
    from .models import KeyCanary

    fingerprint = KeyCanary.objects.filter(pk=1).values_list("fingerprint", flat=True).first()
    if fingerprint is None:
        return next(iter(fernets.values()))
    fernet = fernets.get(str(fingerprint))
    if fernet is None:
        raise KeyMismatch(
            f"refusing to encrypt: the platform writes with key {fingerprint}, "
            f"which is not in this node's IMBI_ENCRYPTION_KEYS ({', '.join(fernets)})"
        )
    return fernet


def _stored_data_problem() -> str | None:
    """Whether these keys open one stored encrypted value (before claiming the canary)."""
    from django.apps import apps

    from .fields import EncryptedJSONField

    ring, _ = crypto._ring(crypto.configured_keys())
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if not isinstance(field, EncryptedJSONField):
                continue
            table = connection.ops.quote_name(model._meta.db_table)
            column = connection.ops.quote_name(str(field.column))
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL LIMIT 1"  # noqa: S608
                )
                row = cursor.fetchone()
            if row is None:
                continue
            try:
                ring.decrypt(str(row[0]).encode())
            except InvalidToken:
                return (
                    f"IMBI_ENCRYPTION_KEYS cannot read the stored data "
                    f"({model._meta.label}.{field.name})"
                )
    return None


def set_canary() -> str:
    """Write the canary with the first configured key; returns its fingerprint."""
    from .models import KeyCanary

    keys = crypto.configured_keys()
    _, primary = crypto._ring(keys)
    fingerprint = crypto.fingerprint(keys[0])
    KeyCanary.objects.update_or_create(
        pk=1,
        defaults={"token": primary.encrypt(CANARY_PLAINTEXT).decode(), "fingerprint": fingerprint},
    )
    return fingerprint


def ensure() -> str | None:
    """The start-up check: create the canary if there is none, then verify it."""
    if not _table_exists():
        logger.warning("key check deferred: the database is not migrated yet")
        return None
    if _canary() is None:
        problem = _stored_data_problem()
        if problem:
            return problem
        from .models import KeyCanary

        keys = crypto.configured_keys()
        _, primary = crypto._ring(keys)
        KeyCanary.objects.get_or_create(
            pk=1,
            defaults={
                "token": primary.encrypt(CANARY_PLAINTEXT).decode(),
                "fingerprint": crypto.fingerprint(keys[0]),
            },
        )
    return current_problem()


def check_at_start() -> None:
    """Refuse to start (one line on stderr, exit 3) when this node's keys are wrong."""
    try:
        problem = ensure()
    except DatabaseError as exc:
        logger.warning("key check deferred: database unavailable (%s)", type(exc).__name__)
        connection.close()
        return
    if problem:
        from imbi.refusal import refuse

        refuse(f"{problem}; {FIX}")
