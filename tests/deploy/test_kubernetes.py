"""deploy/kubernetes, read from the files (no cluster here): the workloads exist, every pod
meets Pod Security "restricted" with a read-only root and its own plugin root, the probes
reach /healthz as the ingress would, and the commands and environment are docker/compose's."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
KUBE = ROOT / "deploy" / "kubernetes"
IMAGE_UID = 10001  # docker/Dockerfile: the imbi user and group

# compose service -> (kind, name, container) of its Kubernetes counterpart
COUNTERPARTS = {
    "web": ("Deployment", "imbi-web", "web"),
    "worker": ("Deployment", "imbi-worker", "worker"),
    "beat": ("Deployment", "imbi-beat", "beat"),
    "migrate": ("Job", "imbi-migrate", "migrate"),
}


def documents(*names: str) -> list[dict[str, Any]]:
    found = []
    for path in sorted(KUBE.glob("*.yaml")):
        if names and path.name not in names:
            continue
        found += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return found


def applied() -> list[dict[str, Any]]:
    """What ``kubectl apply -k deploy/kubernetes`` applies (kustomization's resources)."""
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    return documents(*kustomization["resources"])


def find(kind: str, name: str, docs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    for doc in docs if docs is not None else documents():
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"no {kind} {name} in deploy/kubernetes")


def workloads() -> list[dict[str, Any]]:
    return [d for d in applied() if d["kind"] in ("Deployment", "Job", "StatefulSet")]


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    return dict(workload["spec"]["template"]["spec"])


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text()))


def pod_env(pod: dict[str, Any], container: dict[str, Any]) -> dict[str, str]:
    """The container's environment: ``env`` plus ``envFrom`` resolved against the shipped
    ConfigMap and the Secret example (its keys are what the operator's Secret must have)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(find("ConfigMap", source["configMapRef"]["name"])["data"])
        if "secretRef" in source:
            env.update(find("Secret", source["secretRef"]["name"])["stringData"])
    for item in container.get("env", []):
        env[item["name"]] = item.get("value", "<from a reference>")
    return env


def test_the_workloads_the_issue_names_are_all_shipped() -> None:
    docs = applied()
    web = find("Deployment", "imbi-web", docs)
    assert web["spec"]["replicas"] >= 2
    assert find("Deployment", "imbi-beat", docs)["spec"]["replicas"] == 1  # exactly one
    assert find("Deployment", "imbi-beat", docs)["spec"]["strategy"]["type"] == "Recreate"
    assert find("Deployment", "imbi-worker", docs)["spec"]["replicas"] >= 1
    assert find("Job", "imbi-migrate", docs)
    service = find("Service", "imbi-web", docs)
    labels = web["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    budget = find("PodDisruptionBudget", "imbi-web", docs)
    assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert 1 <= budget["spec"]["minAvailable"] < web["spec"]["replicas"]
    # the Secret is an example: never applied with placeholder values
    assert not [d for d in docs if d["kind"] == "Secret"]


@pytest.mark.parametrize("component", sorted(COUNTERPARTS))
def test_every_pod_meets_pod_security_restricted(component: str) -> None:
    kind, name, _ = COUNTERPARTS[component]
    pod = pod_spec(find(kind, name))
    pod_context = pod.get("securityContext", {})
    assert pod.get("hostNetwork") is not True and pod.get("hostPID") is not True
    assert pod.get("automountServiceAccountToken") is False
    for container in pod["containers"] + pod.get("initContainers", []):
        context = {**pod_context, **container.get("securityContext", {})}
        assert context.get("runAsNonRoot") is True, container["name"]
        assert context.get("runAsUser") == IMAGE_UID, container["name"]
        assert context.get("allowPrivilegeEscalation") is False, container["name"]
        assert context.get("privileged") is not True, container["name"]
        assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
        assert not container["securityContext"]["capabilities"].get("add")
        assert context["seccompProfile"]["type"] == "RuntimeDefault", container["name"]
        assert context.get("readOnlyRootFilesystem") is True, container["name"]


@pytest.mark.parametrize("component", sorted(COUNTERPARTS))
def test_each_pod_has_its_own_writable_plugin_root_and_temp(component: str) -> None:
    kind, name, container_name = COUNTERPARTS[component]
    pod = pod_spec(find(kind, name))
    (container,) = [c for c in pod["containers"] if c["name"] == container_name]
    env = pod_env(pod, container)
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    for path in (env["IMBI_PLUGIN_ROOT"], "/tmp", env["TMPDIR"]):
        assert path in mounts, f"{path} is not writable in {name} (read-only root)"
        volume = volumes[mounts[path]]
        # an emptyDir per pod: never a shared (persistent, host or network) volume
        assert set(volume) == {"name", "emptyDir"}, volume
    assert env["UV_CACHE_DIR"].startswith("/tmp/")
    assert env["CELERY_BEAT_SCHEDULE_FILE"].startswith("/tmp/")
    # compose keeps the plugin root at the image's folder; Kubernetes mounts it there too
    assert env["IMBI_PLUGIN_ROOT"] == "/app/data/plugins"
    assert not [d for d in documents() if d["kind"] == "PersistentVolumeClaim"]


def test_the_web_probes_reach_healthz_as_the_ingress_does() -> None:
    pod = pod_spec(find("Deployment", "imbi-web"))
    (container,) = pod["containers"]
    allowed = pod_env(pod, container)["ALLOWED_HOSTS"].split(",")
    assert "healthz" in {str(pattern) for pattern in _url_patterns()}
    for probe in ("readinessProbe", "livenessProbe"):
        get = container[probe]["httpGet"]
        assert get["path"] == "/healthz"
        assert get["port"] in ("http", 8000)
        headers = {h["name"]: h["value"] for h in get["httpHeaders"]}
        assert headers["Host"] in allowed  # else the app answers 400
        assert headers["X-Forwarded-Proto"] == "https"  # else production redirects
    assert {p["containerPort"] for p in container["ports"]} == {8000}


def _url_patterns() -> list[Any]:
    from django.urls import get_resolver

    return [p.pattern for p in get_resolver().url_patterns]


def _compose_command(service: dict[str, Any]) -> list[str]:
    """compose's ``${VAR:-default}`` with the default (what compose runs with no .env)."""
    return [
        re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: m.group(2), part) for part in service["command"]
    ]


@pytest.mark.parametrize("component", sorted(COUNTERPARTS))
def test_commands_match_compose(component: str) -> None:
    kind, name, container_name = COUNTERPARTS[component]
    pod = pod_spec(find(kind, name))
    (container,) = [c for c in pod["containers"] if c["name"] == container_name]
    env = pod_env(pod, container)
    # Kubernetes expands $(VAR) from the container's environment
    command = [
        re.sub(r"\$\((\w+)\)", lambda m: env[m.group(1)], part) for part in container["command"]
    ]
    assert command == _compose_command(compose()["services"][component])
    assert "args" not in container


@pytest.mark.parametrize("component", sorted(COUNTERPARTS))
def test_every_variable_compose_sets_is_set(component: str) -> None:
    kind, name, container_name = COUNTERPARTS[component]
    service = compose()["services"][component]
    pod = pod_spec(find(kind, name))
    (container,) = [c for c in pod["containers"] if c["name"] == container_name]
    env = pod_env(pod, container)
    missing = set(service["environment"]) - set(env)
    assert not missing, f"{name} does not set {sorted(missing)} (compose does)"
    assert env["DJANGO_SETTINGS_MODULE"] == "imbi.settings.production"
    # the secrets come from the Secret, never from the ConfigMap
    config = find("ConfigMap", "imbi-config")["data"]
    assert not {"SECRET_KEY", "IMBI_ENCRYPTION_KEYS", "DATABASE_URL"} & set(config)
    assert all(isinstance(value, str) for value in config.values())  # quoted, as required


def test_the_image_user_is_the_uid_the_pods_run_as() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert re.search(rf"useradd [^\n]*--uid {IMAGE_UID} [^\n]*imbi\n", dockerfile)
    assert re.search(rf"groupadd [^\n]*--gid {IMAGE_UID} imbi", dockerfile)
    assert "\nUSER imbi\n" in dockerfile
