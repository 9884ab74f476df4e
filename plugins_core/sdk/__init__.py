"""Deprecated: the plugin SDK moved to the ``imbi-plugin-sdk`` distribution (``imbi_plugin_sdk``).

This package is a thin re-export kept for one minor version of the contract. Importing it,
or any name or submodule from it, emits a ``DeprecationWarning`` naming the new import, and
records the importing module in ``LEGACY_IMPORTERS`` so the registry can mark the plugins
that still use it (``manage.py plugin list`` shows them). Nothing else lives here.
"""

from __future__ import annotations

import importlib
import sys
import warnings
from types import FrameType, ModuleType
from typing import Any

NEW_IMPORT = "imbi_plugin_sdk"
LEGACY_IMPORTERS: set[str] = set()
"""Names of the modules that imported ``plugins_core.sdk`` (or a name from it)."""

_SUBMODULES = ("context", "errors", "interfaces", "manifest", "testkit", "types")

__all__ = list(importlib.import_module(NEW_IMPORT).__all__)  # for star imports

_SKIP = ("importlib", "plugins_core.sdk", "<frozen")


def _importer(frame: FrameType | None) -> str:
    """The first module on the stack outside the import machinery and this package."""
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        filename = frame.f_code.co_filename
        if not name.startswith(_SKIP) and not filename.startswith("<frozen"):
            return name
        frame = frame.f_back
    return ""


def note_legacy_use(old: str, frame: FrameType | None) -> None:
    """Record who imported ``old`` and warn them, naming the new import."""
    importer = _importer(frame)
    if importer:
        LEGACY_IMPORTERS.add(importer)
    new = old.replace("plugins_core.sdk", NEW_IMPORT, 1)
    warnings.warn(
        f"{old} is deprecated; import {new} instead (pip install imbi-plugin-sdk)",
        DeprecationWarning,
        stacklevel=3,
    )


class _LegacyModule(ModuleType):
    """A stand-in for ``plugins_core.sdk.<sub>`` that forwards to ``imbi_plugin_sdk.<sub>``."""

    def __init__(self, name: str, target: ModuleType) -> None:
        super().__init__(name, target.__doc__)
        self.__dict__["_target"] = target

    def __getattr__(self, attr: str) -> Any:
        note_legacy_use(f"{self.__name__}", sys._getframe(1))
        return getattr(self.__dict__["_target"], attr)

    def __dir__(self) -> list[str]:
        return dir(self.__dict__["_target"])


for _sub in _SUBMODULES:
    sys.modules[f"{__name__}.{_sub}"] = _LegacyModule(
        f"{__name__}.{_sub}", importlib.import_module(f"{NEW_IMPORT}.{_sub}")
    )

note_legacy_use(__name__, sys._getframe(0))


def __getattr__(attr: str) -> Any:
    """Every name is looked up here, so every ``from plugins_core.sdk import X`` is seen."""
    if attr in _SUBMODULES:
        return sys.modules[f"{__name__}.{attr}"]
    note_legacy_use(__name__, sys._getframe(1))
    return getattr(importlib.import_module(NEW_IMPORT), attr)


def __dir__() -> list[str]:
    return dir(importlib.import_module(NEW_IMPORT))
