"""The admin of plugin data, and the routes of the install wizard and the registry page.

Owns the Django admin of the plugin framework, one module per concept:

* ``services``: ``ThirdPartyServiceAdmin`` with its credentials and plugins inlines;
* ``plugins``: ``PluginAdmin`` (options, execution mode, enable/disable, approvals);
* ``bindings``: ``BindingAdmin`` for project-type and project bindings;
* ``site``: the admin's own pages wired under ``/admin/plugins_core/plugin/`` and
  ``/admin/plugins_core/thirdpartyservice/`` (``plugins_core.pages.wizard``, Install a
  plugin; ``plugins_core.pages.plugin_pages.RegistryView``; state switch; connection tests).

Importing this package registers every ModelAdmin (``plugins_core.apps`` does so in
``ready()``), including the supply-chain admin (``plugins_core.supply.admin``: indexes,
install records) and the distributions page (``plugins_core.distributions.admin``).

Secrets are write-only here: a service's credentials and a plugin's or binding's secret
options are never rendered back, only "set" / "not set"; a blank field keeps the stored
value. Scoping and auditing come from ``imbi.core.admin_scoping``: staff who are not
superusers see and change only rows of organizations they administer, and every add, change
and delete is audited (service settings with their old and new values, plugin options by
name only, the enabled switch of the service page's plugin inline as ``plugin.state``).

Exposes the admin classes and forms below. May import ``pages.forms``, ``pages.views``,
``pages.wizard`` and every lower layer; nothing imports it but ``plugins_core.apps``.
"""

from __future__ import annotations

from plugins_core.pages.admin.bindings import (
    BindingAdmin,
    BindingAdminForm,
    BindingOptionsForm,
    binding_option_context,
)
from plugins_core.pages.admin.plugins import PluginAdmin, PluginModeForm, PluginOptionsForm
from plugins_core.pages.admin.services import (
    ManifestCredentialsForm,
    PluginInline,
    ServiceApplicationForm,
    ServiceApplicationInline,
    ServiceSettingsForm,
    ThirdPartyServiceAdmin,
    service_manifests,
    service_template,
)
from plugins_core.pages.admin.site import TestConnectionLink, plugin_urls, service_urls

# isort: split
# Registered by importing them: the supply-chain admin (indexes, install records) and the
# plugin distributions page.
from plugins_core.distributions import admin as distribution_admin
from plugins_core.supply import admin as supply_admin

__all__ = [
    "BindingAdmin",
    "BindingAdminForm",
    "BindingOptionsForm",
    "ManifestCredentialsForm",
    "PluginAdmin",
    "PluginInline",
    "PluginModeForm",
    "PluginOptionsForm",
    "ServiceApplicationForm",
    "ServiceApplicationInline",
    "ServiceSettingsForm",
    "TestConnectionLink",
    "ThirdPartyServiceAdmin",
    "binding_option_context",
    "distribution_admin",
    "plugin_urls",
    "service_manifests",
    "service_template",
    "service_urls",
    "supply_admin",
]
