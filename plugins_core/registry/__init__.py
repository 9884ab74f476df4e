"""The plugin registry: an immutable snapshot of the ``imbi.plugins`` entry-point group.

What it owns: which plugins this process has, and what became of each one. Every entry
point is discovered, refused before import (SDK range, supply-chain guard), imported here
(trusted distributions) or in a sandboxed runner with a deadline (the others), validated
(handler class, manifest, ``api_version``) and recorded as an ``Entry`` with a ``Status`` and
a reason. A plugin that fails never stops the service; with ``strict=True``
(``IMBI_PLUGINS_STRICT=1``) the first failure raises its named ``RegistryError`` subclass.

Read it in this order:

1. ``snapshot``: the values (``Status``, ``Entry``, ``Snapshot``, ``Candidate``), the errors,
   and ``assemble``, which settles contested names and slugs;
2. ``loading``: discovery, SDK range checks, the trust policy (``configure``,
   ``is_trusted``), examining candidates in this process or in a sandboxed runner, and
   ``build_snapshot``, the one function that makes a snapshot from candidates; ``trust``:
   trust by bytes (the trust lock ``manage.py plugin trust --record`` writes);
3. ``live``: this process's published snapshot (``current``, ``rebuild``, ``set_managed``,
   ``wait_loaded``, ``settled``, ``set_guard``), its background inspection thread and fork
   handling. All of the registry's mutable state lives there;
4. ``checks``: the Django system check that reports plugins that failed to load.

What it exposes: the names re-exported below (``from plugins_core import registry;
registry.current()``). What it may import: ``plugins_core.isolation`` (the sandboxed
runner), ``plugins_core.models`` and the SDK (``imbi_plugin_sdk``); never a layer above
(serving, distributions, ...). Apart from ``checks``, it imports nothing from Django.
"""

from __future__ import annotations

from plugins_core.registry.live import (
    current,
    inspecting_here,
    rebuild,
    retry_after,
    set_guard,
    set_managed,
    settled,
    wait_loaded,
)
from plugins_core.registry.loading import (
    ENTRY_POINT_GROUP,
    FIRST_PARTY,
    HOST_SDK_VERSION,
    SDK_DISTRIBUTION,
    Settings,
    Untrusted,
    build_snapshot,
    configure,
    discover,
    is_trusted,
    normalize,
    sdk_range_of,
    sdk_range_problem,
    settings,
    trust_note,
    uses_legacy_sdk,
)
from plugins_core.registry.snapshot import (
    HOST_API_VERSION,
    Candidate,
    DuplicatePluginError,
    Entry,
    Guard,
    IncompatiblePluginError,
    InvalidPluginError,
    PluginImportError,
    Refusals,
    RefusedPluginError,
    RegistryError,
    Snapshot,
    Status,
    assemble,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "FIRST_PARTY",
    "HOST_API_VERSION",
    "HOST_SDK_VERSION",
    "SDK_DISTRIBUTION",
    "Candidate",
    "DuplicatePluginError",
    "Entry",
    "Guard",
    "IncompatiblePluginError",
    "InvalidPluginError",
    "PluginImportError",
    "Refusals",
    "RefusedPluginError",
    "RegistryError",
    "Settings",
    "Snapshot",
    "Status",
    "Untrusted",
    "assemble",
    "build_snapshot",
    "configure",
    "current",
    "discover",
    "inspecting_here",
    "is_trusted",
    "normalize",
    "rebuild",
    "retry_after",
    "sdk_range_of",
    "sdk_range_problem",
    "set_guard",
    "set_managed",
    "settings",
    "settled",
    "trust_note",
    "uses_legacy_sdk",
    "wait_loaded",
]
