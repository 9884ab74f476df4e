"""Routes of the server-rendered pages (namespace ``ui``): login, the project list and page.

Mounted at the site root by ``imbi/urls.py`` with ``path("", include("plugins_core.urls"))``.
The admin pages (install wizard, registry) are routed by ``plugins_core.pages.admin``.
"""

from django.contrib.auth import views as auth_views
from django.urls import path, reverse_lazy

from imbi.core import converters  # noqa: F401  (registers <id:...>)
from plugins_core.pages import plugins as plugin_pages
from plugins_core.pages import views

app_name = "ui"

project = "projects/<slug:org>/<id:project_id>"

urlpatterns = [
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(
            template_name="registration/login.html",
            next_page=reverse_lazy("ui:projects"),
            redirect_authenticated_user=True,
        ),
        name="login",
    ),
    path(
        "accounts/logout/",
        auth_views.LogoutView.as_view(next_page=reverse_lazy("ui:login")),
        name="logout",
    ),
    path("projects/", views.ProjectListView.as_view(), name="projects"),
    path("catalog/", plugin_pages.CatalogView.as_view(), name="catalog"),
    path(
        "catalog/<str:entry_point>/",
        plugin_pages.CatalogDetailView.as_view(),
        name="catalog-detail",
    ),
    path(
        "catalog/<str:entry_point>/readme/",
        plugin_pages.CatalogReadmeView.as_view(),
        name="catalog-readme",
    ),
    path(f"{project}/", views.ProjectPageView.as_view(), name="project"),
    path(f"{project}/preview/", views.ProjectPreviewView.as_view(), name="project-preview"),
    path(f"{project}/bindings/add/", views.AddBindingView.as_view(), name="project-binding-add"),
    path(
        f"{project}/bindings/<id:binding_id>/", views.BindingView.as_view(), name="project-binding"
    ),
    path(
        f"{project}/bindings/<id:binding_id>/delete/",
        views.DeleteBindingView.as_view(),
        name="project-binding-delete",
    ),
]
