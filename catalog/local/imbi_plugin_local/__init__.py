"""Imbi's built-in plugins, shipped as the ``imbi-plugin-local`` distribution.

Owns the service template both handlers share (one "Imbi local" service per organization):
``config.LocalConfiguration`` keeps configuration in the platform's own database through
host key-value storage; ``logs.LocalLogs`` reads JSON-lines files from a directory. Only the
host's ``imbi_plugin_sdk`` is imported; there are no other dependencies.
"""

from imbi_plugin_sdk import ServiceTemplate

__all__ = ["TEMPLATE"]

TEMPLATE = ServiceTemplate(
    vendor="imbi-local",
    name="Imbi local",
    category="builtin",
    icon="imbi_plugin_local:icon.svg",
    settings={"directory": ""},
)
"""The third-party-service template of both handlers; ``directory`` is where logs live."""
