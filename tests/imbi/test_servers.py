"""Server entry points: safe defaults and refused starts that stop instead of looping.

- gunicorn with ``imbi.gunicorn_conf`` and a refused production start: the master exits
  non-zero within 10 s with the one-line reason (no worker restart loop, no traceback).
- WSGI, ASGI and the Celery app default to production settings; ``manage.py`` keeps the dev
  default but says so; production refuses to start without Redis unless single-node.
- ``python -m imbi.healthcheck`` passes through the redirect and host checks a proxy passes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from imbi import healthcheck
from imbi.testing.services import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
GOOD_SECRET = "k3J9-q0Zx7Lw2Vb8Nn5Rt4Yy6Uu1Ii0Oo9Pp8Aa7Ss6Dd5Ff4Gg3Hh2Jj1Kk0Ll9Mm8"
SETTINGS_VARIABLES = {
    "DJANGO_SETTINGS_MODULE",
    "SECRET_KEY",
    "IMBI_ENCRYPTION_KEYS",
    "IMBI_SINGLE_NODE",
    "CSRF_TRUSTED_ORIGINS",
}


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS_VARIABLES}
    return {**env, **extra}


def production_env(**extra: str) -> dict[str, str]:
    return clean_env(
        DJANGO_SETTINGS_MODULE="imbi.settings.production",
        SECRET_KEY=GOOD_SECRET,
        IMBI_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        ALLOWED_HOSTS="imbi.example.com",
        **extra,
    )


def python(code: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("missing", "reason"),
    [
        (
            "IMBI_ENCRYPTION_KEYS",
            "imbi: refusing to start: IMBI_ENCRYPTION_KEYS must list at least one Fernet key "
            "(the first one encrypts)",
        ),
        (
            "SECRET_KEY",
            "imbi: refusing to start: SECRET_KEY must be set to a random value of at least 50 "
            "characters",
        ),
    ],
)
def test_gunicorn_master_exits_with_the_reason_when_production_refuses(
    tmp_path: Path, missing: str, reason: str
) -> None:
    env = production_env(PORT=str(free_port()), WEB_CONCURRENCY="2")
    del env[missing]
    env.pop("DJANGO_SETTINGS_MODULE")  # the server's own default must be production
    started = time.monotonic()
    process = subprocess.Popen(
        [str(BIN / "gunicorn"), "-c", "python:imbi.gunicorn_conf"],
        cwd=tmp_path,  # like any server: not from the repository root
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        pytest.fail(f"gunicorn still running after 10 s:\n{stderr[-2000:]}")
    elapsed = time.monotonic() - started
    assert process.returncode != 0
    assert elapsed < 10
    output = stdout + stderr
    assert [line for line in output.splitlines() if "refusing" in line] == [reason]
    assert stderr.strip().splitlines()[-1] == reason
    assert "Traceback" not in output
    assert "Booting worker" not in output  # refused in the master, before any fork


@pytest.mark.parametrize("attempt", range(3))
def test_even_a_bare_gunicorn_halts_instead_of_restarting_workers(
    tmp_path: Path, attempt: int
) -> None:
    """Without imbi.gunicorn_conf the refusal happens in each worker; its exit status (3,
    gunicorn's boot error) makes the master halt rather than loop. With several workers only
    the first one refuses (imbi.refusal), so gunicorn never trips over a second halt (it used
    to exit 1 with a traceback now and then: hence three attempts)."""
    env = production_env()
    del env["SECRET_KEY"]
    process = subprocess.run(
        [
            str(BIN / "gunicorn"),
            "-b",
            f"127.0.0.1:{free_port()}",
            "-w",
            "4",
            "--no-control-socket",
            "imbi.wsgi",
        ],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert process.returncode == 3, process.stderr[-3000:]
    assert "Reason: Worker failed to boot." in process.stderr
    assert "Traceback" not in process.stderr
    assert [line for line in process.stderr.splitlines() if "refusing" in line] == [
        "imbi: refusing to start: SECRET_KEY must be set to a random value of at least 50 "
        "characters"
    ]


def test_gunicorn_master_exits_when_production_has_no_redis(tmp_path: Path) -> None:
    env = production_env(PORT=str(free_port()), REDIS_URL="")
    process = subprocess.run(
        [str(BIN / "gunicorn"), "-c", "python:imbi.gunicorn_conf"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert process.returncode != 0
    assert (
        process.stderr.strip()
        .splitlines()[-1]
        .startswith("imbi: refusing to start: REDIS_URL must be set")
    )


def test_production_without_redis_runs_single_node_only_when_asked() -> None:
    code = "from django.conf import settings as s; print(s.CACHES['default']['BACKEND'])"
    refused = python(f"import django; django.setup(); {code}", production_env(REDIS_URL=""))
    assert refused.returncode != 0
    assert "IMBI_SINGLE_NODE=1" in refused.stderr
    single = python(
        f"import django; django.setup(); {code}",
        production_env(REDIS_URL="", IMBI_SINGLE_NODE="1"),
    )
    assert single.returncode == 0, single.stderr
    assert single.stdout.strip() == "django.core.cache.backends.locmem.LocMemCache"


def test_redirect_and_hsts_are_configurable() -> None:
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SECURE_PROXY_SSL_HEADER, s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, "
        "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, s.SECURE_REDIRECT_EXEMPT)"
    )
    defaults = python(code, production_env())
    assert defaults.stdout.strip() == (
        "('HTTP_X_FORWARDED_PROTO', 'https') True 31536000 True True "
        "['^healthz$', '^livez$', '^readyz$']"
    ), defaults.stderr
    changed = python(
        code,
        production_env(
            SECURE_SSL_REDIRECT="0",
            SECURE_HSTS_SECONDS="300",
            SECURE_HSTS_INCLUDE_SUBDOMAINS="false",
            SECURE_HSTS_PRELOAD="no",
        ),
    )
    assert changed.stdout.strip() == (
        "('HTTP_X_FORWARDED_PROTO', 'https') False 300 False False "
        "['^healthz$', '^livez$', '^readyz$']"
    ), changed.stderr


def test_csrf_trusted_origins_need_a_scheme() -> None:
    result = python(
        "import django; django.setup()",
        production_env(CSRF_TRUSTED_ORIGINS="imbi.example.com"),
    )
    assert result.returncode != 0
    assert result.stderr.strip() == (
        "imbi: refusing to start: CSRF_TRUSTED_ORIGINS entry 'imbi.example.com' needs a scheme, "
        "e.g. https://imbi.example.com"
    )


@pytest.mark.parametrize(
    "load",
    [
        "import imbi.wsgi",
        "import imbi.asgi",
        "from imbi.celery import app; app.conf.broker_url",  # Celery reads settings lazily
    ],
)
def test_server_entry_points_default_to_production(load: str) -> None:
    refused = python(load, clean_env())
    assert refused.returncode != 0
    assert refused.stderr.strip().startswith("imbi: refusing to start:")
    env = production_env()
    del env["DJANGO_SETTINGS_MODULE"]
    loaded = python(
        f"{load}; from django.conf import settings; import os; "
        "print(os.environ['DJANGO_SETTINGS_MODULE'], settings.SECURE_SSL_REDIRECT)",
        env,
    )
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.strip() == "imbi.settings.production True"


def test_web_processes_do_not_import_celery() -> None:
    result = python("import sys, imbi.wsgi; print('celery' in sys.modules)", production_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


def test_manage_py_says_when_it_falls_back_to_the_dev_settings(tmp_path: Path) -> None:
    env = clean_env(IMBI_DATA_DIR=str(tmp_path), DATABASE_URL="", REDIS_URL="")
    implicit = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert implicit.returncode == 0, implicit.stderr
    assert implicit.stderr.splitlines()[0] == (
        "manage.py: DJANGO_SETTINGS_MODULE is not set; using imbi.settings.dev (the embedded "
        "developer default; production needs imbi.settings.production)"
    )
    explicit = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "imbi.settings.dev"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert explicit.returncode == 0
    assert "DJANGO_SETTINGS_MODULE is not set" not in explicit.stderr


def test_make_targets_name_their_settings() -> None:
    makefile = (ROOT / "Makefile").read_text()
    for target in ("migrate:", "run:"):
        body = makefile.split(f"\n{target}", 1)[1].split("\n\n", 1)[0]
        commands = [line for line in body.splitlines() if line.startswith("\t")]
        assert commands and all("$(DEV)" in line for line in commands), body
    pytest_body = makefile.split("\npytest:", 1)[1].split("\n\n", 1)[0]
    assert "$(TESTING)" in pytest_body
    assert "DEV := DJANGO_SETTINGS_MODULE=imbi.settings.dev" in makefile
    assert "TESTING := DJANGO_SETTINGS_MODULE=imbi.settings.test" in makefile


# --- the health check command ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "host"),
    [
        ("imbi.example.com,localhost", "imbi.example.com"),
        ("*,imbi.example.com", "imbi.example.com"),
        (".example.com", "healthcheck.example.com"),
        ("*", "localhost"),
    ],
)
def test_health_check_uses_a_host_the_app_accepts(
    monkeypatch: pytest.MonkeyPatch, allowed: str, host: str
) -> None:
    monkeypatch.setenv("ALLOWED_HOSTS", allowed)
    assert healthcheck.health_host() == host


def test_health_check_fails_with_one_line_when_nothing_listens() -> None:
    ok, message = healthcheck.check(free_port(), timeout=1)
    assert not ok
    assert message.startswith("healthz: cannot reach 127.0.0.1:")
    assert "\n" not in message
