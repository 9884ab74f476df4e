"""check_handler_class accepts a proper handler and names what is wrong otherwise."""

from collections.abc import Sequence
from typing import Any

import pytest
from imbi_plugin_sdk import (
    HANDLER_BASES,
    SDK_API_VERSION,
    ApiVersion,
    ConfigKey,
    ConfigurationPlugin,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    Credentials,
    Hints,
    Histogram,
    LogQuery,
    LogResult,
    LogsPlugin,
    ManifestError,
    NotSupported,
    PluginHandler,
    PluginManifest,
    PluginType,
    check_handler_class,
    handler_type_errors,
)
from imbi_plugin_sdk.testkit import make_context


def manifest(plugin_type: PluginType, **kwargs: Any) -> PluginManifest:
    return PluginManifest(
        slug=f"demo-{plugin_type}",
        name="Demo",
        description="demo",
        version="1.0.0",
        api_version=kwargs.pop("api_version", "1.0"),
        plugin_type=plugin_type,
        **kwargs,
    )


class GoodConfig(ConfigurationPlugin):
    manifest = manifest(PluginType.CONFIGURATION)

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success()

    def list_keys(self) -> list[ConfigKey]:
        return []

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        return []

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        return ConfigKey(key=key, data_type=value.data_type)

    def delete_key(self, key: str) -> None:
        return None


class GoodLogs(LogsPlugin):
    manifest = manifest(PluginType.LOGS)

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success()

    def search(self, query: LogQuery) -> LogResult:
        return LogResult()


class HistogramLogs(GoodLogs):
    manifest = manifest(PluginType.LOGS, hints=Hints(supports_histogram=True))

    def histogram(self, query: LogQuery, bucket_count: int) -> Histogram:
        return Histogram()


def test_accepts_good_handlers() -> None:
    assert check_handler_class(GoodConfig) is GoodConfig.manifest
    assert check_handler_class(GoodLogs) is GoodLogs.manifest
    assert check_handler_class(HistogramLogs).hints.supports_histogram
    assert HANDLER_BASES[PluginType.LOGS] is LogsPlugin


def test_handler_stores_context_and_credentials() -> None:
    context = make_context()
    handler = GoodLogs(context, Credentials(token="t"))
    assert handler.context is context
    assert handler.credentials["token"] == "t"


def test_default_histogram_is_not_supported() -> None:
    handler = GoodLogs(make_context(), Credentials())
    with pytest.raises(NotSupported):
        handler.histogram(LogQuery.ending_now(), 10)


def test_rejects_wrong_base() -> None:
    class LogsManifestOnConfig(GoodConfig):
        manifest = manifest(PluginType.LOGS)

    with pytest.raises(ManifestError, match=r"does not subclass LogsPlugin"):
        check_handler_class(LogsManifestOnConfig)


def test_rejects_abstract() -> None:
    class Half(ConfigurationPlugin):
        manifest = manifest(PluginType.CONFIGURATION)

        def test_connection(self) -> ConnectionResult:
            return ConnectionResult.success()

    with pytest.raises(ManifestError, match=r"does not implement: delete_key, get_values"):
        check_handler_class(Half)


def test_rejects_missing_manifest() -> None:
    class Bare(ConfigurationPlugin):
        def test_connection(self) -> ConnectionResult:
            return ConnectionResult.success()

    with pytest.raises(ManifestError, match=r"manifest must be a PluginManifest"):
        check_handler_class(Bare)

    class WrongManifest(GoodConfig):
        manifest = {"slug": "x"}  # type: ignore[assignment]

    with pytest.raises(ManifestError, match=r"manifest must be a PluginManifest"):
        check_handler_class(WrongManifest)


def test_rejects_histogram_hint_without_override() -> None:
    class Claims(GoodLogs):
        manifest = manifest(PluginType.LOGS, hints=Hints(supports_histogram=True))

    with pytest.raises(ManifestError, match=r"supports_histogram is set but histogram"):
        check_handler_class(Claims)


def test_rejects_incompatible_api_version() -> None:
    host = ApiVersion.parse(SDK_API_VERSION)
    ahead = f"{host.major}.{host.minor + 1}"

    class Future(GoodLogs):
        manifest = manifest(PluginType.LOGS, api_version=ahead)

    with pytest.raises(
        ManifestError, match=rf"plugin targets api {ahead}; host supports 1.x up to {host}"
    ):
        check_handler_class(Future)


def test_rejects_non_handlers_and_identity_without_its_interface() -> None:
    assert handler_type_errors(object) == ["<class 'object'> is not a PluginHandler subclass"]
    assert handler_type_errors("nope")

    class Identity(PluginHandler):
        manifest = manifest(PluginType.IDENTITY)

        def test_connection(self) -> ConnectionResult:
            return ConnectionResult.success()

    # Contract 1.3 gave identity an interface (IdentityPlugin); it needs api_version 1.3.
    errors = handler_type_errors(Identity)
    assert len(errors) == 2
    assert errors[0].endswith(".Identity does not subclass IdentityPlugin")
    assert errors[1] == "identity handlers need api_version 1.3 or later"


def test_error_lists_every_problem_and_names_class() -> None:
    class Bad(ConfigurationPlugin):
        manifest = manifest(PluginType.LOGS, hints=Hints(supports_histogram=True))

    with pytest.raises(ManifestError) as caught:
        check_handler_class(Bad)
    assert caught.value.field.endswith(
        "test_error_lists_every_problem_and_names_class.<locals>.Bad"
    )
    assert len(handler_type_errors(Bad)) == 3
