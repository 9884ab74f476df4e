"""Fault 4 of issue 21: a valid but wrong encryption key never serves and never writes.

- A gunicorn (its master, and a bare ``gunicorn imbi.wsgi`` worker) and a Celery worker whose
  ``IMBI_ENCRYPTION_KEYS`` cannot open the key canary refuse to start: one line, exit 3.
- A running node left behind by a rotation (the canary moved to a key it lacks) answers
  ``/healthz`` 503 naming the key check, and refuses to encrypt (503
  ``encryption_keys_mismatch``) instead of writing what the other nodes cannot read.
- ``rotate_encryption_keys`` moves the canary first; before it does, a node that already has
  the new key first still writes with the canary's key, readable by every node.
"""

from __future__ import annotations

import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings

from imbi.api.problems import to_problem
from imbi.core import crypto, keycheck
from imbi.core.models import KeyCanary, Organization
from imbi.testing.services import free_port
from plugins_core.models import ServiceApplication, ThirdPartyService

from .conftest import BIN, ROOT, Web, production_env

WRONG = Fernet.generate_key().decode()


def refusal_lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if "refusing to start" in line]


def test_a_node_with_a_wrong_key_refuses_to_start(
    web_server: Callable[..., Web], tmp_path: Path
) -> None:
    web_server()  # the first node writes the canary with the right key
    row = KeyCanary.objects.get(pk=1)
    assert row.fingerprint == crypto.fingerprint(settings.IMBI_ENCRYPTION_KEYS[0])
    env = production_env(tmp_path, IMBI_ENCRYPTION_KEYS=WRONG)
    expected = (
        "imbi: refusing to start: IMBI_ENCRYPTION_KEYS cannot read the key canary: the "
        f"platform writes with the key whose fingerprint is {row.fingerprint}, this node has "
        f"{crypto.fingerprint(WRONG)}; {keycheck.FIX}"
    )
    commands = {
        "gunicorn -c imbi.gunicorn_conf": [
            str(BIN / "gunicorn"),
            "-c",
            "python:imbi.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{free_port()}",
        ],
        "bare gunicorn imbi.wsgi": [
            str(BIN / "gunicorn"),
            "-b",
            f"127.0.0.1:{free_port()}",
            "-w",
            "1",
            "--no-control-socket",
            "imbi.wsgi",
        ],
        "celery worker": [
            str(BIN / "celery"),
            "-A",
            "imbi.celery",
            "worker",
            "--pool",
            "solo",
            "--without-gossip",
            "--without-mingle",
        ],
    }
    for what, command in commands.items():
        done = subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
        )
        output = done.stdout + done.stderr
        assert done.returncode == 3, (what, done.returncode, output[-3000:])
        assert refusal_lines(output) == [expected], (what, output[-3000:])
        assert "Traceback" not in output, (what, output[-3000:])
    assert KeyCanary.objects.get(pk=1).fingerprint == row.fingerprint  # never claimed


def test_first_start_with_a_wrong_key_cannot_claim_the_canary(
    transactional_db: Any, tmp_path: Path
) -> None:
    """An upgrade from a release without a canary: stored data decides whose keys are right."""
    org = Organization.objects.create(slug="acme", name="Acme")
    service = ThirdPartyService.objects.create(organization=org, vendor="aws", name="A", slug="a")
    ServiceApplication.objects.create(service=service, credentials={"secret": "s3cr3t"})
    KeyCanary.objects.all().delete()
    env = production_env(tmp_path, IMBI_ENCRYPTION_KEYS=WRONG)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import django; django.setup(); "
            "from imbi.core.keycheck import check_at_start; check_at_start()",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr
    assert refusal_lines(done.stderr) == [
        "imbi: refusing to start: IMBI_ENCRYPTION_KEYS cannot read the stored data "
        f"(plugins_core.ServiceApplication.credentials); {keycheck.FIX}"
    ]
    assert not KeyCanary.objects.exists()


def test_a_node_left_behind_by_a_rotation_is_unready_and_writes_nothing(
    web_server: Callable[..., Web], tmp_path: Path
) -> None:
    old = settings.IMBI_ENCRYPTION_KEYS[0]
    new = Fernet.generate_key().decode()
    behind = web_server()  # has the old key only
    org = Organization.objects.create(slug="acme", name="Acme")
    service = ThirdPartyService.objects.create(organization=org, vendor="aws", name="A", slug="a")
    with override_settings(IMBI_ENCRYPTION_KEYS=[new, old]):
        # the new key is first, but the canary still names the old one: writes use the old key
        app = ServiceApplication.objects.create(service=service, credentials={"k": "v1"})
        with override_settings(IMBI_ENCRYPTION_KEYS=[old]):
            assert ServiceApplication.objects.get(pk=app.pk).credentials == {"k": "v1"}
        call_command("rotate_encryption_keys", stdout=io.StringIO())
        assert KeyCanary.objects.get(pk=1).fingerprint == crypto.fingerprint(new)
    health = behind.get("/healthz")
    assert health.status_code == 503, health.text
    keys = health.json()["checks"]["keys"]
    assert keys["ok"] is False and keys["required"] is True
    assert crypto.fingerprint(new) in keys["error"]
    with override_settings(IMBI_ENCRYPTION_KEYS=[old]):  # what the node left behind would do
        with pytest.raises(keycheck.KeyMismatch) as refused, transaction.atomic():
            ServiceApplication.objects.filter(pk=app.pk).update(credentials={"k": "v2"})
    problem = to_problem(refused.value)
    assert problem is not None
    assert (problem.status_code, problem.code) == (503, "encryption_keys_mismatch")
    assert "IMBI_ENCRYPTION_KEYS" in problem.detail
    with override_settings(IMBI_ENCRYPTION_KEYS=[new]):
        assert ServiceApplication.objects.get(pk=app.pk).credentials == {"k": "v1"}
