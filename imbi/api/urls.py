"""REST API routes: the caller's identity, and the tab/binding/plugin API."""

from django.urls import include, path

from imbi.api import views
from imbi.core import converters  # noqa: F401  (registers <id:...>)

urlpatterns = [
    path("", views.ApiRootView.as_view(), name="api-root"),
    path("whoami", views.WhoAmIView.as_view(), name="whoami"),
    path("orgs", views.OrganizationsView.as_view(), name="organizations"),
    path("orgs/<slug:org>/projects", views.ProjectsView.as_view(), name="projects"),
    path("orgs/<slug:org>/projects/<id:project_id>", views.ProjectView.as_view(), name="project"),
    path("orgs/<slug:org>/project-types", views.ProjectTypesView.as_view(), name="project-types"),
    path("orgs/<slug:org>/audit-events", views.AuditEventsView.as_view(), name="audit-events"),
    path("", include("plugins_core.api.urls")),
]
