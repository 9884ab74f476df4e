"""Imbi's built-in plugins, shipped as the ``imbi-plugin-local`` distribution.

Owns the service template both handlers share (one "Imbi local" service per organization):
``config.LocalConfiguration`` keeps configuration in the platform's own database through
host key-value storage; ``logs.LocalLogs`` reads JSON-lines files from a directory. Only the
host's ``imbi_plugin_sdk`` is imported; there are no other dependencies.
"""

from imbi_plugin_sdk import OptionField, ServiceTemplate

__all__ = ["DIRECTORY_PATTERN", "ROOT_VARIABLE", "TEMPLATE"]

ROOT_VARIABLE = "IMBI_LOCAL_LOGS_ROOT"
"""Environment variable naming the directory every log directory must be inside (unset: any
absolute directory)."""

DIRECTORY_PATTERN = r"/(?!(?:.*/)?\.\.(?:/|$)).*"
"""An absolute path with no ``..`` component."""

TEMPLATE = ServiceTemplate(
    vendor="imbi-local",
    name="Imbi local",
    category="builtin",
    icon="imbi_plugin_local:icon.svg",
    settings={"directory": ""},
    setting_fields=(
        OptionField(
            name="directory",
            label="Log directory",
            default="",
            pattern=DIRECTORY_PATTERN,
            pattern_help="an absolute path without '..'",
            help=f"Where the .jsonl log files are; inside ${ROOT_VARIABLE} when that is set.",
        ),
    ),
)
"""The third-party-service template of both handlers; ``directory`` is where logs live."""
