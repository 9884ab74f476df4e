"""The Configuration tab from AWS Systems Manager Parameter Store.

The binding's expanded search template is the parameter path (``/acme/billing/``); keys
are parameter names relative to it (``db/host`` is ``/acme/billing/db/host``).

Data types. Applications read these parameters directly, so values are stored the way
an application expects them, never wrapped:

* ``String`` is a ``string``; ``SecureString`` is a ``secret`` (``secret=True``);
  ``StringList`` is ``json``, a list of strings split on ``,``.
* ``number``, ``boolean`` and ``json`` values are stored as their JSON text (``42``,
  ``true``, ``{"a": 1}``) and the type is remembered in the parameter's *description*
  as ``imbi:data_type=<type>`` (any other description text is kept). Descriptions come
  back from ``DescribeParameters`` in pages of up to 50, so listing and reading stay
  O(pages) calls; tags would need one call per parameter. A JSON list of strings without
  commas is written as a native ``StringList``. ``secret=True`` with any data type
  writes a ``SecureString`` (encrypted with the ``kms_key_id`` option or the account's
  default key) and keeps the data type in the description.
* A parameter whose marker no longer matches its value reads back as a ``string``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from imbi_plugin_sdk import (
    ConfigKey,
    ConfigurationPlugin,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    Credentials,
    DataType,
    Hints,
    InvalidInput,
    JSONValue,
    NotFound,
    OptionField,
    OptionType,
    Permissions,
    PluginContext,
    PluginError,
    PluginManifest,
    PluginType,
    validate_config_key,
)

from . import PUBLISHER, SERVICE_TEMPLATE, __version__
from .errors import translate_errors
from .session import CREDENTIAL_FIELDS, AwsClients

__all__ = ["SSMConfiguration", "decode_value", "encode_write", "parameter_path"]

GET_PARAMETERS_BATCH = 10  # GetParameters accepts at most 10 names
DESCRIBE_NAMES_BATCH = 50  # a DescribeParameters Name filter accepts at most 50 values
MAX_DESCRIPTION = 1024

_MARKER_RE = re.compile(r"\s*\bimbi:data_type=([a-z]+)\b\s*")
_KEY_RE = re.compile(r"^[A-Za-z0-9_.\-]+(/[A-Za-z0-9_.\-]+)*$")
_MARKED_TYPES = (DataType.NUMBER, DataType.BOOLEAN, DataType.JSON)


def parameter_path(search_template: str) -> str:
    """The expanded search template as a Parameter Store path ending in ``/``."""
    path = search_template.strip()
    if not path:
        raise InvalidInput(
            "the binding needs a search template: the Parameter Store path to serve, "
            "for example /${org}/${project}/",
            fields={"search_template": "is required for AWS SSM Parameter Store"},
        )
    inner = path.strip("/")
    return f"/{inner}/" if inner else "/"


def _check_key(key: str) -> str:
    validate_config_key(key)
    if not _KEY_RE.match(key):
        raise InvalidInput(
            f"{key!r} is not a valid Parameter Store name",
            fields={
                "key": "use letters, digits, '.', '-', '_' and '/' between path segments "
                "(no leading, trailing or double '/')"
            },
        )
    return key


def _marker(description: str | None) -> DataType | None:
    match = _MARKER_RE.search(description or "")
    if match is None or match[1] not in DataType._value2member_map_:
        return None
    data_type = DataType(match[1])
    return data_type if data_type in _MARKED_TYPES else None


def _with_marker(description: str, data_type: DataType | None) -> str:
    """``description`` without any old marker, plus a marker for ``data_type`` if needed."""
    text = _MARKER_RE.sub(" ", description).strip()
    if data_type is None:
        return text
    marker = f"imbi:data_type={data_type.value}"
    room = MAX_DESCRIPTION - len(marker) - 1
    return f"{text[:room]} {marker}".strip()


def _string_list(value: JSONValue) -> str | None:
    """``value`` as a native StringList value, when it can be one losslessly."""
    if not isinstance(value, list) or not value:
        return None
    if not all(isinstance(item, str) and "," not in item for item in value):
        return None
    joined = ",".join(str(item) for item in value)
    return joined or None


def encode_write(write: ConfigWrite) -> tuple[str, str, DataType | None]:
    """``(parameter type, stored value, description marker)`` for a write."""
    secure = write.secret or write.data_type is DataType.SECRET
    value = write.value
    if write.data_type in (DataType.STRING, DataType.SECRET):
        assert isinstance(value, str)
        return ("SecureString" if secure else "String"), value, None
    if write.data_type is DataType.JSON and not secure:
        joined = _string_list(value)
        if joined is not None:
            return "StringList", joined, None
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return ("SecureString" if secure else "String"), text, write.data_type


def _refuse_constant(name: str) -> object:
    raise ValueError(name)


def decode_value(
    parameter_type: str, raw: str | None, marker: DataType | None
) -> tuple[DataType, JSONValue, bool]:
    """``(data type, value, secret)`` of a stored parameter; ``raw`` None when unknown."""
    secret = parameter_type == "SecureString"
    if parameter_type == "StringList":
        items: list[JSONValue] | None = list(raw.split(",")) if raw is not None else None
        return DataType.JSON, items, False
    if marker is not None:
        if raw is None:
            return marker, None, secret
        try:
            value = json.loads(raw, parse_constant=_refuse_constant)
        except ValueError:
            pass  # not JSON after all (edited elsewhere): fall back to a string
        else:
            fits = {
                DataType.NUMBER: isinstance(value, int | float) and not isinstance(value, bool),
                DataType.BOOLEAN: isinstance(value, bool),
                DataType.JSON: True,
            }[marker]
            if fits:
                return marker, value, secret
    if secret:
        return DataType.SECRET, raw, True
    return DataType.STRING, raw, False


class SSMConfiguration(ConfigurationPlugin):
    """Parameters under the binding's search template, one key per parameter."""

    manifest = PluginManifest(
        slug="aws-ssm",
        name="AWS SSM Parameter Store",
        description="Configuration values from AWS Systems Manager Parameter Store, under "
        "the path given by the binding's search template (e.g. /${org}/${project}/).",
        version=__version__,
        api_version="1.0",
        plugin_type=PluginType.CONFIGURATION,
        publisher=PUBLISHER,
        options=(
            OptionField(
                name="recursive",
                label="Include nested paths",
                type=OptionType.BOOLEAN,
                default=True,
                help="Serve parameters in sub-paths too (keys like db/host). When off, "
                "only direct children of the path are served and keys cannot contain '/'.",
            ),
            OptionField(
                name="kms_key_id",
                label="KMS key for secrets",
                default="",
                help="KMS key ID, ARN or alias used to encrypt SecureString parameters. "
                "Empty: the account's default key (alias/aws/ssm).",
            ),
        ),
        credentials=CREDENTIAL_FIELDS,
        permissions=Permissions(network_hosts=("*.amazonaws.com",)),
        hints=Hints(cacheable=True, cache_ttl=30),
        service_template=SERVICE_TEMPLATE,
    )

    def __init__(self, context: PluginContext, credentials: Credentials) -> None:
        super().__init__(context, credentials)
        self._aws = AwsClients(context, credentials)

    # ------------------------------------------------------------------ helpers

    @property
    def _path(self) -> str:
        return parameter_path(self.context.search_template)

    @property
    def _recursive(self) -> bool:
        return self.context.options.get("recursive", True) is not False

    def _ssm(self) -> Any:
        return self._aws.client("ssm")

    def _key_of(self, name: str) -> str | None:
        """The key of parameter ``name``, or ``None`` when it is outside the path."""
        path = self._path
        if not name.startswith(path) or len(name) == len(path):
            return None
        key = name[len(path) :]
        if not self._recursive and "/" in key:
            return None
        try:
            return validate_config_key(key)
        except InvalidInput:
            self.context.logger.warning("aws-ssm: skipping a parameter name that is too long")
            return None

    def _path_filter(self) -> dict[str, Any]:
        path = self._path
        return {
            "Key": "Path",
            "Option": "Recursive" if self._recursive else "OneLevel",
            "Values": [path.rstrip("/") or "/"],
        }

    def _describe(self, filters: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        paginator = self._ssm().get_paginator("describe_parameters")
        with translate_errors(self._path):
            for page in paginator.paginate(
                ParameterFilters=filters, PaginationConfig={"PageSize": 50}
            ):
                yield from page.get("Parameters", [])

    def _descriptions(self, names: Iterable[str]) -> dict[str, str]:
        """Descriptions of the parameters ``names`` (fetched 50 names per filter)."""
        wanted = sorted(set(names))
        found: dict[str, str] = {}
        for start in range(0, len(wanted), DESCRIBE_NAMES_BATCH):
            batch = wanted[start : start + DESCRIBE_NAMES_BATCH]
            for item in self._describe([{"Key": "Name", "Option": "Equals", "Values": batch}]):
                found[item["Name"]] = item.get("Description") or ""
        return found

    def _value(self, parameter: dict[str, Any], description: str | None) -> ConfigValue | None:
        key = self._key_of(parameter["Name"])
        if key is None:
            return None
        data_type, value, secret = decode_value(
            parameter.get("Type", "String"), parameter.get("Value"), _marker(description)
        )
        modified = parameter.get("LastModifiedDate")
        return ConfigValue(
            key=key,
            data_type=data_type,
            value=value,
            secret=secret,
            last_modified=modified if isinstance(modified, datetime) else None,
        )

    # ------------------------------------------------------------------ interface

    def test_connection(self) -> ConnectionResult:
        try:
            with translate_errors("sts:GetCallerIdentity"):
                identity = self._aws.client("sts").get_caller_identity()
            account = str(identity.get("Account", ""))
            path = self._path
            with translate_errors(path):
                self._ssm().describe_parameters(
                    ParameterFilters=[self._path_filter()], MaxResults=1
                )
        except PluginError as exc:
            return ConnectionResult.problem(str(exc), error=exc.code)
        return ConnectionResult.success(
            f"connected as account {account}; Parameter Store path {path} is readable",
            account=account,
            region=str(self._aws.config.region_name or ""),
            path=path,
        )

    def list_keys(self) -> list[ConfigKey]:
        keys: dict[str, ConfigKey] = {}
        for item in self._describe([self._path_filter()]):
            key = self._key_of(item["Name"])
            if key is None:
                continue
            data_type, _, secret = decode_value(
                item.get("Type", "String"), None, _marker(item.get("Description"))
            )
            modified = item.get("LastModifiedDate")
            keys[key] = ConfigKey(
                key=key,
                data_type=data_type,
                secret=secret,
                last_modified=modified if isinstance(modified, datetime) else None,
            )
        return [keys[key] for key in sorted(keys)]

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        parameters = self._all_parameters() if keys is None else self._some_parameters(keys)
        if keys is None:
            descriptions = {
                item["Name"]: item.get("Description") or ""
                for item in self._describe([self._path_filter()])
            }
        else:
            descriptions = self._descriptions(
                p["Name"] for p in parameters if p.get("Type") != "StringList"
            )
        values: dict[str, ConfigValue] = {}
        for parameter in parameters:
            value = self._value(parameter, descriptions.get(parameter["Name"]))
            if value is not None:
                values[value.key] = value
        return [values[key] for key in sorted(values)]

    def _all_parameters(self) -> list[dict[str, Any]]:
        path = self._path
        paginator = self._ssm().get_paginator("get_parameters_by_path")
        parameters: list[dict[str, Any]] = []
        with translate_errors(path):
            for page in paginator.paginate(
                Path=path.rstrip("/") or "/",
                Recursive=self._recursive,
                WithDecryption=True,
                PaginationConfig={"PageSize": 10},
            ):
                parameters.extend(page.get("Parameters", []))
        return parameters

    def _some_parameters(self, keys: Sequence[str]) -> list[dict[str, Any]]:
        path = self._path
        names: list[str] = []
        for key in dict.fromkeys(keys):
            try:
                _check_key(key)
            except InvalidInput:
                continue  # a name Parameter Store cannot hold is simply missing
            if self._recursive or "/" not in key:
                names.append(path + key)
        parameters: list[dict[str, Any]] = []
        for start in range(0, len(names), GET_PARAMETERS_BATCH):
            batch = names[start : start + GET_PARAMETERS_BATCH]
            with translate_errors(path):
                answer = self._ssm().get_parameters(Names=batch, WithDecryption=True)
            parameters.extend(answer.get("Parameters", []))
        return parameters

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        _check_key(key)
        if not self._recursive and "/" in key:
            raise InvalidInput(
                "this binding serves one path level; keys cannot contain '/'",
                fields={"key": "must not contain '/' when nested paths are off"},
            )
        name = self._path + key
        parameter_type, stored, marker = encode_write(value)
        if not stored:
            raise InvalidInput(
                "Parameter Store cannot store an empty value",
                fields={"value": "must not be empty"},
            )
        old = self._descriptions([name]).get(name)
        request: dict[str, Any] = {
            "Name": name,
            "Value": stored,
            "Type": parameter_type,
            "Overwrite": True,
        }
        description = _with_marker(old or "", marker)
        if old is None or description != old:
            request["Description"] = description
        kms_key_id = str(self.context.options.get("kms_key_id") or "").strip()
        if parameter_type == "SecureString" and kms_key_id:
            request["KeyId"] = kms_key_id
        with translate_errors(name):
            self._ssm().put_parameter(**request)
        data_type, _, secret = decode_value(parameter_type, None, marker)
        return ConfigKey(
            key=key, data_type=data_type, secret=secret, last_modified=datetime.now(UTC)
        )

    def delete_key(self, key: str) -> None:
        try:
            _check_key(key)
        except InvalidInput:
            return  # such a name cannot exist, so it is already gone
        name = self._path + key
        try:
            with translate_errors(name):
                self._ssm().delete_parameter(Name=name)
        except NotFound:
            return
