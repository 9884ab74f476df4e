"""Redaction: keeping credential and secret option values out of text that is logged or shown.

Owns ``redact`` (replace every secret value in a text with ``***``) and ``secret_values``
(the values a call must never echo: its credentials and the options its manifest types as
secret). The host redacts plugin tracebacks and log lines with these; authors can use them to
check their own messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .manifest import OptionType, PluginManifest

__all__ = ["MIN_SECRET_LENGTH", "redact", "secret_values"]

MIN_SECRET_LENGTH = 4
"""Shorter values are not replaced: redacting "1" or "no" would garble every message."""


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every secret value (4+ characters) replaced by ``***``, longest first."""
    for value in sorted({s for s in secrets if len(s) >= MIN_SECRET_LENGTH}, key=len, reverse=True):
        text = text.replace(value, "***")
    return text


def secret_values(
    manifest: PluginManifest,
    options: Mapping[str, object],
    credentials: Mapping[str, str],
) -> list[str]:
    """Every credential value, and the value of every option typed ``secret``."""
    names = {field.name for field in manifest.options if field.type is OptionType.SECRET}
    values = [value for value in credentials.values() if value]
    values.extend(str(value) for name, value in options.items() if name in names and value)
    return values
