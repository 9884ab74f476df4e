"""The runner: builds a handler for one call and invokes it, mapping failures to SDK errors.

``InProcessRunner`` calls the handler in the request's own thread (the curated catalog is
trusted). Deadlines are cooperative here: the context carries ``timeout`` and plugins pass it
to their clients; a call that overruns is reported in the log. Hard deadlines, resource
limits and crash isolation belong to the isolated runner (see docs/decisions).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterable
from typing import Any, Protocol

from imbi.core.crypto import DecryptionError

from .resolution import CredentialsUnreadable, Resolved
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


class PluginFailed(PluginError):
    """The plugin raised something that is not an SDK error (a plugin bug)."""

    code = "plugin_failed"
    http_status = 502


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


def _decryption_error(exc: BaseException) -> DecryptionError | None:
    """The ``DecryptionError`` that ``exc`` is or was raised from (a plugin may wrap it)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, DecryptionError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


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
        except Exception as exc:
            unreadable = _decryption_error(exc)
            if unreadable is not None:
                # A row (the plugin's host storage) that no configured key opens: an operator
                # problem, not a plugin bug. The log names the row and the key fingerprints.
                logger.error("plugin %s.%s: %s", resolved.manifest.slug, method, unreadable)
                raise CredentialsUnreadable(
                    f"stored data of plugin '{resolved.plugin.slug}' cannot be decrypted with "
                    "the configured keys; an operator must add the key that encrypted it to "
                    "IMBI_ENCRYPTION_KEYS (see docs/operations.md, Keys and rotation)"
                ) from None
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
            return check_result(resolved.plugin.slug, method, result)
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
