"""The errors of resolution: why a tab request cannot be served.

Each is a ``ResolutionError`` carrying a stable ``code`` (the problem+json code the API
answers with) and an HTTP status; ``detail`` names no secret. Steps 1-2 (``selection``)
raise the 404/400 ones, step 4 (``resolution``, ``credentials``) the 503 ones.
``plugins_core.serving.resolution`` re-exports all of them.
"""

from __future__ import annotations

from typing import Any


class ResolutionError(Exception):
    """A tab request that cannot be served; ``code`` is stable, ``detail`` names no secret."""

    code = "resolution_error"
    http_status = 400

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class NothingBound(ResolutionError):
    code, http_status = "no_plugin_bound", 404


class SourceNotBound(ResolutionError):
    code, http_status = "source_not_bound", 404


class AmbiguousSource(ResolutionError):
    code, http_status = "ambiguous_source", 400


class PluginDisabled(ResolutionError):
    code, http_status = "plugin_disabled", 503


class PluginUnavailable(ResolutionError):
    code, http_status = "plugin_unavailable", 503


class PluginLoading(ResolutionError):
    """The handler is still being imported in its sandboxed runner (the registry's
    background inspection): ask again after ``retry_after`` seconds."""

    code, http_status = "plugin_loading", 503

    def __init__(self, detail: str, *, retry_after: int, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retry_after = retry_after


class PluginPermissionsPending(ResolutionError):
    """The installed version asks for permissions an admin has not approved yet."""

    code, http_status = "plugin_permissions_pending", 503


class PluginIncompatible(ResolutionError):
    code, http_status = "plugin_incompatible", 503


class PluginMisconfigured(ResolutionError):
    code, http_status = "plugin_misconfigured", 503


class CredentialsMissing(ResolutionError):
    code, http_status = "credentials_missing", 503


class CredentialsUnreadable(ResolutionError):
    code, http_status = "credentials_unreadable", 503
