"""Re-encrypt every encrypted column with the newest key (the first of IMBI_ENCRYPTION_KEYS).

Works on the stored tokens directly (``MultiFernet.rotate``), one row lock at a time, so a
concurrent writer is never overwritten with stale data. Exits non-zero with a one-line reason
if any row cannot be decrypted with the configured keys; rows already rotated stay rotated.

First it moves the key canary (``imbi.core.keycheck``) to the first key, so every write from
then on, on every node, uses the new key and no row written during the rotation is left on
the old one. It refuses (and changes nothing) when its keys cannot open the current canary.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from imbi.core import crypto, keycheck
from imbi.core.fields import EncryptedJSONField


class Command(BaseCommand):
    help = "Re-encrypt every encrypted value with the newest IMBI_ENCRYPTION_KEYS entry."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--dry-run", action="store_true", help="Only count stale rows.")

    def handle(self, *args: Any, dry_run: bool = False, **options: Any) -> None:
        problem = keycheck.current_problem()
        if problem:
            raise CommandError(f"{problem}; {keycheck.FIX}")
        if not dry_run:
            fingerprint = keycheck.set_canary()
            self.stdout.write(f"key canary now on key {fingerprint}: every node writes with it")
        rotated = current = 0
        for model in apps.get_models():
            for field in model._meta.concrete_fields:
                if not isinstance(field, EncryptedJSONField):
                    continue
                r, c = self._rotate(model, field, dry_run)
                rotated += r
                current += c
        verb = "would re-encrypt" if dry_run else "re-encrypted"
        self.stdout.write(f"{verb} {rotated} value(s); {current} already on the newest key")

    def _rotate(self, model: Any, field: EncryptedJSONField, dry_run: bool) -> tuple[int, int]:
        table = connection.ops.quote_name(model._meta.db_table)
        column = connection.ops.quote_name(str(field.column))
        pk = connection.ops.quote_name(model._meta.pk.column)
        rotated = current = 0
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {pk} FROM {table} WHERE {column} IS NOT NULL")  # noqa: S608
            ids = [row[0] for row in cursor.fetchall()]
        for row_id in ids:
            with transaction.atomic(), connection.cursor() as cursor:
                lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
                cursor.execute(
                    f"SELECT {column} FROM {table} WHERE {pk} = %s{lock}",  # noqa: S608
                    [row_id],
                )
                row = cursor.fetchone()
                if row is None or row[0] is None:
                    continue
                if crypto.is_current(row[0]):
                    current += 1
                    continue
                try:
                    token = crypto.rotate(row[0])
                except crypto.DecryptionError:
                    raise CommandError(
                        f"{model._meta.label}.{field.name} row {row_id}: no configured key "
                        "opens it; add the old key to IMBI_ENCRYPTION_KEYS and retry"
                    ) from None
                if not dry_run:
                    cursor.execute(
                        f"UPDATE {table} SET {column} = %s WHERE {pk} = %s",  # noqa: S608
                        [token, row_id],
                    )
                rotated += 1
        return rotated, current
