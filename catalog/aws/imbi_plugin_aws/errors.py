"""Translate botocore failures into SDK errors.

SECURITY: AWS error *messages* can echo request values (a ``ValidationException`` may
quote the parameter value being written, which can be a secret) and identity details.
Details built here therefore use only the AWS error code, the operation name and the
resource name the plugin passes in, never ``Error.Message`` nor the request. Mapped
errors are raised ``from None`` so the botocore exception is not chained into logs.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    InvalidRegionError,
    NoCredentialsError,
    ParamValidationError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from imbi_plugin_sdk import (
    Conflict,
    CredentialsInvalid,
    CredentialsMissing,
    CursorExpired,
    InvalidInput,
    NotFound,
    PluginError,
    PluginTimeout,
    UpstreamUnavailable,
)

__all__ = ["DEFAULT_RETRY_AFTER", "error_code", "map_error", "translate_errors"]

DEFAULT_RETRY_AFTER = 5
"""Seconds to suggest when AWS throttles without a ``Retry-After`` header."""

_CREDENTIAL_CODES = frozenset(
    {
        "UnrecognizedClientException",
        "InvalidClientTokenId",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "AuthFailure",
        "InvalidAccessKeyId",
    }
)
_THROTTLE_CODES = frozenset(
    {
        "ThrottlingException",
        "Throttling",
        "TooManyUpdates",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "RequestThrottledException",
        "LimitExceededException",
        "SlowDown",
        "InternalServerError",
        "InternalFailure",
        "InternalServerException",
    }
)
_NOT_FOUND_CODES = frozenset({"ParameterNotFound", "ResourceNotFoundException", "NoSuchEntity"})
_INVALID_CODES = frozenset(
    {
        "ValidationException",
        "ValidationError",
        "ParameterLimitExceeded",
        "ParameterMaxVersionLimitExceeded",
        "HierarchyLevelLimitExceededException",
        "HierarchyTypeMismatchException",
        "UnsupportedParameterType",
        "ParameterPatternMismatchException",
        "InvalidFilterKey",
        "InvalidFilterOption",
        "InvalidFilterValue",
        "InvalidKeyId",
        "MalformedQueryException",
    }
)
_CONFLICT_CODES = frozenset({"ParameterAlreadyExists", "ResourceAlreadyExistsException"})
_CURSOR_CODES = frozenset({"InvalidNextToken", "InvalidNextTokenException"})


def error_code(exc: ClientError) -> str:
    """The AWS error code of a ``ClientError`` ("" when the response has none)."""
    error = exc.response.get("Error") or {}
    return str(error.get("Code") or "")


def _retry_after(response: Mapping[str, Any]) -> int:
    headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    raw = str(headers.get("retry-after") or headers.get("Retry-After") or "").strip()
    if raw.isdigit() and 0 < int(raw) <= 3600:
        return int(raw)
    return DEFAULT_RETRY_AFTER


def _status(response: Mapping[str, Any]) -> int:
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else 0


def _client_error(exc: ClientError, what: str) -> PluginError:
    code = error_code(exc) or "UnknownError"
    operation = getattr(exc, "operation_name", "") or "request"
    where = f"{operation} on {what}" if what else operation
    if code.startswith("AccessDenied") or code in _CREDENTIAL_CODES:
        if code.startswith("AccessDenied"):
            return CredentialsInvalid(f"AWS denied {where} ({code}); check the IAM policy")
        return CredentialsInvalid(f"AWS rejected the credentials for {where} ({code})")
    if code in _CURSOR_CODES:
        return CursorExpired(f"the page token for {where} is no longer valid ({code})")
    if code in _THROTTLE_CODES:
        return UpstreamUnavailable(
            f"AWS is throttling or unavailable for {where} ({code})",
            retry_after=_retry_after(exc.response),
        )
    if code in _NOT_FOUND_CODES:
        return NotFound(f"{what or 'the resource'} was not found ({code})")
    if code.startswith("InvalidParameter") or code in _INVALID_CODES:
        return InvalidInput(f"AWS refused {where} as invalid ({code})")
    if code in _CONFLICT_CODES:
        return Conflict(f"{what or 'the resource'} already exists ({code})")
    if _status(exc.response) >= 500:
        return UpstreamUnavailable(
            f"AWS failed {where} ({code})", retry_after=_retry_after(exc.response)
        )
    return PluginError(f"AWS returned {code} for {where}")


def map_error(exc: BaseException, what: str = "") -> PluginError | None:
    """The SDK error for a botocore failure, or ``None`` when ``exc`` is not one.

    ``what`` names the resource concerned (a parameter path, a log group) for the detail.
    """
    if isinstance(exc, PluginError):
        return exc
    if isinstance(exc, ClientError):
        return _client_error(exc, what)
    target = f" for {what}" if what else ""
    if isinstance(exc, ReadTimeoutError):
        return PluginTimeout(f"AWS did not answer in time{target}")
    if isinstance(exc, ConnectTimeoutError | EndpointConnectionError | ConnectionClosedError):
        return UpstreamUnavailable(f"could not connect to AWS{target}")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return CredentialsMissing(f"no usable AWS credentials were found{target}")
    if isinstance(exc, InvalidRegionError):
        return InvalidInput(
            "the service's region setting is not a valid AWS region",
            fields={"region": "not a valid AWS region"},
        )
    if isinstance(exc, ParamValidationError):
        return InvalidInput(f"the request to AWS{target} was not valid")
    if isinstance(exc, BotoCoreError):
        return UpstreamUnavailable(f"AWS request failed{target} ({type(exc).__name__})")
    return None


@contextlib.contextmanager
def translate_errors(what: str = "") -> Iterator[None]:
    """Re-raise botocore failures inside the block as SDK errors (others pass through)."""
    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        mapped = map_error(exc, what)
        if mapped is None:  # pragma: no cover - every botocore error maps
            raise
        raise mapped from None
