"""Forms of bindings and search templates: binding a plugin to project types or a project.

Owns ``TypeBindingForm`` (wizard step 6, with a live template preview),
``SiblingBindingForm`` (the wizard's done page), ``ConnectionTestForm`` (wizard step 5: the
project and template to test with), and the project page's ``AddBindingForm`` and
``BindingForm``. Every search template is checked with
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


class TypeBindingForm(forms.Form):
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


class SiblingBindingForm(forms.Form):
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


class AddBindingForm(forms.Form):
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


class BindingForm(forms.Form):
    """A project binding's own fields; its option overrides are a separate ``OptionsForm``."""

    default = forms.BooleanField(required=False, label="Default for the tab")
    search_template = forms.CharField(
        max_length=500,
        required=False,
        help_text=TEMPLATE_HELP + " Blank: inherit the project type's template.",
    )

    def clean_search_template(self) -> str:
        return _check_template(self.cleaned_data.get("search_template", ""))
