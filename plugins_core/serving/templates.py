"""Search templates: the ``${variable}`` strings a binding expands for each request.

Part of step 4 of resolution (``plugins_core.serving.resolution``): ``validate_search_template``
runs when a binding is saved, ``expand_search_template`` when a plan is made, and
``preview_search_template`` answers the search-template preview endpoints. Only the names in
``TEMPLATE_VARIABLES`` may appear; ``$$`` is a literal dollar sign.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Any

from imbi.core.models import Project

TEMPLATE_VARIABLES: Mapping[str, str] = {
    "org": "organization slug",
    "project": "project slug",
    "project_id": "project id",
    "project_type": "project type slug",
    "tab": "tab name",
}


class TemplateError(ValueError):
    """A search template uses a variable outside ``TEMPLATE_VARIABLES`` or bad syntax."""


# --- search templates ---------------------------------------------------------------

_PLACEHOLDER = re.compile(
    r"\$(?:\{(?P<braced>[^}]*)\}|(?P<named>[A-Za-z_][A-Za-z0-9_]*)|(?P<other>.?))"
)


def validate_search_template(template: str) -> None:
    """Raise ``TemplateError`` naming any unknown variable (called when a binding is saved)."""
    for match in _PLACEHOLDER.finditer(template):
        name = match.group("braced") or match.group("named")
        if name is None:
            if match.group("other") == "$":
                continue  # "$$" is a literal dollar sign
            raise TemplateError("use ${name} for variables and $$ for a literal '$'")
        if name not in TEMPLATE_VARIABLES:
            allowed = ", ".join(f"${{{v}}}" for v in TEMPLATE_VARIABLES)
            raise TemplateError(f"unknown variable ${{{name}}}; allowed: {allowed}")


def expand_search_template(template: str, project: Project, tab: str) -> str:
    validate_search_template(template)
    return string.Template(template).substitute(
        org=project.organization.slug,
        project=project.slug,
        project_id=str(project.pk),
        project_type=project.project_type.slug,
        tab=tab,
    )


def preview_search_template(template: str, project: Project, tab: str) -> dict[str, Any]:
    """The template expanded for ``project`` as a JSON-able answer (``ok`` plus ``value`` or
    ``error``); used by the admin wizard's and the project page's preview endpoints."""
    try:
        return {"ok": True, "value": expand_search_template(template, project, tab)}
    except ValueError as exc:
        return {"ok": False, "error": str(exc)}
