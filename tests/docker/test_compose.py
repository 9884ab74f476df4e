"""docker/ hygiene, read from the files: what goes into the image, how processes start, and
that compose lets docker/.env set every variable (test_compose_commands runs the commands)."""

from __future__ import annotations

import fnmatch
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DOCKER / "compose.yaml").read_text()))


def app_services() -> dict[str, Any]:
    return {name: spec for name, spec in compose()["services"].items() if "build" in spec}


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (DOCKER / "Dockerfile").read_text().replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def dockerignore() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, enough for these checks: a pattern matches the path or a parent."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        candidates = [pattern, pattern.removeprefix("**/")]
        if any(fnmatch.fnmatch(p, c) for p in prefixes for c in candidates) or any(
            fnmatch.fnmatch(part, pattern.removeprefix("**/"))
            for part in parts
            if pattern.startswith("**/")
        ):
            result = not negate
    return result


# --- the image -------------------------------------------------------------------------------


def test_dockerignore_keeps_secrets_vcs_and_venvs_out_of_the_image() -> None:
    patterns = dockerignore()
    for path in (
        ".git/config",
        ".venv/bin/python",
        "data/encryption.key",
        "data/secret.key",
        "data/imbi.sqlite3",
        "docker/.env",
        ".env",
        "plugins_core/__pycache__/models.cpython-311.pyc",
        "imbi_platform.egg-info/PKG-INFO",
        "staticfiles/admin/css/base.css",
        ".pytest_cache/v/cache",
    ):
        assert ignored(path, patterns), f"{path} would be copied into the image"
    for path in (
        "imbi/settings/production.py",
        "plugins_core/static/plugins_core/project.js",
        "catalog/local/pyproject.toml",
        "templates/plugins_core/project.html",
        "manage.py",
        "pyproject.toml",
        "README.md",
        "docker/collectstatic.sh",
    ):
        assert not ignored(path, patterns), f"{path} is needed in the image but ignored"


def test_every_tracked_file_the_dockerfile_copies_is_in_the_build_context() -> None:
    patterns = dockerignore()
    for keyword, rest in dockerfile_instructions():
        if keyword == "COPY":
            *sources, _ = rest.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not ignored(source, patterns), f"COPY {source} but .dockerignore drops it"


def test_dockerfile_runs_unprivileged_production_with_the_shared_gunicorn_config() -> None:
    instructions = dockerfile_instructions()
    keywords = [k for k, _ in instructions]
    env = " ".join(rest for k, rest in instructions if k == "ENV")
    assert "DJANGO_SETTINGS_MODULE=imbi.settings.production" in env
    assert "COPY . " not in " ".join(f"{k} {r}" for k, r in instructions)  # explicit copies
    user = [rest for k, rest in instructions if k == "USER"]
    assert user and user[-1] not in {"root", "0"}
    assert keywords.index("USER") > max(i for i, k in enumerate(keywords) if k == "RUN")
    cmd = [rest for k, rest in instructions if k == "CMD"]
    assert cmd == ['["gunicorn", "-c", "python:imbi.gunicorn_conf"]']  # exec form, one config
    assert any(k == "HEALTHCHECK" and "imbi.healthcheck" in r for k, r in instructions)
    build = " ".join(rest for k, rest in instructions if k == "RUN")
    assert "docker/collectstatic.sh" in build  # hashed, compressed static files in the image
    script = (DOCKER / "collectstatic.sh").read_text()
    assert "exec python manage.py collectstatic --noinput" in script
    assert "imbi.settings.production" in script


def test_collectstatic_script_is_valid_shell() -> None:
    result = subprocess.run(["sh", "-n", str(DOCKER / "collectstatic.sh")], check=False)
    assert result.returncode == 0


# --- compose -----------------------------------------------------------------------------------


def test_compose_has_a_one_shot_migrate_that_every_app_process_waits_for() -> None:
    services = app_services()
    assert set(services) == {"migrate", "web", "worker", "beat"}
    assert services["migrate"]["command"] == ["python", "manage.py", "migrate", "--noinput"]
    assert services["migrate"]["restart"] == "no"
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["migrate"] == {
            "condition": "service_completed_successfully"
        }
        assert "migrate" not in " ".join(services[name]["command"])


def test_every_command_runs_its_program_as_the_main_process() -> None:
    """Exec form everywhere; a shell only where it ``exec``s, so SIGTERM reaches the server."""
    for name, spec in compose()["services"].items():
        commands = [spec.get("command")]
        test = spec.get("healthcheck", {}).get("test")
        if test and test[0] == "CMD-SHELL":
            assert test[1].startswith("exec "), f"{name} health check does not exec"
        for command in commands:
            if command is None:
                continue
            assert isinstance(command, list), f"{name}: shell-form command"
            if command[0] in {"sh", "bash"}:
                assert command[2].startswith("exec "), f"{name}: sh -c without exec"
    assert app_services()["web"]["command"] == ["gunicorn", "-c", "python:imbi.gunicorn_conf"]
    assert app_services()["web"]["healthcheck"]["test"] == [
        "CMD",
        "python",
        "-m",
        "imbi.healthcheck",
    ]
    assert app_services()["worker"]["command"][:4] == ["celery", "-A", "imbi.celery", "worker"]
    assert app_services()["beat"]["command"][:4] == ["celery", "-A", "imbi.celery", "beat"]


def test_docker_env_can_set_every_variable() -> None:
    """``environment:`` beats ``env_file:``, so every value there must come from ``${...}``."""
    for name, spec in app_services().items():
        assert {"path": ".env", "required": False} in spec["env_file"], name
        for variable, value in spec["environment"].items():
            assert re.fullmatch(rf"\$\{{{variable}(:-.*|:\?.*)?\}}", str(value)), (
                f"{name}: {variable}={value} cannot be overridden from docker/.env"
            )
    postgres = compose()["services"]["postgres"]["environment"]
    assert postgres["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert "imbi:imbi@" not in (DOCKER / "compose.yaml").read_text()  # no fixed password


def test_plugins_get_their_volumes_and_the_app_port_is_for_the_proxy_only() -> None:
    data = compose()
    for name, spec in app_services().items():
        assert "local-logs:/var/log/imbi:ro" in spec["volumes"], name
    assert "local-logs" in data["volumes"]
    assert data["services"]["web"]["ports"] == ["127.0.0.1:${WEB_PORT:-8000}:8000"]
