"""A small GitHub REST client: the documented headers, JSON bodies, errors as SDK errors.

SECURITY: every message built here goes through ``scrub`` so it never carries the
token, and neither request headers nor request bodies (which may hold a sealed secret)
are ever included in an error.
"""

from __future__ import annotations

import functools
import math
import re
import ssl
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any

import httpx
from imbi_plugin_sdk import (
    Conflict,
    CredentialsInvalid,
    InvalidInput,
    NotFound,
    PluginError,
    PluginTimeout,
    UpstreamUnavailable,
)

API_VERSION = "2022-11-28"
MEDIA_TYPE = "application/vnd.github+json"
DEFAULT_RETRY_AFTER = 5
"""Seconds to wait after a 429 without a usable ``Retry-After``."""
RATE_LIMIT_RETRY_AFTER = 60
"""Seconds to wait after a rate limit that names no reset time."""

_MAX_DETAIL = 200


@functools.cache
def ssl_context() -> ssl.SSLContext:
    """One verifying TLS context for the process: building one per client costs ~50 ms."""
    return httpx.create_ssl_context()


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` shortened, one line, with every secret value replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = re.sub(r"\s+", " ", text).strip()
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"


def _seconds(value: str | None) -> int | None:
    """Whole seconds (rounded up, at least 1) from delta-seconds or an HTTP date."""
    raw = (value or "").strip()
    if not raw:
        return None
    try:
        seconds = float(raw)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(raw).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return None
    return max(1, math.ceil(seconds)) if math.isfinite(seconds) else None


def rate_limit_retry_after(response: httpx.Response) -> int | None:
    """Seconds until GitHub accepts requests again, or ``None`` if not rate limited.

    Primary limit: 403/429 with ``X-RateLimit-Remaining: 0`` (wait until
    ``X-RateLimit-Reset``, epoch seconds). Secondary limit: 403/429 with ``Retry-After``
    or a message naming the rate limit. Any 429 is a rate limit.
    """
    status, headers = response.status_code, response.headers
    if status not in (403, 429):
        return None
    if headers.get("x-ratelimit-remaining", "").strip() == "0":
        try:
            reset = int(headers.get("x-ratelimit-reset", "").strip())
        except ValueError:
            return _seconds(headers.get("retry-after")) or RATE_LIMIT_RETRY_AFTER
        return max(1, reset - int(time.time()))
    after = _seconds(headers.get("retry-after"))
    if after is not None:
        return after
    if status == 429:
        return DEFAULT_RETRY_AFTER
    if "rate limit" in _message(response).lower():
        return RATE_LIMIT_RETRY_AFTER
    return None


def _message(response: httpx.Response) -> str:
    """GitHub's ``message`` plus the first validation error, if any."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return ""
    if not isinstance(body, Mapping):
        return ""
    message = body.get("message") if isinstance(body.get("message"), str) else ""
    errors = body.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], Mapping):
        first = errors[0]
        extra = first.get("message") or first.get("code")
        if isinstance(extra, str) and extra:
            message = f"{message} ({extra})" if message else extra
    return str(message)


def error_for(response: httpx.Response, secrets: Iterable[str], what: str) -> PluginError:
    """The SDK error for a non-2xx GitHub response about ``what`` (never secret)."""
    status = response.status_code
    said = scrub(_message(response), secrets)
    suffix = f": {said}" if said else ""
    wait = rate_limit_retry_after(response)
    if wait is not None:
        return UpstreamUnavailable(
            f"GitHub rate limit reached (HTTP {status}); retry in {wait}s", retry_after=wait
        )
    if status == 401:
        return CredentialsInvalid("GitHub rejected the token (HTTP 401)")
    if status == 403:
        return CredentialsInvalid(f"the token is not allowed to access {what} (HTTP 403){suffix}")
    if status == 404:
        return NotFound(f"GitHub: {what} not found, or the token cannot see it (HTTP 404)")
    if status == 409:
        return Conflict(f"GitHub: conflict on {what} (HTTP 409){suffix}")
    if status in (400, 422):
        return InvalidInput(f"GitHub refused the change to {what} (HTTP {status}){suffix}")
    if status >= 500:
        return UpstreamUnavailable(f"GitHub is unavailable (HTTP {status}){suffix}")
    return UpstreamUnavailable(f"GitHub returned an unexpected HTTP {status}{suffix}")


class GitHubClient:
    """One ``httpx.Client`` per handler call, with GitHub's documented request headers."""

    def __init__(self, base_url: str, token: str, timeout: float, user_agent: str) -> None:
        self._secrets = (token,)
        self._timeout = timeout
        self._client = httpx.Client(
            base_url=base_url,
            timeout=timeout,
            verify=ssl_context(),
            follow_redirects=False,
            headers={
                "Authorization": f"Bearer {token}",
                "Accept": MEDIA_TYPE,
                "X-GitHub-Api-Version": API_VERSION,
                "User-Agent": user_agent,
            },
        )

    def __enter__(self) -> GitHubClient:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: Mapping[str, Any] | None = None,
        body: Mapping[str, Any] | None = None,
        missing_ok: bool = False,
    ) -> httpx.Response | None:
        """The 2xx response, ``None`` for a 404 when ``missing_ok``, else an SDK error."""
        try:
            response = self._client.request(method, path, params=params, json=body)
        except httpx.TimeoutException:
            raise PluginTimeout(f"GitHub did not answer within {self._timeout:g}s") from None
        except httpx.TransportError as exc:
            reason = scrub(str(exc) or type(exc).__name__, self._secrets)
            raise UpstreamUnavailable(f"cannot reach GitHub: {reason}") from None
        if response.status_code == 404 and missing_ok:
            return None
        if not response.is_success:
            raise error_for(response, self._secrets, what)
        return response

    def get_json(
        self, path: str, *, what: str, params: Mapping[str, Any] | None = None
    ) -> Mapping[str, Any]:
        response = self.request("GET", path, what=what, params=params)
        if response is None:  # pragma: no cover - only missing_ok requests return None
            raise NotFound(f"GitHub: {what} not found")
        try:
            data = response.json()
        except (ValueError, UnicodeDecodeError):
            raise UpstreamUnavailable(f"GitHub answered {what} with non-JSON") from None
        if not isinstance(data, Mapping):
            raise UpstreamUnavailable(f"GitHub answered {what} with an unexpected shape")
        return data


__all__ = [
    "API_VERSION",
    "DEFAULT_RETRY_AFTER",
    "MEDIA_TYPE",
    "GitHubClient",
    "error_for",
    "rate_limit_retry_after",
    "scrub",
    "ssl_context",
]
