"""Bad requests never become 500s: request size limits and safe error pages.

- ``RequestSizeLimitMiddleware`` answers a body larger than ``IMBI_MAX_REQUEST_BYTES``
  (``Content-Length``) with 413 before anything reads it: problem+json ``request_too_large``
  under ``/api/``, a plain page elsewhere. Django's own ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is set
  to the same limit, and ``RequestDataTooBig`` maps to the same 413 (``to_problem``).
- ``SafeDebugPagesMiddleware`` keeps ``make run``'s DEBUG from showing Django's technical
  pages, which list every URL pattern (404) and the settings and request (500): with DEBUG
  on, it answers with the project's own 404/500 handlers and logs the traceback server-side.
  With DEBUG off it does nothing; Django already uses those handlers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.conf import settings
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template import loader

from imbi.api.problems import PROBLEM_CONTENT_TYPE, Problem, handler404, handler500

logger = logging.getLogger("django.request")

__all__ = ["RequestSizeLimitMiddleware", "SafeDebugPagesMiddleware", "too_large"]


def too_large(request: HttpRequest) -> HttpResponse:
    """413: problem+json under /api/, the ``413.html`` page elsewhere."""
    limit = settings.IMBI_MAX_REQUEST_BYTES
    detail = f"The request body is larger than the {limit} bytes this server accepts."
    if request.path.startswith("/api/"):
        problem = Problem(413, "request_too_large", detail, extra={"limit_bytes": limit})
        response = JsonResponse(problem.body(request.path), status=413)
        response["Content-Type"] = PROBLEM_CONTENT_TYPE
        return response
    page = loader.render_to_string("413.html", {"limit": limit}, request)
    return HttpResponse(page, status=413)


class RequestSizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        raw = request.META.get("CONTENT_LENGTH") or "0"
        try:
            length = int(raw)
        except ValueError:
            length = -1
        if length < 0:
            return _bad_length(request)
        if length > settings.IMBI_MAX_REQUEST_BYTES:
            return too_large(request)
        return self.get_response(request)


def _bad_length(request: HttpRequest) -> HttpResponse:
    problem = Problem(400, "malformed_request", "The Content-Length header is not a number.")
    if request.path.startswith("/api/"):
        response = JsonResponse(problem.body(request.path), status=400)
        response["Content-Type"] = PROBLEM_CONTENT_TYPE
        return response
    return HttpResponse("Bad request.", status=400, content_type="text/plain")


class SafeDebugPagesMiddleware:
    """Under DEBUG, the project's own 404/500 answers instead of Django's technical pages."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if (
            settings.DEBUG
            and response.status_code == 404
            and getattr(request, "resolver_match", None) is None
        ):
            return handler404(request)  # type: ignore[no-any-return]
        return response

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not settings.DEBUG or isinstance(exception, PermissionDenied):
            return None
        if isinstance(exception, Http404):
            return handler404(request, exception)  # type: ignore[no-any-return]
        if isinstance(exception, RequestDataTooBig):
            return too_large(request)
        if isinstance(exception, SuspiciousOperation):
            return HttpResponse("Bad request.", status=400, content_type="text/plain")
        logger.error("Internal Server Error: %s", request.path, exc_info=exception)
        return handler500(request)  # type: ignore[no-any-return]
