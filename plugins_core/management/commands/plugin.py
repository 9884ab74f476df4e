"""``manage.py plugin``: the registry, plugin distributions, and manifest-template installs.

- ``plugin list``: every entry point with its distribution, version, status and reason.
- ``plugin install-template <entry point> --org <slug>``: one-click install (Imbi's ADR 0012).
- ``plugin install <wheel or wheelhouse folder>``, ``plugin upgrade <...>`` (also a downgrade),
  ``plugin remove <distribution>``: change the desired state on every node of a running
  platform, without a restart (``plugins_core.distributions``).
- ``plugin distributions``: the desired state and what each node reports.
- ``plugin reconcile`` / ``plugin prune``: converge this node now / delete drained environments.
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
        for verb, text in (
            ("install", "Install a plugin distribution from a wheel or a wheelhouse folder."),
            ("upgrade", "Replace an installed distribution's version (a downgrade too)."),
        ):
            cmd = sub.add_parser(verb, help=text)
            cmd.add_argument("source", help="A .whl file or a folder of wheels.")
        remove = sub.add_parser("remove", help="Remove an installed plugin distribution.")
        remove.add_argument("distribution")
        dists = sub.add_parser("distributions", help="Desired state and every node's state.")
        dists.add_argument("--json", action="store_true", help="Machine-readable output.")
        sub.add_parser("reconcile", help="Converge this node to the desired state now.")
        sub.add_parser("prune", help="Delete this node's drained plugin environments.")

    def execute(self, *args: Any, **options: Any) -> Any:
        # The registry's system check imports every plugin; only the registry views need it.
        if options.get("action") not in ("list", "install-template"):
            options["skip_checks"] = True
        return super().execute(*args, **options)

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        if action == "list":
            self._list(as_json=options["json"], strict=options["strict"])
        elif action == "install-template":
            self._install(options["entry_point"], options["org"])
        elif action in ("install", "upgrade"):
            self._distribution(options["source"], upgrade=action == "upgrade")
        elif action == "remove":
            self._remove(options["distribution"])
        elif action == "distributions":
            self._distributions(as_json=options["json"])
        elif action == "reconcile":
            from plugins_core import environments

            for name, status in sorted(environments.reconcile().items()):
                self.stdout.write(f"{name}: {status}")
            self.stdout.write(f"node {environments.node_id()} reconciled")
        elif action == "prune":
            from plugins_core import environments

            removed = environments.prune()
            self.stdout.write(f"pruned {len(removed)} environment(s) {' '.join(removed)}".strip())

    def _distribution(self, source: str, *, upgrade: bool) -> None:
        from pathlib import Path

        from plugins_core import distributions

        try:
            wheels = distributions.read_source(Path(source))
            row = distributions.install(wheels, source=str(Path(source).resolve()), upgrade=upgrade)
        except distributions.DistributionError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from None
        self.stdout.write(
            f"{row.name} {row.version} installed (sha256 {row.sha256[:16]}, "
            f"generation {row.generation}); every node switches to it without a restart"
        )

    def _remove(self, name: str) -> None:
        from plugins_core import distributions

        try:
            generation = distributions.remove(name)
        except distributions.DistributionError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from None
        self.stdout.write(f"{name} removed (generation {generation})")

    def _distributions(self, *, as_json: bool) -> None:
        from plugins_core import nodes

        report = nodes.report()
        if as_json:
            self.stdout.write(json.dumps(report, indent=2, default=str))
            return
        self.stdout.write(f"registry generation {report['generation']}")
        for dist in report["distributions"]:
            self.stdout.write(f"{dist['name']} {dist['version']}  sha256 {dist['sha256'][:16]}")
            for node in dist["nodes"]:
                self.stdout.write(f"  {node['node']}: {node['status']} {node['detail']}".rstrip())
        for node in report["nodes"]:
            if node["behind"]:
                self.stdout.write(f"node {node['node']} is behind: {node['reason']}")

    def _list(self, *, as_json: bool, strict: bool) -> None:
        try:
            snapshot = registry.rebuild(strict=strict)
            snapshot = self._with_runtime(snapshot)
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

    def _with_runtime(self, snapshot: registry.Snapshot) -> registry.Snapshot:
        """Plus the runtime-installed distributions (when the database answers)."""
        from django.db import Error as DatabaseError

        from plugins_core import runtime

        try:
            return runtime.switch()
        except DatabaseError as exc:
            reason = (str(exc).strip().splitlines() or [""])[-1]
            self.stderr.write(f"runtime-installed distributions not shown: {reason}")
            return snapshot

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
