"""Encrypted credentials: ciphertext at rest, clear errors under a wrong key, rotation."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import FieldError
from django.core.management import call_command
from django.db import connection, transaction
from django.test import override_settings

from imbi.core import crypto
from plugins_core.models import ServiceApplication, ThirdPartyService

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"


def raw_column(app: ServiceApplication) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credentials FROM plugins_core_serviceapplication WHERE id = %s", [app.pk]
        )
        return str(cursor.fetchone()[0])


@pytest.fixture
def service(org: Any) -> ThirdPartyService:
    return ThirdPartyService.objects.create(organization=org, vendor="aws", name="AWS", slug="aws")


def test_raw_column_holds_ciphertext_on_postgresql(service: ThirdPartyService) -> None:
    assert connection.vendor == "postgresql"
    app = ServiceApplication.objects.create(service=service, credentials={"secret": SECRET})
    raw = raw_column(app)
    assert SECRET not in raw
    assert "secret" not in raw
    assert raw.startswith("gAAAAA")  # a Fernet token
    assert ServiceApplication.objects.get(pk=app.pk).credentials == {"secret": SECRET}


def test_empty_credentials_are_encrypted_too(service: ThirdPartyService) -> None:
    app = ServiceApplication.objects.create(service=service)
    assert raw_column(app).startswith("gAAAAA")
    assert ServiceApplication.objects.get(pk=app.pk).credentials == {}


def test_wrong_key_raises_clear_error_and_overwrites_nothing(service: ThirdPartyService) -> None:
    with override_settings(IMBI_ENCRYPTION_KEYS=[KEY_A]):
        app = ServiceApplication.objects.create(service=service, credentials={"secret": SECRET})
        before = raw_column(app)
    with override_settings(IMBI_ENCRYPTION_KEYS=[KEY_B]):
        with pytest.raises(crypto.DecryptionError) as caught:
            ServiceApplication.objects.get(pk=app.pk)
        message = str(caught.value)
        assert "plugins_core.ServiceApplication.credentials" in message
        assert crypto.fingerprint(KEY_B) in message
        assert KEY_B not in message and SECRET not in message and before not in message
    assert raw_column(app) == before  # nothing rewritten
    with override_settings(IMBI_ENCRYPTION_KEYS=[KEY_A]):
        assert ServiceApplication.objects.get(pk=app.pk).credentials == {"secret": SECRET}


def test_saving_never_double_encrypts(service: ThirdPartyService) -> None:
    app = ServiceApplication.objects.create(service=service, credentials={"secret": SECRET})
    loaded = ServiceApplication.objects.get(pk=app.pk)
    loaded.save()
    assert ServiceApplication.objects.get(pk=app.pk).credentials == {"secret": SECRET}


def test_missing_key_is_a_clear_error(service: ThirdPartyService) -> None:
    with override_settings(IMBI_ENCRYPTION_KEYS=[]):
        with (
            pytest.raises(crypto.EncryptionKeyError, match="IMBI_ENCRYPTION_KEYS is empty"),
            transaction.atomic(),
        ):
            ServiceApplication.objects.create(service=service, credentials={"a": "b"})
    assert not ServiceApplication.objects.exists()


def test_invalid_key_is_a_clear_error() -> None:
    with override_settings(IMBI_ENCRYPTION_KEYS=["not-a-key"]):
        with pytest.raises(crypto.EncryptionKeyError, match="entry 1 is not a valid Fernet key"):
            crypto.encrypt_json({})


def test_lookups_on_encrypted_fields_are_refused(service: ThirdPartyService) -> None:
    with pytest.raises(FieldError, match="not supported"):
        list(ServiceApplication.objects.filter(credentials={"secret": SECRET}))
    with pytest.raises(FieldError, match="not supported"):
        list(ServiceApplication.objects.filter(credentials__icontains="x"))
    assert list(ServiceApplication.objects.filter(credentials__isnull=True)) == []


def test_rotation_reencrypts_every_row(org: Any) -> None:
    apps = []
    with override_settings(IMBI_ENCRYPTION_KEYS=[KEY_A]):
        for index in range(3):
            service = ThirdPartyService.objects.create(
                organization=org,
                vendor="v",
                identity=str(index),
                name=f"S{index}",
                slug=f"s{index}",
            )
            apps.append(
                ServiceApplication.objects.create(
                    service=service, credentials={"token": f"t{index}"}
                )
            )
        before = {app.pk: raw_column(app) for app in apps}
    with override_settings(IMBI_ENCRYPTION_KEYS=[KEY_B, KEY_A]):
        call_command("rotate_encryption_keys")
    for app in apps:
        assert raw_column(app) != before[app.pk]
    # Only the new key is needed now: every row was re-encrypted.
    with override_settings(IMBI_ENCRYPTION_KEYS=[KEY_B]):
        for index, app in enumerate(apps):
            assert ServiceApplication.objects.get(pk=app.pk).credentials == {"token": f"t{index}"}


def test_rotation_reports_unreadable_rows(service: ThirdPartyService) -> None:
    from django.core.management.base import CommandError

    with override_settings(IMBI_ENCRYPTION_KEYS=[KEY_A]):
        app = ServiceApplication.objects.create(service=service, credentials={"x": "y"})
        before = raw_column(app)
    with override_settings(IMBI_ENCRYPTION_KEYS=[KEY_B]):
        with pytest.raises(CommandError, match="no configured key opens it"):
            call_command("rotate_encryption_keys")
    assert raw_column(app) == before
