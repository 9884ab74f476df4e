"""Host directories an isolated runner may read: ``permissions.operator_path_settings``.

A plugin that declares ``operator_path_settings`` (SDK contract 1.2) names service settings
whose value is a directory on the host; an operator chooses that directory and approves the
permission. ``granted_paths`` turns the call's service settings into the read-only Landlock
paths of its runner (``policy.runner_spec`` adds them to ``Policy.read_paths``, read files
and list directories only: the runner has no write or execute right there). Each path is
absolute, resolved (symlinks followed, so the grant is the real directory), existing and a
directory, inside ``IMBI_PLUGIN_PATH_ROOT`` (no directory is granted while that is unset: an
operator of one organization names the path, so the platform's operator must choose where
such paths may lie), and never a protected location: ``/``, ``/proc``, ``/sys``, ``/dev``,
``/root``, ``/etc``, ``/boot``, ``/run``, the runners' temp folders, the project's own tree
(``BASE_DIR``), the data folder (``DATA_DIR``: database files, key files) or the plugin
environments (``IMBI_PLUGIN_ROOT``), nor anything inside or containing one of them. A
refused setting is an ``InvalidInput`` naming the setting (no runner is started); an empty
setting grants nothing (the plugin reports its own "not configured").

The granted paths are part of the runner pool key, so runners are never shared between
services whose grants differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from django.conf import settings
from imbi_plugin_sdk import InvalidInput, Permissions

SYSTEM_PROTECTED = ("/proc", "/sys", "/dev", "/root", "/etc", "/boot", "/run", "/var/run")


def protected() -> tuple[Path, ...]:
    """Locations no grant may be, be inside, or contain (resolved)."""
    from .supervisor import runner_tmp_base

    places: list[str | Path] = [
        *SYSTEM_PROTECTED,
        settings.BASE_DIR,
        settings.DATA_DIR,
        runner_tmp_base(),
    ]
    plugin_root = str(getattr(settings, "IMBI_PLUGIN_ROOT", "") or "")
    if plugin_root:
        places.append(plugin_root)
    return tuple(dict.fromkeys(Path(place).resolve() for place in places))


def _overlaps(path: Path, place: Path) -> bool:
    return path == place or place in path.parents or path in place.parents


def check_directory(name: str, value: str) -> Path:
    """The directory of setting ``name`` as it may be granted, or ``InvalidInput``."""
    text = value.strip()
    path = Path(text)
    if "\x00" in text or not path.is_absolute():
        raise InvalidInput(
            f"the service setting {name} must be an absolute directory path",
            fields={name: "must be an absolute path"},
        )
    resolved = path.resolve()
    if str(resolved) == "/" or any(_overlaps(resolved, place) for place in protected()):
        raise InvalidInput(
            f"the service setting {name} names {resolved}, a system or platform location "
            "the host never lets a plugin read",
            fields={name: "a protected location"},
        )
    root_text = str(getattr(settings, "IMBI_PLUGIN_PATH_ROOT", "") or "").strip()
    if not root_text:  # secure by default: an operator of one organization names the path
        raise InvalidInput(
            f"the service setting {name} names a host directory, and this platform grants "
            "none (IMBI_PLUGIN_PATH_ROOT is not set)",
            fields={name: "host directories are not granted here (IMBI_PLUGIN_PATH_ROOT)"},
        )
    root = Path(root_text).resolve()
    if resolved != root and root not in resolved.parents:
        raise InvalidInput(
            f"the service setting {name} names {resolved}, outside the allowed root {root} "
            "(IMBI_PLUGIN_PATH_ROOT)",
            fields={name: f"must be inside {root}"},
        )
    if not resolved.is_dir():
        raise InvalidInput(
            f"the service setting {name} names {resolved}, which is not an existing directory",
            fields={name: "not an existing directory"},
        )
    return resolved


def granted_paths(permissions: Permissions, service_settings: Mapping[str, Any]) -> tuple[str, ...]:
    """The resolved directories ``permissions.operator_path_settings`` grant for these
    service settings (empty settings grant nothing); ``InvalidInput`` for a refused one."""
    granted: list[str] = []
    for name in permissions.operator_path_settings:
        value = service_settings.get(name)
        if not isinstance(value, str) or not value.strip():
            continue
        granted.append(str(check_directory(name, value)))
    return tuple(dict.fromkeys(granted))
