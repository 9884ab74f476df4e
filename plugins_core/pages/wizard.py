"""The admin's "Install a plugin" wizard: a pipeline of steps sharing state in the session.

Owns the pipeline (``Pipeline``: one install in progress, stored in the session under
``SESSION_KEY`` and addressed by a random id in the URL), its steps and their views, the
template preview endpoint (``PreviewView``; the expansion is
``plugins_core.serving.resolution.preview_search_template``), ``test_connection`` (calls the
plugin's
``test_connection()`` through the runner, like every other call) and ``finish_install``, the
only function that writes.

Steps: plugin → service → credentials → options → test → bind → finish (summary, confirm).
Nothing is written before the last step; ``finish_install`` then, in ONE transaction, installs
from the template (or creates the service/plugin rows), saves credentials, options
and
project-type bindings (through ``plugins_core.provisioning.bindings``) and writes the audit
trail. A failure
rolls everything back. Abandoning the wizard leaves no rows behind.

State safety:
- credentials and options are kept in the session *encrypted* (``imbi.core.crypto``), never
  rendered back into a form, and discarded when the wizard finishes or is cancelled;
- the state records a signature of the plugin's registry entry (name, target, distribution,
  version, manifest); a plugin changed (upgraded, removed, broken) mid-flow is detected on the
  next request and the wizard starts over;
- every step re-checks permission (``imbi.core.access.can_install``): superuser, or admin of
  the chosen organization.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views import View
from imbi_plugin_sdk import (
    Credentials,
    MemoryKeyValueStore,
    OptionType,
    OptionValidationError,
    PluginContext,
    PluginError,
    PluginFailed,
    PluginManifest,
    redact,
    secret_values,
)
from imbi_plugin_sdk.errors import InvalidInput

from imbi.core import audit, crypto
from imbi.core.access import administers_any, can_install, installable_organizations
from imbi.core.models import AuditEvent, Organization, Project, ProjectType
from plugins_core import registry
from plugins_core.models import (
    ConnectionCheck,
    Plugin,
    ProjectTypePlugin,
    ServiceApplication,
    Tab,
    ThirdPartyService,
)
from plugins_core.pages.catalog import PLUGIN_TYPES
from plugins_core.pages.catalog import cards as catalog_cards
from plugins_core.pages.forms import (
    ConnectionTestForm,
    CredentialsForm,
    OptionsForm,
    PickPluginForm,
    ServiceForm,
    SiblingBindingForm,
    TypeBindingForm,
    apply_credentials,
    setting_names,
    stored_status,
)
from plugins_core.provisioning import bindings as binding_service
from plugins_core.provisioning.install import (
    InstallError,
    available_templates,
    install_from_template,
)
from plugins_core.serving import health
from plugins_core.serving.hosts import (
    clear_stale_credentials,
    operator_hosts_changed,
    service_host_errors,
    service_manifests,
)
from plugins_core.serving.projects import DatabaseProjectMetadata
from plugins_core.serving.resolution import (
    ResolutionError,
    TemplateError,
    expand_search_template,
    preview_search_template,
)
from plugins_core.serving.runner import Runner, Target, default_runner
from plugins_core.supply import trust

logger = logging.getLogger(__name__)

SESSION_KEY = "plugins_core.install_wizard"
DONE_KEY = "plugins_core.install_done"
MAX_PIPELINES = 5
TEST_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class Step:
    name: str
    title: str


STEPS: tuple[Step, ...] = (
    Step("plugin", "Choose a plugin"),
    Step("service", "Service"),
    Step("credentials", "Credentials"),
    Step("options", "Options"),
    Step("test", "Test connection"),
    Step("bind", "Bind to project types"),
    Step("finish", "Done"),
)
STEP_NAMES = tuple(step.name for step in STEPS)


class WizardError(Exception):
    """The install could not be finished; the message names no secret value."""


# --------------------------------------------------------------------------- permission


def _authorize(request: HttpRequest, organization: Organization | None = None) -> None:
    """An operator of ``organization`` (of any organization if None): ``imbi.core.access``."""
    user = request.user
    allowed = administers_any(user) if organization is None else can_install(user, organization)
    if not allowed:
        raise PermissionDenied


# --------------------------------------------------------------------------- the catalog


def manifest_signature(entry: registry.Entry) -> str:
    """Identifies exactly what the wizard was started for; any change shows as a new value."""
    payload = {
        "name": entry.name,
        "target": entry.target,
        "distribution": entry.distribution,
        "version": entry.version,
        "status": entry.status.value,
        "manifest": entry.manifest.to_dict() if entry.manifest else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CatalogItem:
    """One entry point as step 1 shows it."""

    entry: registry.Entry
    manifest: PluginManifest
    template_name: str
    shares_with: tuple[str, ...]
    badge: str = "unsigned"
    """verified / community (installed from a signed index) or unsigned (allow-listed)."""

    @property
    def compatible(self) -> str:
        return f"api {self.manifest.api_version} (host {registry.HOST_API_VERSION})"


def catalog(
    snapshot: registry.Snapshot | None = None,
) -> tuple[list[CatalogItem], list[registry.Entry]]:
    """Installable entries (every loaded one) and the ones that cannot be installed."""
    snapshot = snapshot or registry.current()
    shared: dict[str, tuple[str, tuple[str, ...]]] = {}
    for offer in available_templates(snapshot):
        for name in offer.entry_points:
            shared[name] = (f"{offer.name} ({offer.vendor})", offer.entry_points)
    items = []
    badges = trust.installed_badges()
    for entry in sorted(snapshot.loaded(), key=lambda e: e.name):
        assert entry.manifest is not None
        name, group = shared.get(entry.name, ("", ()))
        items.append(
            CatalogItem(
                entry,
                entry.manifest,
                name,
                tuple(n for n in group if n != entry.name),
                trust.badge_of(entry.distribution, badges),
            )
        )
    failed = sorted(snapshot.failed(), key=lambda e: e.name)
    return items, failed


# --------------------------------------------------------------------------- the pipeline


class Pipeline:
    """One install in progress: a JSON-safe dict in the session, addressed by ``id``."""

    def __init__(self, request: HttpRequest, pid: str, state: dict[str, Any]) -> None:
        self.request = request
        self.id = pid
        self.state = state
        # target_service per (choice, template vendor), for this request only: a Pipeline is
        # built per request (``start``/``load``), so a stale row never outlives the request.
        self._targets: dict[tuple[Any, ...], ThirdPartyService | None] = {}

    # -- lifecycle --

    @classmethod
    def _store(cls, request: HttpRequest) -> dict[str, dict[str, Any]]:
        store: dict[str, dict[str, Any]] = request.session.setdefault(SESSION_KEY, {})
        return store

    @classmethod
    def start(
        cls, request: HttpRequest, entry: registry.Entry, organization: Organization
    ) -> Pipeline:
        store = cls._store(request)
        while len(store) >= MAX_PIPELINES:  # forget the oldest abandoned installs
            store.pop(min(store, key=lambda k: store[k].get("serial", 0)))
        serial = max((s.get("serial", 0) for s in store.values()), default=0) + 1
        pid = secrets.token_urlsafe(12)
        store[pid] = {
            "serial": serial,
            "entry_point": entry.name,
            "signature": manifest_signature(entry),
            "version": entry.version,
            "organization_id": organization.pk,
            "done": ["plugin"],
            "revision": 0,
            "service": None,
            "credentials": None,
            "options": None,
            "connection": None,
            "binding": None,
        }
        request.session.modified = True
        return cls(request, pid, store[pid])

    @classmethod
    def load(cls, request: HttpRequest, pid: str) -> Pipeline | None:
        state = cls._store(request).get(pid)
        return cls(request, pid, state) if state is not None else None

    def save(self) -> None:
        self._store(self.request)[self.id] = self.state
        self.request.session.modified = True

    def discard(self) -> None:
        self._store(self.request).pop(self.id, None)
        self.request.session.modified = True

    # -- what was chosen --

    @property
    def entry_point(self) -> str:
        return str(self.state["entry_point"])

    def organization(self) -> Organization:
        org = Organization.objects.filter(pk=self.state["organization_id"]).first()
        if org is None:
            raise Http404("The organization no longer exists.")
        return org

    def current_entry(self) -> registry.Entry | None:
        """The entry if it is still loaded and unchanged since the wizard started."""
        entry = registry.current().get(self.entry_point)
        if entry is None or not entry.ok or manifest_signature(entry) != self.state["signature"]:
            return None
        return entry

    def completed(self, step: str) -> bool:
        return step in self.state["done"]

    def mark_done(self, step: str) -> None:
        if step not in self.state["done"]:
            self.state["done"].append(step)

    def reachable(self, step: str) -> bool:
        index = STEP_NAMES.index(step)
        return all(self.completed(name) for name in STEP_NAMES[:index])

    def changed(self) -> None:
        """Inputs the connection test depends on changed: its result is stale."""
        self.state["revision"] = int(self.state["revision"]) + 1

    # -- service --

    @property
    def service_choice(self) -> dict[str, Any]:
        return dict(self.state["service"] or {})

    def target_service(self, manifest: PluginManifest) -> ThirdPartyService | None:
        """The existing service the install will use, if any (never written here).

        Memoized per instance, keyed on the inputs: the summary asks several times."""
        choice = self.service_choice
        template = manifest.service_template
        key = (
            self.state["organization_id"],
            choice.get("mode"),
            choice.get("service_id"),
            template.vendor if template else None,
        )
        if key not in self._targets:
            self._targets[key] = self._find_target_service(manifest)
        return self._targets[key]

    def _find_target_service(self, manifest: PluginManifest) -> ThirdPartyService | None:
        choice = self.service_choice
        org_id = self.state["organization_id"]
        if choice.get("mode") == ServiceForm.EXISTING and choice.get("service_id"):
            return ThirdPartyService.objects.filter(
                pk=int(choice["service_id"]), organization_id=org_id
            ).first()
        if choice.get("mode") == ServiceForm.TEMPLATE and manifest.service_template:
            return ThirdPartyService.objects.filter(
                organization_id=org_id, vendor=manifest.service_template.vendor, identity=""
            ).first()
        return None

    def target_plugin(self, manifest: PluginManifest) -> Plugin | None:
        service = self.target_service(manifest)
        if service is None:
            return None
        return Plugin.objects.filter(service=service, handler=self.entry_point).first()

    def service_settings(self, manifest: PluginManifest) -> dict[str, Any]:
        """The settings the service will have: current (or template) ones, then entered."""
        service = self.target_service(manifest)
        base: dict[str, Any] = dict(service.settings) if service else {}
        template = manifest.service_template
        if (
            service is None
            and self.service_choice.get("mode") == ServiceForm.TEMPLATE
            and (template is not None)
        ):
            base = dict(template.settings)
            if template.base_url:
                base["base_url"] = template.base_url
        for name, value in (self.service_choice.get("settings") or {}).items():
            if value:
                base[name] = value
            else:
                base.pop(name, None)
        return base

    # -- secrets, encrypted in the session --

    def _secret(self, name: str) -> Any:
        token = self.state.get(name)
        return crypto.decrypt_json(token, where=f"install wizard {name}") if token else None

    def credential_changes(self) -> dict[str, str | None]:
        return dict(self._secret("credentials") or {})

    def set_credential_changes(self, changes: Mapping[str, str | None]) -> None:
        self.state["credentials"] = crypto.encrypt_json(dict(changes))

    def options(self) -> dict[str, object]:
        return dict(self._secret("options") or {})

    def set_options(self, options: Mapping[str, object]) -> None:
        self.state["options"] = crypto.encrypt_json(dict(options))

    def stored_credentials(self, manifest: PluginManifest) -> dict[str, str]:
        """The service's stored credentials, or none when this wizard moves an
        operator-chosen host: they were meant for the old host (``plugins_core.serving.hosts``)."""
        service = self.target_service(manifest)
        if service is None:
            return {}
        manifests = [*service_manifests(service), manifest]
        if operator_hosts_changed(service.settings, self.service_settings(manifest), manifests):
            return {}
        app = ServiceApplication.objects.filter(service=service).first()
        return dict(app.credentials) if app and isinstance(app.credentials, dict) else {}

    def credentials(self, manifest: PluginManifest) -> dict[str, str]:
        """Stored credentials with this wizard's changes applied (used by the test only)."""
        return apply_credentials(self.stored_credentials(manifest), self.credential_changes())


# --------------------------------------------------------------------------- test connection


def test_connection(
    manifest_entry: registry.Entry,
    organization: Organization,
    options: Mapping[str, object],
    settings: Mapping[str, Any],
    credentials: Mapping[str, str],
    *,
    project: Project | None = None,
    search_template: str = "",
    runner: Runner | None = None,
) -> dict[str, Any]:
    """Call ``test_connection()`` through the runner with the entered values.

    The plugin has no row yet, so the runner gets a ``Target`` (entry, context, credentials).
    With a ``project``, the context is that project's (and ``search_template`` is expanded
    for it), as a binding would give. Returns ``{"ok", "message", "details"}`` with every
    credential and secret option value scrubbed from the text. Nothing is written (storage
    is an in-memory store).
    """
    manifest = manifest_entry.manifest
    assert manifest is not None
    known = {f.name for f in manifest.credentials}
    entered = Credentials({k: v for k, v in credentials.items() if k in known})
    secrets = secret_values(manifest, options, credentials)
    outcome: dict[str, Any]
    tab = manifest.plugin_type.value
    started = time.monotonic()
    try:
        where: dict[str, Any] = {}
        if project is not None:
            where = {
                "project_id": project.pk,
                "project_slug": project.slug,
                "project_type": project.project_type.slug,
                "tab": tab,
                "search_template": expand_search_template(search_template, project, tab),
            }
        context = PluginContext(
            organization=organization.slug,
            **where,
            options=manifest.validate_options(dict(options)),
            timeout=TEST_TIMEOUT,
            storage=MemoryKeyValueStore() if manifest.permissions.storage else None,
            service_settings=dict(settings),
            projects=(
                DatabaseProjectMetadata(organization.pk, project.pk if project else None)
                if manifest.permissions.project_metadata
                else None
            ),
        )
        target = Target(manifest_entry, context, entered)
        result = (runner or default_runner()).call(target, "test_connection")
        outcome = {"ok": result.ok, "message": result.message, "details": dict(result.details)}
    except OptionValidationError as exc:
        outcome = {
            "ok": False,
            "message": f"options are invalid: {', '.join(exc.errors)}",
            "details": {},
        }
    except TemplateError as exc:
        outcome = {"ok": False, "message": f"search template: {exc}", "details": {}}
    except PluginFailed as exc:  # a plugin bug: the log has the traceback, the page the reason
        outcome = {"ok": False, "message": exc.detail, "details": {}}
    except PluginError as exc:
        outcome = {"ok": False, "message": f"{exc.code}: {exc.detail}", "details": {}}
    outcome["message"] = redact(str(outcome["message"]), secrets)
    details: dict[str, Any] = outcome["details"]
    outcome["details"] = {k: redact(str(v), secrets) for k, v in details.items()}
    outcome["duration_ms"] = int((time.monotonic() - started) * 1000)
    return outcome


# --------------------------------------------------------------------------- finish


@dataclass(slots=True)
class InstallPlan:
    """Everything the wizard collected; ``finish_install`` turns it into rows."""

    organization: Organization
    entry: registry.Entry
    service_mode: str
    service_id: int | None
    new_service: dict[str, str]
    settings: dict[str, str]
    credential_changes: dict[str, str | None]
    options: dict[str, object]
    project_type_ids: list[int]
    default: bool
    search_template: str
    connection: dict[str, Any] | None = None


@dataclass(slots=True)
class Finished:
    service: ThirdPartyService
    plugin: Plugin
    created_service: bool
    created_plugins: list[str]
    credentials_changed: list[str]
    bindings: list[ProjectTypePlugin] = field(default_factory=list)


def _install_plugin(
    plan: InstallPlan, service: ThirdPartyService, actor: Any
) -> tuple[Plugin, list[str]]:
    manifest = plan.entry.manifest
    assert manifest is not None
    existing = Plugin.objects.filter(service=service, handler=plan.entry.name).first()
    if existing is not None:
        return existing, []
    taken = set(
        Plugin.objects.filter(organization=plan.organization).values_list("slug", flat=True)
    )
    slug = manifest.slug
    number = 2
    while slug in taken:
        slug = f"{manifest.slug[:58]}-{number}"
        number += 1
    errors = service_host_errors(service, extra=[manifest])
    if errors:
        raise WizardError(
            "service settings: " + "; ".join(f"{k}: {v}" for k, v in sorted(errors.items()))
        )
    plugin = Plugin.objects.create(
        organization=plan.organization,
        service=service,
        slug=slug,
        name=manifest.name[:200],
        plugin_type=manifest.plugin_type.value,
        handler=plan.entry.name,
    )
    audit.record(
        AuditEvent.Action.PLUGIN_INSTALL,
        actor=actor,
        organization=plan.organization,
        plugin_slug=slug,
        detail=f"installed on service {service.slug} (wizard)",
    )
    return plugin, [slug]


def _service_for(
    plan: InstallPlan, actor: Any
) -> tuple[ThirdPartyService, Plugin, bool, list[str]]:
    if plan.service_mode == ServiceForm.TEMPLATE:
        result = install_from_template(plan.organization, plan.entry.name, actor=actor)
        plugin = next((p for p in result.plugins if p.handler == plan.entry.name), None)
        if plugin is None:
            raise WizardError("the template install did not create this plugin")
        return result.service, plugin, result.created_service, list(result.created_plugins)
    created = False
    if plan.service_mode == ServiceForm.EXISTING:
        service = (
            ThirdPartyService.objects.select_for_update()
            .filter(pk=plan.service_id or 0, organization=plan.organization)
            .first()
        )
        if service is None:
            raise WizardError("the chosen service no longer exists")
    else:
        service = ThirdPartyService(organization=plan.organization, **plan.new_service)
        try:
            service.full_clean()
        except ValidationError as exc:
            raise WizardError(f"new service: {'; '.join(exc.messages)}") from None
        service.save()
        created = True
    plugin, created_plugins = _install_plugin(plan, service, actor)
    return service, plugin, created, created_plugins


def _apply_settings(service: ThirdPartyService, entered: Mapping[str, str]) -> dict[str, Any]:
    """Apply the entered settings; returns the settings as they were before."""
    before = dict(service.settings)
    settings = dict(service.settings)
    for name, value in entered.items():
        if value:
            settings[name] = value
        else:
            settings.pop(name, None)
    if settings != service.settings:
        service.settings = settings
        try:
            service.full_clean(
                exclude=["organization"], validate_unique=False, validate_constraints=False
            )
        except ValidationError as exc:
            raise WizardError(f"service settings: {'; '.join(exc.messages)}") from None
        service.save(update_fields=["settings", "updated_at"])
    return before


def _save_credentials(plan: InstallPlan, service: ThirdPartyService, actor: Any) -> list[str]:
    manifest = plan.entry.manifest
    assert manifest is not None
    app = ServiceApplication.objects.select_for_update().filter(service=service).first()
    stored: dict[str, str] = dict(app.credentials) if app and app.credentials else {}
    merged = apply_credentials(stored, plan.credential_changes)
    known = {f.name for f in manifest.credentials}
    try:
        manifest.validate_credentials({k: v for k, v in merged.items() if k in known})
    except OptionValidationError as exc:
        raise WizardError(
            "credentials: "
            + "; ".join(f"{name} {message}" for name, message in sorted(exc.errors.items()))
        ) from None
    changed = sorted(
        name for name in set(stored) | set(merged) if stored.get(name) != merged.get(name)
    )
    if not changed and app is not None:
        return []
    if app is None:
        app = ServiceApplication(service=service)
    app.credentials = merged
    app.full_clean(exclude=["service"])
    app.save()
    if changed:
        audit.record(
            AuditEvent.Action.CREDENTIALS_SET,
            actor=actor,
            organization=plan.organization,
            detail=f"service {service.slug}: {', '.join(changed)}"[:255],
        )
    return changed


def _bind(plan: InstallPlan, plugin: Plugin, actor: Any) -> list[ProjectTypePlugin]:
    made = []
    types = ProjectType.objects.filter(
        organization=plan.organization, pk__in=plan.project_type_ids
    ).order_by("slug")
    if len(types) != len(set(plan.project_type_ids)):
        raise WizardError("a chosen project type no longer exists")
    data = {
        "plugin": plugin.slug,
        "tab": plugin.plugin_type,
        "default": plan.default,
        "search_template": plan.search_template,
    }
    for project_type in types:
        existing = ProjectTypePlugin.objects.filter(
            project_type=project_type, plugin=plugin
        ).first()
        try:
            if existing is not None:
                binding: Any = binding_service.update_binding(
                    existing, {k: data[k] for k in ("default", "search_template")}, actor
                )
            else:
                binding = binding_service.create_type_binding(project_type, data, actor)
        except InvalidInput as exc:
            fields = "; ".join(f"{k}: {v}" for k, v in sorted(exc.fields.items()))
            raise WizardError(f"binding to {project_type.name}: {exc.detail} {fields}") from None
        except ResolutionError as exc:
            raise WizardError(f"binding to {project_type.name}: {exc.detail}") from None
        made.append(binding)
    return made


def finish_install(plan: InstallPlan, actor: Any) -> Finished:
    """Write the whole install in ONE transaction; any failure writes nothing.

    Raises ``WizardError`` (rolled back) with a message naming no secret value.
    """
    manifest = plan.entry.manifest
    assert manifest is not None
    try:
        with transaction.atomic():
            service, plugin, created_service, created_plugins = _service_for(plan, actor)
            before = _apply_settings(service, plan.settings)
            changed = _save_credentials(plan, service, actor)
            entered = {k for k, v in plan.credential_changes.items() if v}
            clear_stale_credentials(service, before, kept=entered, actor=actor)
            try:
                manifest.validate_options(plan.options)
            except OptionValidationError as exc:
                raise WizardError(f"options: {', '.join(sorted(exc.errors))} invalid") from None
            plugin.options = dict(plan.options)
            plugin.save(update_fields=["options"])
            made = _bind(plan, plugin, actor)
            tested = plan.connection
            if tested is not None:  # the wizard's test becomes the plugin's health record
                health.record(
                    plugin,
                    bool(tested["ok"]),
                    str(tested.get("message", "")),
                    int(tested.get("duration_ms", 0)),
                    ConnectionCheck.Trigger.WIZARD,
                )
            audit.record(
                AuditEvent.Action.PLUGIN_INSTALL,
                actor=actor,
                organization=plan.organization,
                plugin_slug=plugin.slug,
                detail=(
                    f"install wizard: {plan.entry.name} {plan.entry.version} on service "
                    f"{service.slug}, {len(made)} project-type binding(s), connection "
                    f"{'ok' if tested and tested['ok'] else 'not ok' if tested else 'untested'}"
                )[:255],
            )
    except InstallError as exc:
        raise WizardError(f"{exc.code}: {exc.message}") from None
    return Finished(
        service=service,
        plugin=plugin,
        created_service=created_service,
        created_plugins=created_plugins,
        credentials_changed=changed,
        bindings=made,
    )


# --------------------------------------------------------------------------- views


def _data(request: HttpRequest) -> Any:
    """The submitted data on POST (even when empty: a form without fields), else unbound."""
    return request.POST if request.method == "POST" else None


def _url(name: str, *args: Any) -> str:
    return reverse(f"admin:plugins_core_install_{name}", args=args)


class WizardView(View):
    """Base of the wizard's views: admin context, permission, pipeline loading."""

    admin_site: AdminSite | None = None

    def context(self, request: HttpRequest, **extra: Any) -> dict[str, Any]:
        site = self.admin_site
        base = site.each_context(request) if site is not None else {}
        return {**base, "steps": STEPS, **extra}


class StartView(WizardView):
    """Step 1: pick a plugin and an organization."""

    def _form(self, request: HttpRequest, items: list[CatalogItem]) -> PickPluginForm:
        return PickPluginForm(
            _data(request),
            entry_points=[(item.entry.name, item.manifest.name) for item in items],
            organizations=installable_organizations(request.user),
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        _authorize(request)
        items, failed = catalog()
        form = self._form(request, items)
        wanted = request.GET.get("entry_point", "")
        if any(item.entry.name == wanted for item in items):
            form.initial["entry_point"] = wanted  # from the catalog's "Install" button
        return self.show(request, form, items, failed)

    def post(self, request: HttpRequest) -> HttpResponse:
        _authorize(request)
        items, failed = catalog()
        form = self._form(request, items)
        if not form.is_valid():
            return self.show(request, form, items, failed)
        organization = form.cleaned_data["organization"]
        _authorize(request, organization)
        entry = registry.current().get(form.cleaned_data["entry_point"])
        if entry is None or not entry.ok:
            form.add_error("entry_point", "This plugin is no longer loaded.")
            return self.show(request, form, items, failed)
        pipeline = Pipeline.start(request, entry, organization)
        return HttpResponseRedirect(_url("step", pipeline.id, "service"))

    def show(
        self,
        request: HttpRequest,
        form: PickPluginForm,
        items: list[CatalogItem],
        failed: list[registry.Entry],
    ) -> HttpResponse:
        return render(
            request,
            "admin/plugins_core/install/plugin.html",
            self.context(
                request,
                title="Install a plugin",
                form=form,
                items=items,
                failed=failed,
                current="plugin",
                selected=form["entry_point"].value(),
                cards=catalog_cards(
                    installable_organizations(request.user).values_list("pk", flat=True)
                ),
                types=PLUGIN_TYPES,
            ),
        )


class StepView(WizardView):
    """Steps 2 to 7 of one pipeline; every request re-checks permission and the plugin."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        pid, step = kwargs["pid"], kwargs["step"]
        if step not in STEP_NAMES[1:]:
            raise Http404
        pipeline = Pipeline.load(request, pid)
        if pipeline is None:
            messages.warning(request, "That install was finished or abandoned; start again.")
            return HttpResponseRedirect(_url("start"))
        organization = pipeline.organization()
        _authorize(request, organization)
        entry = pipeline.current_entry()
        if entry is None:
            now = registry.current().get(pipeline.entry_point)
            what = (
                f"is now {now.status.value} at version {now.version or '?'}"
                if now
                else "is no longer installed"
            )
            pipeline.discard()
            messages.error(
                request,
                f"The plugin {pipeline.entry_point} changed while you were "
                f"installing it ({what}); nothing was written. Start again.",
            )
            return HttpResponseRedirect(_url("start"))
        if not pipeline.reachable(step):
            first = next(s for s in STEP_NAMES if not pipeline.completed(s))
            return HttpResponseRedirect(_url("step", pid, first))
        self.pipeline, self.organization, self.entry = pipeline, organization, entry
        assert entry.manifest is not None
        self.manifest: PluginManifest = entry.manifest
        self.step = step
        response: HttpResponse = getattr(self, f"step_{step}")(request)
        return response

    # -- helpers --

    def show(self, request: HttpRequest, template: str, **extra: Any) -> HttpResponse:
        index = STEP_NAMES.index(self.step)
        return render(
            request,
            f"admin/plugins_core/install/{template}",
            self.context(
                request,
                title=f"Install {self.manifest.name}: {STEPS[index].title}",
                pipeline=self.pipeline,
                entry=self.entry,
                manifest=self.manifest,
                organization=self.organization,
                current=self.step,
                previous=STEP_NAMES[index - 1] if index > 1 else None,
                **extra,
            ),
        )

    def next(self, step: str | None = None) -> HttpResponse:
        self.pipeline.mark_done(self.step)
        self.pipeline.save()
        following = step or STEP_NAMES[STEP_NAMES.index(self.step) + 1]
        return HttpResponseRedirect(_url("step", self.pipeline.id, following))

    # -- 2. service --

    def step_service(self, request: HttpRequest) -> HttpResponse:
        services = ThirdPartyService.objects.filter(organization=self.organization)
        choice = self.pipeline.service_choice
        has_template = self.manifest.service_template is not None
        initial: dict[str, Any] = {
            "mode": choice.get("mode")
            or (ServiceForm.TEMPLATE if has_template else ServiceForm.NEW)
        }
        if choice:
            initial.update(
                service=choice.get("service_id"),
                **choice.get("new", {}),
                **(choice.get("settings") or {}),
            )
        else:
            template = self.manifest.service_template
            settings = dict(template.settings) if template else {}
            if template and template.base_url:
                settings["base_url"] = template.base_url
            existing = self.pipeline.target_service(self.manifest) if template else None
            if template and existing is None:
                existing = services.filter(vendor=template.vendor, identity="").first()
            if existing is not None:
                settings = {**settings, **existing.settings}
            names = setting_names(self.manifest.service_template)
            initial.update({k: v for k, v in settings.items() if k in names})
        form = ServiceForm(
            _data(request),
            initial=initial,
            services=services,
            has_template=has_template,
            template=self.manifest.service_template,
        )
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            previous = self.pipeline.state["service"]
            self.pipeline.state["service"] = {
                "mode": data["mode"],
                "service_id": data["service"].pk if data.get("service") else None,
                "new": {k: data.get(k) or "" for k in ("name", "vendor", "slug")},
                "settings": {
                    name: str(data.get(name) or "").strip() for name in form.setting_names
                },
            }
            errors = self._host_errors()
            if not errors:
                self.pipeline.changed()
                return self.next()
            self.pipeline.state["service"] = previous
            for key, message in errors.items():
                form.add_error(key if key in form.fields else None, f"{key}: {message}")
        template_service = None
        if self.manifest.service_template is not None:
            template_service = services.filter(
                vendor=self.manifest.service_template.vendor, identity=""
            ).first()
        return self.show(request, "service.html", form=form, template_service=template_service)

    def _host_errors(self) -> dict[str, str]:
        """The chosen service's settings against its plugins' hosts, this one included."""
        service = self.pipeline.target_service(self.manifest) or ThirdPartyService(
            organization=self.organization
        )
        settings = self.pipeline.service_settings(self.manifest)
        return service_host_errors(service, settings, extra=[self.manifest])

    # -- 3. credentials --

    def step_credentials(self, request: HttpRequest) -> HttpResponse:
        stored_names = set(self.pipeline.stored_credentials(self.manifest))
        changes = self.pipeline.credential_changes()
        # Shown as "set": stored and not removed by this wizard, or entered in this wizard.
        removed = {name for name, value in changes.items() if value is None}
        effective = (stored_names - removed) | (set(changes) - removed)
        form = CredentialsForm(
            self.manifest.credentials,
            _data(request),
            stored_names=effective,
            manifests=[self.manifest],
        )
        if request.method == "POST" and form.is_valid():
            merged = dict(changes)
            for name, value in form.changes.items():
                if value is None and name not in stored_names:
                    merged.pop(name, None)  # removing a value only this wizard held
                else:
                    merged[name] = value
            self.pipeline.set_credential_changes(merged)
            self.pipeline.changed()
            return self.next()
        return self.show(
            request,
            "form.html",
            form=form,
            status=form.status(),
            intro="Credentials are stored encrypted and are never shown again. "
            "Secret fields are write-only.",
            service=self.pipeline.target_service(self.manifest),
        )

    # -- 4. options --

    def step_options(self, request: HttpRequest) -> HttpResponse:
        if self.pipeline.completed("options"):
            stored = self.pipeline.options()
        else:
            plugin = self.pipeline.target_plugin(self.manifest)
            stored = dict(plugin.options) if plugin else {}
        form = OptionsForm(self.manifest, _data(request), stored=stored)
        if request.method == "POST" and form.is_valid():
            self.pipeline.set_options(form.options)
            self.pipeline.changed()
            return self.next()
        return self.show(
            request,
            "form.html",
            form=form,
            intro="" if self.manifest.options else "This plugin has no options.",
        )

    # -- 5. test connection --

    def step_test(self, request: HttpRequest) -> HttpResponse:
        where = self.pipeline.state.get("test_with") or {}
        testing = request.method == "POST" and request.POST.get("action") == "test"
        form = ConnectionTestForm(
            request.POST if testing else None,
            organization=self.organization,
            initial={
                "sample_project": where.get("sample_project_id"),
                "search_template": where.get("search_template", ""),
            },
        )
        if request.method == "POST" and not testing:
            return self.next()
        if testing and form.is_valid():
            project = form.cleaned_data["sample_project"]
            template = form.cleaned_data["search_template"]
            outcome = test_connection(
                self.entry,
                self.organization,
                self.pipeline.options(),
                self.pipeline.service_settings(self.manifest),
                self.pipeline.credentials(self.manifest),
                project=project,
                search_template=template,
            )
            self.pipeline.state["connection"] = {
                **outcome,
                "revision": self.pipeline.state["revision"],
            }
            self.pipeline.state["test_with"] = {
                "sample_project_id": project.pk if project else None,
                "search_template": template,
            }
            self.pipeline.save()
            return HttpResponseRedirect(_url("step", self.pipeline.id, "test"))
        return self.show(
            request,
            "test.html",
            connection=self._connection(),
            form=form,
            settings=self.pipeline.service_settings(self.manifest),
        )

    def _connection(self) -> dict[str, Any] | None:
        tested = self.pipeline.state.get("connection")
        if not tested or tested.get("revision") != self.pipeline.state["revision"]:
            return None
        return dict(tested)

    # -- 6. bind --

    def step_bind(self, request: HttpRequest) -> HttpResponse:
        saved = self.pipeline.state.get("binding") or {}
        tested = self.pipeline.state.get("test_with") or {}
        tab = self.manifest.plugin_type.value
        initial = {
            "project_types": saved.get("project_type_ids", []),
            "default": saved.get("default", True),
            "search_template": saved.get("search_template", tested.get("search_template", "")),
            "sample_project": saved.get("sample_project_id", tested.get("sample_project_id")),
        }
        form = TypeBindingForm(
            _data(request), initial=initial, organization=self.organization, tab=tab
        )
        bindable = tab in Tab.values
        if (
            request.method == "POST"
            and form.is_valid()
            and not bindable
            and (form.cleaned_data["project_types"])
        ):
            form.add_error("project_types", f"A {tab} plugin does not serve a tab.")
        if request.method == "POST" and form.is_valid():
            data = form.cleaned_data
            sample = data.get("sample_project")
            self.pipeline.state["binding"] = {
                "project_type_ids": sorted(pt.pk for pt in data["project_types"]),
                "default": bool(data["default"]),
                "search_template": data["search_template"],
                "sample_project_id": sample.pk if sample else None,
            }
            return self.next()
        intro = "" if bindable else f"A {tab} plugin is not bound to a tab; continue."
        return self.show(request, "bind.html", form=form, intro=intro, preview_url=_url("preview"))

    # -- 7. done --

    def plan(self) -> InstallPlan:
        choice = self.pipeline.service_choice
        binding = self.pipeline.state.get("binding") or {}
        return InstallPlan(
            organization=self.organization,
            entry=self.entry,
            service_mode=choice["mode"],
            service_id=choice.get("service_id"),
            new_service=dict(choice.get("new") or {}),
            settings=dict(choice.get("settings") or {}),
            credential_changes=self.pipeline.credential_changes(),
            options=self.pipeline.options(),
            project_type_ids=list(binding.get("project_type_ids") or []),
            default=bool(binding.get("default")),
            search_template=str(binding.get("search_template") or ""),
            connection=self._connection(),
        )

    def step_finish(self, request: HttpRequest) -> HttpResponse:
        plan = self.plan()
        error = ""
        failed_test = plan.connection is not None and not plan.connection["ok"]
        if request.method == "POST" and failed_test and not request.POST.get("confirm_failed"):
            error = (
                "the connection test failed; tick “Install anyway” to install regardless, "
                "or go back and fix the settings or credentials"
            )
        elif request.method == "POST":
            try:
                done = finish_install(plan, request.user)
            except WizardError as exc:
                error = str(exc)
            else:
                self.pipeline.discard()
                request.session.setdefault(DONE_KEY, {})[self.pipeline.id] = _done_summary(
                    done, plan
                )
                request.session.modified = True
                return HttpResponseRedirect(_url("done", self.pipeline.id))
        return self.show(
            request,
            "finish.html",
            summary=self.summary(plan),
            error=error,
            failed_test=failed_test,
        )

    def summary(self, plan: InstallPlan) -> dict[str, Any]:
        """What will be written; values of credentials and secret options are never shown."""
        service = self.pipeline.target_service(self.manifest)
        stored = set(self.pipeline.stored_credentials(self.manifest))
        changes = plan.credential_changes
        credentials = []
        for cred in self.manifest.credentials:
            if cred.name in changes:
                what = "will be removed" if changes[cred.name] is None else "will be set"
            else:
                what = f"{stored_status(cred.name in stored)} (unchanged)"
            credentials.append((cred.label, what))
        options = []
        for option in self.manifest.options:
            if option.name not in plan.options:
                shown = "(default)"
            elif option.type is OptionType.SECRET:
                shown = stored_status(bool(plan.options[option.name]))
            else:
                shown = json.dumps(plan.options[option.name])
            options.append((option.label, shown))
        types = list(
            ProjectType.objects.filter(pk__in=plan.project_type_ids, organization=self.organization)
        )
        preview = ""
        sample_id = (self.pipeline.state.get("binding") or {}).get("sample_project_id")
        sample = (
            Project.objects.filter(
                pk=sample_id or 0,
                organization=self.organization,
            )
            .select_related("organization", "project_type")
            .first()
        )
        if sample is not None and plan.search_template:
            try:
                preview = expand_search_template(
                    plan.search_template, sample, self.manifest.plugin_type.value
                )
            except ValueError:
                preview = ""
        return {
            "service_mode": plan.service_mode,
            "service": service,
            "new_service": plan.new_service,
            "settings": self.pipeline.service_settings(self.manifest),
            "credentials": credentials,
            "options": options,
            "connection": plan.connection,
            "project_types": types,
            "default": plan.default,
            "search_template": plan.search_template,
            "sample": sample,
            "preview": preview,
            "tab": self.manifest.plugin_type.value,
        }


def _siblings(done: Finished) -> list[dict[str, Any]]:
    """The other plugins of the installed service that no project type binds yet."""
    bound = set(
        ProjectTypePlugin.objects.filter(plugin__service=done.service).values_list(
            "plugin_id", flat=True
        )
    )
    return [
        {"id": p.pk, "slug": p.slug, "name": p.name or p.slug, "tab": p.plugin_type}
        for p in Plugin.objects.filter(service=done.service, plugin_type__in=Tab.values)
        .exclude(pk=done.plugin.pk)
        .order_by("slug")
        if p.pk not in bound
    ]


def _done_summary(done: Finished, plan: InstallPlan) -> dict[str, Any]:
    sample = (
        Project.objects.filter(
            organization=plan.organization, project_type_id__in=plan.project_type_ids
        )
        .order_by("slug")
        .values_list("pk", flat=True)
        .first()
    )
    return {
        "siblings": _siblings(done),
        "project_type_ids": list(plan.project_type_ids),
        "organization_slug": plan.organization.slug,
        "sample_project_id": sample,
        "plugin": done.plugin.slug,
        "plugin_id": done.plugin.pk,
        "plugin_name": done.plugin.name or done.plugin.slug,
        "service": done.service.name,
        "service_id": done.service.pk,
        "created_service": done.created_service,
        "created_plugins": done.created_plugins,
        "credentials_changed": done.credentials_changed,
        "bindings": [
            f"{b.project_type.name} → {b.tab}{' (default)' if b.default else ''}"
            for b in done.bindings
        ],
        "organization": plan.organization.name,
        "connection": plan.connection,
    }


class CancelView(WizardView):
    def post(self, request: HttpRequest, pid: str) -> HttpResponse:
        _authorize(request)
        pipeline = Pipeline.load(request, pid)
        if pipeline is not None:
            pipeline.discard()
        messages.info(request, "The install was cancelled; nothing was written.")
        return HttpResponseRedirect(reverse("admin:plugins_core_plugin_changelist"))


class DoneView(WizardView):
    """What was installed, and the next steps: bind the template's siblings (the other
    plugins the one-click install created, e.g. CloudWatch after SSM), open a project."""

    def _summary(self, request: HttpRequest, pid: str) -> dict[str, Any] | None:
        summary = (request.session.get(DONE_KEY) or {}).get(pid)
        return dict(summary) if summary else None

    def get(self, request: HttpRequest, pid: str, form: Any = None) -> HttpResponse:
        _authorize(request)
        summary = self._summary(request, pid)
        if summary is None:
            return HttpResponseRedirect(reverse("admin:plugins_core_plugin_changelist"))
        organization = Organization.objects.filter(slug=summary["organization_slug"]).first()
        if organization is None:
            raise Http404
        siblings = [
            s
            for s in summary.get("siblings", [])
            if not ProjectTypePlugin.objects.filter(plugin_id=s["id"]).exists()
        ]
        sibling_forms = [
            (
                sibling,
                form
                if form is not None and form.prefix == f"s{sibling['id']}"
                else SiblingBindingForm(
                    organization=organization,
                    prefix=f"s{sibling['id']}",
                    initial={"project_types": summary.get("project_type_ids", [])},
                ),
            )
            for sibling in siblings
        ]
        project_url = ""
        if summary.get("sample_project_id"):
            project_url = reverse(
                "ui:project", args=(organization.slug, summary["sample_project_id"])
            )
        return render(
            request,
            "admin/plugins_core/install/done.html",
            self.context(
                request,
                title=f"Installed {summary['plugin_name']}",
                summary=summary,
                current="done",
                sibling_forms=sibling_forms,
                project_url=project_url,
                pid=pid,
            ),
        )

    def post(self, request: HttpRequest, pid: str) -> HttpResponse:
        """Bind one sibling (``sibling`` = its plugin id) to the chosen project types."""
        summary = self._summary(request, pid)
        if summary is None:
            return HttpResponseRedirect(reverse("admin:plugins_core_plugin_changelist"))
        organization = Organization.objects.filter(slug=summary["organization_slug"]).first()
        if organization is None:
            raise Http404
        _authorize(request, organization)
        sibling = next(
            (s for s in summary.get("siblings", []) if str(s["id"]) == request.POST.get("sibling")),
            None,
        )
        if sibling is None:
            raise Http404
        form = SiblingBindingForm(
            request.POST, organization=organization, prefix=f"s{sibling['id']}"
        )
        if form.is_valid():
            data = {
                "plugin": sibling["slug"],
                "default": form.cleaned_data["default"],
                "search_template": form.cleaned_data["search_template"],
            }
            try:
                with transaction.atomic():
                    for project_type in form.cleaned_data["project_types"]:
                        binding_service.create_type_binding(project_type, dict(data), request.user)
            except (InvalidInput, ResolutionError) as exc:
                fields = exc.fields if isinstance(exc, InvalidInput) else {}
                for name, message in (fields or {"": exc.detail}).items():
                    form.add_error(name if name in form.fields else None, message)
            else:
                names = ", ".join(t.name for t in form.cleaned_data["project_types"])
                messages.success(request, f"Bound {sibling['slug']} to {names}.")
                return HttpResponseRedirect(_url("done", pid))
        return self.get(request, pid, form=form)


class PreviewView(WizardView):
    """JSON: the expanded search template for a sample project (validated server-side)."""

    def get(self, request: HttpRequest) -> JsonResponse:
        """A project of an organization the caller does not administer answers exactly like
        a missing one: 404 with the same body."""
        _authorize(request)
        template = request.GET.get("template", "")
        tab = request.GET.get("tab", "configuration")
        try:
            project_id = int(request.GET.get("project", ""))
        except ValueError:
            project_id = 0
        project = (
            Project.objects.select_related("organization", "project_type")
            .filter(pk=project_id, organization__in=installable_organizations(request.user))
            .first()
            if 0 < project_id < 2**63
            else None
        )
        if project is None:
            return JsonResponse({"ok": False, "error": "choose a sample project"}, status=404)
        _authorize(request, project.organization)
        return JsonResponse(preview_search_template(template, project, tab))
