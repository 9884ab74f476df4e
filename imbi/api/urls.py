"""REST API routes: the caller's identity, and the tab/binding/plugin API."""

from django.urls import include, path

from imbi.api.views import WhoAmIView

urlpatterns = [
    path("whoami", WhoAmIView.as_view(), name="whoami"),
    path("", include("plugins_core.api.urls")),
]
