"""Django's admin autodiscovery entry point. The admin pages live in
``plugins_core.pages.admin`` (services, plugins, bindings), ``plugins_core.supply.admin`` and
``plugins_core.distributions.admin``.

Imported by ``django.contrib.admin``'s autodiscovery, before ``imbi.core`` locks every
registered admin down to its organization or to superusers (``imbi.core.checks``).
"""

from plugins_core.pages import admin  # noqa: F401  (registers the admin pages)
