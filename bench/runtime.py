"""Benchmarks of the runtime plugin distributions (``python -m bench.runtime``; Markdown out).

1. Registry build for 10, 100 and 500 entry points: a full build (import and validate each
   handler class) and the per-process switch (``registry.set_managed`` with that many
   runtime-installed entries, what a process does when the generation changes).
2. The per-request generation check: ``runtime.refresh()`` when nothing changed (one cache
   read) against a database read of the generation row.
3. Two simulated nodes (gunicorn with 2 workers + Celery with 2 children each, production
   settings, real PostgreSQL and Redis): ``manage.py plugin install`` until every web worker
   and Celery child of both nodes serves the plugin, with the environment build time reported
   separately; then a load run (an async client, 8 concurrent requests against both nodes)
   through an install and an upgrade: failed requests and p50/p99 latency.
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def main() -> int:
    from imbi.testing.services import start_all

    services = start_all()
    os.environ.update(
        DATABASE_URL=services.database_url,
        REDIS_URL=services.redis_url,
        DJANGO_SETTINGS_MODULE="imbi.settings.test",
    )
    try:
        return run(services.database_url, services.redis_url)
    finally:
        services.stop()


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _handler_module(n: int) -> Any:
    """A module with ``n`` distinct valid handler classes (a synthetic distribution)."""
    import types

    from imbi_plugin_sdk import (
        ConfigKey,
        ConfigurationPlugin,
        ConfigValue,
        ConnectionResult,
        PluginManifest,
        PluginType,
    )

    module = types.ModuleType("bench_handlers")
    for i in range(n):

        class Handler(ConfigurationPlugin):
            manifest = PluginManifest(
                slug=f"bench-{i}",
                name=f"Bench {i}",
                description="synthetic",
                version="1.0.0",
                api_version="1.0",
                plugin_type=PluginType.CONFIGURATION,
                publisher="bench",
            )

            def test_connection(self) -> ConnectionResult:
                return ConnectionResult.success()

            def list_keys(self) -> list[ConfigKey]:
                return []

            def get_values(self, keys: Any = None) -> list[ConfigValue]:
                return []

            def set_value(self, key: str, value: Any) -> ConfigKey:
                raise NotImplementedError

            def delete_key(self, key: str) -> None:
                return None

        setattr(module, f"H{i}", Handler)
    return module


def bench_registry() -> list[str]:
    from plugins_core import registry

    rows = [
        "| entry points | full build (import + validate) | switch to a new snapshot |",
        "|---:|---:|---:|",
    ]
    for n in (10, 100, 500):
        module = _handler_module(n)
        candidates = [
            registry.Candidate(
                name=f"bench-{i}",
                target=f"bench_handlers:H{i}",
                distribution="bench",
                version="1.0.0",
                load=lambda i=i, m=module: getattr(m, f"H{i}"),
            )
            for i in range(n)
        ]
        full = []
        for _ in range(5):
            started = time.perf_counter()
            snapshot = registry.build_snapshot(candidates, generation=1, trusted=lambda _: True)
            full.append(time.perf_counter() - started)
        assert len(snapshot.loaded()) == n
        managed = [
            registry.Entry(
                e.name,
                e.target,
                "bench-runtime",
                "1.0.0",
                registry.Status.LOADED,
                manifest=e.manifest,
                isolated=True,
                env="/nonexistent",
            )
            for e in snapshot.entries.values()
        ]
        switch = []
        for _ in range(5):
            started = time.perf_counter()
            registry.set_managed(managed)
            switch.append(time.perf_counter() - started)
        registry.set_managed(())
        rows.append(f"| {n} | {_ms(statistics.median(full))} | {_ms(statistics.median(switch))} |")
    return rows


def bench_generation_check() -> list[str]:
    from django.conf import settings
    from django.core.cache import cache
    from django.test.utils import setup_test_environment

    from plugins_core.distributions import runtime
    from plugins_core.models import RegistryState

    setup_test_environment()
    settings.IMBI_PLUGIN_GENERATION_CHECK = 0.0
    runtime.publish(0)
    runtime.refresh(force=True)
    rounds = 2000
    started = time.perf_counter()
    for _ in range(rounds):
        runtime.refresh()
    cached = (time.perf_counter() - started) / rounds
    started = time.perf_counter()
    for _ in range(rounds):
        RegistryState.objects.filter(pk=1).values_list("generation", flat=True).first()
    database = (time.perf_counter() - started) / rounds
    cache.delete(runtime.CACHE_KEY)
    return [
        "| per request or task | mean |",
        "|---|---:|",
        f"| `runtime.refresh()`, generation unchanged (one Redis GET) | {_ms(cached)} |",
        f"| for comparison: one database read of the generation row | {_ms(database)} |",
        "| with the default `IMBI_PLUGIN_GENERATION_CHECK=0.5`: at most 2 checks per second "
        "per process | — |",
    ]


def _build_wheels(out: Path) -> dict[str, Path]:
    """The runtime demo plugin's wheels, built the way the tests build them."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "tests" / "plugins_core" / "distributions"
    spec = importlib.util.spec_from_file_location("runtime_wheels", path / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return {v: module.build_wheel(v, out / v) for v in ("1.0.0", "2.0.0", "3.0.0")}


def _serving_everywhere(platform: Any, version: str | None) -> None:
    from imbi.testing.nodes import children_serve, wait, web_serves

    wait(lambda: web_serves(platform, version), 60, f"web: {version}", platform)
    wait(lambda: children_serve(platform, version), 60, f"children: {version}", platform)


def _built_seconds(text: str) -> list[float]:
    return [float(x) for x in re.findall(r"built in ([0-9.]+)s", text)]


class Load:
    """Concurrent GETs against both nodes until stopped; records latency and failures."""

    def __init__(self, platform: Any, paths: list[str], concurrency: int = 8) -> None:
        self.platform = platform
        self.paths = paths
        self.concurrency = concurrency
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()))

    async def _run(self) -> None:
        import httpx

        from imbi.testing.nodes import TOKEN

        ports = [n.port for n in self.platform.nodes.values()]
        paths = self.paths

        async def client(i: int) -> None:
            async with httpx.AsyncClient(
                headers={"Authorization": f"Token {TOKEN}"}, timeout=30
            ) as http:
                n = 0
                while not self._stop.is_set():
                    url = f"http://127.0.0.1:{ports[(i + n) % len(ports)]}{paths[n % len(paths)]}"
                    n += 1
                    started = time.perf_counter()
                    try:
                        response = await http.get(url)
                        ok = response.status_code == 200
                        why = f"{response.status_code} {url}"
                    except httpx.HTTPError as exc:
                        ok, why = False, f"{type(exc).__name__} {url}"
                    self.latencies.append(time.perf_counter() - started)
                    if not ok:
                        self.failures.append(why)

        await asyncio.gather(*(client(i) for i in range(self.concurrency)))

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()

    def row(self, what: str) -> str:
        lat = sorted(self.latencies)
        p50 = lat[len(lat) // 2]
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        return f"| {what} | {len(lat)} | {len(self.failures)} | {_ms(p50)} | {_ms(p99)} |"


def bench_nodes(database_url: str, redis_url: str) -> list[str]:
    from imbi.testing.nodes import platform as start_platform
    from imbi.testing.nodes import wait, web_serves

    rows: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        wheels = _build_wheels(root / "wheels")
        with start_platform(root, database_url, redis_url.rsplit("/", 1)[0] + "/12") as p:
            wait(lambda: web_serves(p, None), 90, "both nodes to serve", p)
            started = time.perf_counter()
            out = p.manage("plugin", "install", str(wheels["1.0.0"]))
            committed = time.perf_counter()
            wait(lambda: web_serves(p, "1.0.0"), 60, "web: 1.0.0", p)
            web = time.perf_counter()
            _serving_everywhere(p, "1.0.0")
            everywhere = time.perf_counter()
            node_b = "".join(
                f.read_text(errors="replace") for f in p.nodes["node-b"].log_dir.glob("*.log")
            )
            builds = _built_seconds(out) + _built_seconds(node_b)
            rows += [
                "| install (wheel → every process of both nodes) | time |",
                "|---|---:|",
                f"| environment build (uv venv + install), per node | "
                f"{', '.join(f'{b:.2f} s' for b in builds)} |",
                f"| `manage.py plugin install` (build + sandboxed import on the installing "
                f"node + commit) | {committed - started:.2f} s |",
                f"| commit → every web worker of both nodes lists it (polling included) | "
                f"{web - committed:.2f} s |",
                f"| commit → every web worker and every Celery child of both nodes serves it "
                f"(each child probed with a task that pauses 0.3 s) | "
                f"{everywhere - committed:.2f} s |",
                "",
                "| load run (8 concurrent clients, both nodes; GET /api/plugins, the project's "
                "tabs and configuration values served by the plugin) | requests | failed | p50 "
                "| p99 |",
                "|---|---:|---:|---:|---:|",
            ]
            project = f"/api/orgs/acme/projects/{p.project_id}"
            calls = ["/api/plugins", f"{project}/tabs", f"{project}/configuration/values"]
            with Load(p, calls) as baseline:
                time.sleep(5)
            rows.append(baseline.row("steady, no change"))
            with Load(p, calls) as upgrade:
                time.sleep(1)
                p.manage("plugin", "upgrade", str(wheels["2.0.0"]))
                _serving_everywhere(p, "2.0.0")
                time.sleep(1)
            rows.append(upgrade.row("through an upgrade 1.0.0 → 2.0.0"))
            p.manage("plugin", "remove", "imbi-plugin-runtime-demo")
            _serving_everywhere(p, None)
            # the plugin is absent before the install: only calls that do not need it
            with Load(p, calls[:2]) as install:
                time.sleep(1)
                p.manage("plugin", "install", str(wheels["3.0.0"]))
                _serving_everywhere(p, "3.0.0")
                time.sleep(1)
            rows.append(install.row("through an install of 3.0.0"))
            for load in (baseline, upgrade, install):
                for failure in sorted(set(load.failures))[:5]:
                    rows.append(f"\nfailure: {failure}")
    return rows


def run(database_url: str, redis_url: str) -> int:
    import django

    django.setup()
    from django.test.utils import setup_databases

    setup_databases(verbosity=0, interactive=False)
    print("## Runtime plugin distributions\n")
    print("### Registry build\n")
    print("\n".join(bench_registry()))
    print("\n### Generation check\n")
    print("\n".join(bench_generation_check()))
    print("\n### Two nodes\n")
    print("\n".join(bench_nodes(database_url, redis_url)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
