"""The problems the isolated runtime reports, as SDK errors (problem+json ``code``s)."""

from __future__ import annotations

from imbi_plugin_sdk import PluginError, PluginFailed, PluginTimeout

__all__ = [
    "PluginBusy",
    "PluginCannotRunHere",
    "PluginCircuitOpen",
    "PluginCrashed",
    "PluginFailed",
    "PluginMisconfigured",
    "PluginTimeout",
]


class PluginCrashed(PluginError):
    """The runner process died (exit, signal, resource limit) during the call."""

    code = "plugin_crashed"
    http_status = 502


class PluginCannotRunHere(PluginError):
    """This host cannot sandbox the plugin (``capabilities``: e.g. no Landlock, or a plugin
    that starts subprocesses where no process tree can be bounded): no runner is started.
    The operator must change the host; the caller sent nothing wrong."""

    code = "plugin_cannot_run_here"
    http_status = 503


class PluginMisconfigured(PluginError):
    """The service's settings cannot be granted to the runner (a directory setting the host
    refuses): the operator must fix the service; the caller sent nothing wrong."""

    code = "plugin_misconfigured"
    http_status = 503


class PluginCircuitOpen(PluginError):
    """The plugin failed too often; calls are refused until ``retry_after`` seconds pass."""

    code = "plugin_circuit_open"
    http_status = 503

    def __init__(self, detail: str = "", *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def extra(self) -> dict[str, object]:
        return {"retry_after": self.retry_after} if self.retry_after is not None else {}


class PluginBusy(PluginError):
    """The plugin (or its organization) already has as many calls in flight on this node
    as allowed (``concurrency``): answered at once, before any runner is used."""

    code = "plugin_busy"
    http_status = 503

    def __init__(self, detail: str = "", *, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after

    def extra(self) -> dict[str, object]:
        return {"retry_after": self.retry_after} if self.retry_after is not None else {}
