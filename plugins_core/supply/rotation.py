"""Recovery from a leaked index key: a root-signed key rotation with a new version floor.

Owns ``apply_rotation`` (``manage.py plugin index rotate NAME RECORD.json``): a record made
by ``imbi_plugin_sdk.signing.issue_rotation`` (``imbi-plugin rotate-index-key``) with the
index's root key replaces the index keys a platform trusts for that index and resets its
rollback counter to the record's ``version_floor``. Without it, a leaked index key that
signed version 10⁹ locks the index out for good: every legitimate next version is older.

Checks (each ``rotation_invalid``; nothing is changed or audited on a refusal): the record's
shape; a signature by one of the index's pinned **root** keys (an index key, leaked or not,
cannot rotate itself); the record names this index; at least one valid new key; a positive
floor; ``issued_at`` later than the last rotation applied (a replayed old record cannot put
an old key back) and not in the future. Applied under the index row's lock, with an audit
event (``plugin.index_key_rotated``) naming the old and new key ids and the floors.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from imbi_plugin_sdk import signing as formats

from imbi.core import audit
from plugins_core.supply.errors import RotationInvalid
from plugins_core.supply.signing import signed_by, trust_root, valid_public_key

__all__ = ["ROTATION_ACTION", "apply_rotation"]

ROTATION_ACTION = "plugin.index_key_rotated"
CLOCK_SKEW = dt.timedelta(minutes=5)


def _body(record: Any, index: str) -> dict[str, Any]:
    body = record.get("rotation") if isinstance(record, dict) else None
    if not isinstance(body, dict) or not isinstance(record.get("signature"), str):
        raise RotationInvalid(
            "a key rotation must be a record made by imbi-plugin rotate-index-key", index=index
        )
    return body


def _issued_at(body: dict[str, Any], index: str) -> dt.datetime:
    try:
        return formats.parse_time(body.get("issued_at"))
    except ValueError as exc:
        raise RotationInvalid(f"key rotation: issued_at: {exc}", index=index) from None


def apply_rotation(index: Any, record: Any, *, actor: Any = None) -> Any:
    """Verify ``record`` against ``index``'s (a ``PluginIndex``) root keys and apply it;
    returns the updated row, or raises ``RotationInvalid`` having changed nothing."""
    from django.db import transaction

    from plugins_core.models import PluginIndex

    name = index.name
    body = _body(record, name)
    with transaction.atomic():
        row = PluginIndex.objects.select_for_update().get(pk=index.pk)
        try:
            message = formats.rotation_message(body)
        except (ValueError, RecursionError):
            raise RotationInvalid("key rotation: not canonical JSON", index=name) from None
        signer, ok = signed_by(
            trust_root(row).root_key_ids(),
            message,
            [{"key_id": body.get("issuer"), "signature": record.get("signature")}],
        )
        if not ok:
            why = "does not verify (altered)" if signer else "is not by a root key of this index"
            raise RotationInvalid(f"index {name!r}: the key rotation's signature {why}", index=name)
        if body.get("index") != name:
            raise RotationInvalid(
                f"the key rotation is for index {str(body.get('index'))[:64]!r}, not {name!r}",
                index=name,
            )
        keys = body.get("index_keys")
        if (
            not isinstance(keys, list)
            or not keys
            or not all(isinstance(k, str) and valid_public_key(k) for k in keys)
        ):
            raise RotationInvalid(
                "the key rotation must name base64 Ed25519 index keys", index=name
            )
        floor = body.get("version_floor")
        if not isinstance(floor, int) or isinstance(floor, bool) or floor < 1:
            raise RotationInvalid(
                "the key rotation's version_floor must be a positive integer", index=name
            )
        issued = _issued_at(body, name)
        if issued > dt.datetime.now(dt.UTC) + CLOCK_SKEW:
            raise RotationInvalid("the key rotation is dated in the future", index=name)
        last = row.rotation.get("rotation") if isinstance(row.rotation, dict) else None
        if isinstance(last, dict) and issued <= _issued_at(last, name):
            raise RotationInvalid(
                f"index {name!r}: a key rotation issued at {formats.format_time(issued)} is not "
                f"newer than the one applied ({last.get('issued_at')}); an old record cannot be "
                "replayed",
                index=name,
            )
        old_ids = sorted(formats.key_id(k) for k in row.index_keys or [])
        previous_version = row.last_version
        row.index_keys = list(keys)
        row.last_version = floor
        row.last_digest = ""  # the first document at the floor is accepted once, then pinned
        row.rotation = dict(record)
        row.save(update_fields=["index_keys", "last_version", "last_digest", "rotation"])
        audit.record(
            ROTATION_ACTION,
            actor=actor,
            detail=(
                f"index {name}: index keys {','.join(k[:12] for k in old_ids)} -> "
                f"{','.join(formats.key_id(k)[:12] for k in keys)}, version floor "
                f"{previous_version} -> {floor} (root key {str(body.get('issuer'))[:12]})"
            )[:255],
        )
    return row
