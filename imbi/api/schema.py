"""OpenAPI post-processing: every error response is documented as problem+json.

drf-spectacular documents JSON bodies as ``application/json``; errors here are RFC 9457
``application/problem+json`` with a stable ``code``. This hook adds the ``Problem`` component
and, on every operation, the error statuses the API can answer, with that media type.
"""

from __future__ import annotations

from typing import Any

PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "RFC 9457 problem details. `code` is stable; match on it, not on `detail`.",
    "properties": {
        "type": {"type": "string"},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "code": {"type": "string"},
        "detail": {"type": "string"},
        "instance": {"type": "string"},
        "errors": {
            "type": "object",
            "additionalProperties": True,
            "description": "Field errors, keyed by field name.",
        },
        "retry_after": {"type": "integer"},
        "candidates": {"type": "array", "items": {"type": "string"}},
        "available": {"type": "array", "items": {"type": "string"}},
        "missing": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["type", "title", "status", "code", "detail"],
    "additionalProperties": True,
}

ERROR_STATUSES = {
    "400": "Invalid input (see `errors`) or an ambiguous source.",
    "401": "Not authenticated.",
    "403": "Not allowed for your role.",
    "404": "Not found, or not in your organizations.",
    "405": "Method not allowed.",
    "406": "Not acceptable.",
    "409": "Conflict, or an expired cursor.",
    "413": "The request body is larger than IMBI_MAX_REQUEST_BYTES.",
    "415": "Unsupported media type.",
    "422": "Refused by a check (plugin installs: the supply-chain refusal's `code`).",
    "429": "Too many failed token attempts from your address (see `Retry-After`).",
    "500": "Unexpected error (no internals are shown).",
    "501": "Not supported by this plugin.",
    "502": "The plugin or its upstream failed.",
    "503": "Plugin unavailable, disabled, misconfigured or missing credentials.",
    "504": "The plugin timed out.",
}


def problem_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    components = result.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = PROBLEM_SCHEMA
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status, description in ERROR_STATUSES.items():
                responses[status] = {"description": description, "content": problem}
    return result
