"""Issue 20's tamper cases: each was accepted before; each is now refused with its own code
and leaves nothing behind (no row, wheel, environment, audit event or generation change).

Case numbers follow the issue (and docs/security.md's supply-chain table).
"""

from __future__ import annotations

import http.server
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from imbi_plugin_sdk import Permissions, PluginFailed, publishing
from rest_framework.test import APIClient

from imbi.core.models import AuditEvent
from plugins_core import registry
from plugins_core.distributions import environments, runtime
from plugins_core.isolation import supervisor
from plugins_core.isolation.policy import Limits, runner_spec
from plugins_core.models import (
    DistributionArtifact,
    IndexedArtifact,
    InstalledDistribution,
    RegistryState,
)
from plugins_core.supply.install import install_from_index

from .conftest import DIST, PACKAGE, PLUGIN, World, installed_files

pytestmark = pytest.mark.django_db


def _nothing_installed(site: Path) -> None:
    # no environment and no wheel (an empty folder or a build lock file may remain)
    left = [p for p in installed_files(site) if (site / p).is_file() and "locks" not in p]
    assert left == [], left
    assert not InstalledDistribution.objects.exists()
    assert not DistributionArtifact.objects.exists()
    assert not RegistryState.objects.exists()
    assert not IndexedArtifact.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.PLUGIN_INSTALL).exists()


def _refused(requirement: str, code: str, *args: str) -> str:
    with pytest.raises(CommandError) as caught:
        call_command("plugin", "install", requirement, *args)
    message = str(caught.value)
    assert message.startswith(f"{code}: "), message
    assert "\n" not in message
    return message


def env_of(name: str = DIST) -> Path:
    return environments.env_path(InstalledDistribution.objects.get(name=name).env_key)


def at_load(name: str = PLUGIN) -> registry.Entry:
    entry = runtime.switch().get(name)
    assert entry is not None
    return entry


# --- 1-4: no plugin byte executes outside the sandbox -----------------------------------------


@pytest.mark.parametrize(
    "member",
    ["zz_evil.pth", "sitecustomize.py", "usercustomize/__init__.py"],
    ids=["a .pth file", "sitecustomize", "a usercustomize package"],
)
def test_case1_startup_files_are_refused_unless_declared(
    world: World, site: Path, member: str, tmp_path: Path
) -> None:
    marker = tmp_path / "ran"
    wheel = world.wheel(extra={member: f"import os; open({str(marker)!r}, 'w')\n".encode()})
    world.publish([world.entry(wheel)], [wheel])
    world.follow()
    message = _refused("supply-demo", "invalid_wheel")
    assert member in message and "startup_files" in message
    assert not marker.exists()
    _nothing_installed(site)


def test_case1_a_declared_pth_installs_and_runs_only_inside_the_sandbox(
    world: World, site: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran-outside"
    wheel = world.wheel(
        extra={"zz_declared.pth": f"import os; open({str(marker)!r}, 'w')\n".encode()}
    )
    entry = publishing.sign_wheel(
        wheel,
        world.publisher,
        publisher="acme",
        api_version="1.1",
        permissions={"network_hosts": [], "storage": True},
        startup_files=["zz_declared.pth"],
    )
    world.publish([entry], [wheel])
    world.follow()
    install_from_index("supply-demo")  # the import check ran: the .pth ran sandboxed, or not
    assert not marker.exists()  # the sandbox refuses writing outside the runner's temp folder
    assert at_load().ok


def test_case2_runners_start_isolated_without_site_and_not_from_the_env_interpreter(
    world: World, site: Path, tmp_path: Path
) -> None:
    """A planted stdlib (``home`` in pyvenv.cfg) and ``sitecustomize``: nothing runs outside
    the sandbox, and the changed pyvenv.cfg refuses the distribution."""
    world.release()
    world.follow()
    install_from_index("supply-demo")
    env = env_of()
    spec = runner_spec(
        key=("t",),
        slug=PLUGIN,
        entries={PLUGIN: f"{PACKAGE}.handler:SupplyDemoConfiguration"},
        permissions=Permissions(storage=True),
        limits=Limits(),
        env=str(env),
    )
    assert spec.python == sys.executable  # never the environment's bin/python
    marker = tmp_path / "planted-ran"
    planted = env / "planted-lib"
    planted.mkdir()
    (planted / "sitecustomize.py").write_text(f"open({str(marker)!r}, 'w')\n")
    (environments.site_packages(env) / "sitecustomize.py").write_text(
        f"open({str(marker)!r}, 'w')\n"
    )
    config = env / "pyvenv.cfg"
    config.write_text(config.read_text().replace("home = ", f"home = {planted}\nx = "))
    supervisor.set_env_preflight(None)  # start it anyway: what would run before the sandbox?
    try:
        runner = supervisor.RunnerProcess.spawn(spec)
        runner.kill()
    finally:
        from plugins_core.distributions import integrity

        supervisor.set_env_preflight(integrity.check_at_start)
    assert not marker.exists()
    entry = at_load()
    assert entry.status is registry.Status.MODIFIED
    assert "pyvenv.cfg of its environment was modified" in entry.reason


def test_case3_a_form_feed_in_pyvenv_cfg_is_a_modification(world: World, site: Path) -> None:
    world.release()
    world.follow()
    install_from_index("supply-demo")
    config = env_of() / "pyvenv.cfg"
    original = config.read_bytes()
    config.write_bytes(
        original.replace(
            b"include-system-site-packages = false",
            b"include-system-site-packages = true\x0c= false",
        )
    )
    entry = at_load()
    assert entry.status is registry.Status.MODIFIED
    assert "pyvenv.cfg" in entry.reason
    config.write_bytes(original)
    assert at_load().ok


def test_case4_a_pth_planted_between_switches_stops_the_next_runner_start(
    world: World, site: Path, tmp_path: Path
) -> None:
    world.release()
    world.follow()
    install_from_index("supply-demo")
    entry = at_load()
    assert entry.ok
    spec = runner_spec(
        key=("t4",),
        slug=PLUGIN,
        entries={PLUGIN: entry.target},
        permissions=Permissions(storage=True),
        limits=Limits(),
        env=entry.env,
    )
    supervisor.RunnerProcess.spawn(spec).kill()  # a clean environment starts
    marker = tmp_path / "pth-ran"
    (environments.site_packages(env_of()) / "zz_planted.pth").write_text(
        f"import os; open({str(marker)!r}, 'w')\n"
    )
    started = time.monotonic()
    with pytest.raises(PluginFailed, match=r"file_modified: .*unexpected file zz_planted.pth"):
        supervisor.RunnerProcess.spawn(spec)
    assert time.monotonic() - started < 2.0
    assert not marker.exists()


# --- 5-7: signed permissions and versions -----------------------------------------------------


def test_case5_signed_permissions_must_equal_the_manifests(world: World, site: Path) -> None:
    wheel = world.wheel()
    entry = publishing.sign_wheel(
        wheel,
        world.publisher,
        publisher="acme",
        api_version="1.1",
        permissions={"network_hosts": [], "storage": False},  # narrower than what runs
    )
    world.publish([entry], [wheel])
    world.follow()
    message = _refused("supply-demo", "permissions_mismatch")
    assert "storage: signed False, declared True" in message
    _nothing_installed(site)


def test_case6_a_downgrade_needs_allow_downgrade_and_is_audited(
    world: World, site: Path, superuser_client: APIClient
) -> None:
    world.release("1.0.0")
    world.release("1.1.0")
    world.follow()
    install_from_index("supply-demo")
    generation = RegistryState.objects.get().generation
    events = AuditEvent.objects.count()
    message = _refused("supply-demo==1.0.0", "downgrade_refused")
    assert "--allow-downgrade" in message
    response = superuser_client.post(
        "/api/plugin-index/install", {"requirement": "supply-demo==1.0.0"}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (409, "downgrade_refused")
    assert InstalledDistribution.objects.get().version == "1.1.0"
    assert RegistryState.objects.get().generation == generation
    assert AuditEvent.objects.count() == events
    response = superuser_client.post(
        "/api/plugin-index/install",
        {"requirement": "supply-demo==1.0.0", "allow_downgrade": True},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert InstalledDistribution.objects.get().version == "1.0.0"
    assert AuditEvent.objects.filter(action="plugin.distribution_downgraded").count() == 1


def test_case7_an_entry_filed_under_another_version_is_refused(world: World, site: Path) -> None:
    world.release("1.0.0")

    def refile(signed: dict[str, Any]) -> None:
        versions = signed["plugins"][DIST]["versions"]
        versions["1.3.0"] = versions["1.0.0"]

    world.rewrite(refile)
    world.follow()
    message = _refused("supply-demo", "version_mismatch")
    assert "under imbi-plugin-supply-demo 1.3.0" in message
    _nothing_installed(site)


def test_case7_the_wheel_metadata_version_must_be_the_signed_one(world: World, site: Path) -> None:
    wheel = world.wheel("1.0.0")
    renamed = wheel.with_name(wheel.name.replace("1.0.0", "1.2.0"))
    wheel.rename(renamed)
    entry = publishing.sign_wheel(
        renamed,
        world.publisher,
        publisher="acme",
        api_version="1.1",
        permissions={"network_hosts": [], "storage": True},
    )
    entry["version"] = "1.2.0"
    entry["signature"] = world.publisher.sign(publishing.artifact_message(entry))
    world.publish([entry], [renamed])
    world.follow()
    message = _refused("supply-demo", "version_mismatch")
    assert "metadata says imbi-plugin-supply-demo 1.0.0" in message
    _nothing_installed(site)


# --- 10-12, 14: the index names itself, fetching like TUF ------------------------------------


def test_case10_a_document_of_another_index_is_refused(world: World, site: Path) -> None:
    world.release(name="staging")
    world.follow()  # as "curated"
    message = _refused("supply-demo", "index_name_mismatch")
    assert "names itself 'staging'" in message
    _nothing_installed(site)


class _Handler(http.server.SimpleHTTPRequestHandler):
    redirect_to = ""
    trickle = False

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.redirect_to:
            self.send_response(302)
            self.send_header("Location", self.redirect_to + self.path)
            self.end_headers()
            return
        if self.trickle:
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(100):
                    self.wfile.write(b" ")
                    self.wfile.flush()
                    time.sleep(0.5)
            except OSError:
                pass
            return
        super().do_GET()


@pytest.fixture
def serve(world: World) -> Iterator[Any]:
    servers = []

    def start(**attrs: Any) -> str:
        world.folder.mkdir(parents=True, exist_ok=True)
        handler_class = type("H", (_Handler,), attrs)

        def handler(*args: Any, **kwargs: Any) -> _Handler:
            return handler_class(*args, directory=str(world.folder), **kwargs)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_an_index_at_a_loopback_address_needs_the_operator(
    world: World, site: Path, serve: Any, settings: Any
) -> None:
    world.release()
    world.follow(url=serve() + "/")
    message = _refused("supply-demo", "fetch_refused")
    assert "IMBI_PLUGIN_INDEX_ALLOW_INTERNAL" in message
    settings.IMBI_PLUGIN_INDEX_ALLOW_INTERNAL = True
    install_from_index("supply-demo")


def test_case11_a_redirect_to_another_host_is_refused(
    world: World, site: Path, serve: Any, settings: Any
) -> None:
    settings.IMBI_PLUGIN_INDEX_ALLOW_INTERNAL = True
    world.release()
    elsewhere = serve()
    world.follow(url=serve(redirect_to=elsewhere) + "/")
    message = _refused("supply-demo", "fetch_refused")
    assert f"redirects to another scheme, host or port ({elsewhere}/index.json)" in message
    _nothing_installed(site)


def test_case12_an_artifact_url_off_the_index_host_is_refused(world: World, site: Path) -> None:
    wheel = world.wheel()
    entry = publishing.sign_wheel(
        wheel,
        world.publisher,
        publisher="acme",
        url="http://169.254.169.254/latest/x.whl",
        api_version="1.1",
        permissions={"network_hosts": [], "storage": True},
    )
    world.publish([entry])
    world.follow()
    message = _refused("supply-demo", "fetch_refused")
    assert "not in IMBI_PLUGIN_ARTIFACT_HOSTS" in message
    _nothing_installed(site)


def test_case12_a_listed_artifact_host_at_an_internal_address_is_still_refused(
    world: World, site: Path, settings: Any
) -> None:
    settings.IMBI_PLUGIN_ARTIFACT_HOSTS = ["169.254.169.254"]
    wheel = world.wheel()
    entry = publishing.sign_wheel(
        wheel,
        world.publisher,
        publisher="acme",
        url="http://169.254.169.254/latest/x.whl",
        api_version="1.1",
        permissions={"network_hosts": [], "storage": True},
    )
    world.publish([entry])
    world.follow()
    message = _refused("supply-demo", "fetch_refused")
    assert "metadata address" in message
    _nothing_installed(site)


def test_case14_a_trickling_mirror_is_cut_off_at_the_deadline(
    world: World, site: Path, serve: Any, settings: Any
) -> None:
    settings.IMBI_PLUGIN_INDEX_ALLOW_INTERNAL = True
    settings.IMBI_PLUGIN_FETCH_DEADLINE = 1.5
    world.release()
    world.follow(url=serve(trickle=True) + "/")
    started = time.monotonic()
    message = _refused("supply-demo", "index_unreachable")
    assert "not fetched within 1.5s" in message
    assert time.monotonic() - started < 4
    settings.IMBI_PLUGIN_FETCH_DEADLINE = 60.0
    settings.IMBI_PLUGIN_FETCH_RATE_GRACE = 1.0
    started = time.monotonic()
    message = _refused("supply-demo", "index_unreachable")
    assert "slower than" in message
    assert time.monotonic() - started < 4
    _nothing_installed(site)


@pytest.fixture
def superuser_client(django_user_model: Any) -> APIClient:
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = APIClient()
    client.force_authenticate(user)
    return client
