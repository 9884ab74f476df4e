"""Token authentication with a failure budget per client address (``imbi.core.throttle``).

A locked-out address gets 429 problem+json ``throttled`` with Retry-After, whatever token it
sends; a wrong token counts against its budget and is answered 401 as before.
"""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication
from rest_framework.request import Request

from imbi.core.throttle import TokenFailures


class ThrottledTokenAuthentication(TokenAuthentication):
    def authenticate(self, request: Request) -> Any:
        header = request.META.get("HTTP_AUTHORIZATION", "")
        if not header.lower().startswith(f"{self.keyword.lower()} "):
            return None  # not a token request: nothing to count
        failures = TokenFailures(request._request)
        wait = failures.retry_after()
        if wait is not None:
            raise exceptions.Throttled(
                wait=wait,
                detail=(
                    "Too many failed token attempts from this address; "
                    f"try again in {wait} seconds."
                ),
            )
        try:
            return super().authenticate(request)
        except exceptions.AuthenticationFailed:
            failures.failed()
            raise
