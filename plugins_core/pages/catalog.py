"""The plugin catalog: one card per loaded entry point, for the catalog pages and the install
wizard's first step.

A card carries the manifest's facts (name, description, type, version, publisher, permissions,
docs links), its sanitized logo (``plugins_core.provisioning.icons``), the template it shares with
its
siblings, and whether it is installed in the viewer's organizations.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from imbi_plugin_sdk import PluginManifest

from plugins_core import registry
from plugins_core.models import Plugin
from plugins_core.provisioning.icons import IconError, load_icon
from plugins_core.provisioning.install import available_templates
from plugins_core.supply import trust


@functools.lru_cache(maxsize=128)
def icon_markup(ref: str, env: str = "") -> str:
    """Sanitized SVG markup of a manifest icon ("" when it has none or it is refused)."""
    if not ref:
        return ""
    try:
        return load_icon(ref, env)
    except IconError:
        return ""


@dataclass(frozen=True, slots=True)
class Card:
    entry: registry.Entry
    manifest: PluginManifest
    template_name: str = ""
    shares_with: tuple[str, ...] = ()
    installed: tuple[str, ...] = field(default=())  # "org/plugin-slug" in the viewer's orgs
    badge: str = (
        "unsigned"  # verified / community (signed index) or unsigned (plugins_core.supply.trust)
    )
    update: str = ""  # a newer version a followed index offers (superusers' catalog)

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def plugin_type(self) -> str:
        return self.manifest.plugin_type.value

    @property
    def icon(self) -> str:
        template = self.manifest.service_template
        return icon_markup(template.icon, self.entry.env) if template else ""

    @property
    def links(self) -> list[tuple[str, str]]:
        found = [("Homepage", self.manifest.homepage)] if self.manifest.homepage else []
        template = self.manifest.service_template
        return found + (list(template.links) if template else [])

    @property
    def search_text(self) -> str:
        parts = [self.entry.name, self.manifest.name, self.manifest.description]
        parts += [self.manifest.publisher, self.template_name, self.plugin_type]
        return " ".join(parts).lower()

    @property
    def compatible(self) -> str:
        return f"api {self.manifest.api_version} (host {registry.HOST_API_VERSION})"


def cards(
    organization_ids: Iterable[int] | None = None, snapshot: registry.Snapshot | None = None
) -> list[Card]:
    """Every loaded entry point as a card; ``installed`` lists where it is installed among
    ``organization_ids`` (``None``: every organization)."""
    snapshot = snapshot or registry.current()
    shared: dict[str, tuple[str, tuple[str, ...]]] = {}
    for offer in available_templates(snapshot):
        for name in offer.entry_points:
            shared[name] = (f"{offer.name} ({offer.vendor})", offer.entry_points)
    rows: Any = Plugin.objects.all()
    if organization_ids is not None:
        rows = rows.filter(organization_id__in=list(organization_ids))
    where: dict[str, list[str]] = {}
    for handler, org, slug in rows.values_list("handler", "organization__slug", "slug"):
        where.setdefault(handler, []).append(f"{org}/{slug}")
    found = []
    badges = trust.installed_badges()
    for entry in sorted(snapshot.loaded(), key=lambda e: e.manifest.name if e.manifest else ""):
        assert entry.manifest is not None
        name, group = shared.get(entry.name, ("", ()))
        found.append(
            Card(
                entry,
                entry.manifest,
                name,
                tuple(n for n in group if n != entry.name),
                tuple(sorted(where.get(entry.name, []))),
                trust.badge_of(entry.distribution, badges),
            )
        )
    return found


def readme(card: Card) -> str:
    """The README of the card's distribution (its long description), "" when it has none."""
    from importlib import metadata

    if not card.entry.distribution:
        return ""
    try:
        meta = metadata.metadata(card.entry.distribution)
    except metadata.PackageNotFoundError:
        return ""
    message: Any = meta  # an email.message.Message: the README is its payload
    body = message.get_payload() if hasattr(message, "get_payload") else ""
    return str(body or message.get("Description") or "").strip()


PLUGIN_TYPES = ("configuration", "logs", "identity")


def offered_types(found: Iterable[Card]) -> tuple[str, ...]:
    """The type filters worth offering: those at least one card has (no filter that can
    only ever show "No plugin matches")."""
    present = {card.plugin_type for card in found}
    return tuple(t for t in PLUGIN_TYPES if t in present)
