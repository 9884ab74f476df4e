"""The plugin framework's host: the parts of the system, one package each.

The plugin SDK (``imbi_plugin_sdk``) is a separate, Django-free distribution; this package
is the host around it. Read it top-down (docs/architecture.md has the picture); each layer
imports only the layers below it, which ``make lint`` checks (import-linter contracts in
pyproject.toml):

``api`` · ``pages``
    The REST API and the HTML pages (admin, install wizard, project pages, catalog). They
    parse, authorize, call a function of a lower layer and render.
``provisioning``
    What operators and owners write: install from a template, services and credentials,
    bindings, enabling, the demo data.
``supply``
    The supply chain: followed indexes, trust roots, signing, verification, dependencies.
``distributions``
    Runtime-installed distributions: desired state, per-node environments, integrity at rest,
    node reports, generation switching.
``serving``
    The request path: resolution, confinement, hosts, tabs, health, caching and the runner seam.
``registry`` · ``isolation``
    The immutable snapshot of loaded plugins, and the sandboxed runtime of untrusted ones.
``models``
    Every row of the app.

``sdk`` is a deprecated re-export of ``imbi_plugin_sdk``. The flat module paths of earlier
releases (``plugins_core.hosts``, ``plugins_core.runner``, ...) still import, with a
``DeprecationWarning`` naming the new path (``_MOVED`` below). Importing this package imports
no Django.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

_MOVED = {
    "admin_supply": "plugins_core.supply.admin",
    "bindings": "plugins_core.provisioning.bindings",
    "caching": "plugins_core.serving.caching",
    "catalog": "plugins_core.pages.catalog",
    "checks": "plugins_core.registry.checks",
    "confinement": "plugins_core.serving.confinement",
    "control": "plugins_core.distributions.control",
    "demo": "plugins_core.provisioning.demo",
    "dependencies": "plugins_core.supply.dependencies",
    "distribution_admin": "plugins_core.distributions.admin",
    "distribution_models": "plugins_core.models.distributions",
    "environments": "plugins_core.distributions.environments",
    "forms": "plugins_core.pages.forms",
    "health": "plugins_core.serving.health",
    "hosts": "plugins_core.serving.hosts",
    "icons": "plugins_core.provisioning.icons",
    "index": "plugins_core.supply.index",
    "index_install": "plugins_core.supply.install",
    "install": "plugins_core.provisioning.install",
    "integrity": "plugins_core.distributions.integrity",
    "invalidation": "plugins_core.serving.invalidation",
    "lifecycle": "plugins_core.provisioning.lifecycle",
    "nodes": "plugins_core.distributions.nodes",
    "projects": "plugins_core.serving.projects",
    "resolution": "plugins_core.serving.resolution",
    "runner": "plugins_core.serving.runner",
    "runtime": "plugins_core.distributions.runtime",
    "services": "plugins_core.provisioning.services",
    "signing": "plugins_core.supply.signing",
    "storage": "plugins_core.serving.storage",
    "supply_errors": "plugins_core.supply.errors",
    "tabs": "plugins_core.serving.tabs",
    "trust": "plugins_core.supply.trust",
    "verification": "plugins_core.supply.verification",
    "views": "plugins_core.pages.views",
    "wizard": "plugins_core.pages.wizard",
}
"""Module paths of releases before the layout move (issue 18) → where the module lives now.
(``plugins_core.distributions``, once a module, is now the package; its old names are
forwarded by that package's ``__getattr__``. ``plugins_core.admin`` is still Django's admin
autodiscovery module, importing the admin pages from ``plugins_core.pages.admin``.)"""


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Import ``plugins_core.<old>`` as the module that now holds it, with a warning."""

    def find_spec(
        self, fullname: str, path: object = None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        head, _, old = fullname.partition(".")
        if head != __name__ or old not in _MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        new = _MOVED[spec.name.partition(".")[2]]
        warnings.warn(
            f"{spec.name} moved to {new}; import it from there",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(new)

    def exec_module(self, module: ModuleType) -> None:
        """The module is the new one, already executed."""


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())
