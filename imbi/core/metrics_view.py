"""``/metrics``: this process's Prometheus metrics (``imbi.core.metrics``) for a scraper that
sends ``Authorization: Bearer $IMBI_METRICS_TOKEN`` (docs/operations.md, *Metrics*).

Without the setting the endpoint answers 404, as if it did not exist, so it is never public
by accident; without a bearer token 401, with a wrong one 403. Neither answer says anything
about the metrics or the token, and the token is compared in constant time.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from .metrics import REGISTRY


def _authorized(request: HttpRequest, token: str) -> bool | None:
    """True for the right bearer token, False for a wrong one, None when none is sent."""
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return None
    return hmac.compare_digest(given.strip().encode(), token.encode())


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    token = str(getattr(settings, "IMBI_METRICS_TOKEN", "") or "")
    if not token:
        raise Http404  # closed unless an operator set a token: never public by accident
    allowed = _authorized(request, token)
    if allowed is None:
        response = HttpResponse("authentication required\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    if not allowed:
        return HttpResponse("forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
