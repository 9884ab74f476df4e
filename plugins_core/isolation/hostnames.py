"""The host a service setting names: ``host_setting`` parses it into a ``HostRef``.

Pure and Django-free, shared by the two halves of the network permission: the save-time check
of a service's settings (``plugins_core.serving.hosts``, which re-exports both names) and the
egress broker of isolated runners (``egress``), which allows exactly the host and port an
operator saved in a setting the manifest lists in ``permissions.operator_host_settings``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

__all__ = ["HostRef", "host_setting"]

_HOST_KEYS = frozenset({"base_url", "endpoint", "endpoint_url", "url", "host", "hostname"})
_HOST_SUFFIXES = ("_url", "_host", "_endpoint")
_HOSTNAME_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclass(frozen=True, slots=True)
class HostRef:
    """Where a setting sends requests: scheme, lowercase host name and port."""

    scheme: str
    host: str
    port: int
    entered: str = field(default="", compare=False)
    """The host as entered, with its port when one was typed (what messages name)."""

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def shown(self) -> str:
        return self.entered or self.host


def _names_host(key: str, value: object) -> bool:
    if not isinstance(value, str) or not value.strip():
        return False
    return key in _HOST_KEYS or key.endswith(_HOST_SUFFIXES) or "://" in value


def host_setting(key: str, value: object) -> HostRef | None:
    """The host a setting names (``None`` when it names none); ``ValueError`` if malformed."""
    if not _names_host(key, value):
        return None
    text = str(value).strip()
    if "://" not in text and not key.endswith("_url") and key not in {"base_url", "url"}:
        text = f"https://{text}"  # a bare "host" or "host:port"
    parts = urlsplit(text)
    if parts.scheme not in _DEFAULT_PORTS:
        raise ValueError("expected an http(s) URL")
    if "@" in parts.netloc or "\\" in text:
        raise ValueError("must not carry a user name, password or backslash")
    host = (parts.hostname or "").rstrip(".")
    if not _HOSTNAME_RE.match(host):
        raise ValueError("expected a host name or IPv4 address")
    try:
        typed = parts.port
    except ValueError:
        raise ValueError("has an invalid port") from None
    port = typed or _DEFAULT_PORTS[parts.scheme]
    return HostRef(parts.scheme, host, port, f"{host}:{typed}" if typed else host)
