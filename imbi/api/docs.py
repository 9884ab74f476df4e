"""API documentation pages served from the installed drf-spectacular-sidecar package.

``/api/docs/`` (Swagger UI) and ``/api/redoc/`` (ReDoc) load nothing from a CDN, so they work
offline and under the site's Content-Security-Policy: Swagger UI's init script is a separate
request (``SpectacularSwaggerSplitView``) and the page styles are a static file. ReDoc
injects its styles at run time and renders in a web worker, so its page alone adds
``style-src 'unsafe-inline'`` and ``worker-src blob:`` to the policy. ReDoc's bundle also
hard-codes a remote logo (``cdn.redoc.ly``) in its menu footer: ``redoc_bundle`` serves the
sidecar's bundle with that address replaced by the site's own copy, so the page requests
nothing the policy refuses.
"""

from __future__ import annotations

import functools
from pathlib import Path

from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_update
from django.http import HttpRequest, HttpResponse
from django.templatetags.static import static
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView

REMOTE_LOGO = "https://cdn.redoc.ly/redoc/logo-mini.svg"


@functools.cache
def _bundle(logo: str) -> bytes:
    import drf_spectacular_sidecar

    path = (
        Path(drf_spectacular_sidecar.__file__).parent
        / "static/drf_spectacular_sidecar/redoc/bundles/redoc.standalone.js"
    )
    return path.read_bytes().replace(REMOTE_LOGO.encode(), logo.encode())


@require_safe
@cache_control(public=True, max_age=3600)
def redoc_bundle(request: HttpRequest) -> HttpResponse:
    """The sidecar's ReDoc bundle with its remote logo replaced by a local one."""
    return HttpResponse(
        _bundle(static("plugins_core/redoc-logo.svg")), content_type="text/javascript"
    )


class SwaggerView(SpectacularSwaggerSplitView):
    template_name = "api/swagger_ui.html"


@method_decorator(
    csp_update({"style-src": [UNSAFE_INLINE], "worker-src": [SELF, "blob:"]}), name="dispatch"
)
class RedocView(SpectacularRedocView):
    template_name = "api/redoc.html"

    @staticmethod
    def _redoc_standalone() -> str:
        return reverse("redoc-bundle")
