"""Run a plugin's own tests isolated: ``isolated(handler, network_hosts=...)``.

Returns an instance of a subclass of the handler's class whose plugin methods run in a
sandboxed runner process (the same one production uses) with the handler's context and
credentials, so contract kits and ``isinstance`` checks see the same class. With
``network_hosts`` the runner may reach only those ``host:port``s (tests point the plugin's
declared host at their loopback emulator, so the egress broker connects to the emulator's
port and refuses every other; the other permissions stay the manifest's, and the context's
storage and project metadata are answered through host requests as in production). Each
stand-in has its own circuit breaker, so one test's failures never open another test's
circuit.

Storage: in the runner, ``context.storage`` of a plugin whose manifest declares
``permissions.storage`` sends every operation back to the host (``HostStorage``), and the
host side answers from the handler's own ``context.storage`` (or ``storage=``), with the
production checks (declared, bounded keys and values; ``upstream_unavailable`` when there
is no store). So a test gives the handler a ``MemoryKeyValueStore`` and inspects that same
store in both modes.

Host directories: a plugin declaring ``permissions.operator_path_settings`` is granted, as in
production, the directories its handler's ``context.service_settings`` name there (read
only, checked by ``paths.granted_paths``), so a test writes its files into a temporary
directory and puts that directory in the handler's service settings.

The handler's entry point is looked up in the registry's current snapshot, which
``PluginsCoreConfig.ready`` hands in (``use_registry``): ``isolation`` imports nothing above it.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Iterable
from typing import Any

from imbi_plugin_sdk import KeyValueStore, PluginHandler

from .breaker import MemoryBreaker
from .host import call_entry

METHODS = (
    "test_connection",
    "list_keys",
    "get_values",
    "set_value",
    "delete_key",
    "search",
    "histogram",
)


_UNSET: Any = object()

_entries: Callable[[], Iterable[Any]] | None = None


def use_registry(entries: Callable[[], Iterable[Any]]) -> None:
    """Where ``isolated`` finds entry points: the registry's current entries (set at start-up
    by ``PluginsCoreConfig.ready``; each entry has ``handler`` and is a ``RunnerEntry``)."""
    global _entries
    _entries = entries


def isolated(
    handler: PluginHandler,
    *,
    network_hosts: tuple[str, ...] | None = None,
    storage: KeyValueStore | None = _UNSET,
) -> Any:
    """``handler`` as a stand-in whose calls run in a sandboxed runner (module docstring).
    ``storage``: the store the host side serves (default: ``handler.context.storage``)."""
    cls = type(handler)
    if _entries is None:
        raise RuntimeError("isolated() needs Django set up (PluginsCoreConfig.ready)")
    entries = [e for e in _entries() if e.handler is cls]
    if not entries:
        raise LookupError(f"{cls.__qualname__} is not an installed entry point")
    entry = entries[0]
    permissions = (
        None
        if network_hosts is None
        else dataclasses.replace(
            # only these hosts: an operator-chosen host setting would let the test's URL in
            cls.manifest.permissions,
            network_hosts=network_hosts,
            operator_host_settings=(),
        )
    )
    breaker = MemoryBreaker(fail_max=1_000_000)

    def remote(name: str) -> Callable[..., Any]:
        signature = inspect.signature(getattr(cls, name))

        def method(self: PluginHandler, *args: Any) -> Any:
            bound = signature.bind(self, *args)
            bound.apply_defaults()  # the wire contract takes every argument, defaults included
            args = bound.args[1:]
            context = self.context
            if storage is not _UNSET:
                context = dataclasses.replace(context, storage=storage)
            return call_entry(
                entry,
                context,
                self.credentials,
                name,
                *args,
                permissions=permissions,
                circuit=breaker,
            )

        method.__name__ = name
        return method

    namespace: dict[str, Any] = {name: remote(name) for name in METHODS if hasattr(cls, name)}
    namespace["__doc__"] = f"{cls.__name__}, run in a sandboxed runner."
    subclass = type(f"Isolated{cls.__name__}", (cls,), namespace)
    return subclass(handler.context, handler.credentials)
