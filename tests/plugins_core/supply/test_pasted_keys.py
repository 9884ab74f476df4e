"""An index's keys as an operator pastes them: a keygen ``.pub`` file, a PEM public key
(header lines and whitespace), base64 lines or a JSON list; rubbish is a field error."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from imbi_plugin_sdk.signing import write_key_files

from plugins_core.models import PluginIndex
from plugins_core.supply.signing import parse_public_keys


def _pem_and_raw() -> tuple[str, str]:
    public = Ed25519PrivateKey.generate().public_key()
    pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return pem, base64.b64encode(raw).decode()


def test_every_pasted_form_gives_the_same_keys(tmp_path: Path) -> None:
    _, pub_path = write_key_files(tmp_path, "root")
    pub_text = pub_path.read_text()
    key = json.loads(pub_text)["public_key"]
    assert parse_public_keys(pub_text) == [key]
    assert parse_public_keys(f"  {pub_text}\n") == [key]
    assert parse_public_keys(json.dumps([key])) == [key]
    assert parse_public_keys(f"\n  {key[:20]}\n{key[20:]}  \n") == [key]  # wrapped: one key
    pem, raw = _pem_and_raw()
    assert parse_public_keys(f"\n{pem}\n") == [raw]
    pem2, raw2 = _pem_and_raw()
    assert parse_public_keys(pem + pem2) == [raw, raw2]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a key",
        "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----",
        '{"kind": "x"}',
    ],
)
def test_rubbish_is_refused_with_a_reason(text: str) -> None:
    with pytest.raises(ValueError):
        parse_public_keys(text)


@pytest.mark.django_db
def test_the_admin_form_accepts_a_pasted_pub_file(
    tmp_path: Path, client: Any, django_user_model: Any
) -> None:
    _, pub_path = write_key_files(tmp_path, "root")
    key = json.loads(pub_path.read_text())["public_key"]
    pem, raw = _pem_and_raw()
    admin = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(admin)
    page = client.get("/admin/plugins_core/pluginindex/add/")
    assert page.status_code == 200
    response = client.post(
        "/admin/plugins_core/pluginindex/add/",
        {
            "name": "pasted",
            "url": "https://plugins.example.com/index.json",
            "index_keys": pub_path.read_text(),
            "root_keys": pem,
            "priority": "100",
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[-3000:]
    row = PluginIndex.objects.get(name="pasted")
    assert (row.index_keys, row.root_keys) == ([key], [raw])
    change = client.get(f"/admin/plugins_core/pluginindex/{row.pk}/change/").content.decode()
    assert key in change and "[&#x27;" not in change  # one key a line, not a Python list
    refused = client.post(
        "/admin/plugins_core/pluginindex/add/",
        {
            "name": "bad",
            "url": "https://plugins.example.com/i.json",
            "index_keys": "nope",
            "root_keys": pem,
            "priority": "100",
        },
    )
    assert refused.status_code == 200 and "not a base64 Ed25519 public key" in (
        refused.content.decode()
    )
