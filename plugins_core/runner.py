"""The runner: builds a handler for one call and invokes it, mapping failures to SDK errors.

``InProcessRunner`` calls the handler in the request's own thread (the curated catalog is
trusted). Deadlines are cooperative here: the context carries ``timeout`` and plugins pass it
to their clients; a call that overruns is reported in the log. Hard deadlines, resource
limits and crash isolation belong to the isolated runner (see docs/decisions).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Protocol

from .resolution import Resolved
from .sdk import PluginError

logger = logging.getLogger(__name__)


class PluginFailed(PluginError):
    """The plugin raised something that is not an SDK error (a plugin bug)."""

    code = "plugin_failed"
    http_status = 502


class Runner(Protocol):
    def call(self, resolved: Resolved, method: str, *args: Any) -> Any: ...


class InProcessRunner:
    def call(self, resolved: Resolved, method: str, *args: Any) -> Any:
        handler_cls = resolved.entry.handler
        assert handler_cls is not None
        started = time.monotonic()
        try:
            handler = handler_cls(resolved.context, resolved.credentials)
            return getattr(handler, method)(*args)
        except PluginError:
            raise
        except Exception as exc:
            # The traceback stays in the server log; the client sees only the plugin's name.
            logger.exception("plugin %s failed in %s", resolved.manifest.slug, method)
            raise PluginFailed(
                f"plugin '{resolved.plugin.slug}' failed ({type(exc).__name__})"
            ) from None
        finally:
            elapsed = time.monotonic() - started
            if elapsed > resolved.context.timeout:
                logger.warning(
                    "plugin %s.%s took %.1fs (timeout %.1fs)",
                    resolved.manifest.slug,
                    method,
                    elapsed,
                    resolved.context.timeout,
                )


_default = InProcessRunner()


def default_runner() -> Runner:
    return _default
