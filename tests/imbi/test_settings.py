"""Settings: production refuses to start without keys; check --deploy is clean; migrations
are complete; the embedded default generates its keys."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]
GOOD_SECRET = "k3J9-q0Zx7Lw2Vb8Nn5Rt4Yy6Uu1Ii0Oo9Pp8Aa7Ss6Dd5Ff4Gg3Hh2Jj1Kk0Ll9Mm8"


def manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "IMBI_ENCRYPTION_KEYS", "DJANGO_SETTINGS_MODULE"}
    }
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_production_refuses_to_start_without_keys() -> None:
    result = manage(
        "check",
        env={"DJANGO_SETTINGS_MODULE": "imbi.settings.production", "SECRET_KEY": GOOD_SECRET},
    )
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "imbi: refusing to start: IMBI_ENCRYPTION_KEYS must list at least one Fernet key "
        "(the first one encrypts)"
    )


def test_production_refuses_to_start_without_secret_key() -> None:
    result = manage(
        "check",
        env={
            "DJANGO_SETTINGS_MODULE": "imbi.settings.production",
            "IMBI_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        },
    )
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1
    assert "SECRET_KEY must be set" in result.stderr


def test_production_refuses_a_bad_key() -> None:
    result = manage(
        "check",
        env={
            "DJANGO_SETTINGS_MODULE": "imbi.settings.production",
            "SECRET_KEY": GOOD_SECRET,
            "IMBI_ENCRYPTION_KEYS": "nope",
        },
    )
    assert result.returncode != 0
    assert "entry 1 is not a valid Fernet key" in result.stderr
    assert "nope" not in result.stderr


def test_check_deploy_is_clean_under_production_settings() -> None:
    keys = f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}"
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        "--tag",
        "security",
        env={
            "DJANGO_SETTINGS_MODULE": "imbi.settings.production",
            "SECRET_KEY": GOOD_SECRET,
            "IMBI_ENCRYPTION_KEYS": keys,
            "ALLOWED_HOSTS": "imbi.example.com",
        },
    )
    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def registry_first_party() -> list[str]:
    from plugins_core.registry import FIRST_PARTY

    return sorted(FIRST_PARTY)


def test_check_deploy_reports_only_the_deliberately_broken_example_plugins(
    tmp_path: Path,
) -> None:
    """The example plugin's three broken entry points, and the hostile plugin's entry point
    that hangs at import (recorded by its sandboxed import, not run by the host). The trusted
    distributions' bytes are recorded first, as the image build does."""
    from plugins_core.registry import trust

    lock = tmp_path / trust.LOCK_NAME
    trust.write_lock(lock, [*registry_first_party(), "imbi-plugin-example"])
    keys = Fernet.generate_key().decode()
    result = manage(
        "check",
        "--deploy",
        env={
            "DJANGO_SETTINGS_MODULE": "imbi.settings.production",
            "SECRET_KEY": GOOD_SECRET,
            "IMBI_ENCRYPTION_KEYS": keys,
            "ALLOWED_HOSTS": "imbi.example.com",
            "IMBI_PLUGIN_IMPORT_TIMEOUT": "1",
            "IMBI_TRUSTED_PLUGIN_LOCK": str(lock),
            # The test-only example and hostile plugins are not installed from a signed index.
            "IMBI_PLUGINS_UNSIGNED_ALLOWED": "imbi-plugin-example,imbi-plugin-hostile,"
            "imbi-plugin-aws,imbi-plugin-github,imbi-plugin-local,imbi-plugin-logzio,"
            "imbi-plugin-oidc",
        },
    )
    assert result.returncode == 0, result.stderr
    findings = [line for line in result.stderr.splitlines() if line.startswith("?:")]
    assert len(findings) == 4, result.stderr
    hostile = [line for line in findings if "imbi-plugin-hostile" in line]
    assert len(hostile) == 1 and "hostile-import-hang" in hostile[0]
    assert "import did not finish within 1s" in hostile[0]
    for line in findings:
        assert "(plugins.W001)" in line, line
        assert "imbi-plugin-example" in line or line in hostile, line


def test_production_refuses_unsigned_plugins_outside_the_first_party_catalog() -> None:
    keys = Fernet.generate_key().decode()
    result = manage(
        "plugin",
        "list",
        env={
            "DJANGO_SETTINGS_MODULE": "imbi.settings.production",
            "SECRET_KEY": GOOD_SECRET,
            "IMBI_ENCRYPTION_KEYS": keys,
            "ALLOWED_HOSTS": "imbi.example.com",
        },
    )
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert lines["example-config"].split()[1] == "unsigned", result.stdout
    assert "not installed from a signed index" in lines["example-config"]
    assert lines["aws-ssm"].split()[1] == "loaded", result.stdout


def test_migrations_are_complete(tmp_path: Path) -> None:
    result = manage(
        "makemigrations",
        "--check",
        "--dry-run",
        env={"IMBI_DATA_DIR": str(tmp_path), "DATABASE_URL": ""},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "No changes detected" in result.stdout


def test_embedded_default_generates_and_keeps_its_keys(tmp_path: Path) -> None:
    env = {"IMBI_DATA_DIR": str(tmp_path), "DATABASE_URL": "", "REDIS_URL": ""}
    code = (
        "from django.conf import settings as s; "
        "print(s.IMBI_ENCRYPTION_KEYS[0]); print(s.DATABASES['default']['ENGINE'])"
    )
    first = manage("shell", "-c", code, env=env)
    assert first.returncode == 0, first.stderr
    second = manage("shell", "-c", code, env=env)
    assert first.stdout == second.stdout
    assert "sqlite3" in first.stdout
    assert (tmp_path / "encryption.key").stat().st_mode & 0o777 == 0o600
