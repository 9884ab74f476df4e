"""The runner seam: how the host invokes a handler, whichever way it runs.

``default_runner()`` returns ``ModeRunner``, which picks per call, from the installed
plugin's execution mode (``plugins_core.isolation.modes``): ``InProcessRunner`` calls the
handler in the request's own thread (the trusted catalog); ``IsolatedRunner``
(``plugins_core.isolation.host``) calls it in a sandboxed runner process with a hard
deadline. Both map a ``BaseException`` to ``plugin_failed`` and apply the same result
checks: the method's result type (``check_result``), JSON values only, and the payload cap.
In-process deadlines are cooperative (the context carries ``timeout``; overruns are
logged); hard deadlines, resource limits and crash isolation need the isolated mode.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterable
from typing import Any, Protocol

from .isolation.codec import encode_value
from .isolation.errors import PluginFailed
from .isolation.modes import ISOLATED, effective_mode
from .isolation.protocol import FrameTooLarge, encode
from .resolution import Resolved
from .sdk import (
    ConfigKey,
    ConfigValue,
    ConnectionResult,
    Histogram,
    LogResult,
    OptionType,
    PluginError,
)

logger = logging.getLogger(__name__)

__all__ = ["InProcessRunner", "ModeRunner", "PluginFailed", "Runner", "default_runner"]


def secret_option_values(resolved: Resolved) -> list[str]:
    """Values of the options the manifest types as secret (they may be quoted too)."""
    names = {f.name for f in resolved.manifest.options if f.type is OptionType.SECRET}
    return [str(v) for k, v in resolved.context.options.items() if k in names and v]


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value (4+ characters) replaced by ``***``."""
    for value in sorted((s for s in secrets if len(s) >= 4), key=len, reverse=True):
        text = text.replace(value, "***")
    return text


# What each method must return; anything else is a plugin bug, reported as plugin_failed.
RESULTS: dict[str, tuple[type, type | None]] = {
    "list_keys": (list, ConfigKey),
    "get_values": (list, ConfigValue),
    "set_value": (ConfigKey, None),
    "delete_key": (type(None), None),
    "search": (LogResult, None),
    "histogram": (Histogram, None),
    "test_connection": (ConnectionResult, None),
}


def check_result(slug: str, method: str, result: Any) -> Any:
    outer, inner = RESULTS.get(method, (object, None))
    items: list[Any] = list(result) if isinstance(result, list) else []
    if not isinstance(result, outer) or (
        inner is not None and not all(isinstance(item, inner) for item in items)
    ):
        logger.error("plugin %s.%s returned %s", slug, method, type(result).__name__)
        raise PluginFailed(f"plugin '{slug}' returned an invalid {method} result")
    return result


def check_wire(slug: str, method: str, result: Any, max_payload: int) -> None:
    """The result must be JSON (finite numbers, SDK models) and within the payload cap."""
    try:
        encode({"t": "reply", "result": encode_value(result)}, max_payload)
    except FrameTooLarge:
        logger.error("plugin %s.%s returned more than %d bytes", slug, method, max_payload)
        raise PluginFailed(f"plugin '{slug}' returned a {method} result over the size cap") from None
    except (ValueError, RecursionError) as exc:
        logger.error("plugin %s.%s returned a non-JSON value (%s)", slug, method, exc)
        raise PluginFailed(f"plugin '{slug}' returned a non-JSON {method} result") from None


class Runner(Protocol):
    def call(self, resolved: Resolved, method: str, *args: Any) -> Any: ...


class InProcessRunner:
    def call(self, resolved: Resolved, method: str, *args: Any) -> Any:
        handler_cls = resolved.entry.handler
        assert handler_cls is not None
        started = time.monotonic()
        try:
            handler = handler_cls(resolved.context, resolved.credentials)
            result = getattr(handler, method)(*args)
        except PluginError:
            raise
        except BaseException as exc:  # SystemExit, KeyboardInterrupt, ...: a plugin bug too
            # The traceback goes to the server log with every credential value redacted (a
            # plugin's message may quote one); the client sees only the plugin's name.
            logger.error(
                "plugin %s failed in %s:\n%s",
                resolved.manifest.slug,
                method,
                redact(
                    "".join(traceback.format_exception(exc)),
                    [*resolved.credentials.values(), *secret_option_values(resolved)],
                ),
            )
            raise PluginFailed(
                f"plugin '{resolved.plugin.slug}' failed ({type(exc).__name__})"
            ) from None
        else:
            check_result(resolved.plugin.slug, method, result)
            check_wire(resolved.plugin.slug, method, result, _max_payload())
            return result
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


def _max_payload() -> int:
    from django.conf import settings

    return int(settings.IMBI_PLUGIN_MAX_PAYLOAD)


class ModeRunner:
    """Dispatches each call by the installed plugin's effective execution mode."""

    def __init__(self) -> None:
        self.in_process = InProcessRunner()
        self._isolated: Runner | None = None

    def isolated(self) -> Runner:
        if self._isolated is None:
            from .isolation.host import IsolatedRunner

            self._isolated = IsolatedRunner()
        return self._isolated

    def call(self, resolved: Resolved, method: str, *args: Any) -> Any:
        mode = effective_mode(resolved.plugin.execution_mode, resolved.entry)
        runner = self.isolated() if mode == ISOLATED else self.in_process
        return runner.call(resolved, method, *args)


_default = ModeRunner()


def default_runner() -> Runner:
    return _default
