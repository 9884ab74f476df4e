"""HTTP plumbing: one JSON request to Logz.io, upstream failures mapped to SDK errors.

SECURITY: every message built here goes through ``scrub`` so it never carries the API
token, and request headers are never included in an error.
"""

from __future__ import annotations

import functools
import math
import re
import ssl
import time
from collections.abc import Iterable, Mapping
from email.utils import parsedate_to_datetime
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

DEFAULT_RETRY_AFTER = 5
"""Seconds to wait after a 429 that carries no usable ``Retry-After``."""

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


def retry_after(headers: Mapping[str, str], default: int = DEFAULT_RETRY_AFTER) -> int:
    """Seconds from ``Retry-After`` (delta-seconds or an HTTP date), else ``default``."""
    raw = (headers.get("retry-after") or "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(raw).timestamp() - time.time()
        except (TypeError, ValueError, IndexError):
            return default
    if not math.isfinite(seconds):
        return default
    return max(1, math.ceil(seconds))


def _upstream_message(response: httpx.Response) -> str:
    """The ``message`` of a Logz.io error body, if any (never the request)."""
    try:
        body = response.json()
    except (ValueError, UnicodeDecodeError):
        return ""
    if isinstance(body, Mapping):
        for key in ("message", "errorMessage", "error"):
            value = body.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, Mapping) and isinstance(value.get("reason"), str):
                return str(value["reason"])
    return ""


def error_for(response: httpx.Response, secrets: Iterable[str]) -> PluginError:
    """The SDK error for a non-2xx Logz.io response."""
    status = response.status_code
    said = scrub(_upstream_message(response), secrets)
    suffix = f": {said}" if said else ""
    if status in (401, 403):
        return CredentialsInvalid(f"Logz.io rejected the API token (HTTP {status})")
    if status == 404:
        return NotFound(f"Logz.io: not found (HTTP 404){suffix}")
    if status == 409:
        return Conflict(f"Logz.io: conflict (HTTP 409){suffix}")
    if status in (400, 422):
        return InvalidInput(f"Logz.io rejected the search (HTTP {status}){suffix}")
    if status == 429:
        return UpstreamUnavailable(
            "Logz.io is rate limiting requests (HTTP 429)",
            retry_after=retry_after(response.headers),
        )
    if status >= 500:
        return UpstreamUnavailable(f"Logz.io is unavailable (HTTP {status}){suffix}")
    return UpstreamUnavailable(f"Logz.io returned an unexpected HTTP {status}{suffix}")


def post_json(
    base_url: str,
    path: str,
    body: Mapping[str, Any],
    *,
    headers: Mapping[str, str],
    timeout: float,
    secrets: Iterable[str],
) -> Any:
    """POST ``body`` as JSON and return the decoded JSON answer, or raise an SDK error."""
    secrets = tuple(secrets)
    try:
        with httpx.Client(
            base_url=base_url, timeout=timeout, headers=dict(headers), verify=ssl_context()
        ) as client:
            response = client.post(path, json=body)
    except httpx.TimeoutException:
        raise PluginTimeout(f"Logz.io did not answer within {timeout:g}s") from None
    except httpx.TransportError as exc:
        reason = scrub(str(exc) or type(exc).__name__, secrets)
        raise UpstreamUnavailable(f"cannot reach Logz.io: {reason}") from None
    if not response.is_success:
        raise error_for(response, secrets)
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError):
        raise UpstreamUnavailable("Logz.io returned a response that is not JSON") from None


__all__ = ["DEFAULT_RETRY_AFTER", "error_for", "post_json", "retry_after", "scrub"]
