"""The registry over real installed distributions (the example plugin is pip-installed)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from plugins_core import registry
from plugins_core.registry import Status

ROOT = Path(__file__).resolve().parents[3]


def _without_hostile() -> list[registry.Candidate]:
    """Every installed candidate but the hostile suite's: untrusted, it is inspected in its
    sandboxed runner, where 'hostile-import-hang' holds the build for the import deadline
    (tests/plugins_core/isolation and test_loading.py cover it)."""
    return [c for c in registry.discover() if c.distribution != "imbi-plugin-hostile"]


def test_discovers_every_entry_point_of_the_example_distribution() -> None:
    snapshot = registry.build_snapshot(_without_hostile(), generation=1)
    example = {n: e for n, e in snapshot.entries.items() if e.distribution == "imbi-plugin-example"}
    assert {n: e.status for n, e in example.items()} == {
        "example-config": Status.LOADED,
        "example-logs": Status.LOADED,
        "example-static": Status.LOADED,
        "example-projects": Status.LOADED,
        "example-broken": Status.IMPORT_FAILED,
        "example-future": Status.INCOMPATIBLE,
        "example-not-a-handler": Status.INVALID,
    }
    assert example["example-config"].version == "1.2.0"
    assert example["example-config"].manifest is not None
    assert "No module named" in example["example-broken"].reason
    assert "api 2.0" in example["example-future"].reason
    assert example["example-future"].handler is None  # never handed out


@pytest.fixture
def extra_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A second real distribution on sys.path (a dist-info folder importlib.metadata reads)."""
    info = tmp_path / "imbi_plugin_dup-0.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: imbi-plugin-dup\nVersion: 0.3\n")
    (info / "entry_points.txt").write_text(
        "[imbi.plugins]\n"
        "dup-of-slug = imbi_plugin_example.config:ExampleConfiguration\n"
        "example-config = imbi_plugin_example.logs:ExampleLogs\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_duplicates_are_recorded_not_fatal(extra_site: Path) -> None:
    snapshot = registry.build_snapshot(_without_hostile(), generation=1)
    assert snapshot.entries["dup-of-slug"].status is Status.DUPLICATE
    assert (
        "already provided by entry point 'example-config'" in snapshot.entries["dup-of-slug"].reason
    )
    clash = [
        e
        for e in snapshot.entries.values()
        if e.name == "example-config" and e.status is Status.DUPLICATE
    ]
    assert len(clash) == 1 and "also registered by" in clash[0].reason
    assert snapshot.get("example-config").ok  # type: ignore[union-attr]


def test_strict_build_raises_a_named_error(extra_site: Path) -> None:
    ours = [
        c
        for c in registry.discover()
        if c.distribution in {"imbi-plugin-example", "imbi-plugin-dup"}
    ]
    with pytest.raises(registry.DuplicatePluginError, match="dup-of-slug"):
        registry.build_snapshot(ours, generation=1, strict=True)


def test_snapshots_are_immutable_and_rebuilds_bump_generation() -> None:
    first = registry.rebuild()
    second = registry.rebuild()
    assert second.generation == first.generation + 1
    assert registry.current() is second
    with pytest.raises(TypeError):
        first.entries["x"] = first.entries["example-config"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        first.generation = 99  # type: ignore[misc]
    # An in-flight request keeps the snapshot (and handler classes) it started with.
    assert first.get("example-config").handler is not None  # type: ignore[union-attr]


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "DJANGO_SETTINGS_MODULE": "imbi.settings.test", **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_plugin_list_shows_status_and_reason() -> None:
    result = _manage("plugin", "list")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert " loaded " in lines["example-config"]
    assert (
        "import_failed" in lines["example-broken"]
        and "ModuleNotFoundError" in lines["example-broken"]
    )
    assert "incompatible" in lines["example-future"] and "api 2.0" in lines["example-future"]


def test_strict_mode_is_fatal_with_one_line() -> None:
    result = _manage("plugin", "list", "--strict")
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1].startswith("CommandError: PluginImportError")
    startup = _manage("check", IMBI_PLUGINS_STRICT="1")
    assert startup.returncode != 0
    assert "PluginImportError" in startup.stderr


def test_system_check_warns_about_failed_plugins() -> None:
    result = _manage("check")
    assert result.returncode == 0
    assert "plugins.W001" in result.stderr and "example-broken" in result.stderr


HANDLER_SOURCE = """
{preamble}
from {sdk} import ConfigurationPlugin, ConnectionResult, PluginManifest, PluginType


class Handler(ConfigurationPlugin):
    manifest = PluginManifest(
        slug="{slug}",
        name="{slug}",
        description="a test distribution",
        version="0.1.0",
        api_version="1.0",
        plugin_type=PluginType.CONFIGURATION,
    )

    def test_connection(self):
        return ConnectionResult.success()

    def list_keys(self):
        return []

    def get_values(self, keys=None):
        return []

    def set_value(self, key, value):
        raise NotImplementedError

    def delete_key(self, key):
        return None
"""


def fake_distribution(
    site: Path, slug: str, *, sdk: str, requires: tuple[str, ...] = (), preamble: str = ""
) -> None:
    """A real distribution on ``site``: a package and a dist-info importlib.metadata reads."""
    module = slug.replace("-", "_")
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(
        HANDLER_SOURCE.format(preamble=preamble, sdk=sdk, slug=slug)
    )
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {slug}\nVersion: 0.1\n"
        + "".join(f"Requires-Dist: {line}\n" for line in requires)
    )
    (info / "entry_points.txt").write_text(f"[imbi.plugins]\n{slug} = {module}:Handler\n")


def test_sdk_ranges_are_read_from_the_distribution_metadata() -> None:
    assert registry.sdk_range_of(["boto3>=1", "imbi-plugin-sdk<2,>=1.0"]) == "<2,>=1.0"
    assert registry.sdk_range_of(["Imbi_Plugin.SDK>=1.1"]) == ">=1.1"
    assert registry.sdk_range_of(['imbi-plugin-sdk>=9; extra == "docs"']) == ""
    assert registry.sdk_range_of(None) == ""
    catalog = {c.distribution: c.sdk_range for c in registry.discover()}
    assert catalog["imbi-plugin-aws"] == "<2,>=1.0"
    assert catalog["imbi-plugin-example"] == "<2,>=1.2"  # example-projects uses contract 1.2


def test_a_plugin_needing_another_sdk_is_refused_naming_both_versions() -> None:
    host = registry.HOST_SDK_VERSION
    loads: list[str] = []
    candidate = registry.Candidate(
        "far-future",
        "far_future:Handler",
        "far-future",
        "0.1",
        lambda: loads.append("x"),
        ">=2.0,<3",
    )
    entry = registry.build_snapshot([candidate], generation=1).entries["far-future"]
    assert entry.status is Status.INCOMPATIBLE
    assert entry.reason == (
        f"requires imbi-plugin-sdk>=2.0,<3 but this host runs imbi-plugin-sdk {host}"
    )
    assert loads == []  # refused before import
    assert registry.sdk_range_problem(f"=={host}") == ""
    assert "invalid imbi-plugin-sdk range" in registry.sdk_range_problem("banana")


def test_plugin_list_marks_legacy_imports_and_refuses_foreign_sdk_ranges(tmp_path: Path) -> None:
    fake_distribution(
        tmp_path, "legacy-shim", sdk="plugins_core.sdk", requires=("imbi-plugin-sdk>=1.0,<2",)
    )
    fake_distribution(
        tmp_path,
        "sdk-two",
        sdk="imbi_plugin_sdk",
        requires=("imbi-plugin-sdk>=2.0,<3",),
        preamble="raise RuntimeError('an incompatible plugin must not be imported')",
    )
    result = _manage("plugin", "list", PYTHONPATH=str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert " loaded " in lines["legacy-shim"]
    assert "[deprecated: imports plugins_core.sdk; use imbi_plugin_sdk]" in lines["legacy-shim"]
    assert "deprecated" not in lines["example-config"]
    assert " incompatible " in lines["sdk-two"]
    assert (
        "requires imbi-plugin-sdk<3,>=2.0 but this host runs "
        f"imbi-plugin-sdk {registry.HOST_SDK_VERSION}"
    ) in lines["sdk-two"]
    as_json = _manage("plugin", "list", "--json", PYTHONPATH=str(tmp_path))
    flags = {e["name"]: e["legacy_sdk"] for e in json.loads(as_json.stdout)}
    assert flags["legacy-shim"] is True and flags["example-config"] is False


def test_a_legacy_import_warns_and_is_recorded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_distribution(tmp_path, "legacy-inproc", sdk="plugins_core.sdk")
    monkeypatch.syspath_prepend(str(tmp_path))
    ours = [c for c in registry.discover() if c.distribution == "legacy-inproc"]
    with pytest.warns(
        DeprecationWarning, match="plugins_core.sdk is deprecated; import imbi_plugin_sdk"
    ):
        entry = registry.build_snapshot(ours, generation=1, trusted=lambda _: True).entries[
            "legacy-inproc"
        ]
    assert entry.ok and entry.legacy_sdk
    sys.modules.pop("legacy_inproc", None)


def test_the_default_trust_is_the_configured_policy_not_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """build_snapshot without ``trusted=`` imports in this process only what the policy
    trusts (the catalog and IMBI_TRUSTED_PLUGIN_DISTRIBUTIONS); anything else is imported
    in a sandboxed runner, and the host never runs its module."""
    fake_distribution(
        tmp_path,
        "untrusted-probe",
        sdk="imbi_plugin_sdk",
        preamble="import os\nHOST_PID = os.getpid()",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    from imbi.settings import base

    # Before configure() the registry trusts what the settings trust by default: the catalog.
    assert frozenset(base.IMBI_TRUSTED_PLUGIN_DISTRIBUTIONS) == registry.FIRST_PARTY
    assert registry.is_trusted("imbi-plugin-local") and registry.is_trusted("imbi_plugin.example")
    assert not registry.is_trusted("untrusted-probe")
    ours = [
        c for c in registry.discover() if c.distribution in {"untrusted-probe", "imbi-plugin-local"}
    ]
    snapshot = registry.build_snapshot(ours, generation=1)
    probe, local = snapshot.entries["untrusted-probe"], snapshot.entries["local-config"]
    assert probe.ok and probe.isolated and probe.handler is None
    assert probe.manifest is not None and probe.manifest.slug == "untrusted-probe"
    assert "untrusted_probe" not in sys.modules  # imported only in its runner
    assert local.ok and not local.isolated and local.handler is not None
    trusting = registry.build_snapshot(ours, generation=2, trusted=lambda _: True)
    assert trusting.entries["untrusted-probe"].handler is not None  # only when asked
    assert os.getpid() == sys.modules.pop("untrusted_probe").HOST_PID


def test_catalog_and_host_declare_sdk_ranges_that_hold() -> None:
    from importlib import metadata

    import imbi_plugin_sdk

    host = registry.sdk_range_of(metadata.requires("imbi-platform")) or ""
    major = int(imbi_plugin_sdk.__version__.split(".")[0])
    # ADR 0015: >=MAJOR.N,<MAJOR+1, and it holds for the SDK installed with the host.
    assert re.fullmatch(rf"<{major + 1},>={major}\.\d+", host), host
    assert registry.sdk_range_problem(host) == ""
    for pyproject in sorted(ROOT.glob("catalog/*/pyproject.toml")):
        name = pyproject.parent.name
        declared = registry.sdk_range_of(metadata.requires(f"imbi-plugin-{name}"))
        assert declared, f"catalog/{name} declares no imbi-plugin-sdk range"
        assert registry.sdk_range_problem(declared) == "", name
        sources = "".join(p.read_text() for p in pyproject.parent.rglob("*.py"))
        assert "plugins_core" not in sources, f"catalog/{name} still imports the host"
        assert "imbi_plugin_sdk" in sources
