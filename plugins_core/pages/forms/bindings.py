"""Forms of bindings and search templates: binding a plugin to project types or a project.

Owns ``TypeBindingForm`` (wizard step 6, with a live template preview),
``SiblingBindingForm`` (the wizard's done page), ``ConnectionTestForm`` (wizard step 5: the
project and template to test with), and the project page's ``AddBindingForm`` and
``BindingForm``. A binding marked "default" for a tab that already has one gets a field
error naming the current default and an explicit "make this the default instead of X"
choice (``ReplaceDefault.offer_replace_default``), whose tick becomes the binding service's
``replace_default``. Every search template is checked with
``plugins_core.serving.resolution.validate_search_template``; a binding's option overrides
are a separate ``OptionsForm``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django import forms
from django.core.exceptions import ValidationError

from imbi.core.models import Organization, Project, ProjectType
from plugins_core.models import Plugin
from plugins_core.provisioning.bindings import DefaultExists
from plugins_core.serving.resolution import (
    TEMPLATE_VARIABLES,
    TemplateError,
    validate_search_template,
)


def _check_template(value: str) -> str:
    try:
        validate_search_template(value)
    except TemplateError as exc:
        raise ValidationError(str(exc)) from None
    return value


TEMPLATE_HELP = (
    "Variables: "
    + ", ".join(f"${{{name}}} ({meaning})" for name, meaning in TEMPLATE_VARIABLES.items())
    + ". Use $$ for a literal '$'."
)


REPLACE_DEFAULT = "replace_default"


class ReplaceDefault(forms.Form):
    """The "make this the default instead of X" choice, served only after a conflict.

    The field exists on a bound form only when the page served it (its name is in the
    posted data, i.e. ticked); otherwise ``offer_replace_default`` adds it, with the error
    on ``default`` naming the current default, for the page to show.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.is_bound and self.add_prefix(REPLACE_DEFAULT) in self.data:
            self.fields[REPLACE_DEFAULT] = self._replace_field("this plugin", "the current one")

    @staticmethod
    def _replace_field(plugin: str, current: str) -> forms.BooleanField:
        return forms.BooleanField(
            required=False,
            label=f"Make {plugin} the default instead of {current}",
            help_text=f"{current} stays bound, no longer as the default.",
        )

    @property
    def replace_default(self) -> bool:
        return bool(getattr(self, "cleaned_data", {}).get(REPLACE_DEFAULT))

    def offer_replace_default(self, plugin: str, current: str, where: str = "") -> None:
        """``current`` is the default already: say so on ``default`` and serve the choice."""
        place = f" of {where}" if where else ""
        self.add_error("default", f"{current} is already the default for this tab{place}.")
        self.fields[REPLACE_DEFAULT] = self._replace_field(plugin, current)


def offer_replace_default(form: Any, exc: Exception, plugin: str, where: str = "") -> bool:
    """A second default for the tab: the error names the current default on ``default``,
    and the form serves the "make this the default instead" choice. False for any other
    error."""
    current = exc.extra.get("current_default") if isinstance(exc, DefaultExists) else None
    if not current:
        return False
    form.offer_replace_default(plugin, str(current), where)
    return True


class TypeBindingForm(ReplaceDefault):
    """Step 6: bind the plugin to project types, with a live preview of the template."""

    project_types = forms.ModelMultipleChoiceField(
        queryset=ProjectType.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Every project of these types gets the plugin on its tab. "
        "Choose none to bind later.",
    )
    tab = forms.CharField(
        disabled=True, required=False, help_text="A plugin serves the tab of its own type."
    )
    default = forms.BooleanField(required=False, label="Default source for the tab")
    search_template = forms.CharField(max_length=500, required=False, help_text=TEMPLATE_HELP)
    sample_project = forms.ModelChoiceField(
        queryset=Project.objects.none(), required=False, label="Preview for project"
    )

    def __init__(self, *args: Any, organization: Organization, tab: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project_types"].queryset = (  # type: ignore[attr-defined]
            ProjectType.objects.filter(organization=organization)
        )
        self.fields["sample_project"].queryset = (  # type: ignore[attr-defined]
            Project.objects.filter(organization=organization).select_related("project_type")
        )
        self.fields["tab"].initial = tab
        self.fields["search_template"].widget.attrs.update(
            {"data-template-preview": "1", "class": "vTextField", "spellcheck": "false"}
        )

    def clean_search_template(self) -> str:
        return _check_template(self.cleaned_data.get("search_template", ""))


class SiblingBindingForm(ReplaceDefault):
    """The done page: bind a sibling plugin of the installed template to project types."""

    project_types = forms.ModelMultipleChoiceField(
        queryset=ProjectType.objects.none(), widget=forms.CheckboxSelectMultiple
    )
    default = forms.BooleanField(required=False, initial=True, label="Default source for the tab")
    search_template = forms.CharField(max_length=500, required=False, help_text=TEMPLATE_HELP)

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["project_types"].queryset = (  # type: ignore[attr-defined]
            ProjectType.objects.filter(organization=organization).order_by("name")
        )

    def clean_search_template(self) -> str:
        return _check_template(self.cleaned_data.get("search_template", ""))


class ConnectionTestForm(forms.Form):
    """Step 5: optionally, the project and search template to test with (a plugin that
    reads under a path, such as a parameter store, needs one to check access)."""

    sample_project = forms.ModelChoiceField(
        queryset=Project.objects.none(), required=False, label="Test for project"
    )
    search_template = forms.CharField(max_length=500, required=False, help_text=TEMPLATE_HELP)

    def __init__(self, *args: Any, organization: Organization, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["sample_project"].queryset = (  # type: ignore[attr-defined]
            Project.objects.filter(organization=organization).select_related("project_type")
        )
        self.fields["search_template"].widget.attrs.update(
            {"class": "vTextField", "spellcheck": "false"}
        )

    def clean_search_template(self) -> str:
        return _check_template(self.cleaned_data.get("search_template", ""))


# --------------------------------------------------------------------------- project page


class AddBindingForm(ReplaceDefault):
    """Bind one of the organization's plugins to this project's tab (its type's tab)."""

    plugin = forms.ChoiceField()
    default = forms.BooleanField(required=False, label="Default for the tab")
    search_template = forms.CharField(max_length=500, required=False, help_text=TEMPLATE_HELP)

    def __init__(self, *args: Any, plugins: Iterable[Plugin], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["plugin"].choices = [  # type: ignore[attr-defined]
            (p.slug, f"{p.name or p.slug} ({p.plugin_type})") for p in plugins
        ]

    def clean_search_template(self) -> str:
        return _check_template(self.cleaned_data.get("search_template", ""))


class BindingForm(ReplaceDefault):
    """A project binding's own fields; its option overrides are a separate ``OptionsForm``."""

    default = forms.BooleanField(required=False, label="Default for the tab")
    search_template = forms.CharField(
        max_length=500,
        required=False,
        help_text=TEMPLATE_HELP + " Blank: inherit the project type's template.",
    )

    def clean_search_template(self) -> str:
        return _check_template(self.cleaned_data.get("search_template", ""))
