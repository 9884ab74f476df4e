"""``manage.py plugin``: the registry, plugin distributions, and manifest-template installs.

- ``plugin list``: every entry point with its distribution, version, status and reason.
- ``plugin install-template <entry point> --org <slug>``: one-click install (Imbi's ADR 0012).
- ``plugin install NAME[==VERSION] [--org SLUG]``: verify from the signed indexes, then install.
- ``plugin set-credential SERVICE NAME --org SLUG``: one credential, read from stdin.
- ``plugin verify``: re-check every installed plugin file against its signed file manifest.
- ``plugin available``: what the followed indexes offer, with badges.
- ``plugin index add NAME URL --index-key K --root-key K [--priority N]`` (follows and fetches
  it at once), ``index list``, ``index refresh``, ``index rotate NAME RECORD.json`` (a
  root-signed key rotation).
- ``plugin install <wheel or wheelhouse folder>``, ``plugin upgrade <...>`` (also a downgrade),
  ``plugin remove <distribution>``: change the desired state on every node of a running
  platform, without a restart (``plugins_core.distributions.desired``).
- ``plugin distributions``: the desired state and what each node reports.
- ``plugin approve NAME[==VERSION] [--json]``: approve the permissions the installed version
  declares, keeping earlier approvals (``plugins_core.provisioning.approvals``; audited).
- ``plugin reconcile`` / ``plugin prune``: converge this node now / delete drained environments.

``plugin install`` takes a wheel or a wheelhouse folder when its argument is a path, else
``NAME[==VERSION]`` from the signed indexes. Exits non-zero with a one-line reason on bad input;
supply-chain and distribution refusals start with their stable code (``index_rollback: ...``).
"""

from __future__ import annotations

import json
import os
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from plugins_core import registry
from plugins_core.isolation import capabilities


class Command(BaseCommand):
    help = "Inspect the plugin registry; install and verify plugins from signed indexes."

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
        install_cmd = sub.add_parser(
            "install",
            help="Install a plugin distribution: from a wheel or a wheelhouse folder, or "
            "NAME[==VERSION] verified from the signed indexes.",
        )
        install_cmd.add_argument(
            "source", help="A .whl file, a folder of wheels, or NAME[==VERSION] from an index."
        )
        install_cmd.add_argument("--org", help="Index installs: apply this organization's policy.")
        install_cmd.add_argument(
            "--allow-downgrade",
            action="store_true",
            help="Index installs: install a lower version than the installed one (audited).",
        )
        install_cmd.add_argument(
            "--transfer-publisher",
            action="store_true",
            help="Index installs: replace an installed build of another publisher or index "
            "(an explicit transfer, audited).",
        )
        upgrade = sub.add_parser(
            "upgrade", help="Replace an installed distribution's version (a downgrade too)."
        )
        upgrade.add_argument("source", help="A .whl file or a folder of wheels.")
        remove = sub.add_parser("remove", help="Remove an installed plugin distribution.")
        remove.add_argument("distribution")
        dists = sub.add_parser("distributions", help="Desired state and every node's state.")
        dists.add_argument("--json", action="store_true", help="Machine-readable output.")
        approve = sub.add_parser(
            "approve",
            help="Approve the permissions an installed distribution's version declares "
            "(earlier approvals are kept).",
        )
        approve.add_argument("requirement", help="NAME or NAME==VERSION (the version reviewed).")
        approve.add_argument("--json", action="store_true", help="Machine-readable output.")
        sub.add_parser("reconcile", help="Converge this node to the desired state now.")
        sub.add_parser("prune", help="Delete this node's drained plugin environments.")
        verify = sub.add_parser("verify", help="Check installed plugin files against manifests.")
        verify.add_argument("--json", action="store_true")
        offered = sub.add_parser("available", help="What the followed indexes offer.")
        offered.add_argument("--refresh", action="store_true", help="Fetch the indexes first.")
        offered.add_argument("--json", action="store_true")
        credential = sub.add_parser(
            "set-credential", help="Set one credential of a service, read from standard input."
        )
        credential.add_argument("service", help="The service's slug.")
        credential.add_argument("name", help="A credential declared by the service's plugins.")
        credential.add_argument("--org", required=True, help="Organization slug.")
        indexes = sub.add_parser("index", help="Follow, list and refresh plugin indexes.")
        index_sub = indexes.add_subparsers(dest="index_action", required=True)
        add = index_sub.add_parser("add", help="Follow an index with its own trust root.")
        add.add_argument("name")
        add.add_argument("url", help="An http(s) URL or a local folder.")
        add.add_argument("--index-key", action="append", required=True, help=".pub or base64")
        add.add_argument("--root-key", action="append", required=True, help=".pub or base64")
        add.add_argument("--priority", type=int, default=100)
        index_sub.add_parser("list", help="Followed indexes, last version seen, last error.")
        index_sub.add_parser("refresh", help="Fetch and verify every followed index.")
        rotate = index_sub.add_parser(
            "rotate",
            help="Apply a root-signed index-key rotation (imbi-plugin rotate-index-key): new "
            "index keys and a new version floor (audited).",
        )
        rotate.add_argument("name")
        rotate.add_argument("record", help="The rotation record (a JSON file).")

    def execute(self, *args: Any, **options: Any) -> Any:
        # The registry's system check imports every plugin; only the registry views need it.
        if options.get("action") not in ("list", "install-template"):
            options["skip_checks"] = True
        return super().execute(*args, **options)

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        from plugins_core.supply.errors import SupplyChainError

        try:
            if action == "list":
                self._list(as_json=options["json"], strict=options["strict"])
            elif action == "install-template":
                self._install(options["entry_point"], options["org"])
            elif action == "install" and not _is_path(options["source"]):
                self._install_from_index(
                    options["source"],
                    options.get("org"),
                    allow_downgrade=bool(options.get("allow_downgrade")),
                    transfer_publisher=bool(options.get("transfer_publisher")),
                )
            elif action in ("install", "upgrade"):
                self._distribution(options["source"], upgrade=action == "upgrade")
            elif action == "remove":
                self._remove(options["distribution"])
            elif action == "distributions":
                self._distributions(as_json=options["json"])
            elif action == "approve":
                self._approve(options["requirement"], as_json=options["json"])
            elif action == "reconcile":
                from plugins_core.distributions import environments

                for name, status in sorted(environments.reconcile().items()):
                    self.stdout.write(f"{name}: {status}")
                self.stdout.write(f"node {environments.node_id()} reconciled")
            elif action == "prune":
                from plugins_core.distributions import environments

                removed = environments.prune()
                self.stdout.write(
                    f"pruned {len(removed)} environment(s) {' '.join(removed)}".strip()
                )
            elif action == "verify":
                self._verify(as_json=options["json"])
            elif action == "available":
                self._available(refresh=options["refresh"], as_json=options["json"])
            elif action == "index":
                self._index(options)
            elif action == "set-credential":
                self._set_credential(options["service"], options["name"], options["org"])
        except SupplyChainError as exc:
            raise CommandError(str(exc)) from None

    def _set_credential(self, service_slug: str, name: str, org_slug: str) -> None:
        """The value comes from stdin, never argv (shell history, ``ps``); it is never shown."""
        import sys

        from imbi.core import audit
        from imbi.core.models import AuditEvent
        from plugins_core.models import ServiceApplication, ThirdPartyService

        service = ThirdPartyService.objects.filter(
            organization__slug=org_slug, slug=service_slug
        ).first()
        if service is None:
            raise CommandError(f"no service '{service_slug}' in organization '{org_slug}'")
        snapshot = self._with_runtime(registry.settled())
        declared = {
            field.name
            for plugin in service.plugins.all()
            if (entry := snapshot.get(plugin.handler)) and entry.manifest
            for field in entry.manifest.credentials
        }
        if name not in declared:
            raise CommandError(
                f"no plugin on service '{service_slug}' declares a credential '{name}' "
                f"(declared: {', '.join(sorted(declared)) or 'none'})"
            )
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise CommandError("no value on standard input")
        application, _ = ServiceApplication.objects.get_or_create(service=service)
        application.credentials = {**application.credentials, name: value}
        application.save()
        audit.record(
            AuditEvent.Action.CREDENTIALS_SET,
            organization=service.organization,
            plugin_slug=service.slug[:64],
            detail=f"credential {name} set on service {service.slug} from the command line",
        )
        self.stdout.write(f"credential '{name}' set on service '{service.slug}'")

    def _install_from_index(
        self,
        requirement: str,
        org_slug: str | None,
        *,
        allow_downgrade: bool = False,
        transfer_publisher: bool = False,
    ) -> None:
        from imbi.core.models import Organization
        from plugins_core.supply.install import install_from_index

        organization = None
        if org_slug:
            organization = Organization.objects.filter(slug=org_slug).first()
            if organization is None:
                raise CommandError(f"no organization '{org_slug}'")
        result = install_from_index(
            requirement,
            organization=organization,
            allow_downgrade=allow_downgrade,
            transfer_publisher=transfer_publisher,
        )
        artifact = result.artifact
        was = f" (was {result.previous_version})" if result.previous_version else ""
        self.stdout.write(
            f"installed {artifact.name} {artifact.version}{was} from index {artifact.index} "
            f"v{artifact.index_version}: sha256 {artifact.sha256}, {artifact.size} bytes, "
            f"publisher {artifact.certificate.subject} [{artifact.badge}]"
        )

    def _verify(self, *, as_json: bool) -> None:
        from plugins_core.distributions.integrity import verify_installed

        results = verify_installed()
        if as_json:
            self.stdout.write(
                json.dumps(
                    [
                        {
                            "distribution": r.distribution,
                            "version": r.version,
                            "status": r.status,
                            "detail": r.detail,
                        }
                        for r in results
                    ],
                    indent=2,
                )
            )
        else:
            for r in results:
                self.stdout.write(f"{r.distribution} {r.version}  {r.status}  {r.detail}")
        bad = [r for r in results if not r.ok]
        if bad:
            raise CommandError(
                f"{len(bad)} of {len(results)} plugin distributions failed verification: "
                + "; ".join(f"{r.status}: {r.detail}" for r in bad)
            )
        if not as_json:
            self.stdout.write(f"{len(results)} plugin distributions verified")

    def _available(self, *, refresh: bool, as_json: bool) -> None:
        from plugins_core.supply.install import available

        offers = available(refresh=refresh)
        if as_json:
            self.stdout.write(json.dumps([o.to_dict() for o in offers], indent=2))
            return
        for o in offers:
            installed = f" installed {o.installed}" if o.installed else ""
            self.stdout.write(
                f"{o.name} {o.latest} [{o.badge}] from {o.index} by {o.publisher}{installed}"
            )
        self.stdout.write(f"{len(offers)} plugins available")

    def _index(self, options: dict[str, Any]) -> None:
        from django.core.exceptions import ValidationError
        from imbi_plugin_sdk import signing as formats

        from plugins_core.models import PluginIndex
        from plugins_core.supply import index as index_module
        from plugins_core.supply.errors import SupplyChainError

        action = options["index_action"]
        if action == "add":
            try:
                index_keys = [formats.load_public_key(k) for k in options["index_key"]]
                root_keys = [formats.load_public_key(k) for k in options["root_key"]]
            except formats.KeyFileError as exc:
                raise CommandError(str(exc)) from None
            row = PluginIndex.objects.filter(name=options["name"]).first() or PluginIndex(
                name=options["name"]
            )
            url = options["url"]
            if "://" not in url and url and not os.path.isabs(url):
                url = os.path.abspath(url)  # a folder named from the shell: relative to here
            row.url, row.index_keys, row.root_keys = url, index_keys, root_keys
            row.priority = options["priority"]
            try:
                row.full_clean()
            except ValidationError as exc:
                raise CommandError("; ".join(exc.messages)) from None
            row.save()
            self.stdout.write(f"following index '{row.name}' at {row.url}")
            # fetched now, so `plugin available` and the API list it at once
            try:
                document = index_module.refresh(row)
            except SupplyChainError as exc:
                self.stdout.write(
                    f"{row.name}: not fetched yet: {exc} "
                    "(manage.py plugin index refresh tries again)"
                )
            else:
                self.stdout.write(
                    f"{row.name}: version {document.version} verified, "
                    f"{len(document.plugins())} plugin(s) offered"
                )
            return
        if action == "rotate":
            from plugins_core.supply.rotation import apply_rotation

            target = PluginIndex.objects.filter(name=options["name"]).first()
            if target is None:
                raise CommandError(f"no followed index '{options['name']}'")
            try:
                with open(options["record"], encoding="utf-8") as handle:
                    record = json.load(handle)
            except OSError as exc:
                raise CommandError(f"cannot read {options['record']}: {exc.strerror}") from None
            except ValueError:
                raise CommandError(f"{options['record']} is not JSON") from None
            target = apply_rotation(target, record)
            self.stdout.write(
                f"index '{target.name}': {len(target.index_keys)} index key(s) trusted now, "
                f"versions from {target.last_version} on accepted"
            )
            return
        rows = list(PluginIndex.objects.all())
        if not rows:  # say so, rather than print nothing
            self.stdout.write(
                "no plugin index is followed (manage.py plugin index add NAME URL "
                "--index-key K --root-key K)"
            )
            return
        if action == "refresh":
            failed = 0
            for row in rows:
                try:
                    document = index_module.refresh(row)
                except SupplyChainError as exc:
                    failed += 1
                    self.stdout.write(f"{row.name}: {exc}")
                else:
                    self.stdout.write(f"{row.name}: version {document.version} verified")
            if failed:
                raise CommandError(f"{failed} of {len(rows)} indexes refused")
            return
        for row in rows:
            error = f"  -- {row.last_error_code}: {row.last_error}" if row.last_error_code else ""
            self.stdout.write(
                f"{row.name}  {row.url}  priority {row.priority}  version {row.last_version}{error}"
            )

    def _distribution(self, source: str, *, upgrade: bool) -> None:
        from pathlib import Path

        from plugins_core.distributions import desired as distributions

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
        from plugins_core.distributions import desired as distributions

        try:
            generation = distributions.remove(name)
        except distributions.DistributionError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from None
        self.stdout.write(f"{name} removed (generation {generation})")

    def _approve(self, requirement: str, *, as_json: bool) -> None:
        from plugins_core.provisioning import approvals

        try:
            name, version = approvals.parse_requirement(requirement)
            result = approvals.approve(name, version, None)
        except approvals.ApprovalError as exc:
            raise CommandError(f"{exc.code}: {exc.detail}") from None
        if as_json:
            self.stdout.write(json.dumps(result, indent=2))
            return
        changed = result["approved_plugins"]
        declared = ", ".join(result["declared"]) or "no permissions"
        self.stdout.write(
            f"{result['name']} {result['version']} declares {declared}; approved for "
            f"{len(changed)} plugin(s) {' '.join(changed)}".rstrip()
        )

    def _distributions(self, *, as_json: bool) -> None:
        from plugins_core.distributions import nodes

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
                            "status": capabilities.status_value(e),
                            "reason": capabilities.entry_refusal(e) or e.reason,
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
            refused = capabilities.entry_refusal(e)
            line = f"{e.name:<{width}}  {capabilities.status_value(e):<13}  "
            line += f"{e.distribution} {e.version}"
            if refused:
                line += f"  -- {capabilities.status_label(e)}"
            elif e.reason:
                line += f"  -- {e.reason}"
            if e.isolated:
                line += "  [untrusted: runs isolated only]"
            if e.legacy_sdk:
                line += "  [deprecated: imports plugins_core.sdk; use imbi_plugin_sdk]"
            self.stdout.write(line)
        failed = len(snapshot.failed())
        failed += sum(1 for e in snapshot.loaded() if capabilities.entry_refusal(e))
        self.stdout.write(
            f"{len(entries)} entry points, {len(entries) - failed} loaded, "
            f"{failed} not loaded (generation {snapshot.generation})"
        )

    def _with_runtime(self, snapshot: registry.Snapshot) -> registry.Snapshot:
        """Plus the runtime-installed distributions (when the database answers)."""
        from django.db import Error as DatabaseError

        from plugins_core.distributions import runtime

        try:
            return runtime.switch()
        except DatabaseError as exc:
            reason = (str(exc).strip().splitlines() or [""])[-1]
            self.stderr.write(f"runtime-installed distributions not shown: {reason}")
            return snapshot

    def _install(self, entry_point: str, org_slug: str) -> None:
        from imbi.core.models import Organization
        from plugins_core.provisioning.install import InstallError, install_from_template

        organization = Organization.objects.filter(slug=org_slug).first()
        if organization is None:
            raise CommandError(f"no organization '{org_slug}'")
        registry.settled()  # a command waits for untrusted plugins' sandboxed imports
        try:
            result = install_from_template(
                organization, entry_point, snapshot=self._with_runtime(registry.current())
            )
        except InstallError as exc:
            raise CommandError(str(exc)) from None
        created = ", ".join(result.created_plugins) or "none"
        self.stdout.write(
            f"service '{result.service.slug}' "
            f"({'created' if result.created_service else 'existing'}); "
            f"plugins created: {created}; add credentials in the admin before use"
        )


def _is_path(source: str) -> bool:
    """``plugin install`` takes a wheel (``*.whl``) or a wheelhouse folder written as a path
    (with a ``/``: ``./wheelhouse``), else ``NAME[==VERSION]`` from the signed indexes, so a
    plugin name is never taken for a folder that happens to exist in the current one."""
    import os

    return source.endswith(".whl") or "/" in source or os.sep in source or source in (".", "..")
