"""Binding services: create, change and remove tab bindings for projects and project types.

Validation happens here, at save time, so that a bad binding is a field error now rather than
a failure at call time: the plugin must be installed in the same organization, the search
template may use only the allowed variables, and the merged options must satisfy the
plugin's manifest. Database invariants surface as a 409: a second default for a tab is
``default_exists`` naming the current default (``replace_default`` makes the new binding the
default instead, in the same transaction, audited); a plugin bound twice is ``conflict``.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from imbi_plugin_sdk import OptionType, OptionValidationError
from imbi_plugin_sdk.errors import InvalidInput

from imbi.core import audit
from imbi.core.models import AuditEvent, Organization, Project, ProjectType
from plugins_core.models import Binding, Plugin, ProjectPlugin, ProjectTypePlugin
from plugins_core.serving.confinement import project_template_error
from plugins_core.serving.resolution import (
    ResolutionError,
    TemplateError,
    manifest_for,
    validate_search_template,
)

EDITABLE = ("default", "search_template", "options")


class BindingConflict(ResolutionError):
    code, http_status = "conflict", 409


class DefaultExists(BindingConflict):
    """Another binding already is the default for this tab here (one default per tab)."""

    code = "default_exists"


def _plugin(org: Organization, slug: str) -> Plugin:
    plugin = Plugin.objects.select_related("service").filter(organization=org, slug=slug).first()
    if plugin is None:
        raise InvalidInput(
            f"no plugin '{slug}' is installed in this organization",
            fields={"plugin": "not installed in this organization"},
        )
    return plugin


SECRET_MASK = "********"  # noqa: S105  (a placeholder, not a password)


def secret_option_names(plugin: Plugin) -> set[str]:
    manifest = manifest_for(plugin)
    if manifest is None:
        return set()
    return {f.name for f in manifest.options if f.type is OptionType.SECRET}


def mask_options(plugin: Plugin, options: dict[str, Any]) -> dict[str, Any]:
    """Options as shown to clients: secret-typed values replaced by ``SECRET_MASK``."""
    secret = secret_option_names(plugin)
    return {
        k: (SECRET_MASK if k in secret and v not in (None, "") else v) for k, v in options.items()
    }


def keep_masked(plugin: Plugin, incoming: Any, stored: dict[str, Any]) -> Any:
    """A masked secret sent back unchanged keeps the stored value (write-only secrets)."""
    if not isinstance(incoming, dict):
        return incoming
    secret = secret_option_names(plugin)
    return {
        k: (stored.get(k) if k in secret and v == SECRET_MASK else v) for k, v in incoming.items()
    }


def binding_errors(binding: Binding, *, full_clean: bool = True) -> dict[str, str]:
    """Everything wrong with ``binding``, by field (``options.<name>`` for one option): the
    template allowlist, a project binding's template confined to its project (ADR 0011),
    operator-only options on a project binding, and the merged options against the plugin's
    manifest. The admin form and the services both use it."""
    inherited = (
        _inherited(binding.project, binding.plugin) if isinstance(binding, ProjectPlugin) else {}
    )
    errors: dict[str, str] = {}
    try:
        validate_search_template(binding.search_template)
    except TemplateError as exc:
        errors["search_template"] = str(exc)
    else:
        if isinstance(binding, ProjectPlugin) and binding.project_id:
            escape = project_template_error(binding.search_template, binding.project)
            if escape:
                errors["search_template"] = escape
    if not isinstance(binding.options, dict):
        errors["options"] = "must be a JSON object"
    else:
        manifest = manifest_for(binding.plugin)
        if manifest is not None and isinstance(binding, ProjectPlugin):
            for option in manifest.options:
                if option.operator_only and option.name in binding.options:
                    errors[f"options.{option.name}"] = (
                        "only administrators set this, on the plugin or a project-type binding"
                    )
        if manifest is not None:
            merged = {**binding.plugin.options, **inherited, **binding.options}
            try:
                manifest.validate_options(merged)
            except OptionValidationError as exc:
                errors.update({f"options.{k}": v for k, v in exc.errors.items()})
    if full_clean:
        try:
            binding.full_clean(exclude=["organization"], validate_constraints=False)
        except ValidationError as exc:
            errors.update({k: "; ".join(v) for k, v in exc.message_dict.items()})
    return errors


def _validate(binding: Binding) -> None:
    errors = binding_errors(binding)
    if errors:
        raise InvalidInput("the binding has invalid fields", fields=errors)


def current_default(binding: Binding) -> Binding | None:
    """The binding that is the default for ``binding``'s tab in its scope (project or project
    type), other than ``binding`` itself; ``None`` when there is none."""
    model: Any = type(binding)
    scope: dict[str, Any] = (
        {"project_id": binding.project_id}
        if isinstance(binding, ProjectPlugin)
        else {"project_type_id": binding.project_type_id}  # type: ignore[attr-defined]
    )
    rows = model.objects.select_related("plugin").filter(**scope, tab=binding.tab, default=True)
    if binding.pk is not None:
        rows = rows.exclude(pk=binding.pk)
    found: Binding | None = rows.first()
    return found


def _default_exists(binding: Binding, current: Binding) -> DefaultExists:
    slug = current.plugin.slug
    return DefaultExists(
        f"plugin '{slug}' is already the default for the {binding.tab} tab here; "
        f"send replace_default to make '{binding.plugin.slug}' the default instead",
        errors={"default": f"'{slug}' is the default for this tab"},
        current_default=slug,
    )


def _save(
    binding: Binding,
    actor: Any,
    project: Project | None,
    verb: str,
    *,
    replace_default: bool = False,
) -> Binding:
    replaced: Binding | None = None
    try:
        with transaction.atomic():
            current = current_default(binding) if binding.default else None
            if current is not None:
                if not replace_default:
                    raise _default_exists(binding, current)
                current.default = False
                current.save(update_fields=["default"])
                replaced = current
            binding.save()
    except IntegrityError as exc:
        current = current_default(binding) if binding.default else None
        if current is not None or "one_default" in str(exc):
            if current is not None:
                raise _default_exists(binding, current) from None
            raise DefaultExists(
                f"another plugin is already the default for the {binding.tab} tab here",
                errors={"default": "another binding is the default for this tab"},
            ) from None
        if "_unique" in str(exc) or "UNIQUE" in str(exc):
            raise BindingConflict(
                f"plugin '{binding.plugin.slug}' is already bound here",
                errors={"plugin": "already bound"},
            ) from None
        raise
    if replaced is not None:
        audit.record(
            AuditEvent.Action.BINDING_CHANGE,
            actor=actor,
            organization=binding.plugin.organization,
            project=project,
            plugin_slug=replaced.plugin.slug,
            detail=f"no longer the default {binding.tab} binding (replaced by "
            f"{binding.plugin.slug})",
        )
    audit.record(
        AuditEvent.Action.BINDING_CHANGE,
        actor=actor,
        organization=binding.plugin.organization,
        project=project,
        plugin_slug=binding.plugin.slug,
        detail=f"{verb} {binding.tab} binding",
    )
    return binding


def inherited_type_options(project: Project, plugin: Plugin) -> dict[str, Any]:
    """Options the project's type binding of ``plugin`` sets (what a project binding
    overrides)."""
    return _inherited(project, plugin)


def _inherited(project: Project, plugin: Plugin) -> dict[str, Any]:
    row = ProjectTypePlugin.objects.filter(
        project_type_id=project.project_type_id, plugin=plugin
    ).first()
    return dict(row.options) if row else {}


def create_project_binding(project: Project, data: dict[str, Any], actor: Any) -> ProjectPlugin:
    plugin = _plugin(project.organization, data["plugin"])
    binding = ProjectPlugin(
        project=project,
        organization=project.organization,
        plugin=plugin,
        tab=data.get("tab") or plugin.plugin_type,
        **{k: data[k] for k in EDITABLE if k in data},
    )
    _validate(binding)
    replace = bool(data.get("replace_default"))
    return _save(binding, actor, project, "created", replace_default=replace)  # type: ignore[return-value]


def create_type_binding(
    project_type: ProjectType, data: dict[str, Any], actor: Any
) -> ProjectTypePlugin:
    plugin = _plugin(project_type.organization, data["plugin"])
    binding = ProjectTypePlugin(
        project_type=project_type,
        organization=project_type.organization,
        plugin=plugin,
        tab=data.get("tab") or plugin.plugin_type,
        **{k: data[k] for k in EDITABLE if k in data},
    )
    _validate(binding)
    replace = bool(data.get("replace_default"))
    return _save(binding, actor, None, "created", replace_default=replace)  # type: ignore[return-value]


def update_binding(binding: Binding, data: dict[str, Any], actor: Any) -> Binding:
    if "options" in data:
        data = {
            **data,
            "options": keep_masked(binding.plugin, data["options"], dict(binding.options)),
        }
    for name in EDITABLE:
        if name in data:
            setattr(binding, name, data[name])
    project = binding.project if isinstance(binding, ProjectPlugin) else None
    _validate(binding)
    replace = bool(data.get("replace_default"))
    return _save(binding, actor, project, "changed", replace_default=replace)


def delete_binding(binding: Binding, actor: Any) -> None:
    project = binding.project if isinstance(binding, ProjectPlugin) else None
    binding.delete()
    audit.record(
        AuditEvent.Action.BINDING_CHANGE,
        actor=actor,
        organization=binding.plugin.organization,
        project=project,
        plugin_slug=binding.plugin.slug,
        detail=f"deleted {binding.tab} binding",
    )
