"""``manage.py plugin``: list the registry, rebuild it, install from a manifest template.

- ``plugin list``: every entry point with its distribution, version, status and reason.
- ``plugin install-template <entry point> --org <slug>``: one-click install (Imbi's ADR 0012).
Exits non-zero with a one-line reason on bad input.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from plugins_core import registry


class Command(BaseCommand):
    help = "Inspect the plugin registry and install plugins from manifest templates."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        listing = sub.add_parser("list", help="Show every entry point and its status.")
        listing.add_argument("--json", action="store_true", help="Machine-readable output.")
        listing.add_argument(
            "--strict", action="store_true", help="Fail if any entry point failed to load."
        )
        install = sub.add_parser(
            "install-template", help="Install a plugin from its manifest's service template."
        )
        install.add_argument("entry_point")
        install.add_argument("--org", required=True, help="Organization slug.")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "list":
            self._list(as_json=options["json"], strict=options["strict"])
        elif action == "install-template":
            self._install(options["entry_point"], options["org"])

    def _list(self, *, as_json: bool, strict: bool) -> None:
        try:
            snapshot = registry.rebuild(strict=strict)
        except registry.RegistryError as exc:
            raise CommandError(f"{type(exc).__name__}: {exc}") from None
        entries = list(snapshot.entries.values())
        if as_json:
            self.stdout.write(
                json.dumps(
                    [
                        {
                            "name": e.name,
                            "slug": e.slug,
                            "distribution": e.distribution,
                            "version": e.version,
                            "status": e.status.value,
                            "reason": e.reason,
                            "legacy_sdk": e.legacy_sdk,
                            "isolated_only": e.isolated,
                        }
                        for e in entries
                    ],
                    indent=2,
                )
            )
            return
        width = max((len(e.name) for e in entries), default=10)
        for e in entries:
            line = f"{e.name:<{width}}  {e.status.value:<13}  {e.distribution} {e.version}"
            if e.reason:
                line += f"  -- {e.reason}"
            if e.isolated:
                line += "  [untrusted: runs isolated only]"
            if e.legacy_sdk:
                line += "  [deprecated: imports plugins_core.sdk; use imbi_plugin_sdk]"
            self.stdout.write(line)
        failed = len(snapshot.failed())
        self.stdout.write(
            f"{len(entries)} entry points, {len(entries) - failed} loaded, "
            f"{failed} not loaded (generation {snapshot.generation})"
        )

    def _install(self, entry_point: str, org_slug: str) -> None:
        from imbi.core.models import Organization
        from plugins_core.install import InstallError, install_from_template

        organization = Organization.objects.filter(slug=org_slug).first()
        if organization is None:
            raise CommandError(f"no organization '{org_slug}'")
        try:
            result = install_from_template(organization, entry_point)
        except InstallError as exc:
            raise CommandError(str(exc)) from None
        created = ", ".join(result.created_plugins) or "none"
        self.stdout.write(
            f"service '{result.service.slug}' "
            f"({'created' if result.created_service else 'existing'}); "
            f"plugins created: {created}; add credentials in the admin before use"
        )
