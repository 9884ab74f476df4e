"""SSMConfiguration against a real moto server over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from imbi_plugin_aws import SERVICE_TEMPLATE
from imbi_plugin_aws.cloudwatch import CloudWatchLogs
from imbi_plugin_aws.ssm import SSMConfiguration
from imbi_plugin_sdk import (
    ConfigWrite,
    Credentials,
    CredentialsMissing,
    DataType,
    InvalidInput,
    UpstreamUnavailable,
    check_handler_class,
)
from imbi_plugin_sdk.testkit import assert_contract

Boto = Callable[[str], Any]


@pytest.fixture
def path(unique: str) -> str:
    return f"/imbi-test/{unique}/"


@pytest.fixture
def ssm_handler(make_handler: Callable[..., Any], path: str) -> Callable[..., SSMConfiguration]:
    def make(**kwargs: Any) -> SSMConfiguration:
        kwargs.setdefault("search_template", path)
        handler = make_handler(SSMConfiguration, **kwargs)
        assert isinstance(handler, SSMConfiguration)
        return handler

    return make


def put(boto: Boto, name: str, value: str, kind: str = "String", **extra: Any) -> None:
    boto("ssm").put_parameter(Name=name, Value=value, Type=kind, Overwrite=True, **extra)


# --------------------------------------------------------------------------- manifest


def test_both_entry_points_share_one_service_template() -> None:
    ssm = check_handler_class(SSMConfiguration)
    logs = check_handler_class(CloudWatchLogs)
    assert ssm.slug == "aws-ssm"
    assert logs.slug == "aws-cloudwatch-logs"
    assert ssm.service_template == logs.service_template == SERVICE_TEMPLATE
    assert SERVICE_TEMPLATE.vendor == "aws"
    assert dict(SERVICE_TEMPLATE.settings) == {"region": "us-east-1"}
    assert ssm.permissions.allows_host("ssm.eu-west-1.amazonaws.com")
    assert ssm.permissions.allows_host("sts.amazonaws.com")
    assert not ssm.permissions.allows_host("example.com")
    assert ssm.hints.cacheable and ssm.hints.cache_ttl == 30
    secret_fields = {field.name for field in ssm.credentials if field.secret}
    assert secret_fields == {"secret_access_key"}


def test_entry_points_are_installed() -> None:
    from importlib.metadata import entry_points

    found = {ep.name: ep.value for ep in entry_points(group="imbi.plugins")}
    assert found.get("aws-ssm") == "imbi_plugin_aws.ssm:SSMConfiguration"
    assert found.get("aws-cloudwatch-logs") == "imbi_plugin_aws.cloudwatch:CloudWatchLogs"


# --------------------------------------------------------------------------- contract


def test_contract_with_string_write(
    ssm_handler: Callable[..., SSMConfiguration], boto: Boto, path: str
) -> None:
    put(boto, f"{path}alpha", "1")
    put(boto, f"{path}beta/gamma", "2")
    put(boto, f"{path}secret", "hunter2", "SecureString")
    assert_contract(
        ssm_handler, sample_write=("contract/key", ConfigWrite(data_type="string", value="v"))
    )


@pytest.mark.parametrize(
    "write",
    [
        ConfigWrite(data_type="number", value=42),
        ConfigWrite(data_type="boolean", value=False),
        ConfigWrite(data_type="json", value={"a": [1, 2], "b": None}),
        ConfigWrite(data_type="json", value=["x", "y"]),
        ConfigWrite(data_type="secret", value="s3cret"),
    ],
    ids=["number", "boolean", "json-object", "json-list", "secret"],
)
def test_contract_round_trips_every_data_type(
    ssm_handler: Callable[..., SSMConfiguration], write: ConfigWrite
) -> None:
    assert_contract(ssm_handler, sample_write=("typed", write))


# --------------------------------------------------------------------------- data types


def test_secure_string_is_secret_and_masked(
    ssm_handler: Callable[..., SSMConfiguration], boto: Boto, path: str
) -> None:
    put(boto, f"{path}db/password", "correct horse", "SecureString")
    handler = ssm_handler()

    [listed] = handler.list_keys()
    assert (listed.key, listed.secret, listed.data_type) == ("db/password", True, DataType.SECRET)

    [value] = handler.get_values(["db/password"])
    assert value.secret is True
    assert value.value == "correct horse"  # decrypted for the host, which masks it
    assert value.masked().value is None
    assert "correct horse" not in json.dumps(value.masked().to_dict())


def test_string_list_round_trip(
    ssm_handler: Callable[..., SSMConfiguration], boto: Boto, path: str
) -> None:
    handler = ssm_handler()
    handler.set_value("hosts", ConfigWrite(data_type="json", value=["a.example", "b.example"]))

    stored = boto("ssm").get_parameter(Name=f"{path}hosts")["Parameter"]
    assert stored["Type"] == "StringList"
    assert stored["Value"] == "a.example,b.example"

    put(boto, f"{path}zones", "eu-west-1a,eu-west-1b", "StringList")
    values = {v.key: v for v in handler.get_values()}
    assert values["hosts"].data_type == DataType.JSON
    assert values["hosts"].value == ["a.example", "b.example"]
    assert values["zones"].value == ["eu-west-1a", "eu-west-1b"]


def test_typed_values_are_stored_plainly_and_read_back_typed(
    ssm_handler: Callable[..., SSMConfiguration], boto: Boto, path: str
) -> None:
    handler = ssm_handler()
    handler.set_value("port", ConfigWrite(data_type="number", value=5432))
    handler.set_value("ratio", ConfigWrite(data_type="number", value=0.25))
    handler.set_value("debug", ConfigWrite(data_type="boolean", value=True))
    handler.set_value("limits", ConfigWrite(data_type="json", value={"rps": 10, "ids": [1, 2]}))
    handler.set_value("tags", ConfigWrite(data_type="json", value=["a,b", "c"]))

    raw = {
        p["Name"][len(path) :]: p["Value"]
        for p in boto("ssm").get_parameters_by_path(Path=path, Recursive=True)["Parameters"]
    }
    # what an application reading Parameter Store directly sees
    assert raw["port"] == "5432"
    assert raw["ratio"] == "0.25"
    assert raw["debug"] == "true"
    assert json.loads(raw["limits"]) == {"rps": 10, "ids": [1, 2]}
    assert json.loads(raw["tags"]) == ["a,b", "c"]  # commas inside items: not a StringList

    values = {v.key: (v.data_type, v.value) for v in handler.get_values()}
    assert values == {
        "port": (DataType.NUMBER, 5432),
        "ratio": (DataType.NUMBER, 0.25),
        "debug": (DataType.BOOLEAN, True),
        "limits": (DataType.JSON, {"rps": 10, "ids": [1, 2]}),
        "tags": (DataType.JSON, ["a,b", "c"]),
    }
    listed = {k.key: k.data_type for k in handler.list_keys()}
    assert listed == {key: data_type for key, (data_type, _) in values.items()}
    # same answer when asked key by key (GetParameters + DescribeParameters by name)
    assert {v.key: (v.data_type, v.value) for v in handler.get_values(list(values))} == values


def test_secret_number_stays_a_secret_number(
    ssm_handler: Callable[..., SSMConfiguration], boto: Boto, path: str
) -> None:
    handler = ssm_handler()
    written = handler.set_value("pin", ConfigWrite(data_type="number", value=1234, secret=True))
    assert written.secret is True
    assert boto("ssm").get_parameter(Name=f"{path}pin")["Parameter"]["Type"] == "SecureString"
    [value] = handler.get_values(["pin"])
    assert (value.data_type, value.value, value.secret) == (DataType.NUMBER, 1234, True)


def test_type_change_replaces_marker_and_keeps_user_description(
    ssm_handler: Callable[..., SSMConfiguration], boto: Boto, path: str
) -> None:
    put(boto, f"{path}workers", "4", Description="Worker count for the queue")
    handler = ssm_handler()
    handler.set_value("workers", ConfigWrite(data_type="number", value=8))

    def description() -> str:
        answer = boto("ssm").describe_parameters(
            ParameterFilters=[{"Key": "Name", "Values": [f"{path}workers"]}]
        )
        return str(answer["Parameters"][0].get("Description", ""))

    assert description().startswith("Worker count for the queue")
    assert handler.get_values(["workers"])[0].value == 8

    handler.set_value("workers", ConfigWrite(data_type="string", value="eight"))
    assert description() == "Worker count for the queue"
    [value] = handler.get_values(["workers"])
    assert (value.data_type, value.value) == (DataType.STRING, "eight")


def test_marker_that_no_longer_fits_reads_as_string(
    ssm_handler: Callable[..., SSMConfiguration], boto: Boto, path: str
) -> None:
    put(boto, f"{path}n", "not a number", Description="imbi:data_type=number")
    [value] = ssm_handler().get_values(["n"])
    assert (value.data_type, value.value) == (DataType.STRING, "not a number")


# --------------------------------------------------------------------------- reads and deletes


def test_get_values_omits_missing_keys(
    ssm_handler: Callable[..., SSMConfiguration], boto: Boto, path: str
) -> None:
    put(boto, f"{path}present", "yes")
    got = ssm_handler().get_values(["present", "absent", "also/absent", "bad name!"])
    assert [(v.key, v.value) for v in got] == [("present", "yes")]


def test_delete_is_idempotent(
    ssm_handler: Callable[..., SSMConfiguration], boto: Boto, path: str
) -> None:
    put(boto, f"{path}gone", "x")
    handler = ssm_handler()
    handler.delete_key("gone")
    handler.delete_key("gone")
    handler.delete_key("never-existed")
    names = [p["Name"] for p in boto("ssm").get_parameters_by_path(Path=path)["Parameters"]]
    assert f"{path}gone" not in names


def test_pagination_over_many_parameters(
    ssm_handler: Callable[..., SSMConfiguration], boto: Boto, path: str
) -> None:
    expected = {f"k{index:02d}": str(index) for index in range(27)}
    expected.update({f"nested/deeper/k{index}": f"n{index}" for index in range(6)})
    for key, value in expected.items():
        put(boto, path + key, value)
    put(boto, path.rstrip("/") + "-sibling/not-mine", "x")  # same prefix text, other path
    handler = ssm_handler()

    assert [k.key for k in handler.list_keys()] == sorted(expected)
    assert {v.key: v.value for v in handler.get_values()} == expected
    assert {v.key: v.value for v in handler.get_values(sorted(expected))} == expected


def test_non_recursive_serves_one_level(
    ssm_handler: Callable[..., SSMConfiguration], boto: Boto, path: str
) -> None:
    put(boto, f"{path}top", "1")
    put(boto, f"{path}sub/inner", "2")
    handler = ssm_handler(options={"recursive": False})
    assert [k.key for k in handler.list_keys()] == ["top"]
    assert [v.key for v in handler.get_values()] == ["top"]
    assert handler.get_values(["sub/inner"]) == []
    with pytest.raises(InvalidInput):
        handler.set_value("sub/other", ConfigWrite(data_type="string", value="x"))


def test_search_template_is_normalised(
    ssm_handler: Callable[..., SSMConfiguration], boto: Boto, unique: str
) -> None:
    put(boto, f"/norm-{unique}/app/key", "v")
    handler = ssm_handler(search_template=f"norm-{unique}/app")
    assert [(v.key, v.value) for v in handler.get_values()] == [("key", "v")]


def test_missing_search_template_is_invalid_input(
    ssm_handler: Callable[..., SSMConfiguration],
) -> None:
    handler = ssm_handler(search_template="")
    with pytest.raises(InvalidInput) as caught:
        handler.list_keys()
    assert "search template" in str(caught.value)
    assert handler.test_connection().ok is False


@pytest.mark.parametrize("key", ["/leading", "trailing/", "a//b", "sp ace", "semi;colon"])
def test_invalid_key_names_are_refused(
    ssm_handler: Callable[..., SSMConfiguration], key: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        ssm_handler().set_value(key, ConfigWrite(data_type="string", value="x"))
    assert "key" in caught.value.fields


def test_empty_value_is_invalid_input(ssm_handler: Callable[..., SSMConfiguration]) -> None:
    with pytest.raises(InvalidInput) as caught:
        ssm_handler().set_value("empty", ConfigWrite(data_type="string", value=""))
    assert "value" in caught.value.fields


# --------------------------------------------------------------------------- connection, creds


def test_test_connection_reports_the_account(
    ssm_handler: Callable[..., SSMConfiguration], boto: Boto
) -> None:
    account = boto("sts").get_caller_identity()["Account"]
    result = ssm_handler().test_connection()
    assert result.ok, result.message
    assert account in result.message
    assert result.details["account"] == account


def test_assume_role_with_key_pair(
    ssm_handler: Callable[..., SSMConfiguration], boto: Boto, path: str, secret_key: str
) -> None:
    put(boto, f"{path}via-role", "yes")
    creds = Credentials(
        access_key_id="AKIAIMBITESTKEY00001",
        secret_access_key=secret_key,
        role_arn="arn:aws:iam::123456789012:role/imbi-reader",
        external_id="imbi",
    )
    handler = ssm_handler(creds=creds)
    assert [(v.key, v.value) for v in handler.get_values()] == [("via-role", "yes")]
    assert handler.test_connection().ok


# In-process only: an isolated runner never sees the host's environment, so the platform's
# ambient AWS identity is not available to it (docs/security.md, "Plugin isolation").
@pytest.mark.parametrize("runner_mode", ["in_process"])
def test_role_only_uses_the_platform_identity(
    ssm_handler: Callable[..., SSMConfiguration],
    boto: Boto,
    path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAPLATFORMIDENTITY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "platform-secret")
    put(boto, f"{path}role-only", "ok")
    handler = ssm_handler(creds=Credentials(role_arn="arn:aws:iam::123456789012:role/r"))
    assert [v.key for v in handler.get_values()] == ["role-only"]


@pytest.mark.parametrize(
    "values",
    [
        {},
        {"external_id": "x"},
        {"access_key_id": "AKIAIMBITESTKEY00001"},
        {"secret_access_key": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzImbiTestSecret"},
    ],
    ids=["nothing", "external-id-only", "key-id-only", "secret-only"],
)
def test_missing_credentials(
    ssm_handler: Callable[..., SSMConfiguration], values: dict[str, str], secret_key: str
) -> None:
    handler = ssm_handler(creds=Credentials(values))
    with pytest.raises(CredentialsMissing) as caught:
        handler.list_keys()
    assert secret_key not in str(caught.value)
    result = handler.test_connection()
    assert result.ok is False
    assert result.details["error"] == "credentials_missing"


def test_unreachable_endpoint_is_upstream_unavailable(
    ssm_handler: Callable[..., SSMConfiguration], closed_port_url: str, secret_key: str
) -> None:
    handler = ssm_handler(url=closed_port_url, timeout=2)
    with pytest.raises(UpstreamUnavailable) as caught:
        handler.get_values()
    assert secret_key not in str(caught.value)
    assert secret_key not in repr(caught.value.to_dict())
    result = handler.test_connection()
    assert result.ok is False
    assert secret_key not in result.message


def test_aws_validation_error_is_invalid_input_without_the_value(
    ssm_handler: Callable[..., SSMConfiguration], unique: str
) -> None:
    # Parameter Store refuses names under a top-level "ssm" path (ValidationException).
    handler = ssm_handler(search_template=f"/ssm/{unique}/")
    secret_value = f"TOPSECRET-{unique}"
    with pytest.raises(InvalidInput) as caught:
        handler.set_value("k", ConfigWrite(data_type="secret", value=secret_value))
    assert "ValidationException" in str(caught.value)
    assert secret_value not in json.dumps(caught.value.to_dict())
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
