"""REST API of plugin distributions (instance-wide; superusers only).

- ``GET /api/plugin-distributions``: the desired state, each node's report, nodes behind.
- ``POST /api/plugin-distributions`` (multipart ``wheel``: one or more wheel files, the
  plugin's and its dependencies'): install. 201; 409 ``already_installed``.
- ``PUT /api/plugin-distributions/<name>`` (same body): upgrade or downgrade. 200; 404
  ``not_installed``; 400 ``name_mismatch`` when the wheel is another distribution.
- ``DELETE /api/plugin-distributions/<name>``: remove. 204.
- ``GET /api/plugin-distributions/<name>/approvals``: what the installed version declares and,
  per plugin row, what is approved and pending. ``POST`` (``{"version": "optional pin"}``)
  approves it (``plugins_core.provisioning.approvals``); 404 ``not_installed``, 409
  ``version_mismatch``.

Each parses, authorizes and calls ``plugins_core.distributions.desired``; refusals are problem+json
with the service's stable code, and nothing changes.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from packaging.utils import canonicalize_name
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from imbi.api.problems import Problem
from plugins_core.distributions import desired as distributions
from plugins_core.distributions import nodes
from plugins_core.provisioning import approvals

MAX_FILES = distributions.MAX_WHEELS


class WheelsIn(serializers.Serializer):  # type: ignore[type-arg]
    wheel = serializers.ListField(
        child=serializers.FileField(max_length=300, allow_empty_file=False),
        min_length=1,
        max_length=MAX_FILES,
        help_text="The plugin's wheel, plus its dependencies' wheels (a wheelhouse).",
    )


class DistributionNodeOut(serializers.Serializer):  # type: ignore[type-arg]
    node = serializers.CharField()
    status = serializers.CharField()
    detail = serializers.CharField()
    seen_at = serializers.DateTimeField(allow_null=True)


class DistributionOut(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField()
    version = serializers.CharField()
    sha256 = serializers.CharField()
    size = serializers.IntegerField()
    source = serializers.CharField()  # type: ignore[assignment]
    execution_mode = serializers.CharField()
    entry_points = serializers.ListField(child=serializers.CharField())
    installed_by = serializers.CharField()
    installed_at = serializers.DateTimeField()
    generation = serializers.IntegerField()
    nodes = DistributionNodeOut(many=True)


class NodeReportOut(serializers.Serializer):  # type: ignore[type-arg]
    node = serializers.CharField()
    generation = serializers.IntegerField()
    seen_at = serializers.DateTimeField(allow_null=True)
    behind = serializers.BooleanField()
    reason = serializers.CharField()


class DistributionsOut(serializers.Serializer):  # type: ignore[type-arg]
    generation = serializers.IntegerField()
    distributions = DistributionOut(many=True)
    nodes = NodeReportOut(many=True)


def _authorize(request: Request) -> None:
    if not distributions.can_manage(request.user):
        raise Problem(403, "permission_denied", "Only superusers manage plugin distributions.")


def _wheels(request: Request) -> list[distributions.Wheel]:
    files = request.FILES.getlist("wheel")
    serializer = WheelsIn(data={"wheel": files})
    serializer.is_valid(raise_exception=True)
    out = []
    for upload in serializer.validated_data["wheel"]:
        if upload.size > distributions.MAX_WHEEL_BYTES:
            raise distributions.DistributionError(
                "wheel_too_large", f"{upload.name} is larger than the limit"
            )
        out.append(distributions.wheel(upload.name, upload.read()))
    return out


def _one(name: str) -> dict[str, Any]:
    report = nodes.report()
    return next(d for d in report["distributions"] if d["name"] == name)


class DistributionsView(APIView):
    @extend_schema(responses={200: DistributionsOut}, operation_id="plugin_distributions")
    def get(self, request: Request) -> Response:
        _authorize(request)
        return Response(nodes.report())

    @extend_schema(
        request={"multipart/form-data": WheelsIn},
        responses={201: DistributionOut},
        operation_id="plugin_distribution_install",
    )
    def post(self, request: Request) -> Response:
        _authorize(request)
        wheels = _wheels(request)
        row = distributions.install(
            wheels, actor=request.user, source="upload: " + ", ".join(w.filename for w in wheels)
        )
        return Response(_one(row.name), status=201)


class DistributionView(APIView):
    @extend_schema(
        request={"multipart/form-data": WheelsIn},
        responses={200: DistributionOut},
        operation_id="plugin_distribution_upgrade",
    )
    def put(self, request: Request, name: str) -> Response:
        _authorize(request)
        wheels = _wheels(request)
        main = distributions.plugin_wheel(wheels)
        if main.name != canonicalize_name(name):
            raise distributions.DistributionError(
                "name_mismatch", f"the wheel is {main.name}, not {str(name)[:100]}"
            )
        row = distributions.install(
            wheels,
            actor=request.user,
            upgrade=True,
            source="upload: " + ", ".join(w.filename for w in wheels),
        )
        return Response(_one(row.name))

    @extend_schema(responses={204: None}, operation_id="plugin_distribution_remove")
    def delete(self, request: Request, name: str) -> Response:
        _authorize(request)
        distributions.remove(name, actor=request.user)
        return Response(status=204)


class ApprovalIn(serializers.Serializer):  # type: ignore[type-arg]
    version = serializers.CharField(
        required=False,
        max_length=100,
        help_text="The version you reviewed; 409 version_mismatch if another is installed.",
    )


class PluginApprovalOut(serializers.Serializer):  # type: ignore[type-arg]
    organization = serializers.CharField()
    plugin = serializers.CharField()
    entry_point = serializers.CharField()
    approved = serializers.ListField(child=serializers.CharField())
    pending = serializers.ListField(child=serializers.CharField())


class ApprovalsOut(serializers.Serializer):  # type: ignore[type-arg]
    name = serializers.CharField()
    version = serializers.CharField()
    declared = serializers.ListField(
        child=serializers.CharField(), help_text="What the installed version declares."
    )
    pending = serializers.ListField(
        child=serializers.CharField(),
        help_text="Declared but not yet approved for some plugin row (those answer 503 "
        "plugin_permissions_pending).",
    )
    plugins = PluginApprovalOut(many=True)


class ApprovedOut(ApprovalsOut):
    approved_plugins = serializers.ListField(
        child=serializers.CharField(), help_text="Slugs of the plugin rows this approval changed."
    )


class ApprovalsView(APIView):
    @extend_schema(responses={200: ApprovalsOut}, operation_id="plugin_distribution_approvals")
    def get(self, request: Request, name: str) -> Response:
        _authorize(request)
        return Response(approvals.state(name))

    @extend_schema(
        request=ApprovalIn,
        responses={200: ApprovedOut},
        operation_id="plugin_distribution_approve",
    )
    def post(self, request: Request, name: str) -> Response:
        """Approve what the installed version declares, keeping every earlier approval."""
        _authorize(request)
        body = ApprovalIn(data=request.data)
        body.is_valid(raise_exception=True)
        return Response(approvals.approve(name, body.validated_data.get("version"), request.user))
