"""Small platform endpoints (the caller's identity and memberships)."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from imbi.core.models import Membership


class WhoAmIView(APIView):
    @extend_schema(
        responses=inline_serializer(
            "WhoAmI",
            {
                "username": serializers.CharField(),
                "organizations": serializers.DictField(child=serializers.CharField()),
            },
        )
    )
    def get(self, request: Request) -> Response:
        roles = dict(
            Membership.objects.filter(user_id=int(request.user.pk or 0)).values_list(
                "organization__slug", "role"
            )
        )
        return Response({"username": request.user.get_username(), "organizations": roles})
