"""Admin for the supply chain: followed indexes, install records, policies, install form.

Owns ``PluginIndexAdmin`` (trust roots, last version seen, last refusal with its code; a
"refresh" action), the "Install from an index" page (``/admin/plugins_core/pluginindex/
install/``: the available list with verified/community badges and blocked versions, and a
form whose refusal shows its stable code and reason), ``IndexedArtifactAdmin`` (read-only:
what was installed, its hash, badge and integrity at rest now) and ``PluginPolicyAdmin``.
Imported by ``plugins_core.pages.admin``.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, path, reverse

from imbi.core.models import Organization
from plugins_core.distributions import integrity
from plugins_core.models import IndexedArtifact, PluginIndex, PluginPolicy
from plugins_core.supply import index as index_module
from plugins_core.supply import install as index_install
from plugins_core.supply.errors import InvalidRequirement, SupplyChainError
from plugins_core.supply.signing import parse_public_keys
from plugins_core.supply.verification import parse_requirement

_KEYS_HELP = (
    "Paste the .pub file(s) made by imbi-plugin keygen, a PEM public key, or base64 "
    "Ed25519 public keys (one per line, or a JSON list)."
)


class KeysField(forms.CharField):
    """Public keys as pasted: ``.pub`` documents, PEM blocks, base64 lines or a JSON list
    (``plugins_core.supply.signing.parse_public_keys``); cleans to a list of base64 keys."""

    widget = forms.Textarea(attrs={"rows": 4, "spellcheck": "false"})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return "\n".join(str(k) for k in value)
        if isinstance(value, str) and value.startswith("["):
            try:
                return "\n".join(str(k) for k in json.loads(value))
            except ValueError:
                return value
        return value

    def has_changed(self, initial: Any, data: Any) -> bool:
        if isinstance(initial, str):
            try:
                initial = json.loads(initial)
            except ValueError:
                return True
        try:
            return list(initial or []) != parse_public_keys(data or "")
        except ValueError:
            return True

    def clean(self, value: Any) -> list[str]:
        text = super().clean(value)
        try:
            return parse_public_keys(text)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from None


class PluginIndexForm(forms.ModelForm):  # type: ignore[type-arg]
    index_keys = KeysField(help_text=f"Keys that may sign the index. {_KEYS_HELP}")
    root_keys = KeysField(help_text=f"Keys that certify its publishers. {_KEYS_HELP}")

    class Meta:
        model = PluginIndex
        fields = ("name", "url", "index_keys", "root_keys", "priority", "enabled")


class InstallForm(forms.Form):
    requirement = forms.CharField(
        max_length=300, help_text="NAME or NAME==VERSION, e.g. acme-demo==0.1.0"
    )
    organization = forms.ModelChoiceField(
        queryset=Organization.objects.order_by("slug"),
        required=False,
        help_text="Optional: apply this organization's verified-publishers-only policy too.",
    )
    allow_downgrade = forms.BooleanField(
        required=False, help_text="Install a lower version than the installed one (audited)."
    )
    transfer_publisher = forms.BooleanField(
        required=False,
        help_text="Replace an installed build of another publisher or index (audited).",
    )

    def clean_requirement(self) -> str:
        value: str = self.cleaned_data["requirement"]
        try:
            parse_requirement(value)
        except InvalidRequirement as exc:
            raise forms.ValidationError(exc.detail) from None
        return value


@admin.register(PluginIndex)
class PluginIndexAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    form = PluginIndexForm
    list_display = (
        "name",
        "url",
        "priority",
        "enabled",
        "last_version",
        "expires",
        "checked_at",
        "last_refusal",
    )
    readonly_fields = (
        "last_version",
        "expires",
        "checked_at",
        "last_error_code",
        "last_error",
        "rotation",
    )
    actions = ("refresh",)
    change_list_template = "admin/plugins_core/supply/pluginindex_changelist.html"

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(getattr(request.user, "is_superuser", False))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(getattr(request.user, "is_superuser", False))

    has_change_permission = has_view_permission
    has_add_permission = has_module_permission
    has_delete_permission = has_view_permission

    @admin.display(description="Last refusal")
    def last_refusal(self, obj: PluginIndex) -> str:
        return f"{obj.last_error_code}: {obj.last_error}" if obj.last_error_code else "—"

    def save_model(self, request: HttpRequest, obj: PluginIndex, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change:
            return
        # a new index is fetched at once, so the catalog lists what it offers right away
        try:
            document = index_module.refresh(obj)
        except SupplyChainError as exc:
            self.message_user(
                request, f"{obj.name}: not fetched yet: {exc} (refresh tries again)", messages.ERROR
            )
        else:
            self.message_user(request, f"{obj.name}: version {document.version} verified")

    @admin.action(description="Fetch and verify the selected indexes")
    def refresh(self, request: HttpRequest, queryset: QuerySet[PluginIndex]) -> None:
        for row in queryset:
            try:
                document = index_module.refresh(row)
            except SupplyChainError as exc:
                self.message_user(request, f"{row.name}: {exc}", messages.ERROR)
            else:
                self.message_user(request, f"{row.name}: version {document.version} verified")

    def get_urls(self) -> list[URLPattern]:
        return [
            path(
                "install/",
                self.admin_site.admin_view(self.install_view),
                name="plugins_core_index_install",
            ),
            *super().get_urls(),
        ]

    def install_view(self, request: HttpRequest) -> HttpResponse:
        if not getattr(request.user, "is_superuser", False):
            from django.core.exceptions import PermissionDenied

            raise PermissionDenied
        form = InstallForm(request.POST or None)
        status = 200
        if request.method == "POST" and form.is_valid():
            try:
                result = index_install.install_from_index(
                    form.cleaned_data["requirement"],
                    organization=form.cleaned_data["organization"],
                    actor=request.user,
                    allow_downgrade=bool(form.cleaned_data.get("allow_downgrade")),
                    transfer_publisher=bool(form.cleaned_data.get("transfer_publisher")),
                )
            except SupplyChainError as exc:
                form.add_error(None, f"{exc.code}: {exc.detail}")
                status = 422
            else:
                artifact = result.artifact
                messages.success(
                    request,
                    f"Installed {artifact.name} {artifact.version} from index {artifact.index} "
                    f"(sha256 {artifact.sha256}, {artifact.badge} publisher "
                    f"{artifact.certificate.subject}).",
                )
                return HttpResponseRedirect(
                    reverse("admin:plugins_core_indexedartifact_changelist")
                )
        context = {
            **self.admin_site.each_context(request),
            "title": "Install a plugin from an index",
            "form": form,
            "offers": index_install.available(),
            "indexes": PluginIndex.objects.all(),
            "opts": self.model._meta,
        }
        return render(request, "admin/plugins_core/supply/install.html", context, status=status)


@admin.register(IndexedArtifact)
class IndexedArtifactAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "distribution",
        "version",
        "badge_label",
        "publisher",
        "index",
        "index_version",
        "short_sha256",
        "installed_at",
        "installed_by",
        "integrity_now",
    )
    readonly_fields = [f.name for f in IndexedArtifact._meta.fields]

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(getattr(request.user, "is_superuser", False))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(getattr(request.user, "is_superuser", False))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="Badge")
    def badge_label(self, obj: IndexedArtifact) -> str:
        return obj.badge

    @admin.display(description="sha256")
    def short_sha256(self, obj: IndexedArtifact) -> str:
        return obj.sha256[:16] + "…"

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> Any:
        self._integrity = {r.distribution: r for r in integrity.verify_installed()}
        return super().changelist_view(request, extra_context)

    @admin.display(description="Integrity now")
    def integrity_now(self, obj: IndexedArtifact) -> str:
        result = getattr(self, "_integrity", {}).get(obj.distribution)
        if result is None:
            return "not installed on this node"
        return "ok" if result.ok else f"{result.status}: {result.detail}"


@admin.register(PluginPolicy)
class PluginPolicyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("organization", "verified_publishers_only")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return bool(getattr(request.user, "is_superuser", False))

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return bool(getattr(request.user, "is_superuser", False))

    has_change_permission = has_view_permission
    has_add_permission = has_module_permission
    has_delete_permission = has_view_permission
