"""The desired-state service, its three surfaces (CLI, REST API, admin) and the per-process
generation check, in this process against the test database (real uv environments and real
sandboxed imports). The multi-process behaviour is in test_two_nodes.py."""

from __future__ import annotations

import html
import io
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from imbi.core.models import AuditEvent
from plugins_core import registry
from plugins_core.distributions import desired as distributions
from plugins_core.distributions import environments, runtime
from plugins_core.models import DistributionArtifact, InstalledDistribution, RegistryState
from tests.served_forms import submit_as_served

BROKEN = """
raise RuntimeError("this version cannot import")
"""


@pytest.fixture(autouse=True)
def plugin_root(settings: Any, tmp_path: Path) -> Path:
    settings.IMBI_PLUGIN_ROOT = str(tmp_path / "plugins")
    settings.IMBI_NODE_ID = "test-node"
    cache.delete(runtime.CACHE_KEY)
    yield tmp_path / "plugins"
    registry.set_managed(())
    runtime._serving = 0
    runtime.publish(0)  # what the rolled-back database says


def wheels_of(path: Path) -> list[distributions.Wheel]:
    return distributions.read_source(path)


def generation() -> int:
    state = RegistryState.objects.filter(pk=1).first()
    return state.generation if state else 0


def fake_wheel(
    filename: str, *, entry_points: str = "", extra: tuple[str, ...] = (), size: int = 0
) -> bytes:
    """A minimal wheel archive (for the refusals; real plugins are built with uv)."""
    name, version = filename.split("-")[:2]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        info = f"{name}-{version}.dist-info"
        archive.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
        )
        archive.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        archive.writestr(f"{info}/RECORD", "")
        if entry_points:
            archive.writestr(f"{info}/entry_points.txt", entry_points)
        for member in extra:
            archive.writestr(member, "x")
        if size:  # zeros compress ~1000:1: a small upload that unpacks to ``size`` bytes
            archive.writestr("bomb.bin", bytes(size), compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


@pytest.mark.django_db
def test_install_records_the_desired_state_and_serves_it(
    demo_wheels: dict[str, Path], plugin_root: Path, django_user_model: Any
) -> None:
    root = django_user_model.objects.create_superuser("root", "r@example.com", "pw")
    row = distributions.install(wheels_of(demo_wheels["1.0.0"]), actor=root, source="cli")
    assert (row.name, row.version, row.execution_mode) == (
        "imbi-plugin-runtime-demo",
        "1.0.0",
        "isolated",
    )
    content = demo_wheels["1.0.0"].read_bytes()
    assert row.size == len(content) and DistributionArtifact.objects.get(pk=row.sha256)
    assert row.installed_by == root and row.generation == generation() == 1
    assert row.entries["runtime-demo"]["manifest"]["version"] == "1.0.0"
    event = AuditEvent.objects.get(action="plugin.distribution_installed")
    assert event.actor == root and "1.0.0" in event.detail
    env = plugin_root / "envs" / row.env_key
    assert (env / environments.READY).exists()

    assert runtime.refresh(force=True)
    entry = registry.current().get("runtime-demo")
    assert entry is not None and entry.ok and entry.isolated
    assert (entry.version, entry.env) == ("1.0.0", str(env))

    # The same wheel again changes nothing.
    again = distributions.install(wheels_of(demo_wheels["1.0.0"]), actor=root)
    assert again.pk == row.pk and generation() == 1


@pytest.mark.django_db
def test_a_failed_upgrade_leaves_the_previous_version_serving(
    demo_wheels: dict[str, Path], wheel_builder: Any, tmp_path: Path, plugin_root: Path
) -> None:
    distributions.install(wheels_of(demo_wheels["1.0.0"]))
    broken = wheel_builder("3.0.0", tmp_path / "broken", body=BROKEN)
    with pytest.raises(distributions.DistributionError) as failed:
        distributions.install(wheels_of(broken), upgrade=True)
    assert failed.value.code == "import_failed"
    assert "cannot import" in failed.value.detail
    row = InstalledDistribution.objects.get()
    assert row.version == "1.0.0" and generation() == 1
    assert not AuditEvent.objects.filter(action="plugin.distribution_upgraded").exists()
    assert not list((plugin_root / "envs").glob("*-3.0.0-*"))  # never desired: discarded


@pytest.mark.django_db
def test_install_and_upgrade_are_distinct_and_a_downgrade_is_an_upgrade(
    demo_wheels: dict[str, Path],
) -> None:
    with pytest.raises(distributions.DistributionError) as missing:
        distributions.install(wheels_of(demo_wheels["1.0.0"]), upgrade=True)
    assert (missing.value.code, missing.value.http_status) == ("not_installed", 404)
    distributions.install(wheels_of(demo_wheels["2.0.0"]))
    with pytest.raises(distributions.DistributionError) as taken:
        distributions.install(wheels_of(demo_wheels["1.0.0"]))
    assert (taken.value.code, taken.value.http_status) == ("already_installed", 409)
    row = distributions.install(wheels_of(demo_wheels["1.0.0"]), upgrade=True)
    assert row.version == "1.0.0" and generation() == 2
    assert AuditEvent.objects.get(action="plugin.distribution_upgraded").detail.startswith(
        "2.0.0 -> 1.0.0"
    )
    assert distributions.remove("imbi_plugin_runtime_demo") == 3
    assert not InstalledDistribution.objects.exists()
    with pytest.raises(distributions.DistributionError) as gone:
        distributions.remove("imbi-plugin-runtime-demo")
    assert gone.value.code == "not_installed"


@pytest.mark.parametrize(
    ("filename", "content", "code"),
    [
        ("not-a-wheel.zip", b"PK", "invalid_wheel"),
        ("demo-1.0-py3-none-any.whl", b"not a zip", "invalid_wheel"),
        ("demo-1.0-py3-none-any.whl", fake_wheel("demo-1.0-py3-none-any.whl"), "not_a_plugin"),
        *(
            (
                "demo-1.0-py3-none-any.whl",
                fake_wheel(
                    "demo-1.0-py3-none-any.whl",
                    entry_points="[imbi.plugins]\nx = demo:X\n",
                    extra=(member,),
                ),
                "invalid_wheel",
            )
            for member in ("../../evil.pth", "/etc/evil", "demo/..\\..\\evil", "a/../../b")
        ),
        (
            "imbi_plugin_example-9.0-py3-none-any.whl",
            fake_wheel(
                "imbi_plugin_example-9.0-py3-none-any.whl",
                entry_points="[imbi.plugins]\nx = imbi_plugin_example:X\n",
            ),
            "conflicts_with_host",
        ),
        (
            "other-1.0-py3-none-any.whl",
            fake_wheel(
                "other-1.0-py3-none-any.whl",
                entry_points="[imbi.plugins]\nexample-config = other:X\n",
            ),
            "entry_point_taken",
        ),
        (
            "django-9.0-py3-none-any.whl",
            fake_wheel(
                "django-9.0-py3-none-any.whl", entry_points="[imbi.plugins]\nd = django:X\n"
            ),
            "reserved_name",
        ),
    ],
)
@pytest.mark.django_db
def test_refused_wheels_change_nothing(filename: str, content: bytes, code: str) -> None:
    with pytest.raises(distributions.DistributionError) as refused:
        distributions.install([distributions.wheel(filename, content)])
    assert refused.value.code == code
    assert "\n" not in refused.value.detail
    assert generation() == 0 and not InstalledDistribution.objects.exists()


def test_a_wheel_unpacking_past_the_limit_is_refused_before_decompressing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(distributions, "MAX_UNPACKED_BYTES", 1024 * 1024)
    content = fake_wheel("demo-1.0-py3-none-any.whl", size=2 * 1024 * 1024)
    assert len(content) < 10 * 1024
    with pytest.raises(distributions.DistributionError) as refused:
        distributions.wheel("demo-1.0-py3-none-any.whl", content)
    assert refused.value.code == "invalid_wheel"
    assert "unpacks to more than 1 MiB" in refused.value.detail


@pytest.mark.django_db
def test_cli_install_upgrade_remove_and_one_line_refusals(
    demo_wheels: dict[str, Path], tmp_path: Path, capsys: Any, monkeypatch: Any
) -> None:
    call_command("plugin", "install", str(demo_wheels["1.0.0"]))
    assert "imbi-plugin-runtime-demo 1.0.0 installed" in capsys.readouterr().out
    house = tmp_path / "house"
    house.mkdir()
    (house / demo_wheels["2.0.0"].name).write_bytes(demo_wheels["2.0.0"].read_bytes())
    call_command("plugin", "upgrade", str(house))  # a wheelhouse folder
    assert InstalledDistribution.objects.get().version == "2.0.0"
    with pytest.raises(CommandError) as exists:
        call_command("plugin", "install", str(demo_wheels["1.0.0"]))
    assert str(exists.value).startswith("already_installed: ")
    with pytest.raises(CommandError) as missing:
        call_command("plugin", "install", str(tmp_path / "nothing.whl"))
    assert str(missing.value).startswith("invalid_source: ") and "\n" not in str(missing.value)
    call_command("plugin", "remove", "imbi-plugin-runtime-demo")
    # a bare name is an index requirement even when a folder of that name exists here
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CommandError) as by_name:
        call_command("plugin", "install", "house")
    assert not str(by_name.value).startswith("invalid_source: ")
    assert InstalledDistribution.objects.count() == 0
    with pytest.raises(CommandError) as removed:
        call_command("plugin", "remove", "imbi-plugin-runtime-demo")
    assert str(removed.value).startswith("not_installed: ")


@pytest.mark.django_db
def test_api_is_for_superusers_and_answers_problems(
    demo_wheels: dict[str, Path], django_user_model: Any, make_member: Any, org: Any
) -> None:
    url = reverse("plugin-distributions")
    anonymous = APIClient()
    assert anonymous.get(url).status_code == 401
    member = APIClient()
    member.force_authenticate(make_member(org, role="admin"))
    denied = member.post(url, {"wheel": [SimpleUploadedFile("x.whl", b"x")]}, format="multipart")
    assert denied.status_code == 403 and denied.json()["code"] == "permission_denied"
    assert member.get(url).status_code == 403
    assert member.delete(reverse("plugin-distribution", args=["x"])).status_code == 403

    root = APIClient()
    root.force_authenticate(django_user_model.objects.create_superuser("root", "r@e.com", "pw"))
    bad = root.post(url, {"wheel": [SimpleUploadedFile("x.whl", b"x")]}, format="multipart")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_wheel"
    none = root.post(url, {}, format="multipart")
    assert none.status_code == 400 and none["Content-Type"] == "application/problem+json"

    def upload(version: str) -> SimpleUploadedFile:
        path = demo_wheels[version]
        return SimpleUploadedFile(path.name, path.read_bytes())

    created = root.post(url, {"wheel": [upload("1.0.0")]}, format="multipart")
    assert created.status_code == 201, created.content
    assert created.json()["version"] == "1.0.0"
    one = reverse("plugin-distribution", args=["imbi-plugin-runtime-demo"])
    mismatch = root.put(
        reverse("plugin-distribution", args=["other"]),
        {"wheel": [upload("2.0.0")]},
        format="multipart",
    )
    assert mismatch.status_code == 400 and mismatch.json()["code"] == "name_mismatch"
    upgraded = root.put(one, {"wheel": [upload("2.0.0")]}, format="multipart")
    assert upgraded.status_code == 200 and upgraded.json()["version"] == "2.0.0"
    report = root.get(url).json()
    assert report["generation"] == 2
    assert [d["version"] for d in report["distributions"]] == ["2.0.0"]
    assert root.delete(one).status_code == 204
    gone = root.delete(one)
    assert gone.status_code == 404 and gone.json()["code"] == "not_installed"


@pytest.mark.django_db
def test_admin_page_lists_nodes_installs_and_removes(
    demo_wheels: dict[str, Path], django_user_model: Any, make_member: Any, org: Any
) -> None:
    url = reverse("admin:plugins_core_installeddistribution_changelist")
    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    staff_client = Client()
    staff_client.force_login(staff)
    assert staff_client.get(url).status_code == 403

    client = Client()
    client.force_login(django_user_model.objects.create_superuser("root", "r@e.com", "pw"))
    page = client.get(url)
    assert (
        page.status_code == 200 and "No plugin distribution is installed" in page.content.decode()
    )
    refused = client.post(url, {"wheels": SimpleUploadedFile("x.whl", b"junk")})
    assert refused.status_code == 200 and "is not a wheel file name" in refused.content.decode()
    wheel = demo_wheels["1.0.0"]
    done = client.post(url, {"wheels": SimpleUploadedFile(wheel.name, wheel.read_bytes())})
    assert done.status_code == 302
    environments.reconcile()  # this node reports
    page = client.get(url).content.decode()
    assert "imbi-plugin-runtime-demo" in page and "test-node" in page and "up to date" in page
    # A node that last converged to an older generation is shown behind.
    from plugins_core.models import NodeState

    NodeState.objects.create(
        node="old-node", distribution="", sha256="", version="", status="ready", generation=0
    )
    page = client.get(url).content.decode()
    assert "behind" in page and "converged to generation 0 of 1" in page
    # Remove is a link to a confirmation page naming what it reaches; its form removes.
    remove = reverse("admin:plugins_core_installeddistribution_remove")
    link = re.search(rf'href="({re.escape(remove)}\?name=[^"]+)"', page)
    assert link, "no Remove link"
    unconfirmed = client.post(remove, {"name": "imbi-plugin-runtime-demo"})
    assert unconfirmed.status_code == 200 and InstalledDistribution.objects.exists()
    confirm = client.get(html.unescape(link.group(1)))
    text = confirm.content.decode()
    assert confirm.status_code == 200 and "Yes, remove imbi-plugin-runtime-demo" in text
    assert "<strong>0</strong> projects" in text and "<strong>0</strong> bindings" in text
    removed = submit_as_served(client, html.unescape(link.group(1)), has="confirm")
    assert removed.status_code == 302 and not InstalledDistribution.objects.exists()


@pytest.mark.django_db
def test_the_generation_check_costs_no_query_while_unchanged(
    demo_wheels: dict[str, Path], django_assert_num_queries: Any, settings: Any
) -> None:
    settings.IMBI_PLUGIN_GENERATION_CHECK = 0.0
    distributions.install(wheels_of(demo_wheels["1.0.0"]))
    runtime.publish(generation())  # what the commit hook does
    assert runtime.refresh()  # stale: switches (reads the rows)
    with django_assert_num_queries(0):
        for _ in range(20):
            assert not runtime.refresh()  # unchanged: one cache read each, no query
    cache.delete(runtime.CACHE_KEY)
    with django_assert_num_queries(1):
        assert not runtime.refresh()  # cache miss: one read of the generation row


@pytest.mark.django_db
def test_reconcile_retires_and_prune_deletes_after_the_grace(
    demo_wheels: dict[str, Path], plugin_root: Path
) -> None:
    old = distributions.install(wheels_of(demo_wheels["1.0.0"]))
    new = distributions.install(wheels_of(demo_wheels["2.0.0"]), upgrade=True)
    environments.reconcile()
    old_env = plugin_root / "envs" / old.env_key
    assert (old_env / environments.RETIRED).exists()
    assert not (plugin_root / "envs" / new.env_key / environments.RETIRED).exists()
    assert environments.prune(grace=60) == []  # still draining
    (old_env / environments.RETIRED).write_text(str(time.time() - 61))
    assert environments.prune(grace=60) == [old.env_key]
    assert not old_env.exists() and (plugin_root / "envs" / new.env_key).exists()
    assert environments.prune(grace=60) == []  # idempotent
    # A rollback after the prune builds the environment again from the stored wheel.
    distributions.install(wheels_of(demo_wheels["1.0.0"]), upgrade=True)
    assert (plugin_root / "envs" / old.env_key / environments.READY).exists()


@pytest.mark.django_db
def test_a_concurrent_change_is_refused_not_overwritten(
    demo_wheels: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    distributions.install(wheels_of(demo_wheels["1.0.0"]))
    real_inspect = distributions._inspect

    def someone_else_upgrades_meanwhile(env: Any, main: Any) -> Any:
        InstalledDistribution.objects.update(sha256="f" * 64, version="9.9.9")
        return real_inspect(env, main)

    monkeypatch.setattr(distributions, "_inspect", someone_else_upgrades_meanwhile)
    with pytest.raises(distributions.DistributionError) as raced:
        distributions.install(wheels_of(demo_wheels["2.0.0"]), upgrade=True)
    assert (raced.value.code, raced.value.http_status) == ("concurrent_change", 409)
    assert InstalledDistribution.objects.get().version == "9.9.9" and generation() == 1
