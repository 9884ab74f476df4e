"""Where a node keeps its plugin environments (``IMBI_PLUGIN_ROOT``), and its name.

The folder layout ``environments`` builds and ``integrity`` checks: ``envs/<key>/`` per
environment (``READY`` marks a finished one, ``RETIRED`` one no longer desired) and its
site-packages. Kept apart so that ``integrity`` need not import ``environments`` (which runs
``integrity`` on what it builds); ``environments`` re-exports every name.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

from django.conf import settings

__all__ = ["READY", "RETIRED", "env_path", "node_id", "pyvenv_cfg", "root", "site_packages"]

READY, RETIRED = ".imbi-ready", ".imbi-retired"


def node_id() -> str:
    return str(settings.IMBI_NODE_ID or socket.gethostname())


def root() -> Path:
    return Path(settings.IMBI_PLUGIN_ROOT)


def site_packages(env: Path) -> Path:
    return (
        env / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    )


def pyvenv_cfg() -> str:
    """The ``pyvenv.cfg`` the platform writes into every environment (over the installer's):
    integrity compares it byte for byte and nothing ever reads a value back from it; runners
    start from the host's interpreter, never from ``bin/python``, so ``home`` decides nothing
    at run time."""
    home = os.path.dirname(os.path.realpath(sys.executable))
    version = ".".join(str(part) for part in sys.version_info[:3])
    return f"home = {home}\ninclude-system-site-packages = false\nversion = {version}\n"


def env_path(key: str) -> Path:
    return root() / "envs" / key
