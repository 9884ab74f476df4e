"""Where a node keeps its plugin environments (``IMBI_PLUGIN_ROOT``), and its name.

The folder layout ``environments`` builds and ``integrity`` checks: ``envs/<key>/`` per
environment (``READY`` marks a finished one, ``RETIRED`` one no longer desired) and its
site-packages. Kept apart so that ``integrity`` need not import ``environments`` (which runs
``integrity`` on what it builds); ``environments`` re-exports every name.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from django.conf import settings

__all__ = ["READY", "RETIRED", "env_path", "node_id", "root", "site_packages"]

READY, RETIRED = ".imbi-ready", ".imbi-retired"


def node_id() -> str:
    return str(settings.IMBI_NODE_ID or socket.gethostname())


def root() -> Path:
    return Path(settings.IMBI_PLUGIN_ROOT)


def site_packages(env: Path) -> Path:
    return (
        env / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    )


def env_path(key: str) -> Path:
    return root() / "envs" / key
