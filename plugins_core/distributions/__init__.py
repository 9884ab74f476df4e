"""Runtime plugin distributions: what should be installed, and what each node has.

Owns the desired state (``desired``: install, upgrade and remove a distribution, one
transaction and one generation each), the per-node virtual environments (``environments``),
integrity at rest (``integrity``: the files of an environment against its signed manifest),
the node reports (``nodes``), generation switching in every process (``runtime``), the
Celery broadcast that nudges nodes (``control``) and the admin page (``admin``).

Exposes those modules; callers import them by name (``from plugins_core.distributions
import desired``). May import ``serving``, ``registry``, ``isolation`` and ``models`` (never
``supply``, ``provisioning``, the pages or the API).

Before the layout move this path was the module now at ``desired``; its names are still
forwarded from here, with a ``DeprecationWarning``.
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any


def __getattr__(name: str) -> Any:
    """``plugins_core.distributions.install`` and friends: the old module's names."""
    if name.startswith("__"):
        raise AttributeError(name)
    desired = importlib.import_module("plugins_core.distributions.desired")
    if not hasattr(desired, name):
        raise AttributeError(f"module 'plugins_core.distributions' has no attribute {name!r}")
    warnings.warn(
        f"plugins_core.distributions.{name} moved to plugins_core.distributions.desired.{name}",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(desired, name)
