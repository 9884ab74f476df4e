"""API documentation pages served from the installed drf-spectacular-sidecar package.

``/api/docs/`` (Swagger UI) and ``/api/redoc/`` (ReDoc) load nothing from a CDN, so they work
offline and under the site's Content-Security-Policy: Swagger UI's init script is a separate
request (``SpectacularSwaggerSplitView``) and the page styles are a static file. ReDoc
injects its styles at run time and renders in a web worker, so its page alone adds
``style-src 'unsafe-inline'`` and ``worker-src blob:`` to the policy.
"""

from __future__ import annotations

from csp.constants import SELF, UNSAFE_INLINE
from csp.decorators import csp_update
from django.utils.decorators import method_decorator
from drf_spectacular.views import SpectacularRedocView, SpectacularSwaggerSplitView


class SwaggerView(SpectacularSwaggerSplitView):
    template_name = "api/swagger_ui.html"


@method_decorator(
    csp_update({"style-src": [UNSAFE_INLINE], "worker-src": [SELF, "blob:"]}), name="dispatch"
)
class RedocView(SpectacularRedocView):
    template_name = "api/redoc.html"
