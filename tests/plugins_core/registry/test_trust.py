"""Trust by bytes, never by name (issue 19, gap 1): a distribution named like a trusted one
but with other bytes (a dependency-confusion ``pip install imbi-plugin-aws``) is imported and
run only in a sandboxed runner, and ``plugin list`` and the admin say why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest

from plugins_core import registry
from plugins_core.registry import trust

ROOT = Path(__file__).resolve().parents[3]

SQUAT_SOURCE = """
import os

from imbi_plugin_sdk import ConfigurationPlugin, ConnectionResult, PluginManifest, PluginType

HOST_PID = os.getpid()  # where this module ran


class Handler(ConfigurationPlugin):
    manifest = PluginManifest(
        slug="{slug}",
        name="{slug}",
        description="named like a first-party plugin",
        version="9.9.9",
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


def install(site: Path, distribution: str, module: str, slug: str, version: str) -> Path:
    """A real distribution in ``site`` (package, dist-info with RECORD), as pip leaves one."""
    (site / module).mkdir(parents=True)
    source = site / module / "__init__.py"
    source.write_text(SQUAT_SOURCE.format(slug=slug))
    info = site / f"{distribution.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {distribution}\nVersion: {version}\n"
    )
    (info / "entry_points.txt").write_text(f"[imbi.plugins]\n{slug} = {module}:Handler\n")
    (info / "RECORD").write_text(
        f"{module}/__init__.py,,\n{info.name}/METADATA,,\n{info.name}/entry_points.txt,,\n"
        f"{info.name}/RECORD,,\n"
    )
    return source


@pytest.fixture
def policy() -> Iterator[None]:
    """Restore this process's trust policy after the test configures its own."""
    saved = (registry.settings.trusted, registry.settings.import_timeout, registry.settings.lock)
    yield
    registry.configure(trusted=saved[0], import_timeout=saved[1], lock=saved[2])


def _ours(*distributions: str) -> list[registry.Candidate]:
    return [c for c in registry.discover() if c.distribution in distributions]


def test_the_fingerprint_covers_the_code_even_of_an_editable_install() -> None:
    files = trust.distribution_files(metadata.distribution("imbi-plugin-aws"))
    assert "imbi_plugin_aws/ssm.py" in files  # the source tree, not only RECORD's .pth
    assert files["imbi_plugin_aws/ssm.py"].is_file()
    assert not [name for name in files if name.endswith(("/RECORD", "/direct_url.json"))]


def test_a_squatting_distribution_with_a_trusted_name_runs_isolated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: None
) -> None:
    lock = tmp_path / trust.LOCK_NAME
    document = trust.write_lock(lock, registry.FIRST_PARTY)
    assert set(document["distributions"]) == set(registry.FIRST_PARTY)
    registry.configure(trusted=registry.FIRST_PARTY, import_timeout=5.0, lock=str(lock))

    # The reviewed bytes: in-process, and every surface says they were verified.
    reviewed = registry.build_snapshot(_ours("imbi-plugin-aws"), generation=1)
    ssm = reviewed.entries["aws-ssm"]
    assert ssm.ok and not ssm.isolated and ssm.handler is not None
    assert ssm.trust == trust.VERIFIED

    # pip install imbi-plugin-aws from the wrong index: first on sys.path, same name.
    site = tmp_path / "site"
    install(site, "imbi-plugin-aws", "squat_aws", "aws-squat", "9.9.9")
    monkeypatch.syspath_prepend(str(site))
    assert metadata.distribution("imbi-plugin-aws").version == "9.9.9"
    assert registry.is_trusted("imbi-plugin-aws") is False
    snapshot = registry.build_snapshot(_ours("imbi-plugin-aws"), generation=2)
    squat = snapshot.entries["aws-squat"]
    assert squat.ok and squat.isolated and squat.handler is None  # imported only in a runner
    assert "squat_aws" not in sys.modules  # this process never ran its module
    assert squat.trust.startswith(f"{trust.UNVERIFIED}: its files differ from those recorded")
    assert "9.9.9 installed, 0.1.0 recorded" in squat.trust
    from plugins_core.isolation.modes import ISOLATED, effective_mode

    assert effective_mode("in_process", squat) == ISOLATED  # an admin cannot force it in


def test_changed_bytes_of_a_reviewed_distribution_run_isolated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, policy: None
) -> None:
    site = tmp_path / "site"
    source = install(site, "imbi-plugin-reviewed", "reviewed_probe", "reviewed-probe", "1.0")
    monkeypatch.syspath_prepend(str(site))
    lock = tmp_path / "trusted.lock"
    trusted = frozenset({"imbi-plugin-reviewed"})
    trust.write_lock(lock, trusted)
    registry.configure(trusted=trusted, lock=str(lock))
    assert registry.is_trusted("imbi-plugin-reviewed")
    assert registry.trust_note("imbi-plugin-reviewed") == trust.VERIFIED

    source.write_text(source.read_text() + "\nSTOLEN = True\n")  # one edited file
    assert not registry.is_trusted("imbi-plugin-reviewed")
    entry = registry.build_snapshot(_ours("imbi-plugin-reviewed"), generation=1).entries[
        "reviewed-probe"
    ]
    assert entry.ok and entry.isolated and entry.handler is None
    assert "reviewed_probe" not in sys.modules
    assert entry.trust.startswith(f"{trust.UNVERIFIED}: its files differ")

    (site / "reviewed_probe" / "extra.py").write_text("")  # a file no RECORD lists
    source.write_text(source.read_text().replace("\nSTOLEN = True\n", ""))
    assert not registry.is_trusted("imbi-plugin-reviewed")
    (site / "reviewed_probe" / "extra.py").unlink()
    assert registry.is_trusted("imbi-plugin-reviewed")  # the reviewed bytes again

    lock.unlink()  # no lock: nothing is verified, nothing runs in-process
    assert not registry.is_trusted("imbi-plugin-reviewed")
    assert "no trust lock at" in registry.trust_note("imbi-plugin-reviewed")
    lock.write_text(json.dumps({"format": 1, "distributions": {}}))
    assert not registry.is_trusted("imbi-plugin-reviewed")
    assert "is not recorded in" in registry.trust_note("imbi-plugin-reviewed")
    registry.configure(trusted=trusted, lock=None)  # development: by name, and it says so
    assert registry.is_trusted("imbi-plugin-reviewed")
    assert registry.trust_note("imbi-plugin-reviewed") == trust.BY_NAME
    assert not registry.is_trusted("imbi-plugin-other")
    assert registry.trust_note("imbi-plugin-other") == ""


def _manage(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "DJANGO_SETTINGS_MODULE": "imbi.settings.test", **env}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_plugin_trust_records_and_plugin_list_says_which(tmp_path: Path) -> None:
    lock = tmp_path / trust.LOCK_NAME
    recorded = _manage("plugin", "trust", "--record", IMBI_TRUSTED_PLUGIN_LOCK=str(lock))
    assert recorded.returncode == 0, recorded.stderr
    assert f"wrote {lock}" in recorded.stdout
    assert "imbi-plugin-aws" in json.loads(lock.read_text())["distributions"]

    site = tmp_path / "site"
    install(site, "imbi-plugin-aws", "squat_aws", "aws-squat", "9.9.9")
    listed = _manage("plugin", "list", IMBI_TRUSTED_PLUGIN_LOCK=str(lock), PYTHONPATH=str(site))
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    assert f"[{trust.UNVERIFIED}: its files differ" in lines["aws-squat"]
    assert f"[{trust.VERIFIED}]" in lines["local-config"]
    verdicts = _manage("plugin", "trust", IMBI_TRUSTED_PLUGIN_LOCK=str(lock), PYTHONPATH=str(site))
    assert f"imbi-plugin-aws: {trust.UNVERIFIED}" in verdicts.stdout
    assert f"imbi-plugin-local: {trust.VERIFIED}" in verdicts.stdout
