"""Token authentication with a failure budget per client address (``imbi.core.throttle``).

A locked-out address gets 429 problem+json ``throttled`` with Retry-After, whatever token it
sends; a wrong token counts against its budget and is answered 401 as before.

On a project's routes (``org`` and ``project_id`` in the URL: every tab request) the token,
its user, the project with its organization and type, and the user's membership come back
in ONE query; ``imbi.core.access.load_project`` then uses that row instead of asking again,
so a warm tab GET is one database round trip. Nothing is cached across requests: a revoked
token or a deactivated user is refused on the very next request.
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.authtoken.models import Token
from rest_framework.request import Request

from imbi.core import access
from imbi.core.throttle import TokenFailures


def _token_project_sql() -> tuple[str, list[str], list[str]]:
    """The joined query, and the attribute names of the token's and the user's columns."""
    user_model = get_user_model()
    token_fields = list(Token._meta.concrete_fields)
    user_fields = list(user_model._meta.concrete_fields)
    quote = connection.ops.quote_name
    columns = [f"k.{quote(str(f.column))}" for f in token_fields] + [
        f"u.{quote(str(f.column))}" for f in user_fields
    ]
    # Only model metadata (table and column names) is interpolated; values are parameters.
    sql = f"""
SELECT {", ".join(columns)},
       p.id, p.slug, p.name, p.organization_id, p.project_type_id,
       o.slug, o.name, o.config_version, t.slug, t.name, m.role, m.can_read_secrets
  FROM {Token._meta.db_table} k
  JOIN {user_model._meta.db_table} u ON u.id = k.user_id
  LEFT JOIN core_organization o ON o.slug = %s
  LEFT JOIN core_project p ON p.organization_id = o.id AND p.id = %s
  LEFT JOIN core_projecttype t ON t.id = p.project_type_id
  LEFT JOIN core_membership m ON m.organization_id = o.id AND m.user_id = u.id
 WHERE k.key = %s
"""  # noqa: S608
    return sql, [f.attname for f in token_fields], [f.attname for f in user_fields]


class ThrottledTokenAuthentication(TokenAuthentication):
    def authenticate(self, request: Request) -> Any:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.lower().startswith(f"{self.keyword.lower()} "):
            return None  # not a token request: nothing to count
        failures = TokenFailures(request._request)
        wait = failures.retry_after()
        if wait is not None:
            raise exceptions.Throttled(
                wait=wait,
                detail=(
                    "Too many failed token attempts from this address; "
                    f"try again in {wait} seconds."
                ),
            )
        match = getattr(request._request, "resolver_match", None)
        kwargs = match.kwargs if match is not None else {}
        self._project = (
            (kwargs["org"], kwargs["project_id"])
            if isinstance(kwargs.get("org"), str) and isinstance(kwargs.get("project_id"), int)
            else None
        )
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            failures.failed()
            raise

    def authenticate_credentials(self, key: str) -> Any:
        project = getattr(self, "_project", None)
        if project is None:
            return super().authenticate_credentials(key)
        org_slug, project_id = project
        sql, token_names, user_names = _token_project_sql()
        with connection.cursor() as cursor:
            cursor.execute(sql, [org_slug, project_id, key])
            row = cursor.fetchone()
        if row is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        token_values = row[: len(token_names)]
        user_values = row[len(token_names) : len(token_names) + len(user_names)]
        rest = row[len(token_names) + len(user_names) :]
        user = get_user_model().from_db(connection.alias, user_names, list(user_values))
        token = Token.from_db(connection.alias, token_names, list(token_values))
        token.user = user
        if not user.is_active:
            raise exceptions.AuthenticationFailed("User inactive or deleted.")
        access.preload_project(user, org_slug, project_id, tuple(rest) if rest[0] else None)
        return user, token
