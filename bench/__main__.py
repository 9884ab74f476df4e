"""Run every benchmark against a throwaway PostgreSQL and print a Markdown report.

1. SQL queries per configuration GET, with 1 binding and with 200 bindings on the project
   and its type (target: constant, at most 5).
2. Latency of GET configuration served by a no-op plugin against a bare DRF view returning
   the same payload with the same authentication (target ratio: at most 1.3).
3. Resolution alone, and credential decryption, against 200 bindings.
4. The SDK's JSON Call/Reply round trip against a direct handler call (``bench.wire``).
5. Regex log filters (``bench.regex``): a catastrophic pattern answers within 1 s.
6. The supply-chain checks against the bare operations they guard (``bench.supply_chain``).
"""

from __future__ import annotations

import os
import statistics
import sys
from typing import Any

from bench.timing import interleaved

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "400"))


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


def _world(bindings: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    from imbi.core.models import Membership, Organization, Project, ProjectType, Role
    from plugins_core.models import (
        Plugin,
        ProjectPlugin,
        ProjectTypePlugin,
        ServiceApplication,
        ThirdPartyService,
    )

    org = Organization.objects.create(slug=f"bench{bindings}", name="Bench")
    ptype = ProjectType.objects.create(organization=org, slug="api", name="API")
    project = Project.objects.create(organization=org, project_type=ptype, slug="p", name="P")
    service = ThirdPartyService.objects.create(
        organization=org, vendor="example", name="E", slug="e"
    )
    ServiceApplication.objects.create(service=service, credentials={"api_token": "t"})
    values = {f"KEY_{i}": f"value-{i}" for i in range(20)}
    for index in range(max(bindings // 2, 1)):
        plugin = Plugin.objects.create(
            organization=org,
            service=service,
            slug=f"static-{index}",
            plugin_type="configuration",
            handler="example-static",
            options={"values": values},
        )
        ProjectTypePlugin.objects.create(
            project_type=ptype, plugin=plugin, tab="configuration", default=index == 0
        )
        if bindings > 1:
            ProjectPlugin.objects.create(project=project, plugin=plugin, tab="configuration")
    user = get_user_model().objects.create_user(f"bench{bindings}", password="pw")
    Membership.objects.create(user=user, organization=org, role=Role.VIEWER)
    token = Token.objects.create(user=user).key
    return {"project": project, "token": token, "values": values}


def _ms(samples: list[float], q: float = 0.5) -> float:
    return statistics.quantiles(samples, n=100)[int(q * 100) - 1] * 1000


def run() -> int:
    import django
    from django.test.utils import setup_test_environment

    django.setup()
    setup_test_environment()
    from django.conf import settings
    from django.db import connection
    from django.test import Client, override_settings
    from django.test.utils import CaptureQueriesContext

    connection.creation.create_test_db(verbosity=0)
    from bench import urls as bench_urls
    from plugins_core.serving import invalidation, resolution
    from plugins_core.serving.tabs import list_keys  # noqa: F401  (import cost outside timing)

    settings.DEBUG = False
    report: list[str] = [
        "| benchmark | subject | baseline | ratio / value | target |",
        "|---|---|---|---|---|",
    ]
    ok = True
    with override_settings(ROOT_URLCONF="bench.urls"):
        small, large = _world(1), _world(200)
        counts = {}
        for name, world in (("1 binding", small), ("200 bindings", large)):
            client = Client(HTTP_AUTHORIZATION=f"Token {world['token']}")
            url = (
                f"/api/orgs/{world['project'].organization.slug}/projects/"
                f"{world['project'].pk}/configuration/values"
            )
            for state in ("cold", "warm"):
                if state == "cold":
                    invalidation.bump(world["project"].organization_id)
                with CaptureQueriesContext(connection) as queries:
                    response = client.get(url)
                assert response.status_code == 200, response.content
                counts[(name, state)] = len(queries)
        for state in ("cold", "warm"):
            small_n, large_n = counts[("1 binding", state)], counts[("200 bindings", state)]
            constant = small_n == large_n <= 5
            ok &= constant
            report.append(
                f"| SQL queries per configuration GET, {state} plan cache | "
                f"{large_n} (200 bindings) | {small_n} (1 binding) | "
                f"{'constant' if constant else 'GROWS'} | constant, <= 5 |"
            )

        world = large
        client = Client(HTTP_AUTHORIZATION=f"Token {world['token']}")
        url = (
            f"/api/orgs/{world['project'].organization.slug}/projects/"
            f"{world['project'].pk}/configuration/values"
        )
        body = client.get(url).json()
        bench_urls.PAYLOAD.clear()
        bench_urls.PAYLOAD.update(body)
        assert client.get("/bench/bare").json() == body  # same payload, byte for byte
        plugin_t, bare_t = interleaved(
            lambda: client.get(url), lambda: client.get("/bench/bare"), ROUNDS
        )
        ratio = statistics.median(plugin_t) / statistics.median(bare_t)
        ok &= ratio <= 1.3
        report.append(
            f"| GET configuration/values, no-op plugin vs bare DRF view (p50) | "
            f"{_ms(plugin_t):.2f} ms | {_ms(bare_t):.2f} ms | {ratio:.2f}x | "
            f"<= 1.3x |"
        )
        report.append(
            f"| same, p90 | {_ms(plugin_t, 0.9):.2f} ms | {_ms(bare_t, 0.9):.2f} ms | "
            f"{_ms(plugin_t, 0.9) / _ms(bare_t, 0.9):.2f}x | |"
        )
        authz_url = f"/bench/bare/{world['project'].organization.slug}/{world['project'].pk}"
        assert client.get(authz_url).json() == body
        plugin_t, authz_t = interleaved(
            lambda: client.get(url), lambda: client.get(authz_url), ROUNDS
        )
        report.append(
            f"| same, vs a bare view doing the same project+membership lookup (p50) "
            f"| {_ms(plugin_t):.2f} ms | {_ms(authz_t):.2f} ms | "
            f"{statistics.median(plugin_t) / statistics.median(authz_t):.2f}x | |"
        )

        project = world["project"]
        cold_t, warm_t = interleaved(
            lambda: resolution.resolve(project, "configuration"),
            lambda: resolution.resolve(project, "configuration", cached=True),
            ROUNDS // 2,
        )
        report.append(
            f"| resolve(), 200 bindings: cold plan vs cached plan (p50) | "
            f"{_ms(cold_t):.2f} ms | {_ms(warm_t):.2f} ms | "
            f"{statistics.median(cold_t) / statistics.median(warm_t):.1f}x | |"
        )
    from bench.supply_chain import rows as supply_rows
    from bench.wire import rows as wire_rows

    report.extend(wire_rows(ROUNDS))
    from bench import regex

    regex_rows, regex_ok = regex.run()
    ok &= regex_ok
    report.append("| **regex log filters** | time | outcome | target |")
    report += regex_rows
    report.extend(supply_rows(ROUNDS))
    print("\n".join(report))
    print(
        f"\nrounds={ROUNDS}, python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cpus; {'all targets met' if ok else 'TARGET MISSED'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
