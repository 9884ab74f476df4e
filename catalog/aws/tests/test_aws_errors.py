"""Error mapping with real botocore exception objects, and the session's credential rules."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)
from imbi_plugin_aws.errors import DEFAULT_RETRY_AFTER, map_error, translate_errors
from imbi_plugin_aws.session import AwsClients, endpoint_url, region
from imbi_plugin_sdk import (
    Conflict,
    Credentials,
    CredentialsInvalid,
    CredentialsMissing,
    CursorExpired,
    InvalidInput,
    NotFound,
    PluginError,
    PluginTimeout,
    UpstreamUnavailable,
)
from imbi_plugin_sdk.testkit import make_context


def client_error(
    code: str,
    *,
    status: int = 400,
    message: str = "",
    headers: dict[str, str] | None = None,
    operation: str = "GetParameters",
) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": {"HTTPStatusCode": status, "HTTPHeaders": headers or {}},
    }
    return ClientError(response, operation)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("AccessDeniedException", 400, CredentialsInvalid),
        ("AccessDenied", 403, CredentialsInvalid),
        ("UnrecognizedClientException", 400, CredentialsInvalid),
        ("InvalidClientTokenId", 403, CredentialsInvalid),
        ("ExpiredToken", 400, CredentialsInvalid),
        ("ExpiredTokenException", 400, CredentialsInvalid),
        ("InvalidSignatureException", 400, CredentialsInvalid),
        ("ThrottlingException", 400, UpstreamUnavailable),
        ("Throttling", 400, UpstreamUnavailable),
        ("TooManyUpdates", 400, UpstreamUnavailable),
        ("ServiceUnavailable", 503, UpstreamUnavailable),
        ("RequestLimitExceeded", 400, UpstreamUnavailable),
        ("ParameterNotFound", 400, NotFound),
        ("ResourceNotFoundException", 400, NotFound),
        ("ValidationException", 400, InvalidInput),
        ("InvalidParameterException", 400, InvalidInput),
        ("InvalidParameterCombinationException", 400, InvalidInput),
        ("InvalidNextTokenException", 400, CursorExpired),
        ("ParameterAlreadyExists", 400, Conflict),
        ("SomethingNew", 500, UpstreamUnavailable),
        ("SomethingNew", 400, PluginError),
    ],
)
def test_client_error_codes(code: str, status: int, expected: type[PluginError]) -> None:
    mapped = map_error(client_error(code, status=status), "/acme/billing/")
    assert type(mapped) is expected
    assert code in str(mapped)


def test_throttling_uses_retry_after_header() -> None:
    mapped = map_error(client_error("ThrottlingException", headers={"retry-after": "17"}))
    assert isinstance(mapped, UpstreamUnavailable)
    assert mapped.retry_after == 17
    assert mapped.to_dict()["retry_after"] == 17


def test_throttling_without_header_suggests_five_seconds() -> None:
    mapped = map_error(client_error("Throttling"))
    assert isinstance(mapped, UpstreamUnavailable)
    assert mapped.retry_after == 5 == DEFAULT_RETRY_AFTER


def test_botocore_transport_errors() -> None:
    url = "https://ssm.us-east-1.amazonaws.com/"
    assert isinstance(map_error(ReadTimeoutError(endpoint_url=url)), PluginTimeout)
    assert isinstance(map_error(EndpointConnectionError(endpoint_url=url)), UpstreamUnavailable)
    assert isinstance(map_error(ConnectTimeoutError(endpoint_url=url)), UpstreamUnavailable)
    assert isinstance(map_error(NoCredentialsError()), CredentialsMissing)
    assert map_error(ValueError("not botocore")) is None


def test_details_never_echo_aws_messages(secret_key: str) -> None:
    # AWS messages can quote request values (a secret being written) or identities.
    message = f"Value '{secret_key}' at 'value' failed to satisfy constraint"
    for code in ("ValidationException", "AccessDeniedException", "ThrottlingException", "X"):
        mapped = map_error(client_error(code, message=message), "/acme/billing/db")
        assert mapped is not None
        assert secret_key not in str(mapped)
        assert secret_key not in repr(mapped.to_dict())
        assert "/acme/billing/db" in str(mapped) or "AccessDenied" in str(mapped)


def test_translate_errors_raises_sdk_errors_without_chaining(secret_key: str) -> None:
    with pytest.raises(CredentialsInvalid) as caught, translate_errors("/p/"):
        raise client_error("InvalidSignatureException", message=secret_key)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__ is True
    with pytest.raises(KeyError), translate_errors("/p/"):
        raise KeyError("unrelated errors pass through")


# --------------------------------------------------------------------------- session


def test_region_and_endpoint_come_from_service_settings() -> None:
    assert region(make_context()) == "us-east-1"
    assert endpoint_url(make_context()) is None
    context = make_context(
        service_settings={"region": "eu-central-1", "base_url": "http://localhost:4566"}
    )
    assert region(context) == "eu-central-1"
    assert endpoint_url(context) == "http://localhost:4566"
    assert endpoint_url(make_context(service_settings={"base_url": "  "})) is None


def test_client_config_uses_context_timeout_and_two_retries() -> None:
    clients = AwsClients(
        make_context(timeout=3.5), Credentials(access_key_id="AKIAX", secret_access_key="s")
    )
    ssm = clients.client("ssm")
    config = ssm.meta.config
    assert config.connect_timeout == 3.5
    assert config.read_timeout == 3.5
    # botocore turns retries={"max_attempts": 2} into 3 attempts in total
    assert config.retries == {"total_max_attempts": 3, "mode": "standard"}
    assert ssm.meta.region_name == "us-east-1"


@pytest.mark.parametrize(
    "values",
    [{}, {"access_key_id": "AKIAX"}, {"secret_access_key": "s"}, {"external_id": "e"}],
)
def test_credentials_missing(values: dict[str, str]) -> None:
    clients = AwsClients(make_context(), Credentials(values))
    with pytest.raises(CredentialsMissing):
        clients.client("ssm")


def test_invalid_region_is_invalid_input() -> None:
    context = make_context(service_settings={"region": "not a region!"})
    clients = AwsClients(context, Credentials(access_key_id="AKIAX", secret_access_key="s"))
    with pytest.raises(InvalidInput) as caught:
        clients.client("ssm")
    assert "region" in caught.value.fields


def test_role_arn_alone_is_enough_to_start() -> None:
    AwsClients(make_context(), Credentials(role_arn="arn:aws:iam::1:role/r")).check()
