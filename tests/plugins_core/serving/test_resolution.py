"""Resolution: every branch of choosing the plugin that serves a project's tab."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from imbi.core.models import Project
from plugins_core.models import ServiceApplication, ThirdPartyService
from plugins_core.serving import resolution
from plugins_core.serving.resolution import (
    AmbiguousSource,
    CredentialsMissing,
    NothingBound,
    PluginDisabled,
    PluginIncompatible,
    PluginMisconfigured,
    PluginUnavailable,
    SourceNotBound,
    TemplateError,
    resolve,
)


def test_nothing_bound(project: Project) -> None:
    with pytest.raises(NothingBound):
        resolve(project, "configuration")


def test_single_candidate_is_chosen_without_default(
    project: Project, config_plugin: Any, bind_type: Any
) -> None:
    bind_type(config_plugin)
    assert resolve(project, "configuration").plugin == config_plugin


def test_default_wins_among_several(project: Project, install: Any, bind_type: Any) -> None:
    first, second = install("example-config", "cfg-a"), install("example-static", "cfg-b")
    bind_type(first)
    bind_type(second, default=True)
    assert resolve(project, "configuration").plugin == second


def test_ambiguous_without_default_lists_candidates(
    project: Project, install: Any, bind_type: Any
) -> None:
    bind_type(install("example-config", "cfg-a"))
    bind_type(install("example-static", "cfg-b"))
    with pytest.raises(AmbiguousSource) as caught:
        resolve(project, "configuration")
    assert caught.value.http_status == 400
    assert caught.value.extra["candidates"] == ["cfg-a", "cfg-b"]


def test_source_picks_a_plugin_and_unknown_source_is_404(
    project: Project, install: Any, bind_type: Any
) -> None:
    a, b = install("example-config", "cfg-a"), install("example-static", "cfg-b")
    bind_type(a, default=True)
    bind_type(b)
    assert resolve(project, "configuration", "cfg-b").plugin == b
    with pytest.raises(SourceNotBound) as caught:
        resolve(project, "configuration", "nope")
    assert caught.value.extra["available"] == ["cfg-a", "cfg-b"]


def test_project_binding_overrides_type_binding(
    project: Project, install: Any, bind_type: Any, bind_project: Any
) -> None:
    a, b = install("example-config", "cfg-a"), install("example-static", "cfg-b")
    bind_type(a, default=True, search_template="type/${project}/", options={"prefix": "t"})
    # Same plugin on the project: options merge over the type's, template overrides.
    bind_project(a, search_template="proj/${project_id}/", options={"max_keys": "7"})
    resolved = resolve(project, "configuration")
    assert resolved.plugin == a
    assert resolved.context.search_template == f"proj/{project.pk}/"
    assert resolved.context.options["prefix"] == "t"
    assert resolved.context.options["max_keys"] == 7  # coerced by the manifest schema
    assert resolved.binding.scope == "project"
    # A project default beats the type default.
    bind_project(b, default=True)
    assert resolve(project, "configuration").plugin == b


def test_options_merge_plugin_then_type_then_project(
    project: Project, install: Any, bind_type: Any, bind_project: Any
) -> None:
    plugin = install("example-config", options={"prefix": "p", "mode": "normal", "max_keys": 3})
    bind_type(plugin, options={"prefix": "t", "max_keys": 4})
    bind_project(plugin, options={"prefix": "x"})
    options = resolve(project, "configuration").context.options
    assert (options["prefix"], options["max_keys"], options["mode"]) == ("x", 4, "normal")


def test_disabled_plugin_is_503(project: Project, install: Any, bind_type: Any) -> None:
    bind_type(install("example-config", enabled=False))
    with pytest.raises(PluginDisabled) as caught:
        resolve(project, "configuration")
    assert caught.value.http_status == 503


def test_incompatible_api_version_is_503_with_reason(
    project: Project, install: Any, bind_type: Any
) -> None:
    bind_type(install("example-future"))
    with pytest.raises(PluginIncompatible, match=r"plugin targets api 2\.0"):
        resolve(project, "configuration")


def test_missing_handler_is_503(project: Project, install: Any, bind_type: Any) -> None:
    bind_type(install("not-installed-anywhere", "ghost"))
    with pytest.raises(PluginUnavailable, match="is not installed"):
        resolve(project, "configuration")
    bind_type(install("example-broken", "broken"))
    with pytest.raises(PluginUnavailable, match="ModuleNotFoundError"):
        resolve(project, "configuration", "broken")


def test_missing_credentials_is_503(
    project: Project, org: Any, install: Any, bind_type: Any
) -> None:
    bare = ThirdPartyService.objects.create(
        organization=org, vendor="example", identity="2", name="Bare", slug="bare"
    )
    bind_type(install("example-config", svc=bare))
    with pytest.raises(CredentialsMissing) as caught:
        resolve(project, "configuration")
    assert caught.value.extra["missing"] == ["api_token"]
    ServiceApplication.objects.create(service=bare, credentials={"api_token": ""})
    with pytest.raises(CredentialsMissing):
        resolve(project, "configuration")


def test_credentials_are_decrypted_and_never_in_repr(
    project: Project, config_plugin: Any, bind_type: Any
) -> None:
    from tests.plugins_core.conftest import API_TOKEN

    bind_type(config_plugin)
    resolved = resolve(project, "configuration")
    assert resolved.credentials["api_token"] == API_TOKEN
    assert API_TOKEN not in repr(resolved) and API_TOKEN not in str(resolved.credentials)


def test_invalid_stored_options_are_503_naming_the_field(
    project: Project, install: Any, bind_type: Any
) -> None:
    bind_type(install("example-config", options={"mode": "bogus"}))
    with pytest.raises(PluginMisconfigured) as caught:
        resolve(project, "configuration")
    assert "mode" in caught.value.extra["errors"]


def test_search_template_allowlist() -> None:
    resolution.validate_search_template("/${org}/${project}/${project_id}/${project_type}/$tab")
    resolution.validate_search_template("cost: $$5")
    with pytest.raises(TemplateError, match=r"unknown variable \$\{secret\}"):
        resolution.validate_search_template("/${secret}/")
    with pytest.raises(TemplateError):
        resolution.validate_search_template("/$/")


def test_resolution_queries_do_not_grow_with_bindings(
    project: Project, install: Any, bind_type: Any, bind_project: Any
) -> None:
    for index in range(40):
        plugin = install("example-static", f"s{index}", plugin_type="configuration")
        bind_type(plugin, default=index == 0)
        bind_project(plugin)
    with CaptureQueriesContext(connection) as queries:
        resolve(project, "configuration")
    assert len(queries) == 2
