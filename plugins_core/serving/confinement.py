"""Project bindings stay inside their project (ADR 0011).

A project binding is editable by the project's owners, so its search template must name a
location that belongs to that project alone. ``project_template_error`` is the rule, used by
``bindings.binding_errors`` (the one binding validator behind the API, the admin and the
project page). A non-empty template on a project binding must:

- use only letters, digits, ``.``, ``_``, ``-``, ``/`` and the template variables (no
  wildcards, spaces, query syntax, percent-escapes or backslashes);
- be a ``/``-separated path with no empty, ``.`` or ``..`` segment between its ends;
- contain a segment that is exactly ``${project}`` or ``${project_id}``; it ends at a ``/`` or
  at the end of the template, so ``/acme/foo`` can never be widened to ``/acme/foobar``
  (plugins treat the template as a whole name, or terminate a path with ``/`` themselves);
- name no other project of the organization (by slug or id) in a segment before that one,
  so ``/${org}/other-project/${project}/`` cannot reach into another project's tree.

Anything else (a Lucene query, a shared prefix) is operator-only: an administrator sets it
on a project-type binding.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from plugins_core.serving.resolution import _PLACEHOLDER

if TYPE_CHECKING:
    from imbi.core.models import Project

__all__ = ["IDENTITY_VARIABLES", "project_template_error"]

IDENTITY_VARIABLES = frozenset({"project", "project_id"})
_LITERAL_RE = re.compile(r"^[A-Za-z0-9._/-]*$")
_EXAMPLE = "e.g. /${org}/${project}/"


def _tokens(template: str) -> list[tuple[str, str]]:
    """(kind, text) pairs: ("var", name) or ("lit", text); assumes a valid template."""
    tokens: list[tuple[str, str]] = []
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        if match.start() > position:
            tokens.append(("lit", template[position : match.start()]))
        name = match.group("braced") or match.group("named")
        tokens.append(("var", name) if name else ("lit", "$"))
        position = match.end()
    if position < len(template):
        tokens.append(("lit", template[position:]))
    return tokens


def _segments(tokens: list[tuple[str, str]]) -> list[list[tuple[str, str]]]:
    segments: list[list[tuple[str, str]]] = [[]]
    for kind, text in tokens:
        if kind == "var":
            segments[-1].append((kind, text))
            continue
        for index, part in enumerate(text.split("/")):
            if index:
                segments.append([])
            if part:
                segments[-1].append(("lit", part))
    return segments


def project_template_error(template: str, project: Project) -> str | None:
    """Why ``template`` on ``project``'s own binding escapes the project, or ``None``."""
    if not template:
        return None  # inherits the project type's template, set by an administrator
    tokens = _tokens(template)
    if any(kind == "lit" and not _LITERAL_RE.match(text) for kind, text in tokens):
        return (
            "a project binding's template may use only letters, digits, '.', '_', '-', '/' "
            f"and variables ({_EXAMPLE}); other templates are set by an administrator on "
            "the project type"
        )
    segments = _segments(tokens)
    inner = segments[1:-1] if len(segments) > 2 else []
    if any(not segment for segment in inner):
        return "must not contain an empty path segment ('//')"
    for segment in segments:
        literal = all(kind == "lit" for kind, _ in segment)
        if segment and literal and "".join(text for _, text in segment) in {".", ".."}:
            return "must not contain '.' or '..' segments"
    identity = next(
        (
            index
            for index, segment in enumerate(segments)
            if len(segment) == 1 and segment[0][0] == "var" and segment[0][1] in IDENTITY_VARIABLES
        ),
        None,
    )
    if identity is None:
        return (
            "a project binding's template must contain ${project} or ${project_id} as a whole "
            f"path segment ({_EXAMPLE}); other templates are set by an administrator on the "
            "project type"
        )
    values = {
        "org": project.organization.slug,
        "project": project.slug,
        "project_id": str(project.pk),
        "project_type": project.project_type.slug,
        "tab": "",
    }
    before = {
        "".join(values.get(text, "") if kind == "var" else text for kind, text in segment)
        for segment in segments[:identity]
    } - {""}
    if before:
        from imbi.core.models import Project as ProjectModel

        others = ProjectModel.objects.filter(organization_id=project.organization_id).exclude(
            pk=project.pk
        )
        ids = {str(pk) for pk in others.values_list("pk", flat=True)}
        slugs = set(others.values_list("slug", flat=True))
        named = sorted(before & (slugs | ids))
        if named:
            return f"names another project ({', '.join(named)}) before ${{project}}"
    return None
