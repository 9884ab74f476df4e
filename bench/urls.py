"""The platform's URLs plus a bare DRF view: the baseline for the tab API's overhead."""

from __future__ import annotations

from typing import Any

from django.urls import include, path
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

PAYLOAD: dict[str, Any] = {}


class BareView(APIView):
    """Same authentication and permission classes as the tab API, no plugin machinery."""

    def get(self, request: Request) -> Response:
        return Response(PAYLOAD)


class BareAuthorizedView(APIView):
    """The bare view plus the same organization-scoped project lookup the tab API does."""

    def get(self, request: Request, org: str, project_id: int) -> Response:
        from imbi.core.access import load_project

        load_project(request.user, org, project_id)
        return Response(PAYLOAD)


urlpatterns = [
    path("bench/bare", BareView.as_view()),
    path("bench/bare/<slug:org>/<int:project_id>", BareAuthorizedView.as_view()),
    path("", include("imbi.urls")),
]
