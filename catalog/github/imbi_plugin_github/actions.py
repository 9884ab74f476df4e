"""GitHub Actions configuration: a repository's Actions variables and secrets as keys.

* Variables are readable: listed with ``data_type`` string and returned with values.
* Secrets are write-only on GitHub: listed with ``data_type`` secret, returned by
  ``get_values`` as masked values (``value`` is ``None``), never read back. Writing one
  seals it with the repository's public key (libsodium sealed box) before upload.
* One key is either a variable or a secret: writing a secret removes a variable of the
  same name and vice versa, so a key flips between the two when its secret flag does.
* GitHub names are case-insensitive and stored in upper case; the plugin upper-cases
  names on write and matches them case-insensitively, returning the stored spelling.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from imbi_plugin_sdk import (
    ConfigKey,
    ConfigurationPlugin,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    CredentialField,
    CredentialsInvalid,
    CredentialsMissing,
    DataType,
    Hints,
    InvalidInput,
    NotFound,
    OptionField,
    Permissions,
    PluginError,
    PluginManifest,
    PluginType,
    ServiceTemplate,
    UpstreamUnavailable,
)
from nacl.exceptions import CryptoError
from nacl.public import PublicKey, SealedBox

from . import __version__
from ._http import GitHubClient

DEFAULT_BASE_URL = "https://api.github.com"
VARIABLES_PER_PAGE = 30  # GitHub's maximum for the variables list
SECRETS_PER_PAGE = 100  # GitHub's maximum for the secrets list
MAX_PAGES = 100

_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_REPOSITORY_RE = re.compile(
    r"^(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))/(?P<name>[A-Za-z0-9._-]{1,100})$"
)
_URL_RE = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")


def github_name(key: str) -> str:
    """``key`` as GitHub stores it (upper case), or ``InvalidInput`` naming the rule broken.

    GitHub: letters, digits and ``_`` only, not starting with a digit, not starting with
    the reserved ``GITHUB_`` prefix.
    """
    if not isinstance(key, str) or not _NAME_RE.match(key):
        raise InvalidInput(
            f"{key!r} is not a valid GitHub Actions name",
            fields={"key": "use letters, digits and _ only, not starting with a digit"},
        )
    name = key.upper()
    if name.startswith("GITHUB_"):
        raise InvalidInput(
            f"{key!r} uses the reserved GITHUB_ prefix",
            fields={"key": "names must not start with GITHUB_"},
        )
    return name


def parse_repository(text: str) -> str:
    """``owner/repo`` checked against GitHub's naming rules, or ``InvalidInput``."""
    match = _REPOSITORY_RE.match(text.strip())
    if match is None or match["name"] in (".", ".."):
        raise InvalidInput(
            f"{text!r} is not a GitHub repository (expected owner/repo)",
            fields={"repository": "expected owner/repo"},
        )
    return f"{match['owner']}/{match['name']}"


def base_url_for(settings: Mapping[str, object]) -> str:
    """``base_url`` from the service settings (GitHub Enterprise), else api.github.com."""
    explicit = settings.get("base_url")
    if explicit is None or explicit == "":
        return DEFAULT_BASE_URL
    if not isinstance(explicit, str) or not _URL_RE.match(explicit.strip()):
        raise InvalidInput(
            "the service's base_url is not an http(s) URL",
            fields={"base_url": "expected an http(s) URL, e.g. https://ghe.example.com/api/v3"},
        )
    return explicit.strip().rstrip("/")


def seal(public_key_b64: str, plaintext: str) -> str:
    """``plaintext`` encrypted for GitHub: a libsodium sealed box, base64 encoded."""
    try:
        key = PublicKey(base64.b64decode(public_key_b64, validate=True))
    except (binascii.Error, ValueError, TypeError, CryptoError):
        raise UpstreamUnavailable("GitHub returned an unusable repository public key") from None
    return base64.b64encode(SealedBox(key).encrypt(plaintext.encode())).decode()


def as_text(write: ConfigWrite) -> str:
    """The string GitHub stores: strings as-is, everything else JSON-encoded."""
    if isinstance(write.value, str):
        return write.value
    return json.dumps(write.value, separators=(",", ":"), ensure_ascii=False)


def _timestamp(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _named(items: list[Any]) -> list[Mapping[str, Any]]:
    """Items that are objects with a string ``name`` a ConfigKey accepts."""
    return [
        item
        for item in items
        if isinstance(item, Mapping) and isinstance(item.get("name"), str) and item["name"]
    ]


class GitHubActionsConfiguration(ConfigurationPlugin):
    """A repository's GitHub Actions variables (read/write) and secrets (write-only)."""

    manifest = PluginManifest(
        slug="github-actions",
        name="GitHub Actions variables and secrets",
        description=(
            "Read and write a repository's GitHub Actions variables, and write its Actions "
            "secrets (sealed with the repository's public key; never read back)."
        ),
        version=__version__,
        api_version="1.0",
        plugin_type=PluginType.CONFIGURATION,
        publisher="Imbi",
        options=(
            OptionField(
                name="repository",
                label="Repository",
                default="",
                help=(
                    "owner/repo, when the binding's search template does not name it "
                    "(the template, e.g. acme/${project}, wins)."
                ),
            ),
        ),
        credentials=(
            CredentialField(
                name="token",
                label="Token",
                secret=True,
                required=True,
                help=(
                    "A GitHub token that may manage the repository's Actions variables and "
                    "secrets (fine-grained: Variables and Secrets read/write)."
                ),
            ),
        ),
        permissions=Permissions(network_hosts=("api.github.com",)),
        hints=Hints(),
        service_template=ServiceTemplate(
            vendor="github",
            name="GitHub",
            category="source-control",
            base_url=DEFAULT_BASE_URL,
            links=(
                ("Actions variables API", "https://docs.github.com/en/rest/actions/variables"),
                ("Actions secrets API", "https://docs.github.com/en/rest/actions/secrets"),
                ("Authentication", "https://docs.github.com/en/rest/authentication"),
            ),
            icon="imbi_plugin_github:icon.svg",
        ),
    )

    # ----------------------------------------------------------------- plumbing

    def _repository(self) -> str:
        template = self.context.search_template.strip()
        if template:
            return parse_repository(template)
        for source in (self.context.options, self.context.service_settings):
            value = source.get("repository")
            if isinstance(value, str) and value.strip():
                return parse_repository(value)
        raise InvalidInput(
            "no repository: set the binding's search template (owner/repo) or the "
            "repository option",
            fields={"repository": "is required"},
        )

    def _client(self) -> GitHubClient:
        token = self.credentials.get("token", "")
        if not token:
            raise CredentialsMissing("the GitHub token credential is not set")
        return GitHubClient(
            base_url_for(self.context.service_settings),
            token,
            self.context.timeout,
            user_agent=f"imbi-plugin-github/{__version__}",
        )

    def _paged(
        self, github: GitHubClient, path: str, item_key: str, per_page: int, what: str
    ) -> list[Mapping[str, Any]]:
        items: list[Any] = []
        for page in range(1, MAX_PAGES + 1):
            data = github.get_json(path, what=what, params={"per_page": per_page, "page": page})
            batch = data.get(item_key)
            if not isinstance(batch, list):
                raise UpstreamUnavailable(f"GitHub answered {what} without {item_key}")
            items.extend(batch)
            total = data.get("total_count")
            if len(batch) < per_page or (isinstance(total, int) and len(items) >= total):
                break
        else:
            self.context.logger.warning("%s: stopped after %d pages", what, MAX_PAGES)
        return _named(items)

    def _variables(self, github: GitHubClient, repo: str) -> list[Mapping[str, Any]]:
        return self._paged(
            github,
            f"/repos/{repo}/actions/variables",
            "variables",
            VARIABLES_PER_PAGE,
            f"the Actions variables of {repo}",
        )

    def _secrets(self, github: GitHubClient, repo: str) -> list[Mapping[str, Any]]:
        return self._paged(
            github,
            f"/repos/{repo}/actions/secrets",
            "secrets",
            SECRETS_PER_PAGE,
            f"the Actions secrets of {repo}",
        )

    def _both(
        self, github: GitHubClient, repo: str
    ) -> tuple[list[Mapping[str, Any]], list[Mapping[str, Any]]]:
        """Variables, and the secrets whose name is not also a variable's."""
        variables = self._variables(github, repo)
        taken = {item["name"].upper() for item in variables}
        secrets = []
        for item in self._secrets(github, repo):
            if item["name"].upper() in taken:
                self.context.logger.warning(
                    "%s has a variable and a secret named %s; showing the variable",
                    repo,
                    item["name"],
                )
            else:
                secrets.append(item)
        return variables, secrets

    # ----------------------------------------------------------------- handler

    def test_connection(self) -> ConnectionResult:
        repo = ""
        try:
            repo = self._repository()
            with self._client() as github:
                data = github.get_json(f"/repos/{repo}", what=f"repository {repo}")
                github.get_json(
                    f"/repos/{repo}/actions/variables",
                    what=f"the Actions variables of {repo}",
                    params={"per_page": 1, "page": 1},
                )
        except CredentialsMissing:
            return ConnectionResult.problem("the GitHub token is missing")
        except CredentialsInvalid as exc:
            if "HTTP 401" in exc.detail:
                return ConnectionResult.problem("token rejected by GitHub")
            return ConnectionResult.problem(exc.detail)
        except NotFound:
            return ConnectionResult.problem(
                "repository not found, or the token cannot see it", repository=repo
            )
        except PluginError as exc:
            return ConnectionResult.problem(exc.detail or exc.code)
        details = {"repository": str(data.get("full_name") or repo)}
        if isinstance(data.get("visibility"), str):
            details["visibility"] = data["visibility"]
        return ConnectionResult.success("repository and its Actions variables reachable", **details)

    def list_keys(self) -> list[ConfigKey]:
        repo = self._repository()
        with self._client() as github:
            variables, secrets = self._both(github, repo)
        keys = [
            ConfigKey(
                key=item["name"],
                data_type=DataType.STRING,
                secret=False,
                last_modified=_timestamp(item.get("updated_at")),
            )
            for item in variables
        ]
        keys += [
            ConfigKey(
                key=item["name"],
                data_type=DataType.SECRET,
                secret=True,
                last_modified=_timestamp(item.get("updated_at")),
            )
            for item in secrets
        ]
        return sorted(keys, key=lambda key: key.key)

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        """Variables with their values; secrets masked (value ``None``), never read back."""
        wanted = None if keys is None else {key.upper() for key in keys}
        if wanted is not None and not wanted:
            return []
        repo = self._repository()
        with self._client() as github:
            variables, secrets = self._both(github, repo)
        values = [
            ConfigValue(
                key=item["name"],
                data_type=DataType.STRING,
                value=item.get("value") if isinstance(item.get("value"), str) else None,
                secret=False,
                last_modified=_timestamp(item.get("updated_at")),
            )
            for item in variables
            if wanted is None or item["name"].upper() in wanted
        ]
        values += [
            ConfigValue(
                key=item["name"],
                data_type=DataType.SECRET,
                value=None,
                secret=True,
                last_modified=_timestamp(item.get("updated_at")),
            )
            for item in secrets
            if wanted is None or item["name"].upper() in wanted
        ]
        return sorted(values, key=lambda value: value.key)

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        name = github_name(key)
        repo = self._repository()
        text = as_text(value)
        with self._client() as github:
            if value.secret or value.data_type is DataType.SECRET:
                self._put_secret(github, repo, name, text)
                github.request(
                    "DELETE",
                    f"/repos/{repo}/actions/variables/{name}",
                    what=f"variable {name}",
                    missing_ok=True,
                )
                return ConfigKey(
                    key=name, data_type=DataType.SECRET, secret=True, last_modified=_now()
                )
            body = {"name": name, "value": text}
            variable = f"variable {name} of {repo}"
            updated = github.request(
                "PATCH",
                f"/repos/{repo}/actions/variables/{name}",
                what=variable,
                body=body,
                missing_ok=True,
            )
            if updated is None:  # not there yet
                github.request("POST", f"/repos/{repo}/actions/variables", what=variable, body=body)
            github.request(
                "DELETE",
                f"/repos/{repo}/actions/secrets/{name}",
                what=f"secret {name}",
                missing_ok=True,
            )
        return ConfigKey(key=name, data_type=DataType.STRING, secret=False, last_modified=_now())

    def _put_secret(self, github: GitHubClient, repo: str, name: str, plaintext: str) -> None:
        public = github.get_json(
            f"/repos/{repo}/actions/secrets/public-key", what=f"the public key of {repo}"
        )
        key_id, key = public.get("key_id"), public.get("key")
        if not isinstance(key_id, str | int) or not isinstance(key, str):
            raise UpstreamUnavailable("GitHub returned an unusable repository public key")
        github.request(
            "PUT",
            f"/repos/{repo}/actions/secrets/{name}",
            what=f"secret {name} of {repo}",
            body={"encrypted_value": seal(key, plaintext), "key_id": str(key_id)},
        )

    def delete_key(self, key: str) -> None:
        """Delete the variable and the secret named ``key``; missing ones are fine."""
        try:
            name = github_name(key)
        except InvalidInput:
            return  # GitHub cannot hold such a name: nothing to delete
        repo = self._repository()
        with self._client() as github:
            for kind in ("variables", "secrets"):
                github.request(
                    "DELETE",
                    f"/repos/{repo}/actions/{kind}/{name}",
                    what=f"{kind[:-1]} {name} of {repo}",
                    missing_ok=True,
                )


def _now() -> datetime:
    return datetime.now(UTC)


__all__ = [
    "DEFAULT_BASE_URL",
    "GitHubActionsConfiguration",
    "as_text",
    "base_url_for",
    "github_name",
    "parse_repository",
    "seal",
]
