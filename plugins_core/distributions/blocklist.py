"""The blocklist: plugin versions that must not be installed or loaded.

A ``BlockRule`` names a plugin and its lowest good version; rules come from every followed
index (its last verified document) and the ``IMBI_PLUGINS_BLOCKLIST`` setting. Pure and
Django-free; ``supply.trust`` honors them at install (and re-exports these names),
``distributions.integrity`` at load.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

__all__ = ["BlockRule", "block_rules", "blocked"]


@dataclass(frozen=True, slots=True)
class BlockRule:
    """Versions of ``plugin`` below ``below`` must not be installed or loaded."""

    plugin: str
    below: str
    reason: str
    source: str

    def matches(self, name: str, version: str) -> bool:
        if canonicalize_name(name) != canonicalize_name(self.plugin):
            return False
        try:
            return Version(version) < Version(self.below)
        except InvalidVersion:
            return True  # a version we cannot order is not known to be good

    def message(self, name: str, version: str) -> str:
        why = f": {self.reason}" if self.reason else ""
        return (
            f"{name} {version} is blocklisted by {self.source} (lowest good version "
            f"{self.below}){why}"
        )


def block_rules(lines: Iterable[Mapping[str, Any]], source: str) -> list[BlockRule]:
    rules = []
    for line in lines:
        plugin, below = line.get("plugin"), line.get("below")
        if isinstance(plugin, str) and isinstance(below, str):
            rules.append(BlockRule(plugin, below, str(line.get("reason") or ""), source))
    return rules


def blocked(rules: Iterable[BlockRule], name: str, version: str) -> BlockRule | None:
    return next((rule for rule in rules if rule.matches(name, version)), None)
