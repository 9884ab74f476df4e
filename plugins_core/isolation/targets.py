"""What an isolated call needs to know about its target, as protocols (no registry import).

``isolation`` sits below ``registry`` and ``serving`` (the import contract in pyproject.toml),
so it names the registry's ``Entry`` and the runner's ``CallTarget`` by their shape only:
``registry.Entry`` is a ``RunnerEntry`` and ``serving.runner.CallTarget`` a ``CallTarget``.
"""

from __future__ import annotations

from typing import Protocol

from imbi_plugin_sdk import Credentials, PluginContext, PluginManifest

__all__ = ["CallTarget", "RunnerEntry"]


class RunnerEntry(Protocol):
    """A discovered entry point, as far as a runner is concerned."""

    @property
    def name(self) -> str: ...

    @property
    def target(self) -> str: ...

    @property
    def distribution(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def manifest(self) -> PluginManifest | None: ...

    @property
    def slug(self) -> str: ...


class CallTarget(Protocol):
    """What a runner needs to call a plugin; no database row."""

    @property
    def entry(self) -> RunnerEntry: ...

    @property
    def context(self) -> PluginContext: ...

    @property
    def credentials(self) -> Credentials: ...
