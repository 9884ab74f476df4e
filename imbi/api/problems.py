"""RFC 9457 problem+json: every API error has a stable ``code``.

``Problem`` is raised by service code; ``exception_handler`` turns it, DRF's own exceptions
and plugin errors into ``application/problem+json`` responses. Messages never carry
secret values: callers build them from names, never from credential data.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import (
    RequestDataTooBig,
    SuspiciousOperation,
    TooManyFieldsSent,
    TooManyFilesSent,
)
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

PROBLEM_CONTENT_TYPE = "application/problem+json"
logger = logging.getLogger(__name__)
# Seconds a client should wait after database_unavailable before it tries again.
DATABASE_RETRY_AFTER = 5


class Problem(Exception):
    """An error the API reports as problem+json."""

    def __init__(
        self,
        status_code: int,
        code: str,
        detail: str,
        *,
        title: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.code = code
        self.detail = detail
        self.title = title or code.replace("_", " ").capitalize()
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self, instance: str = "") -> dict[str, Any]:
        data: dict[str, Any] = {
            "type": f"https://imbi.dev/problems/{self.code}",
            "title": self.title,
            "status": self.status_code,
            "code": self.code,
            "detail": self.detail,
        }
        if instance:
            data["instance"] = instance
        data.update(self.extra)
        return data


def problem_response(problem: Problem, instance: str = "", request: Any = None) -> Response:
    """The problem as ``application/problem+json``; in the browsable API (a browser asked
    for HTML) it renders as the HTML page instead, with the same body and status."""
    renderer = getattr(request, "accepted_renderer", None)
    browsable = getattr(renderer, "format", None) == "api"
    response = Response(
        problem.body(instance),
        status=problem.status_code,
        content_type=None if browsable else PROBLEM_CONTENT_TYPE,
    )
    for name, value in problem.headers.items():
        response[name] = value
    return response


_DRF_CODES: dict[type[exceptions.APIException], str] = {
    exceptions.NotAuthenticated: "not_authenticated",
    exceptions.AuthenticationFailed: "authentication_failed",
    exceptions.PermissionDenied: "permission_denied",
    exceptions.NotFound: "not_found",
    exceptions.MethodNotAllowed: "method_not_allowed",
    exceptions.NotAcceptable: "not_acceptable",
    exceptions.UnsupportedMediaType: "unsupported_media_type",
    exceptions.Throttled: "throttled",
    exceptions.ParseError: "malformed_request",
    exceptions.ValidationError: "invalid_input",
}


def _from_drf(exc: exceptions.APIException) -> Problem:
    code = next((c for cls, c in _DRF_CODES.items() if isinstance(exc, cls)), "error")
    if isinstance(exc, exceptions.ValidationError):
        fields = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        return Problem(400, code, "The request has invalid fields.", extra={"errors": fields})
    return Problem(exc.status_code, code, str(exc.detail))


def to_problem(exc: Exception) -> Problem | None:
    """Map a known exception to a Problem; ``None`` for anything unexpected.

    Domain errors need no import here: any exception carrying a string ``code``, an integer
    ``http_status`` and a ``detail`` is one (SDK ``PluginError``s, resolution and service
    errors). Optional ``extra``, ``fields`` and ``retry_after`` become problem members.
    """
    if isinstance(exc, Problem):
        return exc
    code, status_code = getattr(exc, "code", None), getattr(exc, "http_status", None)
    if isinstance(code, str) and isinstance(status_code, int):
        raw_extra = getattr(exc, "extra", None)
        extra: dict[str, Any] = dict(raw_extra) if isinstance(raw_extra, Mapping) else {}
        headers: dict[str, str] = {}
        retry_after = getattr(exc, "retry_after", None)
        if retry_after:
            headers["Retry-After"] = str(int(retry_after))
            extra["retry_after"] = int(retry_after)
        fields = getattr(exc, "fields", None)
        if fields:
            extra["errors"] = dict(fields)
        detail = str(getattr(exc, "detail", "") or code)
        return Problem(status_code, code, detail, extra=extra, headers=headers)
    if isinstance(exc, OperationalError | InterfaceError):
        return database_unavailable()
    if isinstance(exc, Http404):
        return Problem(404, "not_found", "Not found.")
    if isinstance(exc, RequestDataTooBig):
        from django.conf import settings

        limit = settings.IMBI_MAX_REQUEST_BYTES
        return Problem(
            413,
            "request_too_large",
            f"The request body is larger than the {limit} bytes this server accepts.",
            extra={"limit_bytes": limit},
        )
    if isinstance(exc, TooManyFieldsSent):
        from django.conf import settings

        limit = settings.DATA_UPLOAD_MAX_NUMBER_FIELDS
        return Problem(
            400,
            "too_many_fields",
            f"The request has more than the {limit} form fields this server accepts.",
            extra={"limit": limit},
        )
    if isinstance(exc, TooManyFilesSent):
        from django.conf import settings

        limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
        return Problem(
            400,
            "too_many_files",
            f"The request has more than the {limit} files this server accepts.",
            extra={"limit": limit},
        )
    if isinstance(exc, SuspiciousOperation):
        return Problem(400, "malformed_request", "The request is malformed.")
    if isinstance(exc, DjangoPermissionDenied):
        return Problem(403, "permission_denied", "You do not have permission to do this.")
    if isinstance(exc, exceptions.APIException):
        problem = _from_drf(exc)
        wait = getattr(exc, "wait", None)
        if wait:
            problem.headers["Retry-After"] = str(int(wait))
        return problem
    return None


def database_unavailable() -> Problem:
    """The database cannot be reached (a restart, a fail-over, a network blip): 503 with
    Retry-After; the next request opens a new connection, so service resumes by itself."""
    return Problem(
        503,
        "database_unavailable",
        "The database is unavailable; try again shortly.",
        extra={"retry_after": DATABASE_RETRY_AFTER},
        headers={"Retry-After": str(DATABASE_RETRY_AFTER)},
    )


def _database_down(exc: BaseException | None) -> bool:
    return isinstance(exc, OperationalError | InterfaceError)


DATABASE_DOWN_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>Try again shortly</title>"
    "<h1>Imbi is briefly unavailable</h1>"
    "<p>Its database cannot be reached right now. Nothing you entered was saved by this "
    "request. Please try again in a few seconds.</p></html>"
)


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    problem = to_problem(exc)
    if problem is None:
        response = drf_exception_handler(exc, context)
        if response is not None:
            return response
        # Unexpected: log it with its traceback server-side, show the client no internals.
        logger.exception("unhandled API error", exc_info=exc)
        problem = Problem(500, "internal_error", "An unexpected error occurred.")
    request = context.get("request")
    if problem.code == "database_unavailable":
        logger.error("database unavailable: %s", type(exc).__name__)
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        problem.status_code = status.HTTP_401_UNAUTHORIZED
        problem.headers["WWW-Authenticate"] = 'Token realm="api"'
    return problem_response(problem, request.path if request is not None else "", request)


def _page_or_problem(request: Any, problem: Problem, fallback: Any, *args: Any) -> Any:
    if not request.path.startswith("/api/"):
        return fallback(request, *args)
    from django.http import JsonResponse

    response = JsonResponse(problem.body(request.path), status=problem.status_code)
    response["Content-Type"] = PROBLEM_CONTENT_TYPE
    for name, value in problem.headers.items():
        response[name] = value
    return response


def handler404(request: Any, exception: Exception | None = None) -> Any:
    """URLs outside every route: problem+json under /api/, Django's page elsewhere."""
    from django.views import defaults

    return _page_or_problem(
        request, Problem(404, "not_found", "Not found."), defaults.page_not_found, exception
    )


def handler500(request: Any) -> Any:
    """Unhandled errors outside DRF: never a traceback, problem+json under /api/. An
    unreachable database (from a view, a middleware or the session save) is a 503 with
    Retry-After instead: problem+json ``database_unavailable``, or a plain page."""
    import sys

    from django.http import HttpResponse
    from django.views import defaults

    if _database_down(sys.exc_info()[1]):
        problem = database_unavailable()
        if request.path.startswith("/api/"):
            return _page_or_problem(request, problem, defaults.server_error)
        page = HttpResponse(DATABASE_DOWN_PAGE, status=503)
        page["Retry-After"] = str(DATABASE_RETRY_AFTER)
        return page
    return _page_or_problem(
        request,
        Problem(500, "internal_error", "An unexpected error occurred."),
        defaults.server_error,
    )
