"""The isolated plugin runtime against the in-process runner, side by side in one run.

1. A no-op call (``example-static.list_keys`` with no values) in-process vs isolated:
   p50, p99 and the p50 difference (target: isolated adds at most 1 ms p50).
2. Cold start of a runner: exec, sandbox, import, handshake (target: at most 300 ms p50).
3. A 1 MB round trip: 1 MB of option values in, the same 1 MB of values out, isolated.
4. The answer time of an open circuit breaker (target: under 5 ms), in memory and on Redis.
5. Network egress (``egress_rows``): a TCP request (connect, ``ping``, answer) to a loopback
   server through the egress broker (isolated) against the same handler connecting directly
   in-process, interleaved; the broker's own share (against an isolated no-op of the same
   plugin); the network namespace's cost (fork + ``unshare`` of PID vs PID and network
   namespaces); and whether namespaces pile up (``net_namespace`` objects in
   ``/proc/slabinfo`` after many cold starts, then one second later).

Run with ``python -m bench.isolation`` (``make bench`` runs it after the main benchmarks).
Needs no database: the call is built from a registry entry and a context directly.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "400"))


def _ms(samples: list[float], q: float = 0.5) -> float:
    return statistics.quantiles(samples, n=100)[int(q * 100) - 1] * 1000


def _time(fn: Callable[[], Any]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _resolved(options: dict[str, Any], pk: int) -> Any:
    from imbi_plugin_sdk import Credentials, PluginContext

    from plugins_core import registry
    from plugins_core.serving.resolution import Resolved

    entry = registry.current().get("example-static")
    assert entry is not None and entry.manifest is not None
    plugin = SimpleNamespace(pk=pk, slug="bench-static", execution_mode="isolated")
    return Resolved(
        binding=SimpleNamespace(plugin=plugin),  # type: ignore[arg-type]
        entry=entry,
        manifest=entry.manifest,
        context=PluginContext(organization="bench", options=options, timeout=10.0),
        credentials=Credentials({}),
    )


def run() -> int:
    import django

    django.setup()
    from plugins_core.isolation import host
    from plugins_core.isolation.breaker import MemoryBreaker, RedisBreaker
    from plugins_core.isolation.errors import PluginCircuitOpen
    from plugins_core.isolation.policy import runner_spec
    from plugins_core.isolation.supervisor import RunnerProcess
    from plugins_core.serving.runner import InProcessRunner

    report = ["| benchmark | subject | baseline | value | target |", "|---|---|---|---|---|"]
    ok = True
    in_process, isolated = InProcessRunner(), host.IsolatedRunner()

    noop = _resolved({}, 1)
    isolated.call(noop, "list_keys")  # warm runner
    ip_t, iso_t = [], []
    for _ in range(ROUNDS):
        ip_t.append(_time(lambda: in_process.call(noop, "list_keys")))
        iso_t.append(_time(lambda: isolated.call(noop, "list_keys")))
    added = _ms(iso_t) - _ms(ip_t)
    ok &= added <= 1.0
    report.append(
        f"| no-op call, isolated vs in-process (p50) | {_ms(iso_t):.3f} ms | "
        f"{_ms(ip_t):.3f} ms | +{added:.3f} ms ({_ms(iso_t) / _ms(ip_t):.1f}x) | <= +1 ms |"
    )
    report.append(
        f"| same, p99 | {_ms(iso_t, 0.99):.3f} ms | {_ms(ip_t, 0.99):.3f} ms | "
        f"+{_ms(iso_t, 0.99) - _ms(ip_t, 0.99):.3f} ms | |"
    )

    entry = noop.entry
    spec = runner_spec(
        key=("bench",),
        slug="bench",
        entries={entry.name: entry.target},
        permissions=noop.manifest.permissions,
        limits=host.limits(),
    )
    starts = []
    for _ in range(max(ROUNDS // 20, 10)):
        started = time.perf_counter()
        runner = RunnerProcess.spawn(spec)
        starts.append(time.perf_counter() - started)
        runner.kill()
    ok &= _ms(starts) <= 300
    report.append(
        f"| runner cold start (exec, sandbox, import, handshake; p50) | {_ms(starts):.1f} ms "
        f"| | p90 {_ms(starts, 0.9):.1f} ms | <= 300 ms |"
    )

    big = {f"K{i:05d}": "v" * 1000 for i in range(1000)}  # about 1 MB in and 1 MB out
    payload = _resolved({"values": big}, 2)
    assert len(isolated.call(payload, "get_values", None)) == 1000
    ip_big, iso_big = [], []
    for _ in range(max(ROUNDS // 10, 20)):
        ip_big.append(_time(lambda: in_process.call(payload, "get_values", None)))
        iso_big.append(_time(lambda: isolated.call(payload, "get_values", None)))
    report.append(
        f"| 1 MB in + 1 MB out, isolated vs in-process (p50) | {_ms(iso_big):.2f} ms | "
        f"{_ms(ip_big):.2f} ms | +{_ms(iso_big) - _ms(ip_big):.2f} ms | |"
    )

    breakers: list[tuple[str, Any]] = [("memory", MemoryBreaker(fail_max=1, reset_timeout=60))]
    if os.environ.get("REDIS_URL"):
        import redis

        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        breakers.append(("redis", RedisBreaker(client, fail_max=1, reset_timeout=60)))
    for name, breaker in breakers:
        breaker.failure("bench")
        samples = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            with contextlib.suppress(PluginCircuitOpen):
                breaker.before("bench", "bench")
            samples.append(time.perf_counter() - started)
        breaker.reset("bench")
        ok &= _ms(samples, 0.99) < 5
        report.append(
            f"| open breaker answer ({name}; p50 / p99) | {_ms(samples):.3f} ms | | "
            f"p99 {_ms(samples, 0.99):.3f} ms | < 5 ms |"
        )
    host.reset_runtime()
    egress, egress_ok = egress_rows(spec)
    report += egress
    ok &= egress_ok
    host.reset_runtime()
    print("\n".join(report))
    print(
        f"\nrounds={ROUNDS}, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cpus; {'all targets met' if ok else 'TARGET MISSED'}"
    )
    return 0 if ok else 1


class _Echo:
    """A loopback TCP server answering ``pong:<what it read>``."""

    def __init__(self) -> None:
        import socket
        import threading

        self.server = socket.create_server(("127.0.0.1", 0), backlog=64)
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.sendall(b"pong:" + conn.recv(64))


def _net_namespaces() -> int:
    """Live ``net_namespace`` objects (the kernel frees them asynchronously)."""
    try:
        with open("/proc/slabinfo") as slabs:
            for line in slabs:
                if line.startswith("net_namespace "):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def _unshare(flags: int) -> Callable[[], None]:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    def run() -> None:
        pid = os.fork()
        if pid == 0:
            os._exit(0 if libc.unshare(flags) == 0 else 1)
        _, status = os.waitpid(pid, 0)
        assert status == 0, "unshare failed"

    return run


def egress_rows(cold_spec: Any) -> tuple[list[str], bool]:
    import dataclasses

    from imbi_plugin_hostile.egress import Egress
    from imbi_plugin_sdk import Credentials, Permissions, PluginContext

    from bench.timing import interleaved
    from plugins_core import registry
    from plugins_core.isolation import host
    from plugins_core.isolation.supervisor import RunnerProcess
    from plugins_core.serving.resolution import Resolved

    echo = _Echo()
    entry = registry.current().get("hostile-egress")
    assert entry is not None and entry.manifest is not None
    manifest = dataclasses.replace(
        entry.manifest, permissions=Permissions(network_hosts=(f"127.0.0.1:{echo.port}",))
    )

    def resolved(probes: dict[str, str], pk: int) -> Any:
        plugin = SimpleNamespace(pk=pk, slug="bench-egress", execution_mode="isolated")
        return Resolved(
            binding=SimpleNamespace(plugin=plugin),  # type: ignore[arg-type]
            entry=entry,
            manifest=manifest,
            context=PluginContext(organization="bench", options={"paths": probes}, timeout=10.0),
            credentials=Credentials({}),
        )

    probes = {"R": f"tcp 127.0.0.1 {echo.port}"}
    request, noop = resolved(probes, 3), resolved({}, 4)
    isolated = host.IsolatedRunner()
    direct = Egress(request.context, request.credentials)
    expected = ["R_CONNECTED_pong:ping"]
    assert [k.key for k in isolated.call(request, "list_keys")] == expected
    assert [k.key for k in direct.list_keys()] == expected
    rounds = max(ROUNDS // 2, 50)
    brokered, in_process = interleaved(
        lambda: isolated.call(request, "list_keys"), direct.list_keys, rounds
    )
    with_request, without = interleaved(
        lambda: isolated.call(request, "list_keys"),
        lambda: isolated.call(noop, "list_keys"),
        rounds,
    )
    rows = [
        f"| TCP request, isolated through the egress broker vs in-process direct (p50) | "
        f"{_ms(brokered):.3f} ms | {_ms(in_process):.3f} ms | "
        f"+{_ms(brokered) - _ms(in_process):.3f} ms ({_ms(brokered) / _ms(in_process):.1f}x) | |",
        f"| same, p99 | {_ms(brokered, 0.99):.3f} ms | {_ms(in_process, 0.99):.3f} ms | "
        f"+{_ms(brokered, 0.99) - _ms(in_process, 0.99):.3f} ms | |",
        f"| the connection's share: isolated TCP request vs isolated no-op (p50) | "
        f"{_ms(with_request):.3f} ms | {_ms(without):.3f} ms | "
        f"+{_ms(with_request) - _ms(without):.3f} ms | |",
    ]
    pid_only, pid_net = interleaved(
        _unshare(0x20000000), _unshare(0x20000000 | 0x40000000), max(ROUNDS // 8, 30)
    )
    rows.append(
        f"| fork + unshare(PID and network) vs fork + unshare(PID) (p50) | "
        f"{_ms(pid_net):.2f} ms | {_ms(pid_only):.2f} ms | "
        f"+{_ms(pid_net) - _ms(pid_only):.2f} ms | |"
    )
    host.reset_runtime()
    before = _net_namespaces()
    starts = []
    for _ in range(max(ROUNDS // 8, 30)):
        started = time.perf_counter()
        runner = RunnerProcess.spawn(cold_spec)
        starts.append(time.perf_counter() - started)
        runner.kill()
    right_after = _net_namespaces()
    time.sleep(1.0)
    later = _net_namespaces()
    ok = _ms(starts) <= 300 and (later - before) < 5
    rows.append(
        f"| runner cold start with its network namespace, {len(starts)} in a row (p50 / p90) | "
        f"{_ms(starts):.1f} ms | | p90 {_ms(starts, 0.9):.1f} ms | <= 300 ms |"
    )
    rows.append(
        f"| network namespaces alive: before / right after {len(starts)} runners / 1 s later | "
        f"{before} / {right_after} / {later} | | {later - before:+d} | no pile-up |"
    )
    echo.server.close()
    return rows, ok


def main() -> int:
    from imbi.testing.services import start_all

    services = start_all()
    os.environ.update(
        DATABASE_URL=services.database_url,
        REDIS_URL=services.redis_url,
        DJANGO_SETTINGS_MODULE="imbi.settings.test",
    )
    try:
        return run()
    finally:
        services.stop()


if __name__ == "__main__":
    raise SystemExit(main())
