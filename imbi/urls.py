"""URL table: the landing page, admin, health, REST API with its OpenAPI schema, Swagger UI
and ReDoc."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from imbi.api.docs import RedocView, SwaggerView, redoc_bundle
from imbi.core.home import home
from imbi.core.metrics_view import metrics_view
from imbi.core.views import healthz, livez

urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("readyz", healthz, name="readyz"),
    path("livez", livez, name="livez"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/redoc/", RedocView.as_view(url_name="schema"), name="redoc"),
    path("api/redoc/redoc.standalone.js", redoc_bundle, name="redoc-bundle"),
    path("api/", include("imbi.api.urls")),
    path("", include("plugins_core.urls")),
]

handler404 = "imbi.api.problems.handler404"
handler500 = "imbi.api.problems.handler500"
