"""Demo data for the plugin framework, called by ``manage.py seed_demo`` (``seed_plugins``).

Owns what a fresh ``make run`` shows on a project's Configuration and Logs tabs: the built-in
``imbi-plugin-local`` installed from its service template, both plugins bound as defaults to
every project type, sample configuration per project (stored exactly as ``local-config``
stores it, including one random secret) and a JSON-lines log file per project.

Idempotent: bindings and configuration keys that exist are left alone (an operator's edits
survive); the log files are rewritten on every run so the Logs tab always has lines from the
last two hours. Works on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.db import transaction

from imbi.core.models import Organization, Project, ProjectType
from plugins_core.models import Plugin, ProjectTypePlugin
from plugins_core.provisioning.install import InstallError, install_from_template
from plugins_core.serving import health
from plugins_core.serving.resolution import expand_search_template
from plugins_core.serving.storage import DatabaseKeyValueStore

__all__ = ["CONFIG_TEMPLATE", "LOGS_TEMPLATE", "LOG_LINES", "seed_plugins"]

CONFIG_TEMPLATE = "${org}/${project}/"
LOGS_TEMPLATE = "${project}"
LOG_LINES = 200
LOG_WINDOW = timedelta(hours=2)

_ROUTES = (
    ("GET", "/health"),
    ("GET", "/v1/items"),
    ("GET", "/v1/items/{id}"),
    ("POST", "/v1/items"),
    ("PUT", "/v1/items/{id}"),
    ("DELETE", "/v1/items/{id}"),
)
_PROBLEMS = (
    ("warning", 429, "rate limit reached for client"),
    ("warning", 404, "item not found"),
    ("error", 500, "database connection reset by peer"),
    ("error", 502, "upstream timeout talking to the payments service"),
)


class _Writer(Protocol):
    def write(self, msg: str, /) -> Any: ...


def seed_plugins(org: Organization, stdout: _Writer | None = None) -> None:
    """Install, bind and fill the built-in plugins for ``org``; print one summary line."""
    out = stdout or sys.stdout
    try:
        result = install_from_template(org, "local-config")
    except InstallError as exc:
        out.write(f"Demo plugins skipped: {exc} (pip install -e catalog/local)\n")
        return
    handlers = {plugin.handler: plugin for plugin in result.plugins}
    config, logs = handlers.get("local-config"), handlers.get("local-logs")
    directory = Path(settings.DATA_DIR) / "demo-logs"
    directory.mkdir(parents=True, exist_ok=True)
    with transaction.atomic():
        service = result.service
        if service.settings.get("directory") != str(directory):
            service.settings = {**service.settings, "directory": str(directory)}
            service.save(update_fields=["settings", "updated_at"])
        bound = 0
        for project_type in ProjectType.objects.filter(organization=org).order_by("slug"):
            if config is not None:
                bound += _bind(project_type, config, CONFIG_TEMPLATE)
            if logs is not None:
                bound += _bind(project_type, logs, LOGS_TEMPLATE)
        projects = list(
            Project.objects.filter(organization=org)
            .select_related("organization", "project_type")
            .order_by("slug")
        )
        written = sum(_configuration(config, project) for project in projects) if config else 0
    files = [_log_file(directory, project) for project in projects] if logs else []
    # Test the connections now (as the periodic check would) so the badges start honest.
    health.check_all(Plugin.objects.filter(organization=org, service=service))
    state = "created" if result.created_service else "present"
    out.write(
        f"Demo plugins: service '{service.slug}' ({state}), plugins "
        f"{', '.join(sorted(p.slug for p in result.plugins))}; {bound} binding(s) added, "
        f"{written} configuration value(s) written, {len(files)} log file(s) in {directory}\n"
    )


def _bind(project_type: ProjectType, plugin: Plugin, template: str) -> int:
    """Bind ``plugin`` to its tab for ``project_type`` unless bound; 1 if a row was added."""
    existing = ProjectTypePlugin.objects.filter(project_type=project_type)
    if existing.filter(plugin=plugin).exists():
        return 0
    has_default = existing.filter(tab=plugin.plugin_type, default=True).exists()
    ProjectTypePlugin.objects.create(
        organization=project_type.organization,
        project_type=project_type,
        plugin=plugin,
        tab=plugin.plugin_type,
        default=not has_default,
        search_template=template,
    )
    return 1


def _sample_values(project: Project) -> dict[str, tuple[str, object, bool]]:
    """Key -> (data_type, value, secret) for one project."""
    return {
        "LOG_LEVEL": ("string", "info", False),
        "SERVICE_NAME": ("string", project.slug, False),
        "PUBLIC_URL": ("string", f"https://{project.slug}.demo.example.com", False),
        "HTTP_PORT": ("number", 8080, False),
        "FEATURE_NEW_CHECKOUT": ("boolean", project.slug.endswith("api"), False),
        "RETRY_POLICY": ("json", {"attempts": 3, "backoff_ms": [100, 400, 1600]}, False),
        "DATABASE_PASSWORD": ("secret", secrets.token_urlsafe(24), True),
    }


def _configuration(plugin: Plugin, project: Project) -> int:
    """Write the sample values ``project`` lacks, as local-config records; the count."""
    store = DatabaseKeyValueStore(plugin.pk)
    namespace = expand_search_template(CONFIG_TEMPLATE, project, "configuration")
    present = set(store.keys(namespace))
    modified = datetime.now(UTC).isoformat()
    written = 0
    for key, (data_type, value, secret) in _sample_values(project).items():
        if namespace + key in present:
            continue
        record = {"data_type": data_type, "value": value, "secret": secret, "modified": modified}
        store.set(namespace + key, json.dumps(record))
        written += 1
    return written


def _log_lines(project: Project, now: datetime) -> list[str]:
    # Not security relevant: reproducible demo traffic per project.
    rng = random.Random(f"{project.organization.slug}/{project.slug}")  # noqa: S311
    step = LOG_WINDOW / LOG_LINES
    lines = []
    for index in range(LOG_LINES):
        moment = now - LOG_WINDOW + step * index + timedelta(seconds=rng.uniform(0, 20))
        method, route = rng.choice(_ROUTES)
        path = route.replace("{id}", str(rng.randint(1, 999)))
        roll = rng.random()
        level, status, message = "info", 200 if method != "POST" else 201, ""
        if roll < 0.12:
            level, status, message = rng.choice(_PROBLEMS)
        elif roll < 0.22:
            level = "debug"
            message = f"cache {'hit' if rng.random() < 0.7 else 'miss'} for {path}"
        duration = round(rng.lognormvariate(3.2, 0.6) * (8 if status >= 500 else 1), 1)
        lines.append(
            json.dumps(
                {
                    "timestamp": min(moment, now).isoformat(),
                    "level": level,
                    "message": message or f"{method} {path} {status} in {duration}ms",
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": duration,
                    "request_id": f"{rng.getrandbits(64):016x}",
                    "service": project.slug,
                }
            )
        )
    return lines


def _log_file(directory: Path, project: Project) -> Path:
    """(Re)write ``<directory>/<project>.jsonl`` atomically with fresh demo lines."""
    path = directory / f"{project.slug}.jsonl"
    text = "\n".join(_log_lines(project, datetime.now(UTC))) + "\n"
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=f".{project.slug}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path
