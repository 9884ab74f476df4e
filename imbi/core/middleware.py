"""``UnreadableDataMiddleware``: a row no configured key opens is a 503 with its reason,
on every page, never a 500. ``ContentSecurityPolicyMiddleware``: the policy on every
response, error pages included.

``ContentSecurityPolicyMiddleware`` is django-csp's, placed first in ``MIDDLEWARE`` so that
the answers of the middlewares below it (the 404/500 pages ``SafeDebugPagesMiddleware``
renders under ``make run``, the 413 page of ``RequestSizeLimitMiddleware``) carry the
policy too; django-csp leaves 404 and 500 bare under DEBUG for Django's technical pages,
which ``SafeDebugPagesMiddleware`` never serves, so this one sets it on them as well.

The REST API maps ``DecryptionError`` itself (problem+json ``credentials_unreadable``); this
catches it everywhere else, e.g. an admin page that loads a service whose credentials were
encrypted with a key that is no longer configured. The answer carries the operator-facing
reason (which row, and that the key must be added to ``IMBI_ENCRYPTION_KEYS``); the log line
names the key fingerprints, never a key.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from html import escape

from csp.constants import HEADER
from csp.middleware import CSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase

from .crypto import DecryptionError

logger = logging.getLogger(__name__)


class UnreadableDataMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DecryptionError):
            return None
        logger.error("%s: %s", request.path, exception)
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse(
                {
                    "type": "https://imbi.dev/problems/credentials_unreadable",
                    "title": "Credentials unreadable",
                    "status": 503,
                    "code": exception.code,
                    "detail": exception.detail,
                    "instance": request.path,
                },
                status=503,
            )
            response["Content-Type"] = "application/problem+json"
            return response
        return HttpResponse(
            "<!doctype html><title>Stored data unreadable</title>"
            "<h1>Stored data cannot be decrypted</h1>"
            f"<p>{escape(exception.detail)}.</p>"
            "<p>See docs/operations.md, <em>Keys and rotation</em>.</p>",
            status=503,
        )


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp, without its DEBUG exemption of 404 and 500 (see the module docstring)."""

    def process_response(
        self, request: HttpRequest, response: HttpResponseBase
    ) -> HttpResponseBase:
        response = super().process_response(request, response)
        bare = HEADER not in response and not getattr(response, "_csp_exempt", False)
        if settings.DEBUG and response.status_code in (404, 500) and bare:
            parts = self.get_policy_parts(request=request, response=response)
            policy = build_policy(**asdict(parts))
            if policy:
                response[HEADER] = policy
        return response
