"""The plugin framework's rows: every model of the ``plugins_core`` app, in one place.

Owns the data, never the code: manifests and handler classes live in ``imbi_plugin_sdk`` and
``plugins_core.registry``; these rows only name a handler by its entry-point name.

- ``plugins``: services, their shared credentials, installed plugins, tab bindings, connection
  checks and plugin storage;
- ``supply``: followed indexes, what they offered, organizations' supply-chain policy;
- ``distributions``: runtime-installed distributions (desired state) and what each node has.

Imports nothing above it: models may only import ``imbi.core`` and the SDK (the import
contract in pyproject.toml). The two rules that need the loaded plugins reach them through
``seams``, which ``PluginsCoreConfig.ready`` connects.
"""

from plugins_core.models.distributions import (
    DistributionArtifact,
    InstalledDistribution,
    NodeState,
    NodeStatus,
    RegistryState,
)
from plugins_core.models.plugins import (
    SERVICE_SETTING_KEYS,
    Binding,
    ConnectionCheck,
    ExecutionMode,
    Plugin,
    PluginStorage,
    PluginType,
    ProjectPlugin,
    ProjectTypePlugin,
    ServiceApplication,
    Tab,
    ThirdPartyService,
    binding_impact,
    has_nul,
    unapproved_permissions,
    validate_service_settings,
)
from plugins_core.models.supply import (
    IndexedArtifact,
    PluginIndex,
    PluginPolicy,
    index_location_error,
)

__all__ = [
    "SERVICE_SETTING_KEYS",
    "Binding",
    "ConnectionCheck",
    "DistributionArtifact",
    "ExecutionMode",
    "IndexedArtifact",
    "InstalledDistribution",
    "NodeState",
    "NodeStatus",
    "Plugin",
    "PluginIndex",
    "PluginPolicy",
    "PluginStorage",
    "PluginType",
    "ProjectPlugin",
    "ProjectTypePlugin",
    "RegistryState",
    "ServiceApplication",
    "Tab",
    "ThirdPartyService",
    "binding_impact",
    "has_nul",
    "index_location_error",
    "unapproved_permissions",
    "validate_service_settings",
]
