"""Operator-granted host directories (``permissions.operator_path_settings``, ``paths``).

What the host refuses to grant, the pool key that keeps different grants apart, the
approval an upgrade needs, and a hostile plugin granted one directory trying to read past
it, follow a symlink out, write, create or execute there (Landlock refuses each).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.urls import reverse
from imbi_plugin_local.logs import LocalLogs
from imbi_plugin_sdk import InvalidInput, Permissions

from imbi.core.models import AuditEvent
from plugins_core.isolation import host
from plugins_core.isolation.paths import check_directory, granted_paths
from plugins_core.isolation.policy import Limits
from plugins_core.models import Plugin, ThirdPartyService
from plugins_core.serving.resolution import unapproved_permissions

from .test_hostile import call, keys

GRANT = Permissions(operator_path_settings=("directory",))


@pytest.mark.parametrize(
    "place",
    [
        "/",
        "/etc",
        "/etc/ssl",
        "/proc",
        "/proc/self",
        "/sys",
        "/dev",
        "/root",
        "BASE_DIR",
        "BASE_DIR/imbi/settings",
        "BASE_DIR/..",  # contains the project's tree
        "DATA_DIR",
    ],
)
def test_protected_locations_are_never_granted(place: str) -> None:
    path = place.replace("BASE_DIR", str(settings.BASE_DIR)).replace(
        "DATA_DIR", str(settings.DATA_DIR)
    )
    with pytest.raises(InvalidInput, match="never lets a plugin read") as info:
        check_directory("directory", path)
    assert info.value.fields == {"directory": "a protected location"}


def test_a_symlink_to_a_protected_location_is_refused_by_its_real_path(tmp_path: Path) -> None:
    (tmp_path / "etc").symlink_to("/etc")
    with pytest.raises(InvalidInput, match="names /etc, a system or platform location"):
        check_directory("directory", str(tmp_path / "etc"))


def test_relative_missing_and_file_paths_are_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    cases = {
        "logs": "must be an absolute path",
        str(tmp_path / "missing"): "not an existing directory",
        str(tmp_path / "file"): "not an existing directory",
    }
    for value, reason in cases.items():
        with pytest.raises(InvalidInput) as info:
            check_directory("directory", value)
        assert info.value.fields == {"directory": reason}


def test_the_path_root_confines_every_grant(tmp_path: Path, settings: Any) -> None:
    inside, outside = tmp_path / "root" / "logs", tmp_path / "elsewhere"
    inside.mkdir(parents=True)
    outside.mkdir()
    settings.IMBI_PLUGIN_PATH_ROOT = str(tmp_path / "root")
    assert check_directory("directory", str(inside)) == inside.resolve()
    with pytest.raises(InvalidInput, match="outside the allowed root") as info:
        check_directory("directory", str(outside))
    assert info.value.fields == {"directory": f"must be inside {(tmp_path / 'root').resolve()}"}


def test_only_declared_non_empty_settings_are_granted(tmp_path: Path) -> None:
    assert granted_paths(GRANT, {"directory": str(tmp_path)}) == (str(tmp_path.resolve()),)
    assert granted_paths(GRANT, {"directory": ""}) == ()
    assert granted_paths(Permissions(), {"directory": str(tmp_path)}) == ()
    assert granted_paths(GRANT, {"other": str(tmp_path)}) == ()


def test_runners_with_different_grants_are_different_pools(tmp_path: Path) -> None:
    key = ("imbi-plugin-local", "1.0.0", "local-logs", "acme")
    target = "imbi_plugin_local.logs:LocalLogs"
    a = host._spec(key, "local-logs", target, GRANT, Limits(), "", (str(tmp_path / "a"),))
    b = host._spec(key, "local-logs", target, GRANT, Limits(), "", (str(tmp_path / "b"),))
    none = host._spec(key, "local-logs", target, GRANT, Limits(), "", ())
    assert len({a.key, b.key, none.key}) == 3
    assert a.policy.data_paths == (str(tmp_path / "a"),)
    assert str(tmp_path / "a") not in a.policy.read_paths  # never execute there
    assert none.policy.data_paths == ()


def test_an_upgrade_asking_for_a_directory_waits_for_approval(org: Any) -> None:
    svc = ThirdPartyService.objects.create(organization=org, vendor="x", name="X", slug="x")
    plugin = Plugin.objects.create(
        organization=org,
        service=svc,
        slug="logs",
        plugin_type="logs",
        handler="local-logs",
        approved_permissions={"network_hosts": [], "storage": False},  # what 1.0.0 asked
    )
    manifest = LocalLogs.manifest
    assert manifest.permissions.describe() == ["read files in setting directory"]
    assert unapproved_permissions(plugin, manifest) == ["read files in setting directory"]
    plugin.approved_permissions = manifest.permissions.to_dict()
    assert unapproved_permissions(plugin, manifest) == []


def test_a_plugin_granted_one_directory_reads_it_and_nothing_else(
    hostile: Any, service: ThirdPartyService, viewer: Any, project: Any, caplog: Any, tmp_path: Path
) -> None:
    granted, other = tmp_path / "granted", tmp_path / "other"
    granted.mkdir()
    other.mkdir()
    (granted / "own.jsonl").write_text("own-content")
    (other / "secret.jsonl").write_text("other-secret")
    (granted / "link.jsonl").symlink_to(other / "secret.jsonl")
    script = granted / "run.sh"
    script.write_text("#!/bin/sh\necho pwned\n")
    script.chmod(0o755)
    service.settings = {"directory": str(granted)}
    service.save()
    hostile(
        "hostile-path-escape",
        paths={
            "own": str(granted / "own.jsonl"),
            "other": str(other / "secret.jsonl"),
            "link": str(granted / "link.jsonl"),
            "dir": str(granted),
            "script": str(script),
        },
    )
    response, _ = call(viewer, project, caplog)
    report = keys(response)
    assert report[:4] == [
        "READ_own=own-content",
        "DENIED_READ_other_PermissionError",  # a directory not granted
        "DENIED_READ_link_PermissionError",  # Landlock checks the symlink's real target
        "LISTED_dir=['link.jsonl', 'own.jsonl', 'run.sh']",
    ]
    assert report[4:] == [
        f"DENIED_{label}_PermissionError"
        for label in (
            "APPEND_own",
            "TRUNCATE_own",
            "CREATE_new",
            "MKDIR_new",
            "REMOVE_own",
            "RENAME_own",
            "SYMLINK_new",
            "EXEC_script",
        )
    ]
    assert "other-secret" not in response.content.decode()
    assert (granted / "own.jsonl").read_text() == "own-content"
    assert sorted(os.listdir(granted)) == ["link.jsonl", "own.jsonl", "run.sh"]


def test_the_catalog_wizard_and_approval_show_the_permission(
    client: Any, django_user_model: Any, org: Any
) -> None:
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(root)
    detail = client.get("/catalog/local-logs/").content.decode()
    assert "reads (never writes) files in the host directory you set in: directory" in detail
    wizard = client.get(reverse("admin:plugins_core_install_start")).content.decode()
    assert "reads host files in: directory" in wizard
    svc = ThirdPartyService.objects.create(organization=org, vendor="x", name="X", slug="x")
    plugin = Plugin.objects.create(
        organization=org,
        service=svc,
        slug="logs",
        plugin_type="logs",
        handler="local-logs",
        approved_permissions={"network_hosts": [], "storage": False},
    )
    page = client.get(f"/admin/plugins_core/plugin/{plugin.pk}/change/").content.decode()
    assert "pending approval: read files in setting directory" in page
    client.post(
        "/admin/plugins_core/plugin/",
        {"action": "approve_permissions", "_selected_action": [plugin.pk]},
    )
    plugin.refresh_from_db()
    assert plugin.approved_permissions == {
        "network_hosts": [],
        "storage": False,
        "operator_path_settings": ["directory"],
    }
    event = AuditEvent.objects.get(action=AuditEvent.Action.PLUGIN_STATE)
    assert event.detail.endswith("; read files in settings directory")


def test_no_directory_is_granted_until_the_platform_names_a_root(
    settings: Any, tmp_path: Path
) -> None:
    """An organization's operator types the path; only the platform's operator may say where
    such paths can lie. Unset (the production default), nothing is granted."""
    settings.IMBI_PLUGIN_PATH_ROOT = ""
    with pytest.raises(InvalidInput, match="grants none") as info:
        granted_paths(GRANT, {"directory": str(tmp_path)})
    assert "IMBI_PLUGIN_PATH_ROOT" in info.value.fields["directory"]
    assert str(tmp_path) not in str(info.value)


@pytest.mark.parametrize("place", ["/run", "/var/run", "/run/secrets", "RUNNERS", "RUNNERS/x"])
def test_runtime_secrets_and_other_runners_temp_folders_are_never_granted(
    settings: Any, place: str
) -> None:
    from plugins_core.isolation.supervisor import runner_tmp_base

    settings.IMBI_PLUGIN_PATH_ROOT = "/"
    path = place.replace("RUNNERS", runner_tmp_base())
    with pytest.raises(InvalidInput, match="never lets a plugin read"):
        check_directory("directory", path)
    # nor the temp folder that holds every runner's own
    settings.IMBI_PLUGIN_PATH_ROOT = os.path.dirname(runner_tmp_base())
    with pytest.raises(InvalidInput, match="never lets a plugin read"):
        check_directory("directory", os.path.dirname(runner_tmp_base()))
