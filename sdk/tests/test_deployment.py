"""Contract 1.3, deployment: the models, the wire, and the kit on an in-memory plugin."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import ClassVar

import pytest
from imbi_plugin_sdk import (
    Commit,
    CommitPage,
    CommitQuery,
    Comparison,
    ConnectionResult,
    Deployment,
    DeploymentPlugin,
    DeploymentQuery,
    DeploymentRequest,
    DeploymentStatus,
    Environment,
    GitRef,
    InvalidInput,
    ManifestError,
    NotFound,
    PluginManifest,
    PluginType,
    RefNotFound,
    RefPage,
    RefQuery,
    validate_ref_name,
)
from imbi_plugin_sdk.testkit import (
    call_as_host,
    make_context,
    run_contract,
    sample_deployment,
    sample_identity,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SHA = "a" * 40


def test_ref_names_follow_git_rules() -> None:
    for good in ("main", "release/1.2", "v1.0.0", SHA):
        assert validate_ref_name(good) == good
    for bad in ("", "a..b", "-x", "x.lock", "a b", "x~1", "x^", "a//b", "/a", "a/", "x@{1}"):
        with pytest.raises(InvalidInput):
            validate_ref_name(bad)


def test_models_round_trip_through_json() -> None:
    commit = Commit(
        sha=SHA, message="Fix\n\nbody", author="Ada", authored_at=NOW, url="https://g/c"
    )
    models = [
        GitRef(name="main", sha=SHA, default=True),
        RefQuery(kind="tag", prefix="v", limit=5, cursor="2"),
        RefPage(refs=(GitRef(name="v1", kind="tag"),), next_cursor="x"),
        CommitQuery(ref="main", limit=3),
        CommitPage(commits=(commit,)),
        Comparison(base="main", head="dev", status="ahead", ahead_by=1, commits=(commit,)),
        Environment(name="production", url="https://app.example", protected=True),
        DeploymentQuery(environment="production", limit=5),
        DeploymentRequest(ref="main", environment="production", inputs={"dry_run": "true"}),
        Deployment(
            id="42",
            ref="main",
            environment="production",
            status="in_progress",
            sha=SHA,
            created_at=NOW,
            url="https://g/runs/42",
        ),
    ]
    for model in models:
        assert type(model).from_dict(json.loads(json.dumps(model.to_dict()))) == model
    assert commit.title == "Fix"


def test_statuses_and_validation() -> None:
    assert [status.value for status in DeploymentStatus] == [
        "queued",
        "in_progress",
        "success",
        "failure",
        "cancelled",
    ]
    assert DeploymentStatus.SUCCESS.done and not DeploymentStatus.QUEUED.done
    with pytest.raises(InvalidInput, match="status"):
        Deployment(id="1", ref="main", environment="p", status="exploded")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="inputs"):
        DeploymentRequest(ref="main", environment="p", inputs={"bad name": "x"})
    with pytest.raises(InvalidInput, match="url"):
        Deployment(id="1", ref="main", environment="p", status="queued", url="javascript:x")
    with pytest.raises(InvalidInput, match="sha"):
        GitRef(name="main", sha="XYZ")


def test_deployment_plugins_need_contract_1_3() -> None:
    with pytest.raises(ManifestError, match=r"deployment plugins need api_version 1\.3"):
        PluginManifest(
            slug="dd", name="D", description="", version="1", api_version="1.2",
            plugin_type=PluginType.DEPLOYMENT,
        )  # fmt: skip


class Memory(DeploymentPlugin):
    """Deploys by remembering: one branch, one tag, one environment, acting as the user."""

    manifest: ClassVar[PluginManifest] = PluginManifest(
        slug="memory-deploy",
        name="Memory",
        description="",
        version="1.0.0",
        api_version="1.3",
        plugin_type=PluginType.DEPLOYMENT,
        requires_identity="contract-test-identity",
    )
    runs: ClassVar[dict[str, Deployment]] = {}
    refs: ClassVar[tuple[GitRef, ...]] = (
        GitRef(name="main", sha=SHA, default=True),
        GitRef(name="v1.0.0", kind="tag", sha=SHA),
    )

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success()

    def list_refs(self, query: RefQuery) -> RefPage:
        refs = [ref for ref in self.refs if query.kind in (None, ref.kind)]
        return RefPage(refs=tuple(refs[: query.limit]))

    def _ref(self, name: str) -> GitRef:
        for ref in self.refs:
            if ref.name == name:
                return ref
        raise RefNotFound(f"{name} does not exist")

    def list_commits(self, query: CommitQuery) -> CommitPage:
        ref = self._ref(query.ref)
        return CommitPage(commits=(Commit(sha=ref.sha, message="Initial commit"),))

    def compare_refs(self, base: str, head: str) -> Comparison:
        same = self._ref(base).sha == self._ref(head).sha
        return Comparison(base=base, head=head, status="identical" if same else "diverged")

    def list_environments(self) -> list[Environment]:
        return [Environment(name="contract-test")]

    def list_deployments(self, query: DeploymentQuery) -> list[Deployment]:
        return list(self.runs.values())[: query.limit]

    def trigger_deployment(self, request: DeploymentRequest) -> Deployment:
        ref = self._ref(request.ref)
        assert self.context.identity is not None
        deployment = Deployment(
            id=str(len(self.runs) + 1),
            ref=ref.name,
            sha=ref.sha,
            environment=request.environment,
            status=DeploymentStatus.QUEUED,
            creator=self.context.identity.subject,
        )
        self.runs[deployment.id] = deployment
        return deployment

    def get_deployment(self, deployment_id: str) -> Deployment:
        if deployment_id not in self.runs:
            raise NotFound(f"deployment {deployment_id} does not exist")
        return self.runs[deployment_id]


def test_the_kit_passes_a_correct_deployment_plugin() -> None:
    context = make_context(identity=sample_identity())
    report = run_contract(
        lambda: Memory(context, {}),  # type: ignore[arg-type]
        sample_deployment=sample_deployment(),
    )
    assert report.passed, report.failures
    assert len(report.checks) == 10


def test_the_kit_catches_a_missing_ref_that_is_not_ref_not_found() -> None:
    class Lenient(Memory):
        def list_commits(self, query: CommitQuery) -> CommitPage:
            return CommitPage()

    report = run_contract(lambda: Lenient(make_context(identity=sample_identity()), {}))  # type: ignore[arg-type]
    assert [f for f in report.failures if "RefNotFound" in f]


def test_every_method_crosses_the_wire_as_the_user() -> None:
    context = make_context(identity=sample_identity(subject="ada"))
    started = call_as_host(Memory, "trigger_deployment", sample_deployment(), context=context)
    assert started.creator == "ada" and started.status is DeploymentStatus.QUEUED
    assert call_as_host(Memory, "get_deployment", started.id, context=context) == started
    page = call_as_host(Memory, "list_refs", RefQuery(kind="tag"), context=context)
    assert [ref.name for ref in page.refs] == ["v1.0.0"]
    assert call_as_host(Memory, "compare_refs", "main", "v1.0.0", context=context).status == (
        "identical"
    )
    with pytest.raises(RefNotFound):
        call_as_host(Memory, "list_commits", CommitQuery(ref="nope"), context=context)
    with pytest.raises(RefNotFound):
        call_as_host(Memory, "trigger_deployment", sample_deployment("nope"), context=context)
