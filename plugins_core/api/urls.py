"""Routes of the tab API, mounted under /api/."""

from django.urls import path

from imbi.core import converters  # noqa: F401  (registers <id:...>)

from . import distributions, manage, views

project = "orgs/<slug:org>/projects/<id:project_id>"
project_type = "orgs/<slug:org>/project-types/<slug:type_slug>"

urlpatterns = [
    path("plugins", views.RegistryView.as_view(), name="plugin-registry"),
    path("plugins/integrity", views.IntegrityView.as_view(), name="plugin-integrity"),
    path("plugin-index/available", views.AvailableView.as_view(), name="plugin-index-available"),
    path("plugin-index/install", views.IndexInstallView.as_view(), name="plugin-index-install"),
    path(
        "plugin-distributions",
        distributions.DistributionsView.as_view(),
        name="plugin-distributions",
    ),
    path(
        "plugin-distributions/<str:name>/approvals",
        distributions.ApprovalsView.as_view(),
        name="plugin-distribution-approvals",
    ),
    path(
        "plugin-distributions/<str:name>",
        distributions.DistributionView.as_view(),
        name="plugin-distribution",
    ),
    path("orgs/<slug:org>/plugins", views.InstalledPluginsView.as_view(), name="installed-plugins"),
    path(
        "orgs/<slug:org>/plugins/install",
        views.InstallTemplateView.as_view(),
        name="install-template",
    ),
    path("orgs/<slug:org>/services", manage.ServicesView.as_view(), name="services"),
    path("orgs/<slug:org>/services/<slug:slug>", manage.ServiceView.as_view(), name="service"),
    path(
        "orgs/<slug:org>/services/<slug:slug>/credentials",
        manage.CredentialsView.as_view(),
        name="service-credentials",
    ),
    path("orgs/<slug:org>/plugins/<slug:slug>", manage.PluginView.as_view(), name="plugin"),
    path(
        "orgs/<slug:org>/plugins/<slug:slug>/connection-test",
        manage.ConnectionTestView.as_view(),
        name="plugin-connection-test",
    ),
    path(f"{project}/tabs", views.ProjectTabsView.as_view(), name="project-tabs"),
    path(
        f"{project}/configuration", views.ConfigurationKeysView.as_view(), name="configuration-keys"
    ),
    path(
        f"{project}/configuration/values",
        views.ConfigurationValuesView.as_view(),
        name="configuration-values",
    ),
    path(
        f"{project}/configuration/keys/<path:key>",
        views.ConfigurationKeyView.as_view(),
        name="configuration-key",
    ),
    path(f"{project}/logs", views.LogsView.as_view(), name="logs"),
    path(f"{project}/logs/histogram", views.LogsHistogramView.as_view(), name="logs-histogram"),
    path(f"{project}/bindings", views.ProjectBindingsView.as_view(), name="project-bindings"),
    path(
        f"{project}/bindings/<id:binding_id>",
        views.ProjectBindingView.as_view(),
        name="project-binding",
    ),
    path(f"{project_type}/bindings", views.TypeBindingsView.as_view(), name="type-bindings"),
    path(
        f"{project_type}/bindings/<id:binding_id>",
        views.TypeBindingView.as_view(),
        name="type-binding",
    ),
]
