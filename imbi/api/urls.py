"""REST API routes. Tab, binding and plugin endpoints are added by the plugin framework."""

from django.urls import path

from imbi.api.views import WhoAmIView

urlpatterns = [
    path("whoami", WhoAmIView.as_view(), name="whoami"),
]
