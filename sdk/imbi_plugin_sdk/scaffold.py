"""``imbi-plugin init``: writes a new plugin package that installs, passes its tests and ``check``.

Owns ``Names`` (everything derived from the NAME an author types: distribution, package,
entry point, class, vendor), ``validate_name`` / ``validate_vendor`` (one-line
``ScaffoldError`` for bad input) and ``create_plugin`` (writes the package into a temporary
folder beside the target, then renames it, so a failure leaves nothing half-written).

The package: ``pyproject.toml`` (entry point, SDK range, test extra), the handler with its
manifest and service template, ``icon.svg``, ``py.typed``, ``tests/`` using the contract kit
(``unittest`` style, so they run with ``python -m unittest`` or pytest), a README and a CI
workflow for GitHub Actions.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from string import Template

from ._version import __version__
from .manifest import SDK_API_VERSION

__all__ = ["PLUGIN_TYPES", "Names", "ScaffoldError", "create_plugin", "validate_name"]

PLUGIN_TYPES = ("configuration", "logs", "identity", "deployment")
_NAME_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
_MAX_NAME = 40


class ScaffoldError(ValueError):
    """Bad input to ``init``; the message is one line, fit to print as is."""


def validate_name(name: str) -> str:
    """The plugin NAME (a slug like ``acme-demo``); ``imbi-plugin-`` in front is dropped."""
    bare = name.removeprefix("imbi-plugin-")
    if not _NAME_RE.match(bare) or not 2 <= len(bare) <= _MAX_NAME:
        raise ScaffoldError(
            f"invalid NAME {name!r}: use 2-{_MAX_NAME} lowercase letters, digits and single "
            "hyphens, starting with a letter (e.g. acme-demo)"
        )
    return bare


def validate_vendor(vendor: str) -> str:
    if not _NAME_RE.match(vendor) or not 2 <= len(vendor) <= 64:
        raise ScaffoldError(
            f"invalid --vendor {vendor!r}: use a slug of lowercase letters, digits and hyphens "
            "(e.g. acme)"
        )
    return vendor


@dataclass(frozen=True, slots=True)
class Names:
    name: str
    plugin_type: str
    vendor: str

    @property
    def distribution(self) -> str:
        return f"imbi-plugin-{self.name}"

    @property
    def package(self) -> str:
        return f"imbi_plugin_{self.name.replace('-', '_')}"

    @property
    def title(self) -> str:
        return " ".join(part.capitalize() for part in self.name.split("-"))

    @property
    def vendor_title(self) -> str:
        return " ".join(part.capitalize() for part in self.vendor.split("-"))

    @property
    def class_name(self) -> str:
        suffix = self.plugin_type.capitalize()
        return "".join(part.capitalize() for part in self.name.split("-")) + suffix

    @property
    def sdk_range(self) -> str:
        major = __version__.split(".")[0]
        return f">={SDK_API_VERSION},<{int(major) + 1}"

    def substitutions(self) -> dict[str, str]:
        return {
            "name": self.name,
            "plugin_type": self.plugin_type,
            "vendor": self.vendor,
            "vendor_title": self.vendor_title,
            "distribution": self.distribution,
            "package": self.package,
            "title": self.title,
            "class_name": self.class_name,
            "sdk_range": self.sdk_range,
            "api_version": SDK_API_VERSION,
            "sdk_version": __version__,
        }


def create_plugin(
    name: str, *, plugin_type: str = "configuration", vendor: str | None = None, parent: Path
) -> Path:
    """Write the package for ``name`` into ``parent / name`` and return that path."""
    bare = validate_name(name)
    if plugin_type not in PLUGIN_TYPES:
        raise ScaffoldError(f"invalid --type {plugin_type!r}: choose {', '.join(PLUGIN_TYPES)}")
    names = Names(bare, plugin_type, validate_vendor(vendor or bare))
    if not parent.is_dir():
        raise ScaffoldError(f"{parent} is not an existing folder")
    target = parent / bare
    if target.exists() or target.is_symlink():
        raise ScaffoldError(f"{target} already exists; choose another NAME or remove it")
    staging = Path(tempfile.mkdtemp(prefix=f".{bare}-", dir=parent))
    try:
        for relative, template in _files(names).items():
            path = staging / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(Template(template).substitute(names.substitutions()))
        os.chmod(staging, 0o755)  # noqa: S103 - a source folder; mkdtemp made it 0700
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def _files(names: Names) -> dict[str, str]:
    handler, tests = {
        "configuration": (CONFIGURATION_HANDLER, CONFIGURATION_TESTS),
        "logs": (LOGS_HANDLER, LOGS_TESTS),
        "identity": (IDENTITY_HANDLER, IDENTITY_TESTS),
        "deployment": (DEPLOYMENT_HANDLER, DEPLOYMENT_TESTS),
    }[names.plugin_type]
    return {
        "pyproject.toml": PYPROJECT,
        "README.md": README,
        ".gitignore": GITIGNORE,
        ".github/workflows/ci.yml": WORKFLOW,
        f"{names.package}/__init__.py": PACKAGE_INIT,
        f"{names.package}/handler.py": handler,
        f"{names.package}/icon.svg": ICON,
        f"{names.package}/py.typed": "",
        "tests/__init__.py": "",
        "tests/test_handler.py": tests,
    }


PYPROJECT = """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "$distribution"
version = "0.1.0"
description = "Imbi $plugin_type plugin for $vendor_title."
readme = "README.md"
requires-python = ">=3.11"
# The plugin contract this plugin is written against: SDK MAJOR.MINOR is the api_version.
dependencies = ["imbi-plugin-sdk$sdk_range"]

[project.optional-dependencies]
test = ["pytest>=8"]

[project.entry-points."imbi.plugins"]
$name = "$package.handler:$class_name"

[tool.setuptools]
packages = ["$package"]

[tool.setuptools.package-data]
$package = ["*.svg", "py.typed"]

[tool.mypy]
strict = true

[tool.ruff]
line-length = 100

[tool.ruff.lint.isort]
known-first-party = ["$package"]
"""

PACKAGE_INIT = '''\
"""$title: an Imbi $plugin_type plugin for $vendor_title (entry point ``$name``)."""

__version__ = "0.1.0"
'''

CONFIGURATION_HANDLER = '''\
"""``$name``: serves a project's Configuration tab.

This starter keeps values in the host's key-value storage (``permissions.storage``) so it
works out of the box. Replace the ``_store`` calls with your backend's API client; keep
raising SDK errors (``NotFound``, ``CredentialsInvalid``, ``UpstreamUnavailable``...) so the
host maps them to the right HTTP status.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

from imbi_plugin_sdk import (
    ConfigKey,
    ConfigurationPlugin,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    CredentialField,
    DataType,
    KeyValueStore,
    OptionField,
    Permissions,
    PluginManifest,
    PluginType,
    ServiceTemplate,
    UpstreamUnavailable,
    validate_config_key,
)

from . import __version__


class $class_name(ConfigurationPlugin):
    manifest = PluginManifest(
        slug="$name",
        name="$title",
        description="Configuration for projects, kept for $vendor_title.",
        version=__version__,
        api_version="$api_version",
        plugin_type=PluginType.CONFIGURATION,
        publisher="$vendor_title",
        options=(
            OptionField(
                name="prefix",
                label="Key prefix",
                help="Added in front of every key this plugin stores.",
                default="",
            ),
        ),
        credentials=(CredentialField(name="api_token", label="API token"),),
        # Declare only what you use; each is shown to admins and enforced by the host.
        # project_metadata=True would add context.projects (this organization's projects).
        permissions=Permissions(storage=True),
        service_template=ServiceTemplate(
            vendor="$vendor",
            name="$vendor_title",
            category="configuration",
            icon="$package:icon.svg",
        ),
    )

    def _store(self) -> KeyValueStore:
        if self.context.storage is None:
            raise UpstreamUnavailable("the host did not provide key-value storage")
        return self.context.storage

    def _prefix(self) -> str:
        project = self.context.project_slug or "_"
        return f"{self.context.organization}/{project}/{self.context.options.get('prefix', '')}"

    def test_connection(self) -> ConnectionResult:
        if not self.credentials.get("api_token"):
            return ConnectionResult.problem("no API token is configured")
        return ConnectionResult.success("ready", keys=str(len(self.list_keys())))

    def list_keys(self) -> list[ConfigKey]:
        return [
            ConfigKey(
                key=value.key,
                data_type=value.data_type,
                secret=value.secret,
                last_modified=value.last_modified,
            )
            for value in self.get_values(None)
        ]

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        store, prefix = self._store(), self._prefix()
        wanted = None if keys is None else set(keys)
        values = []
        for stored in store.keys(prefix):
            key = stored[len(prefix) :]
            raw = store.get(stored)
            if raw is None or (wanted is not None and key not in wanted):
                continue
            record = json.loads(raw)
            values.append(
                ConfigValue(
                    key=key,
                    data_type=DataType(record["data_type"]),
                    value=record["value"],
                    secret=bool(record["secret"]),
                    last_modified=datetime.fromisoformat(record["modified"]),
                )
            )
        return values

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        validate_config_key(key)
        modified = datetime.now(UTC)
        record = {
            "data_type": value.data_type.value,
            "value": value.value,
            "secret": value.secret,
            "modified": modified.isoformat(),
        }
        self._store().set(self._prefix() + key, json.dumps(record))
        return ConfigKey(
            key=key, data_type=value.data_type, secret=value.secret, last_modified=modified
        )

    def delete_key(self, key: str) -> None:
        self._store().delete(self._prefix() + key)
'''

LOGS_HANDLER = '''\
"""``$name``: serves a project's Logs tab.

This starter makes up one line per minute so it works out of the box. Replace ``_lines`` with
your backend's search API; keep raising SDK errors (``CursorExpired``, ``InvalidInput``,
``UpstreamUnavailable``...) so the host maps them to the right HTTP status.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from imbi_plugin_sdk import (
    ConnectionResult,
    CredentialField,
    CursorExpired,
    LogEntry,
    LogLevel,
    LogQuery,
    LogResult,
    LogsPlugin,
    PluginManifest,
    PluginType,
    ServiceTemplate,
)

from . import __version__

LEVELS = (LogLevel.INFO, LogLevel.INFO, LogLevel.WARNING, LogLevel.ERROR)


class $class_name(LogsPlugin):
    manifest = PluginManifest(
        slug="$name",
        name="$title",
        description="Log search for projects, from $vendor_title.",
        version=__version__,
        api_version="$api_version",
        plugin_type=PluginType.LOGS,
        publisher="$vendor_title",
        credentials=(CredentialField(name="api_token", label="API token"),),
        service_template=ServiceTemplate(
            vendor="$vendor",
            name="$vendor_title",
            category="logs",
            icon="$package:icon.svg",
        ),
    )

    def _lines(self, query: LogQuery) -> Iterator[LogEntry]:
        """Newest first: one made-up line per minute of the range."""
        minute = query.end.replace(second=0, microsecond=0)
        index = 0
        while minute >= query.start and index < 10_000:
            level = LEVELS[index % len(LEVELS)]
            entry = LogEntry(
                timestamp=minute,
                message=f"{self.context.project_slug or 'project'}: request {index} handled",
                level=level,
            )
            if (not query.levels or level in query.levels) and query.text in entry.message:
                yield entry
            minute -= timedelta(minutes=1)
            index += 1

    def test_connection(self) -> ConnectionResult:
        if not self.credentials.get("api_token"):
            return ConnectionResult.problem("no API token is configured")
        return ConnectionResult.success("ready")

    def search(self, query: LogQuery) -> LogResult:
        offset = 0
        if query.cursor is not None:
            if not query.cursor.isdigit():
                raise CursorExpired("this cursor is not valid any more; search again")
            offset = int(query.cursor)
        lines = list(self._lines(query))
        page = lines[offset : offset + query.limit]
        following = offset + query.limit
        return LogResult(
            entries=tuple(page), next_cursor=str(following) if following < len(lines) else None
        )
'''

CONFIGURATION_TESTS = '''\
"""The contract kit and the host's JSON call path, without a host (unittest or pytest)."""

import unittest
from typing import Any

from imbi_plugin_sdk import ConfigValue, Credentials, DataType, check_handler_class
from imbi_plugin_sdk.testkit import assert_contract, call_as_host, make_context, sample_write

from $package.handler import $class_name


def make_handler() -> $class_name:
    return $class_name(make_context(), Credentials(api_token="test-token"))


class ContractTest(unittest.TestCase):
    def test_manifest_is_valid(self) -> None:
        self.assertEqual(check_handler_class($class_name).slug, "$name")

    def test_contract_with_writes(self) -> None:
        assert_contract(make_handler, sample_write=sample_write(DataType.JSON))

    def test_a_value_through_the_hosts_json_contract(self) -> None:
        context = make_context()
        key, write = sample_write()

        def call(method: str, *args: object) -> Any:
            return call_as_host(
                $class_name,
                method,
                *args,
                context=context,
                credentials={"api_token": "t"},
            )

        call("set_value", key, write)
        values = call("get_values", [key])
        self.assertEqual([(v.key, v.value) for v in values], [(key, write.value)])
        self.assertIsInstance(values[0], ConfigValue)

    def test_connection_needs_a_token(self) -> None:
        handler = $class_name(make_context(), Credentials())
        self.assertFalse(handler.test_connection().ok)


if __name__ == "__main__":
    unittest.main()
'''

LOGS_TESTS = '''\
"""The contract kit and the host's JSON call path, without a host (unittest or pytest)."""

import unittest
from datetime import timedelta

from imbi_plugin_sdk import Credentials, CursorExpired, check_handler_class
from imbi_plugin_sdk.testkit import assert_contract, call_as_host, make_context, sample_query

from $package.handler import $class_name


def make_handler() -> $class_name:
    return $class_name(make_context(), Credentials(api_token="test-token"))


class ContractTest(unittest.TestCase):
    def test_manifest_is_valid(self) -> None:
        self.assertEqual(check_handler_class($class_name).slug, "$name")

    def test_contract_with_paging(self) -> None:
        assert_contract(make_handler, sample_query=sample_query(timedelta(minutes=30), limit=7))

    def test_search_through_the_hosts_json_contract(self) -> None:
        result = call_as_host($class_name, "search", sample_query(levels=("error",)))
        self.assertTrue(result.entries)
        self.assertTrue(all(entry.level == "error" for entry in result.entries))

    def test_a_bad_cursor_is_expired(self) -> None:
        with self.assertRaises(CursorExpired):
            make_handler().search(sample_query(cursor="not-ours"))


if __name__ == "__main__":
    unittest.main()
'''

IDENTITY_HANDLER = '''\
"""``$name``: connects a person's account at $vendor_title (OAuth 2.0 code flow + PKCE).

The host keeps state, nonce and the PKCE verifier, and stores the tokens per user; this
handler only speaks to the provider. Set the service's ``base_url`` and the endpoint paths;
the client id and secret are the credentials. If the provider issues ID tokens, verify them
fully (signature with its JWKS, issuer, audience, expiry, nonce) before returning claims:
see imbi-plugin-oidc for a complete OpenID Connect plugin.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from imbi_plugin_sdk import (
    AuthorizationRedirect,
    AuthorizationStart,
    CodeExchange,
    ConnectionResult,
    CredentialField,
    IdentityExpired,
    IdentityInfo,
    IdentityPlugin,
    IdentityProviderError,
    IdentityProviderUnavailable,
    IdentityRevoked,
    InvalidGrant,
    OptionField,
    Permissions,
    PluginManifest,
    PluginType,
    RevocationResult,
    ServiceTemplate,
    TokenRevocation,
    TokenSet,
)

from . import __version__


class $class_name(IdentityPlugin):
    manifest = PluginManifest(
        slug="$name",
        name="$title",
        description="Connect your $vendor_title account.",
        version=__version__,
        api_version="$api_version",
        plugin_type=PluginType.IDENTITY,
        publisher="$vendor_title",
        credentials=(
            CredentialField(name="client_id", label="Client ID", secret=False),
            CredentialField(name="client_secret", label="Client secret", required=False),
        ),
        permissions=Permissions(operator_host_settings=("base_url",)),
        service_template=ServiceTemplate(
            vendor="$vendor",
            name="$vendor_title",
            category="identity",
            icon="$package:icon.svg",
            settings={
                "base_url": "https://login.example.com",
                "authorize_path": "/oauth/authorize",
                "exchange_path": "/oauth/token",
                "userinfo_path": "/oauth/userinfo",
                "scopes": "openid profile email",
            },
            setting_fields=(
                OptionField(name="base_url", label="Provider URL", required=True),
                OptionField(name="authorize_path", label="Authorization path"),
                OptionField(name="exchange_path", label="Token endpoint path"),
                OptionField(name="userinfo_path", label="User info path"),
                OptionField(name="scopes", label="Default scopes"),
            ),
        ),
    )

    def _setting(self, name: str) -> str:
        """The service's setting, else the template's default."""
        template = self.manifest.service_template
        default = template.settings.get(name, "") if template is not None else ""
        return str(self.context.service_settings.get(name) or default)

    def _url(self, setting: str) -> str:
        return self._setting("base_url").rstrip("/") + self._setting(setting)

    def _request(self, url: str, *, form: dict[str, str] | None = None, token: str = "") -> Any:
        data = urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(url, data=data, headers={"Accept": "application/json"})
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=self.context.timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
            if status == 401 and token:
                raise IdentityRevoked("the provider no longer accepts this token") from None
            if status == 400 and b"invalid_grant" in body:
                raise InvalidGrant("the provider refused the code or refresh token") from None
            raise IdentityProviderError(f"the provider answered HTTP {status}") from None
        except (urllib.error.URLError, TimeoutError):
            raise IdentityProviderUnavailable("the provider cannot be reached") from None
        try:
            return json.loads(body)
        except ValueError:
            raise IdentityProviderError("the provider's answer is not JSON") from None

    def _tokens(self, data: Any) -> TokenSet:
        if not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
            raise IdentityProviderError("the token response has no access_token")
        expires_in = data.get("expires_in")
        return TokenSet(
            access_token=data["access_token"],
            refresh_token=data.get("refresh_token"),
            expires_at=datetime.now(UTC) + timedelta(seconds=int(expires_in))
            if isinstance(expires_in, int)
            else None,
            scopes=tuple(str(data.get("scope", "")).split()),
        )

    def _client(self) -> dict[str, str]:
        form = {"client_id": self.credentials.get("client_id", "")}
        if self.credentials.get("client_secret"):
            form["client_secret"] = self.credentials["client_secret"]
        return form

    def test_connection(self) -> ConnectionResult:
        if not self.credentials.get("client_id"):
            return ConnectionResult.problem("no client ID is configured")
        return ConnectionResult.success("configured")

    def begin_authorization(self, start: AuthorizationStart) -> AuthorizationRedirect:
        scopes = start.scopes or tuple(self._setting("scopes").split())
        query = {
            "response_type": "code",
            "client_id": self.credentials.get("client_id", ""),
            "redirect_uri": start.redirect_uri,
            "scope": " ".join(scopes),
            "state": start.state,
            "nonce": start.nonce,
            "code_challenge": start.code_challenge,
            "code_challenge_method": start.code_challenge_method,
        }
        return AuthorizationRedirect(url=f"{self._url('authorize_path')}?{urlencode(query)}")

    def exchange_code(self, exchange: CodeExchange) -> TokenSet:
        form = {
            "grant_type": "authorization_code",
            "code": exchange.code,
            "redirect_uri": exchange.redirect_uri,
            "code_verifier": exchange.code_verifier,
            **self._client(),
        }
        return self._tokens(self._request(self._url("exchange_path"), form=form))

    def refresh(self, refresh_token: str) -> TokenSet:
        form = {"grant_type": "refresh_token", "refresh_token": refresh_token, **self._client()}
        return self._tokens(self._request(self._url("exchange_path"), form=form))

    def revoke(self, revocation: TokenRevocation) -> RevocationResult:
        return RevocationResult(revoked=False, message="this provider has no revocation endpoint")

    def describe(self, tokens: TokenSet) -> IdentityInfo:
        if tokens.expired(datetime.now(UTC)):
            raise IdentityExpired("the access token has expired")
        data = self._request(self._url("userinfo_path"), token=tokens.access_token)
        if not isinstance(data, dict) or not isinstance(data.get("sub"), str):
            raise IdentityProviderError("the user info has no subject")
        return IdentityInfo(
            subject=data["sub"],
            display_name=str(data.get("name", "")),
            email=str(data.get("email", "")),
            email_verified=data.get("email_verified") is True,
            scopes=tokens.scopes,
            expires_at=tokens.expires_at,
        )
'''

DEPLOYMENT_HANDLER = '''\
"""``$name``: serves a project's Deployments tab, acting as the signed-in user.

This starter keeps refs and deployments in the host's key-value storage so it works out of
the box. Replace ``_store`` with your provider's API, authenticated with the calling
user's token (``self.context.identity.authorization_header()``); keep raising SDK errors
(``RefNotFound``, ``NotFound``, ``CredentialsInvalid``...) so the host maps them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from imbi_plugin_sdk import (
    Commit,
    CommitPage,
    CommitQuery,
    Comparison,
    ComparisonStatus,
    ConnectionResult,
    Deployment,
    DeploymentPlugin,
    DeploymentQuery,
    DeploymentRequest,
    DeploymentStatus,
    Environment,
    GitRef,
    KeyValueStore,
    NotFound,
    Permissions,
    PluginManifest,
    PluginType,
    RefKind,
    RefNotFound,
    RefPage,
    RefQuery,
    ServiceTemplate,
    UpstreamUnavailable,
)

from . import __version__

SHA = "0123456789abcdef0123456789abcdef01234567"
REFS = (
    GitRef(name="main", sha=SHA, default=True),
    GitRef(name="v1.0.0", kind=RefKind.TAG, sha=SHA),
)


class $class_name(DeploymentPlugin):
    manifest = PluginManifest(
        slug="$name",
        name="$title",
        description="Deployments of projects with $vendor_title.",
        version=__version__,
        api_version="$api_version",
        plugin_type=PluginType.DEPLOYMENT,
        publisher="$vendor_title",
        # Every call gets the calling user's token from this identity plugin ("*": the one
        # the binding names); without a connection the host asks the user to connect.
        requires_identity="*",
        permissions=Permissions(storage=True),
        service_template=ServiceTemplate(
            vendor="$vendor",
            name="$vendor_title",
            category="deployment",
            icon="$package:icon.svg",
        ),
    )

    def _store(self) -> KeyValueStore:
        if self.context.storage is None:
            raise UpstreamUnavailable("the host did not provide key-value storage")
        return self.context.storage

    def _prefix(self) -> str:
        return f"{self.context.organization}/{self.context.project_slug or '_'}/deployments/"

    def _ref(self, name: str) -> GitRef:
        for ref in REFS:
            if ref.name == name:
                return ref
        raise RefNotFound(f"{name} is not a branch or tag of this project")

    def test_connection(self) -> ConnectionResult:
        if self.context.identity is None:
            return ConnectionResult.problem("no user is connected")
        return ConnectionResult.success("ready", user=self.context.identity.subject)

    def list_refs(self, query: RefQuery) -> RefPage:
        refs = [r for r in REFS if query.kind in (None, r.kind) and r.name.startswith(query.prefix)]
        return RefPage(refs=tuple(refs[: query.limit]))

    def list_commits(self, query: CommitQuery) -> CommitPage:
        ref = self._ref(query.ref)
        return CommitPage(commits=(Commit(sha=ref.sha, message="Initial commit"),)[: query.limit])

    def compare_refs(self, base: str, head: str) -> Comparison:
        same = self._ref(base).sha == self._ref(head).sha
        status = ComparisonStatus.IDENTICAL if same else ComparisonStatus.DIVERGED
        return Comparison(base=base, head=head, status=status)

    def list_environments(self) -> list[Environment]:
        return [Environment(name="staging"), Environment(name="production", protected=True)]

    def list_deployments(self, query: DeploymentQuery) -> list[Deployment]:
        store, prefix = self._store(), self._prefix()
        found = []
        for key in reversed(store.keys(prefix)):
            raw = store.get(key)
            if raw is not None:
                deployment = Deployment.from_dict(json.loads(raw))
                if query.environment in (None, deployment.environment):
                    found.append(deployment)
        return found[: query.limit]

    def trigger_deployment(self, request: DeploymentRequest) -> Deployment:
        ref = self._ref(request.ref)
        now = datetime.now(UTC)
        deployment = Deployment(
            id=now.strftime("%Y%m%d%H%M%S%f"),
            ref=ref.name,
            sha=ref.sha,
            environment=request.environment,
            status=DeploymentStatus.SUCCESS,
            created_at=now,
            updated_at=now,
            creator=self.context.identity.subject if self.context.identity else "",
            description=request.description,
        )
        self._store().set(self._prefix() + deployment.id, json.dumps(deployment.to_dict()))
        return deployment

    def get_deployment(self, deployment_id: str) -> Deployment:
        raw = self._store().get(self._prefix() + deployment_id)
        if raw is None:
            raise NotFound(f"deployment {deployment_id} does not exist")
        return Deployment.from_dict(json.loads(raw))
'''

IDENTITY_TESTS = '''\
"""The contract kit and the host's JSON call path, without a host (unittest or pytest)."""

import unittest

from imbi_plugin_sdk import Credentials, IdentityProviderUnavailable, check_handler_class
from imbi_plugin_sdk.testkit import (
    assert_contract,
    call_as_host,
    make_context,
    sample_authorization,
)

from $package.handler import $class_name

SETTINGS = {"base_url": "http://127.0.0.1:9", "exchange_path": "/token", "authorize_path": "/a"}


def make_handler() -> $class_name:
    context = make_context(service_settings=SETTINGS)
    return $class_name(context, Credentials(client_id="test-client"))


class ContractTest(unittest.TestCase):
    def test_manifest_is_valid(self) -> None:
        self.assertEqual(check_handler_class($class_name).slug, "$name")

    def test_contract(self) -> None:
        assert_contract(make_handler)

    def test_the_authorization_url_carries_pkce_through_the_hosts_json_contract(self) -> None:
        start, _pair = sample_authorization()
        redirect = call_as_host(
            $class_name,
            "begin_authorization",
            start,
            context=make_context(service_settings=SETTINGS),
            credentials={"client_id": "test-client"},
        )
        query = redirect.query()
        self.assertEqual(query["code_challenge"], start.code_challenge)
        self.assertEqual(query["code_challenge_method"], "S256")

    def test_a_provider_that_is_down_is_unavailable(self) -> None:
        with self.assertRaises(IdentityProviderUnavailable):
            make_handler().refresh("a-refresh-token")


if __name__ == "__main__":
    unittest.main()
'''

DEPLOYMENT_TESTS = '''\
"""The contract kit and the host's JSON call path, without a host (unittest or pytest)."""

import unittest

from imbi_plugin_sdk import Credentials, IdentityRequired, RefNotFound, check_handler_class
from imbi_plugin_sdk.testkit import (
    assert_contract,
    call_as_host,
    make_context,
    sample_deployment,
    sample_identity,
)

from $package.handler import $class_name


def make_handler() -> $class_name:
    return $class_name(make_context(identity=sample_identity()), Credentials())


class ContractTest(unittest.TestCase):
    def test_manifest_is_valid(self) -> None:
        self.assertEqual(check_handler_class($class_name).slug, "$name")

    def test_contract_with_a_deployment(self) -> None:
        assert_contract(make_handler, sample_deployment=sample_deployment())

    def test_a_deployment_as_the_user_through_the_hosts_json_contract(self) -> None:
        context = make_context(identity=sample_identity(subject="ada"))
        started = call_as_host(
            $class_name,
            "trigger_deployment",
            sample_deployment(),
            context=context,
        )
        self.assertEqual(started.creator, "ada")
        with self.assertRaises(RefNotFound):
            call_as_host(
                $class_name,
                "trigger_deployment",
                sample_deployment("nope"),
                context=context,
            )

    def test_without_a_connected_user_the_host_refuses(self) -> None:
        with self.assertRaises(IdentityRequired):
            call_as_host($class_name, "list_environments", context=make_context())


if __name__ == "__main__":
    unittest.main()
'''

ICON = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><title>$vendor_title</title>\
<rect x="3" y="3" width="18" height="18" rx="4" fill="#3b5bdb"/>\
<path d="M8 16l4-8 4 8" stroke="#fff" stroke-width="2" fill="none" stroke-linecap="round"/></svg>
"""

README = """\
# $distribution

An [Imbi](https://github.com/AWeber-Imbi) $plugin_type plugin for $vendor_title.
Entry point `$name`, handler `$package.handler:$class_name`,
written against `imbi-plugin-sdk$sdk_range` (plugin contract $api_version).

## Develop

```sh
python -m venv .venv && . .venv/bin/activate
pip install -e '.[test]'
pytest                 # or: python -m unittest discover -s tests
imbi-plugin check      # imports the entry points, validates manifests, runs the contract kit
imbi-plugin check --isolated   # the same calls in the platform's sandbox: declared hosts only
```

## Publish to a platform

Never install it into the platform's environment by hand. Build a wheel, sign it and publish
it to a plugin index (`imbi-plugin sign`, `imbi-plugin publish`); the platform's operator
follows the index and installs it verified (`manage.py plugin install $name`, or the
catalog), and it runs isolated in its own environment. See docs/plugin-authors.md,
*Publish to a signed index*.
"""

GITIGNORE = """\
__pycache__/
*.egg-info/
build/
dist/
.venv/
"""

WORKFLOW = """\
name: ci
on: [push, pull_request]
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.11"
      - run: pip install -e '.[test]'
      - run: pytest -q
      - run: imbi-plugin check
"""
