"""URL table: the landing page, admin, health, REST API with its OpenAPI schema and Swagger UI."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from imbi.core.home import home
from imbi.core.views import healthz

urlpatterns = [
    path("", home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/", include("imbi.api.urls")),
    path("", include("plugins_core.urls")),
]

handler404 = "imbi.api.problems.handler404"
handler500 = "imbi.api.problems.handler500"
