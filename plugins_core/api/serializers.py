"""Wire shapes of the tab API: query parsing on the way in, documented shapes on the way out.

Log filters are ``field:op:value``. A field name cannot contain ':' and operators are a fixed
set, so splitting on the first two colons is unambiguous: everything after the second colon
is the value, colons included (``url:starts_with:http://svc:8080/``).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from imbi_plugin_sdk import DataType, FilterOp, LogFilter, LogLevel, LogQuery
from imbi_plugin_sdk.errors import InvalidInput
from rest_framework import serializers

from plugins_core import registry
from plugins_core.models import Binding, Plugin, Tab

_FIELD = re.compile(r"^[A-Za-z_@][A-Za-z0-9_.@-]{0,127}$")


def parse_filter(text: str) -> LogFilter:
    parts = text.split(":", 2)
    if len(parts) < 2:
        raise serializers.ValidationError(f"'{text}': expected field:op:value")
    field, op = parts[0], parts[1]
    value = parts[2] if len(parts) == 3 else ""
    if not _FIELD.match(field):
        raise serializers.ValidationError(f"'{field}' is not a valid field name")
    if op not in FilterOp._value2member_map_:
        ops = ", ".join(o.value for o in FilterOp)
        raise serializers.ValidationError(f"'{op}' is not an operator; use one of {ops}")
    if op != FilterOp.EXISTS and len(parts) < 3:
        raise serializers.ValidationError(f"'{text}': the {op} operator needs a value")
    return LogFilter(field=field, op=FilterOp(op), value=value)


class SourceQuery(serializers.Serializer):  # type: ignore[type-arg]
    source = serializers.SlugField(required=False, help_text="Plugin slug to use.")  # type: ignore[assignment]


class ValuesQuery(SourceQuery):
    keys = serializers.CharField(
        required=False, help_text="Comma-separated keys; all keys when omitted."
    )
    reveal = serializers.BooleanField(
        required=False, default=False, help_text="Reveal secret values (read-secrets only)."
    )


class LogsQuery(SourceQuery):
    start = serializers.DateTimeField(required=False, help_text="Default: 30 minutes ago.")
    end = serializers.DateTimeField(required=False, help_text="Default: now.")
    filter = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="Repeatable field:op:value."
    )
    level = serializers.ListField(
        child=serializers.ChoiceField(choices=[lvl.value for lvl in LogLevel]), required=False
    )
    q = serializers.CharField(required=False, allow_blank=True, max_length=500)
    limit = serializers.IntegerField(required=False, min_value=1, max_value=1000, default=100)
    cursor = serializers.CharField(required=False, max_length=4096)

    def validate_filter(self, value: list[str]) -> list[LogFilter]:
        return [parse_filter(text) for text in value]

    def to_query(self) -> LogQuery:
        data = self.validated_data
        end = data.get("end") or datetime.now(UTC)
        try:
            start = data.get("start") or end - timedelta(minutes=30)
        except OverflowError:
            raise serializers.ValidationError({"end": ["is too early"]}) from None
        try:
            return LogQuery(
                start=start,
                end=end,
                filters=tuple(data.get("filter", ())),
                levels=tuple(LogLevel(lvl) for lvl in data.get("level", ())),
                text=data.get("q", ""),
                limit=data["limit"],
                cursor=data.get("cursor"),
            )
        except InvalidInput as exc:
            raise serializers.ValidationError({"start": [exc.detail]}) from None


class ConfigKeyOut(serializers.Serializer):  # type: ignore[type-arg]
    key = serializers.CharField()
    data_type = serializers.ChoiceField(choices=[d.value for d in DataType])
    secret = serializers.BooleanField()
    last_modified = serializers.DateTimeField(allow_null=True)


class ConfigValueOut(ConfigKeyOut):
    value = serializers.JSONField(
        allow_null=True, help_text="null when masked (secret and not revealed)."
    )
    masked = serializers.BooleanField()


class ConfigWriteIn(serializers.Serializer):  # type: ignore[type-arg]
    data_type = serializers.ChoiceField(choices=[d.value for d in DataType])
    value = serializers.JSONField()
    secret = serializers.BooleanField(required=False, default=False)


class SourceOut(serializers.Serializer):  # type: ignore[type-arg]
    slug = serializers.CharField()
    name = serializers.CharField()


class KeysOut(serializers.Serializer):  # type: ignore[type-arg]
    source = SourceOut()  # type: ignore[assignment]
    keys = ConfigKeyOut(many=True)


class ValuesOut(serializers.Serializer):  # type: ignore[type-arg]
    source = SourceOut()  # type: ignore[assignment]
    values = ConfigValueOut(many=True)


class KeyOut(serializers.Serializer):  # type: ignore[type-arg]
    source = SourceOut()  # type: ignore[assignment]
    key = ConfigKeyOut()
    cache_invalidation = serializers.ChoiceField(
        choices=["immediate", "deferred"],
        help_text=(
            "'deferred' when Redis was unreachable: the value and its audit event are stored "
            "and cached results were retired through the database instead."
        ),
    )


class LogEntryOut(serializers.Serializer):  # type: ignore[type-arg]
    timestamp = serializers.DateTimeField()
    level = serializers.CharField(allow_null=True)
    message = serializers.CharField(allow_blank=True)
    fields = serializers.DictField(child=serializers.JSONField(allow_null=True))  # type: ignore[assignment]


class LogsOut(serializers.Serializer):  # type: ignore[type-arg]
    source = SourceOut()  # type: ignore[assignment]
    start = serializers.DateTimeField(help_text="The range searched; pass it back with cursor.")
    end = serializers.DateTimeField(help_text="The range searched; pass it back with cursor.")
    entries = LogEntryOut(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    warnings = serializers.ListField(child=serializers.CharField())


class TabSourceOut(serializers.Serializer):  # type: ignore[type-arg]
    slug = serializers.CharField()
    name = serializers.CharField()
    scope = serializers.ChoiceField(choices=["project", "project_type"])
    default = serializers.BooleanField()
    selected = serializers.BooleanField(help_text="Serves requests without ?source=.")
    status = serializers.CharField(
        help_text="The health badge: 'ok' (last connection test passed), 'untested', "
        "'connection_failed', 'credentials_missing', or the code that stops it."
    )
    reason = serializers.CharField(allow_blank=True)
    tested_at = serializers.DateTimeField(allow_null=True, help_text="Last connection test.")


class TabOut(serializers.Serializer):  # type: ignore[type-arg]
    tab = serializers.CharField()
    sources = TabSourceOut(many=True)


class TabsOut(serializers.Serializer):  # type: ignore[type-arg]
    tabs = TabOut(many=True)


class BindingIn(serializers.Serializer):  # type: ignore[type-arg]
    plugin = serializers.SlugField()
    tab = serializers.ChoiceField(choices=Tab.choices, required=False)
    default = serializers.BooleanField(required=False)
    replace_default = serializers.BooleanField(
        required=False,
        help_text=(
            "With default=true: make this binding the tab's default, unsetting the current "
            "default in the same transaction (audited). Without it, a second default is "
            "409 default_exists naming the current default."
        ),
    )
    search_template = serializers.CharField(required=False, allow_blank=True, max_length=500)
    options = serializers.DictField(required=False, child=serializers.JSONField())


class BindingPatch(serializers.Serializer):  # type: ignore[type-arg]
    default = serializers.BooleanField(required=False)
    replace_default = serializers.BooleanField(
        required=False,
        help_text=(
            "With default=true: make this binding the tab's default, unsetting the current "
            "default in the same transaction (audited). Without it, a second default is "
            "409 default_exists naming the current default."
        ),
    )
    search_template = serializers.CharField(required=False, allow_blank=True, max_length=500)
    options = serializers.DictField(required=False, child=serializers.JSONField())


class BindingOut(serializers.Serializer):  # type: ignore[type-arg]
    id = serializers.IntegerField()
    plugin = serializers.CharField(source="plugin.slug")
    tab = serializers.CharField()
    default = serializers.BooleanField()
    search_template = serializers.CharField(allow_blank=True)
    options = serializers.DictField(child=serializers.JSONField(allow_null=True))


class RegistryEntryOut(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField()
    slug = serializers.CharField()
    distribution = serializers.CharField(allow_blank=True)
    version = serializers.CharField(allow_blank=True)
    status = serializers.CharField(
        help_text="One of: " + ", ".join(status.value for status in registry.Status) + ". "
        "loading: an untrusted plugin still being imported in its sandboxed runner (calls "
        "answer 503 plugin_loading until it finishes). cannot_run_here: an untrusted plugin "
        "this host cannot sandbox (reason says why; calls answer 503 plugin_cannot_run_here)."
    )
    reason = serializers.CharField(allow_blank=True)
    plugin_type = serializers.CharField(allow_null=True)
    api_version = serializers.CharField(allow_null=True)
    legacy_sdk = serializers.BooleanField(
        help_text="The plugin imports the deprecated plugins_core.sdk (use imbi_plugin_sdk)."
    )
    isolated_only = serializers.BooleanField(
        help_text="The distribution is not trusted: imported and run only in sandboxed runners."
    )
    badge = serializers.ChoiceField(
        choices=["verified", "community", "first-party", "unsigned"],
        help_text="verified/community: installed from a signed index, by a verified or an "
        "unverified publisher; first-party: the platform's own catalog, shipped with it; "
        "unsigned: not installed from an index (allow-listed).",
    )


class RegistryOut(serializers.Serializer):  # type: ignore[type-arg]
    generation = serializers.IntegerField(
        help_text="The registry generation this node serves; every runtime install, upgrade "
        "and removal increments it."
    )
    loading = serializers.IntegerField(
        help_text="Entry points still being imported in sandboxed runners (0 once settled)."
    )
    entries = RegistryEntryOut(many=True, help_text="Every discovered entry point.")


class InstalledPluginOut(serializers.Serializer):  # type: ignore[type-arg]
    slug = serializers.CharField()
    name = serializers.CharField(allow_blank=True)
    plugin_type = serializers.CharField()
    handler = serializers.CharField()
    service = serializers.CharField(source="service.slug")
    enabled = serializers.BooleanField()
    status = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    execution_mode = serializers.ChoiceField(
        choices=["auto", "in_process", "isolated"], help_text="The mode an admin chose."
    )
    runs = serializers.ChoiceField(
        choices=["in_process", "isolated"], help_text="Where calls actually run."
    )
    circuit = serializers.ChoiceField(
        choices=["closed", "open", "half_open"],
        help_text="The plugin's circuit breaker (open: calls are refused with 503).",
    )


def binding_out(binding: Binding) -> dict[str, Any]:
    from plugins_core.provisioning.bindings import mask_options

    data = dict(BindingOut(binding).data)
    data["options"] = mask_options(binding.plugin, dict(binding.options))
    return data


def installed_out(
    plugin: Plugin, status: str, reason: str, *, runs: str = "", circuit: str = "closed"
) -> dict[str, Any]:
    data = dict(
        InstalledPluginOut(plugin, context={}).to_representation(
            _WithStatus(plugin, status, reason, runs or plugin.execution_mode, circuit)
        )
    )
    return data


class _WithStatus:
    def __init__(self, plugin: Plugin, status: str, reason: str, runs: str, circuit: str) -> None:
        self.slug, self.name, self.plugin_type = plugin.slug, plugin.name, plugin.plugin_type
        self.handler, self.service, self.enabled = plugin.handler, plugin.service, plugin.enabled
        self.status, self.reason = status, reason
        self.execution_mode, self.runs, self.circuit = plugin.execution_mode, runs, circuit


class InstallIn(serializers.Serializer):  # type: ignore[type-arg]
    entry_point = serializers.CharField(
        max_length=200, help_text="Any entry point declaring the template."
    )


class InstallOut(serializers.Serializer):  # type: ignore[type-arg]
    service = serializers.CharField(help_text="Slug of the third-party service.")
    created_service = serializers.BooleanField()
    plugins = serializers.ListField(child=serializers.CharField())
    created_plugins = serializers.ListField(child=serializers.CharField())
    credentials_needed = serializers.ListField(
        child=serializers.CharField(),
        help_text="Required credentials not set yet (one already stored is not listed).",
    )


class HistogramQuery(LogsQuery):
    buckets = serializers.IntegerField(required=False, min_value=1, max_value=500, default=60)


class HistogramBucketOut(serializers.Serializer):  # type: ignore[type-arg]
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    count = serializers.IntegerField()


class HistogramOut(serializers.Serializer):  # type: ignore[type-arg]
    source = SourceOut()  # type: ignore[assignment]
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    total = serializers.IntegerField(help_text="Sum of the bucket counts.")
    buckets = HistogramBucketOut(many=True)


# --- management: services, credentials, plugins, connection tests -------------------


class ServiceIn(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField(max_length=200)
    vendor = serializers.SlugField(max_length=64)
    slug = serializers.SlugField(max_length=64)
    category = serializers.CharField(max_length=64, required=False, allow_blank=True)
    identity = serializers.CharField(max_length=200, required=False, allow_blank=True)
    settings = serializers.DictField(
        child=serializers.JSONField(), required=False, help_text="Non-secret settings."
    )


class ServicePatch(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField(max_length=200, required=False)
    slug = serializers.SlugField(max_length=64, required=False)
    category = serializers.CharField(max_length=64, required=False, allow_blank=True)
    identity = serializers.CharField(max_length=200, required=False, allow_blank=True)
    settings = serializers.DictField(child=serializers.JSONField(), required=False)


class CredentialFieldOut(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField()
    label = serializers.CharField()  # type: ignore[assignment]
    required = serializers.BooleanField()  # type: ignore[assignment]
    secret = serializers.BooleanField()
    set = serializers.BooleanField(help_text="A value is stored (never returned).")


class CredentialsOut(serializers.Serializer):  # type: ignore[type-arg]
    set = serializers.ListField(child=serializers.CharField(), help_text="Names with a value.")
    fields = CredentialFieldOut(many=True, help_text="Declared by the service's plugins.")  # type: ignore[assignment]
    missing = serializers.ListField(child=serializers.CharField())
    changed = serializers.ListField(child=serializers.CharField(), required=False)


class CredentialsIn(serializers.Serializer):  # type: ignore[type-arg]
    credentials = serializers.DictField(
        child=serializers.CharField(allow_null=True, trim_whitespace=False, max_length=20000),
        help_text="name -> value; null clears that credential (PATCH).",
    )


class ServiceOut(serializers.Serializer):  # type: ignore[type-arg]
    slug = serializers.CharField()
    name = serializers.CharField()
    vendor = serializers.CharField()
    category = serializers.CharField(allow_blank=True)
    identity = serializers.CharField(allow_blank=True)
    settings = serializers.DictField(child=serializers.JSONField())
    managed_by_manifest = serializers.BooleanField()
    template_source = serializers.CharField(allow_blank=True)
    plugins = serializers.ListField(child=serializers.CharField())
    credentials = CredentialsOut()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class HealthOut(serializers.Serializer):  # type: ignore[type-arg]
    status = serializers.CharField()
    reason = serializers.CharField(allow_blank=True)
    tested_at = serializers.DateTimeField(allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)


class PermissionsOut(serializers.Serializer):  # type: ignore[type-arg]
    declared = serializers.ListField(
        child=serializers.CharField(),
        help_text="What the installed version's manifest asks for ('network HOST', 'storage', "
        "'project metadata').",
    )
    approved = serializers.ListField(
        child=serializers.CharField(), help_text="What an administrator approved."
    )
    pending = serializers.ListField(
        child=serializers.CharField(),
        help_text="Declared but not approved: the plugin answers 503 "
        "plugin_permissions_pending until an administrator approves them.",
    )


class PluginOut(InstalledPluginOut):
    options = serializers.DictField(child=serializers.JSONField(allow_null=True))
    health = HealthOut()
    permissions = PermissionsOut()


class PluginPatch(serializers.Serializer):  # type: ignore[type-arg]
    enabled = serializers.BooleanField(required=False)
    options = serializers.DictField(child=serializers.JSONField(allow_null=True), required=False)


class ConnectionCheckOut(serializers.Serializer):  # type: ignore[type-arg]
    plugin = serializers.CharField()
    ok = serializers.BooleanField()
    status = serializers.ChoiceField(choices=["ok", "failed"])
    message = serializers.CharField(allow_blank=True)
    tested_at = serializers.DateTimeField()
    duration_ms = serializers.IntegerField()
    trigger = serializers.CharField()


class ConnectionTestIn(serializers.Serializer):  # type: ignore[type-arg]
    project = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        help_text="Test as the plugin serves this project (default: a project it serves).",
    )


# --- the signed plugin index ----------------------------------------------------------------


class IndexInstallIn(serializers.Serializer):  # type: ignore[type-arg]
    requirement = serializers.CharField(
        max_length=300, help_text="NAME or NAME==VERSION, as listed by the followed indexes."
    )
    org = serializers.SlugField(
        required=False, help_text="Also apply this organization's publisher policy."
    )
    allow_downgrade = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Install a lower version than the installed one (audited); refused "
        "(downgrade_refused) without it.",
    )
    transfer_publisher = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Replace an installed build of another publisher or index (an explicit "
        "transfer, audited); refused (publisher_changed) without it.",
    )

    def validate_requirement(self, value: str) -> str:
        from plugins_core.supply.errors import InvalidRequirement
        from plugins_core.supply.verification import parse_requirement

        try:
            parse_requirement(value)
        except InvalidRequirement as exc:
            raise serializers.ValidationError(exc.detail) from None
        return value


class IndexInstallOut(serializers.Serializer):  # type: ignore[type-arg]
    distribution = serializers.CharField()
    version = serializers.CharField()
    previous_version = serializers.CharField(allow_null=True)
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    index = serializers.CharField()
    index_version = serializers.IntegerField()
    publisher = serializers.CharField()
    badge = serializers.CharField(help_text="verified or community (publisher certificate).")
    generation = serializers.IntegerField(
        allow_null=True, help_text="The registry generation this install created."
    )
    artifacts = serializers.ListField(
        child=serializers.CharField(),
        help_text="SHA-256 of every stored wheel: the plugin's and its pinned dependencies'.",
    )


class AvailablePluginOut(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField()
    index = serializers.CharField()
    latest = serializers.CharField()
    versions = serializers.ListField(child=serializers.CharField())
    publisher = serializers.CharField()
    badge = serializers.CharField(help_text="verified or community (publisher certificate).")
    installed = serializers.CharField(allow_null=True)
    installed_version = serializers.CharField(
        allow_null=True, help_text="The version installed on this platform (null: none)."
    )
    update_available = serializers.BooleanField(
        help_text="Installed, and a newer version that is not blocked is offered."
    )
    blocked_versions = serializers.ListField(child=serializers.CharField())
    description = serializers.CharField(allow_blank=True)


class IntegrityOut(serializers.Serializer):  # type: ignore[type-arg]
    distribution = serializers.CharField()
    version = serializers.CharField()
    status = serializers.CharField(
        help_text="signed, unsigned-allowed, or the refusal code (file_modified, ...)."
    )
    detail = serializers.CharField()
    ok = serializers.BooleanField()
