"""What every node reports, against the desired state: the admin page, the API and the CLI.

A node is *behind* when its last reconcile saw an older generation than the current one, or
when a desired distribution is not ``ready`` on it (failed, or not reported yet).
"""

from __future__ import annotations

from typing import Any

from plugins_core.models import InstalledDistribution, NodeState, NodeStatus, RegistryState


def report() -> dict[str, Any]:
    generation = RegistryState.objects.filter(pk=1).values_list("generation", flat=True).first()
    generation = int(generation or 0)
    rows = list(InstalledDistribution.objects.all())
    states = list(NodeState.objects.all())
    beats = {s.node: s for s in states if not s.distribution}
    by_dist: dict[tuple[str, str], dict[str, NodeState]] = {}
    for state in states:
        if state.distribution:
            by_dist.setdefault((state.distribution, state.sha256), {})[state.node] = state
    distributions: list[dict[str, Any]] = []
    for row in rows:
        reported = by_dist.get((row.name, row.sha256), {})
        distributions.append(
            {
                "name": row.name,
                "version": row.version,
                "sha256": row.sha256,
                "size": row.size,
                "source": row.source,
                "execution_mode": row.execution_mode,
                "entry_points": sorted(row.entries),
                "installed_by": row.installed_by_name,
                "installed_at": row.installed_at,
                "generation": row.generation,
                "nodes": [
                    {
                        "node": node,
                        "status": reported[node].status if node in reported else "missing",
                        "detail": reported[node].detail if node in reported else "",
                        "seen_at": reported[node].seen_at if node in reported else None,
                    }
                    for node in sorted(beats)
                ],
            }
        )
    nodes = []
    for node, beat in sorted(beats.items()):
        reasons = []
        if beat.generation < generation:
            reasons.append(f"converged to generation {beat.generation} of {generation}")
        for dist in distributions:
            statuses: list[dict[str, Any]] = dist["nodes"]
            status = next(n["status"] for n in statuses if n["node"] == node)
            if status != NodeStatus.READY:
                reasons.append(f"{dist['name']} {dist['version']} {status}")
        nodes.append(
            {
                "node": node,
                "generation": beat.generation,
                "seen_at": beat.seen_at,
                "behind": bool(reasons),
                "reason": "; ".join(reasons),
            }
        )
    return {"generation": generation, "distributions": distributions, "nodes": nodes}
