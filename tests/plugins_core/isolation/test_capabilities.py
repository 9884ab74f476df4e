"""The host capability probe, cgroup v2 delegation, and honest status where a host cannot
sandbox untrusted plugins (``check --deploy``, ``/healthz``, ``plugin list``, the admin, the
API, and the call itself all say "cannot run here: <reason>")."""

from __future__ import annotations

import dataclasses
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import checks
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from plugins_core import registry
from plugins_core.isolation import capabilities, cgroups
from plugins_core.isolation.capabilities import HostCapabilities
from plugins_core.isolation.errors import PluginCannotRunHere
from plugins_core.isolation.sandbox import Policy
from plugins_core.isolation.supervisor import RunnerProcess, RunnerSpec

from .conftest import descendants, tab_url

NO_LANDLOCK = "Landlock is not available in this kernel (Linux 5.13+ with landlock in lsm=)"


def test_probe_reports_this_host_once_per_process() -> None:
    capabilities.reset()
    caps = capabilities.probe()
    assert caps is capabilities.probe()  # cached
    assert caps.landlock_abi >= 1 and caps.seccomp and caps.no_new_privs
    assert caps.uid == os.geteuid()
    assert caps.refusal() == ""  # this host sandboxes runners
    if caps.uid == 0:
        assert caps.namespaces, caps.namespaces_reason


def test_refusals_name_the_missing_layer() -> None:
    base = HostCapabilities(landlock_abi=7, seccomp=True, no_new_privs=True)
    assert base.refusal() == "" and base.refusal(network=True) == ""
    assert base.refusal(subprocesses=True).startswith("the plugin starts subprocesses")
    assert dataclasses.replace(base, namespaces=True).refusal(subprocesses=True) == ""
    delegated = dataclasses.replace(base, cgroup_v2="/sys/fs/cgroup/x")
    assert delegated.refusal(subprocesses=True) == ""
    # signals are scoped by Landlock 6: below it a tree without a PID namespace is refused
    assert dataclasses.replace(delegated, landlock_abi=5).refusal(subprocesses=True)
    assert dataclasses.replace(base, landlock_abi=3).refusal(network=True) == (
        "Landlock ABI 3 cannot restrict TCP connect (needs 4)"
    )
    assert dataclasses.replace(base, landlock_abi=0).refusal().startswith(NO_LANDLOCK)
    assert "seccomp" in dataclasses.replace(base, seccomp=False).refusal()


def _fake_v2(root: Path) -> Path:
    """A delegated cgroup v2 folder as plain files (the kernel's files behave alike)."""
    own = root / "service"
    own.mkdir()
    (own / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (own / "cgroup.subtree_control").write_text("")
    (own / "cgroup.procs").write_text(f"{os.getpid()}\n")
    (own / "cgroup.kill").write_text("")
    return own


def _kernel_files(folder: Path) -> None:
    for name in ("cgroup.subtree_control", "cgroup.procs", "cgroup.kill", "memory.swap.max"):
        (folder / name).touch()


def test_a_delegated_cgroup_v2_subtree_gets_one_limited_cgroup_per_runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = _fake_v2(tmp_path)
    path, reason = capabilities.delegated_v2(str(tmp_path), "/service")
    assert (path, reason) == (str(own), "")
    # the kernel creates a new folder's files; so does this stand-in
    real_mkdir, real_makedirs = os.mkdir, os.makedirs

    def mkdir(name: Any, mode: int = 0o777) -> None:
        real_mkdir(name, mode)
        _kernel_files(Path(name))

    def makedirs(name: Any, mode: int = 0o777, exist_ok: bool = False) -> None:
        existed = os.path.isdir(name)
        real_makedirs(name, mode, exist_ok)
        if not existed:
            _kernel_files(Path(name))

    monkeypatch.setattr(os, "mkdir", mkdir)
    monkeypatch.setattr(os, "makedirs", makedirs)
    caps = HostCapabilities(landlock_abi=7, seccomp=True, no_new_privs=True, cgroup_v2=path)
    group = cgroups.make(caps, processes=32, memory=2 * 1024**3)
    assert group is not None and group.version == 2
    runner = Path(group.path)
    assert runner.parent == own / "imbi-runners"
    # this process moved to a leaf, so the folder can hand controllers to its children
    assert (own / "imbi-host" / "cgroup.procs").read_text() == str(os.getpid())
    for folder in (own, own / "imbi-runners"):
        assert (folder / "cgroup.subtree_control").read_text() == "+pids +memory +cpu"
    assert (runner / "pids.max").read_text() == "32"
    assert (runner / "memory.max").read_text() == str(2 * 1024**3)
    assert (runner / "memory.swap.max").read_text() == "0"
    assert (runner / "cpu.max").read_text() == "100000 100000"
    group.kill()
    assert (runner / "cgroup.kill").read_text() == "1"  # the whole tree, at once


def test_an_undelegated_cgroup_v2_folder_is_named(tmp_path: Path) -> None:
    own = _fake_v2(tmp_path)
    (own / "cgroup.controllers").write_text("cpu io\n")
    assert capabilities.delegated_v2(str(tmp_path), "/service") == (
        "",
        "cgroup v2 controllers not delegated: pids, memory",
    )
    (own / "cgroup.controllers").write_text("cpu memory pids\n")
    (own / "cgroup.kill").unlink()
    assert capabilities.delegated_v2(str(tmp_path), "/service")[1].startswith("cgroup.kill")


# --------------------------------------------------------------------------- honest status


@pytest.fixture
def cannot_sandbox() -> Iterator[HostCapabilities]:
    """This process's host, as one without Landlock (every untrusted plugin is refused)."""
    caps = HostCapabilities(uid=10001, landlock_abi=0, seccomp=True, no_new_privs=True)
    capabilities.reset(caps)
    yield caps
    capabilities.reset()


def test_a_runner_that_cannot_be_sandboxed_never_starts(cannot_sandbox: Any) -> None:
    spec = RunnerSpec(key=("t",), slug="hostile-hang", entries={}, policy=Policy())
    with pytest.raises(PluginCannotRunHere) as raised:
        RunnerProcess.spawn(spec)
    assert raised.value.code == "plugin_cannot_run_here" and raised.value.http_status == 503
    assert f"plugin 'hostile-hang' cannot run here: {NO_LANDLOCK}" in str(raised.value.detail)
    assert not descendants(os.getpid())


def test_a_subprocess_plugin_is_refused_where_no_tree_can_be_bounded() -> None:
    caps = HostCapabilities(uid=10001, landlock_abi=7, seccomp=True, no_new_privs=True)
    capabilities.reset(caps)
    try:
        spec = RunnerSpec(key=("t",), slug="forker", entries={}, policy=Policy(subprocesses=True))
        with pytest.raises(PluginCannotRunHere, match="starts subprocesses"):
            RunnerProcess.spawn(spec)
    finally:
        capabilities.reset()


def _isolated_entry() -> registry.Entry:
    entry = registry.current().get("hostile-hang")
    assert entry is not None and entry.isolated
    return entry


@pytest.mark.django_db
def test_every_surface_says_which_plugins_cannot_run_here_and_why(
    cannot_sandbox: Any,
    hostile: Any,
    viewer: Any,
    project: Any,
    api: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _isolated_entry()
    words = f"cannot run here: {NO_LANDLOCK}"
    # check --deploy: an error naming the entry point and the reason
    errors = [
        m
        for m in checks.run_checks(include_deployment_checks=True, tags=["plugins"])
        if m.id == "plugins.E002"
    ]
    assert any("'hostile-hang'" in m.msg and words in m.msg for m in errors), errors
    assert all(m.level == checks.ERROR for m in errors)
    # /healthz: 200 (the rest serves), degraded, naming it
    health = Client().get("/healthz")
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["checks"]["plugins"]["cannot_run_here"]["hostile-hang"] == words
    # plugin list (text and JSON), without re-inspecting
    monkeypatch.setattr(registry, "rebuild", lambda strict=False: registry.current())
    out = io.StringIO()
    call_command("plugin", "list", stdout=out)
    line = next(x for x in out.getvalue().splitlines() if x.startswith("hostile-hang "))
    assert "cannot_run_here" in line and words in line and " loaded " not in line
    out = io.StringIO()
    call_command("plugin", "list", "--json", stdout=out)
    listed = {e["name"]: e for e in json.loads(out.getvalue())}
    assert listed["hostile-hang"]["status"] == "cannot_run_here"
    assert listed["hostile-hang"]["reason"].startswith(NO_LANDLOCK)
    # the API's registry entries and the installed plugin's status
    entries = {e["name"]: e for e in viewer.get("/api/plugins").json()["entries"]}
    assert entries["hostile-hang"]["status"] == "cannot_run_here"
    assert entries["hostile-hang"]["reason"].startswith(NO_LANDLOCK)
    trusted = next(e for e in entries.values() if not e["isolated_only"] and e["status"])
    assert trusted["status"] != "cannot_run_here"  # in-process plugins are unaffected
    plugin = hostile("hostile-hang")
    # the call itself answers at once with the same words, and no runner starts
    response = viewer.get(tab_url(project))
    assert response.status_code == 503, response.content
    assert response.json()["code"] == "plugin_cannot_run_here"
    assert words in response.json()["detail"]
    assert not descendants(os.getpid())
    # the admin's registry and plugin pages
    user = get_user_model().objects.create_superuser("root-admin", "r@example.com", "pw")
    admin = Client()
    admin.force_login(user)
    page = admin.get(reverse("admin:plugins_core_registry")).content.decode()
    assert words in page
    page = admin.get(reverse("admin:plugins_core_plugin_change", args=(plugin.pk,)))
    assert f"cannot run here: {NO_LANDLOCK}" in page.content.decode()


# --------------------------------------------------------------------------- subprocesses


def _fork_bomb(permissions: Any) -> list[str]:
    from imbi_plugin_sdk import PluginContext
    from imbi_plugin_sdk.wire import Call

    from plugins_core.isolation.policy import Limits, runner_spec

    spec = runner_spec(
        key=("fork",),
        slug="hostile-fork",
        entries={"hostile-fork": "imbi_plugin_hostile.behaviours:ForkBomb"},
        permissions=permissions,
        limits=Limits(processes=16),
    )
    runner = RunnerProcess.spawn(spec)
    try:
        call = Call.build(
            "hostile-fork", "list_keys", context=PluginContext(organization="acme"), credentials={}
        )
        reply = runner.call({"id": 1, "call": call.to_dict()}, timeout=10)["reply"]
        assert runner.hello["sandbox"]["subprocesses"] is permissions.subprocesses
        return [k["key"] for k in reply["result"]]
    finally:
        runner.kill()


def test_a_runner_is_one_process_unless_its_plugin_declares_subprocesses() -> None:
    from imbi_plugin_sdk import Permissions

    assert _fork_bomb(Permissions()) == ["FORKED_0", "REFUSED_300"]  # seccomp: no fork
    assert not descendants(os.getpid())
    caps = capabilities.probe()
    if not caps.can_bound_process_tree():
        pytest.skip(f"this host cannot bound a process tree: {caps.namespaces_reason}")
    forked, refused = _fork_bomb(Permissions(subprocesses=True))
    assert 0 < int(forked.split("_")[1]) < 16  # the pids cgroup refused the rest
    assert int(refused.split("_")[1]) > 0
    assert not descendants(os.getpid())  # killed with the runner, none left behind


def test_every_django_process_is_not_dumpable_from_start_up() -> None:
    """``ready()`` sets ``PR_SET_DUMPABLE 0``: a runner a Celery worker started cannot read
    or trace a web process that never started one (same uid)."""
    import ctypes

    assert ctypes.CDLL(None).prctl(3, 0, 0, 0, 0) == 0  # PR_GET_DUMPABLE
    assert "Landlock ABI" in capabilities.summary()
