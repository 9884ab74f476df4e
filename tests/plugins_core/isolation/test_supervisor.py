"""Runner processes: what a runner loads, its sandbox, its handshake, and its death with
the host (SIGKILL of the host leaves no runner behind within 2 s)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from imbi_plugin_sdk import Permissions

from plugins_core.isolation.policy import Limits, runner_spec
from plugins_core.isolation.supervisor import Pool, RunnerProcess

ENTRY = {"hostile-healthy": "imbi_plugin_hostile.behaviours:Healthy"}


def spec(**limits: float) -> object:
    return runner_spec(
        key=("test",), slug="test", entries=ENTRY, permissions=Permissions(), limits=Limits()
    )


def test_runner_loads_only_the_sdk_and_the_plugin() -> None:
    runner = RunnerProcess.spawn(spec())  # type: ignore[arg-type]
    try:
        hello = runner.hello
        assert hello["entries"]["hostile-healthy"]["ok"] is True
        assert hello["entries"]["hostile-healthy"]["manifest"]["slug"] == "hostile-healthy"
        modules = set(hello["modules"])
        assert {"imbi_plugin_sdk", "imbi_plugin_hostile", "plugins_core"} <= modules
        assert not modules & {"django", "imbi", "rest_framework", "celery", "psycopg", "redis"}
        assert hello["pid_in_namespace"] == 1  # its own PID namespace
        assert hello["sandbox"]["landlock_abi"] >= 4
        assert hello["sandbox"]["capabilities"] == "none"
        assert hello["sandbox"]["egress"] == "none"  # no hosts declared: no shim, no broker
        assert runner.ping()
    finally:
        runner.kill()


def test_pool_reuses_a_warm_runner_and_replaces_a_dead_one() -> None:
    pool = Pool()
    s = spec()
    first = pool.acquire(s, wait_limit=1)  # type: ignore[arg-type]
    pool.release(first)
    assert pool.acquire(s, wait_limit=1) is first  # type: ignore[arg-type]
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait()
    pool.release(first)
    second = pool.acquire(s, wait_limit=1)  # type: ignore[arg-type]
    assert second is not first and second.alive()
    pool.release(second)
    pool.close()


def test_restart_backoff_grows_after_consecutive_crashes() -> None:
    pool = Pool()
    s = spec()
    runner = pool.acquire(s, wait_limit=1)  # type: ignore[arg-type]
    runner.kill()
    pool.release(runner, crashed=True)
    first = pool.backoff(s.key)  # type: ignore[attr-defined]
    pool.release(runner, crashed=True)
    pool.release(runner, crashed=True)
    assert 0 < first < pool.backoff(s.key) <= 0.2  # type: ignore[attr-defined]
    pool.close()


# A web worker's runtime: Django set up, the registry settled (untrusted plugins inspected in
# runners), then two tab calls through IsolatedRunner's pool, as a request would make them.
HOST = textwrap.dedent(
    """
    import django
    django.setup()
    from imbi_plugin_sdk import Credentials, PluginContext
    from plugins_core import registry
    from plugins_core.isolation import host
    entry = registry.wait_loaded().get("hostile-healthy")
    for org in ("acme", "globex"):
        context = PluginContext(organization=org, timeout=5.0)
        assert [k.key for k in host.call_entry(entry, context, Credentials(), "list_keys")]
    runners = host.pool().runners()
    print(" ".join(str(r.proc.pid) + ":" + r.cgroup for r in runners), flush=True)
    import time
    time.sleep(600)
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_sigkill_of_a_web_worker_leaves_no_runner_within_two_seconds() -> None:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "imbi.settings.test"}
    host = subprocess.Popen(
        [sys.executable, "-c", HOST], stdout=subprocess.PIPE, text=True, cwd=os.getcwd(), env=env
    )
    try:
        assert host.stdout is not None
        line = host.stdout.readline().split()
        assert len(line) == 2, "the host did not start its runners"
        wardens = [int(item.split(":")[0]) for item in line]
        cgroups = [item.split(":", 1)[1] for item in line]
        runners = set()
        for cgroup in cgroups:
            with open(os.path.join(cgroup, "cgroup.procs")) as procs:
                runners |= {int(pid) for pid in procs.read().split()}
        assert len(runners) == 4  # two wardens and two runners (PID 1 of their namespaces)
        assert set(wardens) <= runners and all(_alive(pid) for pid in runners)
        host.send_signal(signal.SIGKILL)
        host.wait()
        deadline = time.monotonic() + 2
        while any(_alive(pid) for pid in runners) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not [pid for pid in runners if _alive(pid)]
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
        for cgroup in locals().get("cgroups", []):
            with contextlib.suppress(OSError):
                os.rmdir(cgroup)


@pytest.mark.parametrize("import_timeout", [0.5])
def test_a_runner_that_never_says_hello_is_killed_at_the_deadline(import_timeout: float) -> None:
    import dataclasses

    from plugins_core.isolation.errors import PluginTimeout

    hang = {"hostile-import-hang": "imbi_plugin_hostile.import_hang:ImportHang"}
    s = runner_spec(
        key=("t",),
        slug="t",
        entries=hang,
        permissions=Permissions(),
        limits=Limits(import_timeout=import_timeout),
    )
    started = time.monotonic()
    with pytest.raises(PluginTimeout):
        RunnerProcess.spawn(dataclasses.replace(s))
    assert time.monotonic() - started < import_timeout + 1
