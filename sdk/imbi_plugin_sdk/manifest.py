"""The plugin manifest: what a plugin declares about itself, validated on construction.

Owns the contract version (``SDK_API_VERSION``, ``ApiVersion``, ``is_compatible``), the
manifest (``PluginManifest``) and its parts: option and credential fields, permissions,
hints and the third-party-service template of ADR 0012. Every validation error is a
``ManifestError`` whose ``field`` is the dotted path at fault (``options[1].type``).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, NoReturn, Self, TypeVar

from ._version import __version__
from .errors import ManifestError, OptionValidationError

__all__ = [
    "SDK_API_VERSION",
    "ApiVersion",
    "CredentialField",
    "Hints",
    "OptionField",
    "OptionType",
    "Permissions",
    "PluginManifest",
    "PluginType",
    "ServiceTemplate",
    "is_compatible",
    "looks_like_secret",
]

SDK_API_VERSION = ".".join(__version__.split(".")[:2])
"""The contract version this SDK defines: MAJOR.MINOR of the distribution's version."""

_E = TypeVar("_E", bound=StrEnum)

_SLUG_RE = re.compile(r"^[a-z][a-z0-9-]{1,63}$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_VERSION_RE = re.compile(r"^\d+(\.\d+)*([a-z0-9.+-]*)?$")
_HOST_PATTERN_RE = re.compile(
    r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$",
    re.IGNORECASE,
)
_ICON_RE = re.compile(r"^[A-Za-z_][\w.]*:[\w.-]+\.svg$")
_URL_RE = re.compile(r"^https?://\S+$")

# Shapes of secrets a service template must never carry (ADR 0012).
_SECRET_KEY_RE = re.compile(r"secret|token|password|passwd|api[_-]?key|private|credential", re.I)
_AWS_KEY_ID_RE = re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b")
_LONG_TOKEN_RE = re.compile(r"^[A-Za-z0-9+/=_-]{32,}$")
_URL_USERINFO_RE = re.compile(r"^[a-z][a-z0-9+.-]*://[^/?#\s]*@", re.I)


def _fail(path: str, message: str) -> NoReturn:
    raise ManifestError(path, message)


def _enum(kind: type[_E], value: object, path: str) -> _E:
    if isinstance(value, str) and value in kind._value2member_map_:
        return kind(value)
    allowed = ", ".join(member.value for member in kind)
    _fail(path, f"{value!r} is not one of {allowed}")


def _str(value: object, path: str, *, empty: bool = True) -> str:
    if not isinstance(value, str):
        _fail(path, f"expected a string, got {type(value).__name__}")
    if not empty and not value.strip():
        _fail(path, "must not be empty")
    return value


def _bool(value: object, path: str) -> bool:
    if not isinstance(value, bool):
        _fail(path, f"expected a boolean, got {type(value).__name__}")
    return value


def _seq(value: object, path: str) -> tuple[Any, ...]:
    """A list or tuple as a tuple (JSON gives lists; frozen dataclasses keep tuples)."""
    if not isinstance(value, list | tuple):
        _fail(path, f"expected a list, got {type(value).__name__}")
    return tuple(value)


def _set(obj: object, name: str, value: object) -> None:
    """Assign during ``__post_init__`` of a frozen dataclass (normalising a field)."""
    object.__setattr__(obj, name, value)


# --------------------------------------------------------------------------- versions


@dataclass(frozen=True, slots=True, order=True)
class ApiVersion:
    """A MAJOR.MINOR contract version."""

    major: int
    minor: int

    @classmethod
    def parse(cls, text: str) -> ApiVersion:
        match = re.fullmatch(r"(0|[1-9]\d*)\.(0|[1-9]\d*)", text) if isinstance(text, str) else None
        if match is None:
            _fail("api_version", f"{text!r} is not MAJOR.MINOR (e.g. '1.0')")
        return cls(int(match[1]), int(match[2]))

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}"


def is_compatible(plugin: ApiVersion, host: ApiVersion) -> tuple[bool, str]:
    """A plugin runs on a host of the same major whose minor is at least the plugin's."""
    if plugin.major == host.major and plugin.minor <= host.minor:
        return True, ""
    return False, f"plugin targets api {plugin}; host supports {host.major}.x up to {host}"


# --------------------------------------------------------------------------- enums


class PluginType(StrEnum):
    CONFIGURATION = "configuration"
    LOGS = "logs"
    IDENTITY = "identity"
    DEPLOYMENT = "deployment"  # contract 1.3


class OptionType(StrEnum):
    """Type of an option. A choice is any type plus ``OptionField.choices``."""

    STRING = "string"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    SECRET = "secret"  # noqa: S105 - a type name, not a secret
    MAPPING = "mapping"  # str -> str


_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


# --------------------------------------------------------------------------- fields


@dataclass(frozen=True, slots=True, kw_only=True)
class OptionField:
    """A non-secret-by-default setting an admin fills in per organization or project."""

    name: str
    label: str
    type: OptionType = OptionType.STRING
    required: bool = False
    default: object = None
    choices: tuple[object, ...] = ()
    help: str = ""
    operator_only: bool = False
    """Set only by administrators (on the plugin or a project-type binding), never on a
    project's own binding: use it for anything that selects *whose* data is read, such as
    a directory, an account or a repository."""
    pattern: str = ""
    """A regular expression a non-empty string value must match entirely (``re.fullmatch``);
    forms show ``pattern_help`` (else the pattern) when it does not."""
    pattern_help: str = ""
    min: int | None = None
    """Smallest allowed integer; for strings, the shortest allowed non-empty length."""
    max: int | None = None
    """Largest allowed integer; for strings, the longest allowed length."""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            _fail("name", f"{self.name!r} must be lowercase letters, digits and _")
        _str(self.label, "label", empty=False)
        _set(self, "type", _enum(OptionType, self.type, "type"))
        _bool(self.required, "required")
        _bool(self.operator_only, "operator_only")
        _str(self.help, "help")
        _check_pattern(self.pattern, self.pattern_help)
        if self.pattern and self.type not in (OptionType.STRING, OptionType.SECRET):
            _fail("pattern", "only string options can have a pattern")
        for bound in ("min", "max"):
            value = getattr(self, bound)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                _fail(bound, "expected an integer or None")
            if value is not None and self.type not in (
                OptionType.STRING,
                OptionType.SECRET,
                OptionType.INTEGER,
            ):
                _fail(bound, "only integer and string options can have bounds")
        if self.min is not None and self.max is not None and self.min > self.max:
            _fail("max", "must not be below min")
        _set(self, "choices", _seq(self.choices, "choices"))
        for index, choice in enumerate(self.choices):
            try:
                self._coerce(choice)
            except OptionValidationError as exc:
                _fail(f"choices[{index}]", exc.errors[self.name])
        if self.default is not None:
            if self.type is OptionType.SECRET:
                _fail("default", "secret options cannot have a default")
            try:
                _set(self, "default", self.validate(self.default))
            except OptionValidationError as exc:
                _fail("default", exc.errors[self.name])

    def validate(self, value: object) -> object:
        """Coerce one entered value; ``None`` means not given (default, or required).

        Messages never echo the value: it may be a secret.
        """
        if value is None:
            if self.default is None and self.required:
                raise OptionValidationError(self.name, "is required")
            return copy.deepcopy(self.default)  # a mapping default must not be shared
        coerced = self._coerce(value)
        if self.choices and coerced not in self.choices:
            allowed = ", ".join(str(choice) for choice in self.choices)
            raise OptionValidationError(self.name, f"must be one of {allowed}")
        if isinstance(coerced, str) and coerced:
            problem = _string_rule(coerced, self.pattern, self.pattern_help, self.min, self.max)
            if problem:
                raise OptionValidationError(self.name, problem)
        if isinstance(coerced, int) and not isinstance(coerced, bool):
            if self.min is not None and coerced < self.min:
                raise OptionValidationError(self.name, f"must be at least {self.min}")
            if self.max is not None and coerced > self.max:
                raise OptionValidationError(self.name, f"must be at most {self.max}")
        return coerced

    def _coerce(self, value: object) -> object:
        def bad(message: str) -> NoReturn:
            raise OptionValidationError(self.name, message)

        match self.type:
            case OptionType.STRING | OptionType.SECRET:
                if not isinstance(value, str):
                    bad("expected a string")
                if self.required and not value:
                    bad("is required")
                return value
            case OptionType.INTEGER:
                if isinstance(value, int) and not isinstance(value, bool):
                    return value
                if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d{1,18}\s*", value):
                    return int(value)
                bad("expected an integer")
            case OptionType.BOOLEAN:
                if isinstance(value, bool):
                    return value
                if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
                    return value.strip().lower() in _TRUE
                bad("expected true or false")
            case OptionType.MAPPING:
                if isinstance(value, Mapping) and all(
                    isinstance(k, str) and isinstance(v, str) for k, v in value.items()
                ):
                    return dict(value)
                bad("expected a mapping of strings to strings")
        bad(f"unsupported type {self.type}")  # pragma: no cover - enum is exhaustive

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "label": self.label,
            "type": self.type.value,
            "required": self.required,
            "default": copy.deepcopy(self.default),
            "choices": list(self.choices),
            "help": self.help,
            "operator_only": self.operator_only,
            "pattern": self.pattern,
            "pattern_help": self.pattern_help,
            "min": self.min,
            "max": self.max,
        }


def _check_pattern(pattern: object, pattern_help: object) -> None:
    _str(pattern, "pattern")
    _str(pattern_help, "pattern_help")
    if pattern:
        try:
            re.compile(str(pattern))
        except re.error as exc:
            _fail("pattern", f"not a regular expression: {exc}")


def _string_rule(
    value: str, pattern: str, pattern_help: str, low: int | None, high: int | None
) -> str:
    """Why ``value`` breaks the pattern or length bounds ("" when it does not). Never
    quotes the value: it may be a secret."""
    if low is not None and len(value) < low:
        return f"must be at least {low} characters"
    if high is not None and len(value) > high:
        return f"must be at most {high} characters"
    if pattern and re.fullmatch(pattern, value) is None:
        return f"must look like {pattern_help}" if pattern_help else f"must match {pattern}"
    return ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CredentialField:
    """A credential the host stores encrypted and hands to the plugin at call time."""

    name: str
    label: str
    secret: bool = True
    required: bool = True
    multiline: bool = False
    help: str = ""
    pattern: str = ""
    """A regular expression an entered value must match entirely (never quoted back)."""
    pattern_help: str = ""

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.match(self.name):
            _fail("name", f"{self.name!r} must be lowercase letters, digits and _")
        _str(self.label, "label", empty=False)
        for name in ("secret", "required", "multiline"):
            _bool(getattr(self, name), name)
        _str(self.help, "help")
        _check_pattern(self.pattern, self.pattern_help)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------- permissions, hints


@dataclass(frozen=True, slots=True, kw_only=True)
class Permissions:
    """What a plugin may reach: network hosts (``host``, ``host:port``, ``*.suffix``), the
    host's key-value storage and (contract 1.2) read-only metadata of its organization's
    projects (``project_metadata``: ``context.projects``). Each is a capability the host
    hands the plugin only when declared and approved; an undeclared one is absent.

    ``operator_host_settings`` (contract 1.1) names the service settings whose host the
    operator chooses, such as ``base_url`` for a self-hosted GitHub Enterprise: the host then
    accepts any http(s) host in those settings, and clears the service's stored credentials
    whenever that host changes unless they are re-entered in the same save. Every other
    setting that names a host must name one of ``network_hosts``.

    ``operator_path_settings`` (contract 1.2) names the service settings whose value is a
    host directory the plugin may READ (files and listings; never write or execute) when it
    runs isolated. The operator chooses the directory and approves the permission; the host
    refuses system and platform locations and grants nothing else of the file system.

    ``subprocesses`` says the plugin starts other processes (``subprocess``, ``os.fork``).
    An isolated runner is otherwise one process: the kernel refuses it ``fork``. A plugin
    that declares it runs only on hosts that can bound and kill a process tree (PID
    namespaces, or a delegated cgroup v2 subtree); elsewhere it is refused with the reason.
    """

    network_hosts: tuple[str, ...] = ()
    storage: bool = False
    operator_host_settings: tuple[str, ...] = ()
    project_metadata: bool = False
    operator_path_settings: tuple[str, ...] = ()
    subprocesses: bool = False

    def __post_init__(self) -> None:
        _set(self, "network_hosts", _seq(self.network_hosts, "network_hosts"))
        for index, pattern in enumerate(self.network_hosts):
            if not isinstance(pattern, str) or not _HOST_PATTERN_RE.match(pattern):
                _fail(f"network_hosts[{index}]", f"{pattern!r} is not host, host:port or *.host")
            if pattern.startswith("*.") and "." not in pattern[2:].partition(":")[0]:
                _fail(f"network_hosts[{index}]", f"{pattern!r} is too broad: use *.domain.tld")
        _bool(self.storage, "storage")
        _bool(self.project_metadata, "project_metadata")
        _bool(self.subprocesses, "subprocesses")
        names = _seq(self.operator_host_settings, "operator_host_settings")
        for index, name in enumerate(names):
            if not isinstance(name, str) or not _NAME_RE.match(name):
                _fail(f"operator_host_settings[{index}]", f"{name!r} is not a setting name")
        _set(self, "operator_host_settings", names)
        paths = _seq(self.operator_path_settings, "operator_path_settings")
        for index, name in enumerate(paths):
            if not isinstance(name, str) or not _NAME_RE.match(name):
                _fail(f"operator_path_settings[{index}]", f"{name!r} is not a setting name")
        if len(set(paths)) != len(paths):
            _fail("operator_path_settings", "names a setting twice")
        _set(self, "operator_path_settings", paths)

    def allows_host(self, host: str, port: int | None = None) -> bool:
        """Whether a connection to ``host`` (and ``port``) is declared."""
        host = host.lower().rstrip(".")
        for pattern in self.network_hosts:
            name, _, want_port = pattern.lower().partition(":")
            if want_port and (port is None or int(want_port) != port):
                continue
            if name == host or (name.startswith("*.") and host.endswith(name[1:])):
                return True
        return False

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"network_hosts": list(self.network_hosts), "storage": self.storage}
        if self.operator_host_settings:  # 1.0 manifests keep their exact 1.0 shape
            data["operator_host_settings"] = list(self.operator_host_settings)
        if self.project_metadata:  # 1.1 manifests keep their exact 1.1 shape
            data["project_metadata"] = True
        if self.operator_path_settings:  # contract 1.2
            data["operator_path_settings"] = list(self.operator_path_settings)
        if self.subprocesses:  # older manifests keep their exact shape
            data["subprocesses"] = True
        return data

    def describe(self) -> list[str]:
        """Each declared permission in words, for catalogs, wizards and approvals."""
        lines = [f"network {host}" for host in self.network_hosts]
        if self.storage:
            lines.append("storage")
        if self.project_metadata:
            lines.append("project metadata")
        lines.extend(f"read files in setting {name}" for name in self.operator_path_settings)
        if self.subprocesses:
            lines.append("start subprocesses")
        return lines


@dataclass(frozen=True, slots=True, kw_only=True)
class Hints:
    """Advice to the host. Configuration plugins may set ``cacheable`` and ``cache_ttl``
    (seconds, > 0 when cacheable); logs plugins may also set ``supports_histogram``
    (then override ``LogsPlugin.histogram``). Identity plugins (contract 1.3) may set
    ``login_capable`` (its identities are fit to sign in to the platform with: verified
    subject and email) and ``supports_device_flow`` (then override the two device-flow
    methods). Deployment plugins may set none."""

    cacheable: bool = False
    cache_ttl: int = 0  # seconds
    supports_histogram: bool = False
    login_capable: bool = False
    supports_device_flow: bool = False

    def __post_init__(self) -> None:
        _bool(self.cacheable, "cacheable")
        _bool(self.supports_histogram, "supports_histogram")
        _bool(self.login_capable, "login_capable")
        _bool(self.supports_device_flow, "supports_device_flow")
        if isinstance(self.cache_ttl, bool) or not isinstance(self.cache_ttl, int):
            _fail("cache_ttl", "expected an integer number of seconds")
        if self.cache_ttl < 0:
            _fail("cache_ttl", "must not be negative")
        if self.cacheable and self.cache_ttl <= 0:
            _fail("cache_ttl", "must be > 0 when cacheable")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for name in ("login_capable", "supports_device_flow"):  # 1.2 manifests keep their shape
            if not data[name]:
                del data[name]
        return data


_HINTS_BY_TYPE: Mapping[PluginType, frozenset[str]] = {
    PluginType.CONFIGURATION: frozenset({"cacheable", "cache_ttl"}),
    PluginType.LOGS: frozenset({"cacheable", "cache_ttl", "supports_histogram"}),
    PluginType.IDENTITY: frozenset({"login_capable", "supports_device_flow"}),
    PluginType.DEPLOYMENT: frozenset(),
}


# --------------------------------------------------------------------------- service template


def _shannon_entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def looks_like_secret(value: str) -> bool:
    """Heuristic: an AWS key id, a long high-entropy token, or a URL with userinfo."""
    if _AWS_KEY_ID_RE.search(value) or _URL_USERINFO_RE.match(value):
        return True
    if not _LONG_TOKEN_RE.match(value) or _shannon_entropy(value) < 3.0:
        return False
    if not (any(c.isdigit() for c in value) and any(c.isalpha() for c in value)):
        return False
    mixed_case = value != value.lower() and value != value.upper()
    # lowercase words joined by - or _ ("us-east-1-production-cluster") are names
    return mixed_case or max(len(run) for run in re.split(r"[-_]", value)) >= 16


_REFUSAL = "looks like a secret; templates must not carry secrets"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceTemplate:
    """ADR 0012 third-party-service template: the non-secret facts an admin starts from.

    Refuses anything shaped like a secret, by key name or by value. Field paths in
    errors start with ``service_template.`` as the template only lives in a manifest.
    """

    vendor: str
    name: str
    category: str
    base_url: str = ""
    links: tuple[tuple[str, str], ...] = ()
    icon: str = ""  # package resource: "package.module:filename.svg"
    settings: Mapping[str, str | int | bool] = field(default_factory=dict)
    setting_fields: tuple[OptionField, ...] = ()
    """How to ask for and check each setting (type, choices, pattern, help): the host's
    forms and APIs are generated from these. Settings are never secret."""

    def __post_init__(self) -> None:
        p = "service_template"
        _set(
            self, "setting_fields", _items(OptionField, self.setting_fields, f"{p}.setting_fields")
        )
        for index, setting in enumerate(self.setting_fields):
            if setting.type is OptionType.SECRET or _SECRET_KEY_RE.search(setting.name):
                _fail(f"{p}.setting_fields[{index}]", "settings are never secret")
        if not isinstance(self.vendor, str) or not _SLUG_RE.match(self.vendor):
            _fail(f"{p}.vendor", f"{self.vendor!r} must be a slug (a-z, 0-9, -)")
        _str(self.name, f"{p}.name", empty=False)
        _str(self.category, f"{p}.category", empty=False)
        self._check_url(self.base_url, f"{p}.base_url", optional=True)
        links = tuple(
            _seq(link, f"{p}.links[{index}]")
            for index, link in enumerate(_seq(self.links, f"{p}.links"))
        )
        for index, link in enumerate(links):
            if len(link) != 2:
                _fail(f"{p}.links[{index}]", "expected a (label, url) pair")
            _str(link[0], f"{p}.links[{index}].label", empty=False)
            self._check_url(link[1], f"{p}.links[{index}].url", optional=False)
        _set(self, "links", links)
        if self.icon and (not isinstance(self.icon, str) or not _ICON_RE.match(self.icon)):
            _fail(f"{p}.icon", f"{self.icon!r} is not 'package.module:filename.svg'")
        if not isinstance(self.settings, Mapping):
            _fail(f"{p}.settings", "expected a mapping")
        for key, value in self.settings.items():
            path = f"{p}.settings.{key}"
            if not isinstance(key, str) or not key:
                _fail(f"{p}.settings", "keys must be non-empty strings")
            if _SECRET_KEY_RE.search(key):
                _fail(path, _REFUSAL)
            if not isinstance(value, str | int | bool):
                _fail(path, "values must be strings, integers or booleans")
            if isinstance(value, str) and looks_like_secret(value):
                _fail(path, _REFUSAL)
        _set(self, "settings", MappingProxyType(dict(self.settings)))

    @staticmethod
    def _check_url(url: object, path: str, *, optional: bool) -> None:
        if optional and url == "":
            return
        if not isinstance(url, str) or not _URL_RE.match(url):
            _fail(path, "expected an http(s) URL")
        if looks_like_secret(url):
            _fail(path, _REFUSAL)

    def to_dict(self) -> dict[str, Any]:
        return {
            "vendor": self.vendor,
            "name": self.name,
            "category": self.category,
            "base_url": self.base_url,
            "links": [list(link) for link in self.links],
            "icon": self.icon,
            "settings": dict(self.settings),
            "setting_fields": [setting.to_dict() for setting in self.setting_fields],
        }

    def validate_settings(self, raw: Mapping[str, object]) -> dict[str, object]:
        """Check the declared settings in ``raw`` (others pass through unchanged): coerce
        them, apply choices, patterns and bounds; report every bad one at once."""
        errors: dict[str, str] = {}
        result = dict(raw)
        for setting in self.setting_fields:
            value = raw.get(setting.name)
            try:
                result[setting.name] = setting.validate(None if value == "" else value)
            except OptionValidationError as exc:
                errors.update(exc.errors)
            if result.get(setting.name) is None:
                result.pop(setting.name, None)
        if errors:
            raise OptionValidationError(errors)
        return result


# --------------------------------------------------------------------------- manifest


def _items(kind: type[Any], values: object, path: str) -> tuple[Any, ...]:
    """Check a tuple of ``kind`` and that names are unique."""
    items = _seq(values, path)
    seen: set[str] = set()
    for index, item in enumerate(items):
        if not isinstance(item, kind):
            _fail(f"{path}[{index}]", f"expected {kind.__name__}, got {type(item).__name__}")
        if item.name in seen:
            _fail(f"{path}[{index}].name", f"duplicate name {item.name!r}")
        seen.add(item.name)
    return items


def _build(kind: type[Any], data: object, path: str = "") -> Any:
    """Construct dataclass ``kind`` from a dict; errors get the full dotted path."""
    prefix = f"{path}." if path else ""
    if not isinstance(data, Mapping):
        _fail(path or "manifest", "expected an object")
    fields = dataclasses.fields(kind)
    for key in data:
        if key not in {f.name for f in fields}:
            _fail(f"{prefix}{key}", "unknown field")
    for f in fields:
        missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if missing and f.name not in data:
            _fail(f"{prefix}{f.name}", "is required")
    try:
        return kind(**data)
    except ManifestError as exc:
        # ServiceTemplate already reports "service_template.<field>".
        if not path or exc.field.startswith(path):
            raise
        raise exc.prefixed(path) from None


@dataclass(frozen=True, slots=True, kw_only=True)
class PluginManifest:
    """Everything the host needs to know about a plugin before calling it."""

    slug: str
    name: str
    description: str
    version: str
    api_version: str
    plugin_type: PluginType
    options: tuple[OptionField, ...] = ()
    credentials: tuple[CredentialField, ...] = ()
    permissions: Permissions = field(default_factory=Permissions)
    hints: Hints = field(default_factory=Hints)
    service_template: ServiceTemplate | None = None
    publisher: str = ""
    homepage: str = ""
    together: tuple[tuple[str, ...], ...] = ()
    """Groups of option names, or of credential names, that go together: give all of a
    group or none of it (e.g. an access key ID and its secret)."""
    requires_identity: str = ""
    """Contract 1.3: the slug of the identity plugin whose *calling user's* token each call
    needs (``"*"``: whichever identity plugin the binding names). The host then hands the
    call ``context.identity`` for that user, or answers ``identity_required`` without
    calling the plugin. Not valid on identity plugins themselves."""

    def __post_init__(self) -> None:
        if not isinstance(self.slug, str) or not _SLUG_RE.match(self.slug):
            _fail("slug", f"{self.slug!r} must be 2-64 of a-z, 0-9, -, starting with a letter")
        _str(self.name, "name", empty=False)
        _str(self.description, "description")
        if not isinstance(self.version, str) or not _VERSION_RE.match(self.version):
            _fail("version", f"{self.version!r} is not a version like 1.2.3")
        ApiVersion.parse(self.api_version)
        _set(self, "plugin_type", _enum(PluginType, self.plugin_type, "plugin_type"))
        _set(self, "options", _items(OptionField, self.options, "options"))
        _set(self, "credentials", _items(CredentialField, self.credentials, "credentials"))
        if not isinstance(self.permissions, Permissions):
            _fail("permissions", "expected Permissions")
        if not isinstance(self.hints, Hints):
            _fail("hints", "expected Hints")
        if self.permissions.operator_host_settings and self.api < ApiVersion(1, 1):
            _fail("permissions.operator_host_settings", "needs api_version 1.1 or later")
        if self.permissions.project_metadata and self.api < ApiVersion(1, 2):
            _fail("permissions.project_metadata", "needs api_version 1.2 or later")
        if self.permissions.operator_path_settings and self.api < ApiVersion(1, 2):
            _fail("permissions.operator_path_settings", "needs api_version 1.2 or later")
        allowed = _HINTS_BY_TYPE[self.plugin_type]
        for hint in dataclasses.fields(Hints):
            if hint.name not in allowed and getattr(self.hints, hint.name) != hint.default:
                _fail(f"hints.{hint.name}", f"not valid for {self.plugin_type} plugins")
        if self.service_template is not None and not isinstance(
            self.service_template, ServiceTemplate
        ):
            _fail("service_template", "expected ServiceTemplate or None")
        _str(self.publisher, "publisher")
        groups = tuple(
            tuple(_seq(group, f"together[{index}]"))
            for index, group in enumerate(_seq(self.together, "together"))
        )
        options = {option.name for option in self.options}
        credentials = {credential.name for credential in self.credentials}
        for index, group in enumerate(groups):
            if len(group) < 2 or len(set(group)) != len(group):
                _fail(f"together[{index}]", "expected two or more different names")
            if not (set(group) <= options or set(group) <= credentials):
                _fail(
                    f"together[{index}]",
                    "names must all be declared options, or all declared credentials",
                )
        _set(self, "together", groups)
        if self.homepage and (
            not isinstance(self.homepage, str) or not _URL_RE.match(self.homepage)
        ):
            _fail("homepage", "expected an http(s) URL")
        if self.requires_identity:
            if not isinstance(self.requires_identity, str) or not (
                self.requires_identity == "*" or _SLUG_RE.match(self.requires_identity)
            ):
                _fail("requires_identity", f"{self.requires_identity!r} is not a slug or *")
            if self.plugin_type is PluginType.IDENTITY:
                _fail("requires_identity", "identity plugins cannot require an identity")
        elif not isinstance(self.requires_identity, str):
            _fail("requires_identity", "expected a string")
        if self.api < ApiVersion(1, 3):
            if self.plugin_type is PluginType.DEPLOYMENT:
                _fail("plugin_type", "deployment plugins need api_version 1.3 or later")
            if self.requires_identity:
                _fail("requires_identity", "needs api_version 1.3 or later")
            for flag in ("login_capable", "supports_device_flow"):
                if getattr(self.hints, flag):
                    _fail(f"hints.{flag}", "needs api_version 1.3 or later")

    def __hash__(self) -> int:  # fields hold dicts; slug and version identify a manifest
        return hash((self.slug, self.version))

    @property
    def api(self) -> ApiVersion:
        return ApiVersion.parse(self.api_version)

    def validate_options(self, raw: Mapping[str, object]) -> dict[str, object]:
        """Coerce entered options, apply defaults; report every bad field at once.

        Declared options not given come back as their default (``None`` if none).
        """
        errors = {key: "unknown option" for key in raw if key not in self._option_names()}
        result: dict[str, object] = {}
        for option in self.options:
            try:
                result[option.name] = option.validate(raw.get(option.name))
            except OptionValidationError as exc:
                errors.update(exc.errors)
        errors.update(self._together_errors(raw, errors))
        if errors:
            raise OptionValidationError(errors)
        return result

    def _together_errors(
        self, raw: Mapping[str, object], known: Mapping[str, str]
    ) -> dict[str, str]:
        """For each ``together`` group given in part: an error on every missing member."""
        errors: dict[str, str] = {}
        for group in self.together:
            given = [name for name in group if raw.get(name) not in (None, "")]
            if given and len(given) < len(group):
                for name in group:
                    if name not in given and name not in known:
                        others = ", ".join(n for n in group if n != name)
                        errors[name] = f"is required together with {others}"
        return errors

    def validate_credentials(self, raw: Mapping[str, object]) -> dict[str, str]:
        """Check entered credentials; raises ``OptionValidationError`` (never echoes values)."""
        names = {credential.name for credential in self.credentials}
        errors = {key: "unknown credential" for key in raw if key not in names}
        result: dict[str, str] = {}
        for credential in self.credentials:
            value = raw.get(credential.name)
            if value is None or value == "":
                if credential.required:
                    errors[credential.name] = "is required"
            elif not isinstance(value, str):
                errors[credential.name] = "expected a string"
            elif credential.pattern and (
                problem := _string_rule(
                    value, credential.pattern, credential.pattern_help, None, None
                )
            ):
                errors[credential.name] = problem
            else:
                result[credential.name] = value
        errors.update(self._together_errors(raw, errors))
        if errors:
            raise OptionValidationError(errors)
        return result

    def _option_names(self) -> set[str]:
        return {option.name for option in self.options}

    def to_dict(self) -> dict[str, Any]:
        return {
            "slug": self.slug,
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "api_version": self.api_version,
            "plugin_type": self.plugin_type.value,
            "options": [option.to_dict() for option in self.options],
            "credentials": [credential.to_dict() for credential in self.credentials],
            "permissions": self.permissions.to_dict(),
            "hints": self.hints.to_dict(),
            "service_template": (
                self.service_template.to_dict() if self.service_template else None
            ),
            "publisher": self.publisher,
            "homepage": self.homepage,
            "together": [list(group) for group in self.together],
            **({"requires_identity": self.requires_identity} if self.requires_identity else {}),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Rebuild from ``to_dict()`` output (or a JSON manifest); errors carry full paths."""
        if not isinstance(data, Mapping):
            _fail("manifest", "expected an object")
        values = dict(data)
        values["options"] = tuple(
            _build(OptionField, item, f"options[{index}]")
            for index, item in enumerate(_seq(data.get("options", ()), "options"))
        )
        values["credentials"] = tuple(
            _build(CredentialField, item, f"credentials[{index}]")
            for index, item in enumerate(_seq(data.get("credentials", ()), "credentials"))
        )
        values["permissions"] = _build(Permissions, data.get("permissions", {}), "permissions")
        values["hints"] = _build(Hints, data.get("hints", {}), "hints")
        if data.get("service_template") is not None:
            template = (
                dict(data["service_template"])
                if isinstance(data["service_template"], Mapping)
                else data["service_template"]
            )
            if isinstance(template, dict):
                template["setting_fields"] = tuple(
                    _build(OptionField, item, f"service_template.setting_fields[{index}]")
                    for index, item in enumerate(
                        _seq(template.get("setting_fields", ()), "service_template.setting_fields")
                    )
                )
            values["service_template"] = _build(ServiceTemplate, template, "service_template")
        if "together" in data:
            values["together"] = tuple(
                tuple(_seq(group, f"together[{index}]"))
                for index, group in enumerate(_seq(data["together"], "together"))
            )
        built: Self = _build(cls, values)
        return built
