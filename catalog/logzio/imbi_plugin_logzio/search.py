"""The Logz.io logs handler: a project's Logs tab over ``POST {base_url}/v1/search``."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from imbi_plugin_sdk import (
    ConnectionResult,
    CredentialField,
    CredentialsInvalid,
    CredentialsMissing,
    Hints,
    InvalidInput,
    LogEntry,
    LogQuery,
    LogResult,
    LogsPlugin,
    OptionField,
    Permissions,
    PluginError,
    PluginManifest,
    PluginType,
    ServiceTemplate,
    UpstreamUnavailable,
)

from . import __version__
from ._http import post_json
from .query import (
    SORT,
    TIMESTAMP_FIELD,
    Fields,
    build_body,
    encode_cursor,
    es_time,
    fingerprint,
    json_safe,
    lookup,
    parse_level,
    parse_timestamp,
)

REGION_URLS: Mapping[str, str] = {
    "us": "https://api.logz.io",
    "eu": "https://api-eu.logz.io",
    "uk": "https://api-uk.logz.io",
    "au": "https://api-au.logz.io",
    "ca": "https://api-ca.logz.io",
    "wa": "https://api-wa.logz.io",
}
"""Logz.io API host per account region (the region code shown in Logz.io settings)."""

DEFAULT_REGION = "us"
DEFAULT_BASE_URL = REGION_URLS[DEFAULT_REGION]
SEARCH_PATH = "/v1/search"
TOKEN_HEADER = "X-API-TOKEN"  # noqa: S105 - a header name, not a secret

NETWORK_HOSTS = tuple(str(urlsplit(url).hostname) for url in REGION_URLS.values())

_URL_RE = re.compile(r"^https?://[^\s/?#]+(/[^\s?#]*)?$")


def base_url_for(settings: Mapping[str, object]) -> str:
    """The API base URL: ``base_url`` when set, else the host of ``region`` (default us)."""
    explicit = settings.get("base_url")
    if explicit is not None and explicit != "":
        if not isinstance(explicit, str) or not _URL_RE.match(explicit.strip()):
            raise InvalidInput(
                "the service's base_url is not an http(s) URL",
                fields={"base_url": "expected an http(s) URL"},
            )
        return explicit.strip().rstrip("/")
    region = settings.get("region") or DEFAULT_REGION
    code = region.strip().lower() if isinstance(region, str) else ""
    if code not in REGION_URLS:
        allowed = ", ".join(REGION_URLS)
        raise InvalidInput(
            f"unknown Logz.io region {region!r}; use one of {allowed}",
            fields={"region": f"must be one of {allowed}"},
        )
    return REGION_URLS[code]


SERVICE_TEMPLATE = ServiceTemplate(
    vendor="logzio",
    name="Logz.io",
    category="logs",
    base_url=DEFAULT_BASE_URL,
    links=(
        ("Search API", "https://api-docs.logz.io/docs/logz/search-logs"),
        (
            "API tokens",
            "https://docs.logz.io/docs/user-guide/admin/authentication-tokens/api-tokens/",
        ),
        ("Regions", "https://docs.logz.io/docs/user-guide/admin/hosting-regions/account-region/"),
    ),
    icon="imbi_plugin_logzio:icon.svg",
    settings={"region": DEFAULT_REGION},
    setting_fields=(
        OptionField(
            name="region",
            label="Account region",
            choices=tuple(REGION_URLS),
            default=DEFAULT_REGION,
            help="The region code of the Logz.io account (Settings > Manage accounts).",
        ),
        OptionField(
            name="base_url",
            label="API base URL",
            default="",
            pattern=r"https?://[^\s/?#]+(:\d+)?/?",
            pattern_help="http(s)://host[:port]",
            help="Overrides the region's API host (a proxy or a private listener); blank: the "
            "region's. A loopback or link-local address, such as a local emulator's, is "
            "refused: the platform sends credentials there only in its test settings.",
        ),
    ),
)


class LogzioLogs(LogsPlugin):
    """Searches one Logz.io account; the binding's search template narrows it to a project.

    The search template is a Lucene query (``project:${project}``) and the ``query_prefix``
    option another one; both are ANDed with the user's typed filters, levels and text.
    """

    manifest = PluginManifest(
        slug="logzio",
        name="Logz.io logs",
        description=(
            "Search a project's logs in Logz.io: typed filters, levels, free text and "
            "cursor paging over the Logz.io Search API."
        ),
        version=__version__,
        api_version="1.1",
        plugin_type=PluginType.LOGS,
        publisher="Imbi",
        options=(
            OptionField(
                name="query_prefix",
                label="Query prefix",
                default="",
                help="Lucene query ANDed into every search, e.g. env:production.",
            ),
            OptionField(
                name="level_field",
                label="Level field",
                default="level",
                help="Document field holding the log level (log.level for ECS).",
            ),
            OptionField(
                name="message_field",
                label="Message field",
                default="message",
                help="Document field holding the log message; free text searches it.",
            ),
        ),
        credentials=(
            CredentialField(
                name="api_token",
                label="API token",
                secret=True,
                required=True,
                help="A Logz.io API token of the account to search (Settings > API tokens).",
            ),
        ),
        # base_url is operator-chosen for a private listener or proxy; the region-derived hosts
        # are the declared ones.
        permissions=Permissions(network_hosts=NETWORK_HOSTS, operator_host_settings=("base_url",)),
        hints=Hints(),
        service_template=SERVICE_TEMPLATE,
    )

    # ----------------------------------------------------------------- configuration

    def _token(self) -> str:
        token = self.credentials.get("api_token", "")
        if not token:
            raise CredentialsMissing("the Logz.io api_token credential is not set")
        return token

    def _option(self, name: str, default: str) -> str:
        value = self.context.options.get(name)
        return value.strip() if isinstance(value, str) and value.strip() else default

    def _fields(self) -> Fields:
        return Fields(
            level=self._option("level_field", "level"),
            message=self._option("message_field", "message"),
        )

    def _post(self, body: Mapping[str, Any]) -> Mapping[str, Any]:
        token = self._token()
        data = post_json(
            base_url_for(self.context.service_settings),
            SEARCH_PATH,
            body,
            headers={
                TOKEN_HEADER: token,
                "Accept": "application/json",
                "User-Agent": f"imbi-plugin-logzio/{__version__}",
            },
            timeout=self.context.timeout,
            secrets=(token,),
        )
        if not isinstance(data, Mapping) or not isinstance(data.get("hits"), Mapping):
            raise UpstreamUnavailable("Logz.io returned a search response without hits")
        return data

    # ----------------------------------------------------------------- handler

    def test_connection(self) -> ConnectionResult:
        end = datetime.now(UTC)
        body = {
            "query": {
                "bool": {
                    "must": [],
                    "must_not": [],
                    "filter": [
                        {
                            "range": {
                                TIMESTAMP_FIELD: {
                                    "gte": es_time(end - timedelta(minutes=5), round_up=True),
                                    "lte": es_time(end),
                                }
                            }
                        }
                    ],
                }
            },
            "size": 1,
            "sort": [SORT[0]],
        }
        try:
            data = self._post(body)
        except CredentialsMissing:
            return ConnectionResult.problem("the API token is missing")
        except CredentialsInvalid:
            return ConnectionResult.problem("token rejected by Logz.io")
        except PluginError as exc:
            return ConnectionResult.problem(exc.detail or exc.code)
        details = {"base_url": base_url_for(self.context.service_settings)}
        total = _total(data["hits"])
        if total is not None:
            details["hits_last_5_minutes"] = str(total)
        return ConnectionResult.success("Logz.io search API reachable", **details)

    def search(self, query: LogQuery) -> LogResult:
        fields = self._fields()
        body = build_body(
            query,
            fields=fields,
            search_template=self.context.search_template,
            query_prefix=self._option("query_prefix", ""),
        )
        hits = self._post(body)["hits"].get("hits")
        if not isinstance(hits, list):
            raise UpstreamUnavailable("Logz.io returned hits that are not a list")
        entries: list[LogEntry] = []
        skipped = outside = 0
        for hit in hits:
            entry = _entry(hit, fields)
            if entry is None:
                skipped += 1
            elif not query.start <= entry.timestamp <= query.end:
                outside += 1
            else:
                entries.append(entry)
        warnings = []
        if skipped:
            warnings.append(f"{skipped} hit(s) without a usable {TIMESTAMP_FIELD} were skipped")
        if outside:
            warnings.append(f"{outside} hit(s) outside the time range were dropped")
        next_cursor = None
        if hits and len(hits) >= body["size"]:
            last = hits[-1].get("sort") if isinstance(hits[-1], Mapping) else None
            if isinstance(last, list) and len(last) == len(SORT):
                next_cursor = encode_cursor(last, fingerprint(body["query"]))
            else:
                warnings.append("Logz.io returned no sort values; cannot page further")
        return LogResult(entries=tuple(entries), next_cursor=next_cursor, warnings=tuple(warnings))


def _total(hits: Mapping[str, Any]) -> int | None:
    """``hits.total`` as an int (Elasticsearch 6 gives an int, 7+ ``{"value": n}``)."""
    total = hits.get("total")
    if isinstance(total, Mapping):
        total = total.get("value")
    return total if isinstance(total, int) and not isinstance(total, bool) else None


def _entry(hit: object, fields: Fields) -> LogEntry | None:
    """One hit as a ``LogEntry``; ``None`` when it has no usable timestamp."""
    if not isinstance(hit, Mapping) or not isinstance(hit.get("_source"), Mapping):
        return None
    source: dict[str, Any] = dict(hit["_source"])
    timestamp = parse_timestamp(source.get(TIMESTAMP_FIELD), hit.get("sort"))
    if timestamp is None:
        return None
    rest = {key: value for key, value in source.items() if key != TIMESTAMP_FIELD}
    found, message = lookup(source, fields.message)
    if found and fields.message in rest:
        del rest[fields.message]
    if not isinstance(message, str):
        message = "" if message is None else _compact(message)
    found, raw_level = lookup(source, fields.level)
    level = parse_level(raw_level) if found else None
    if level is not None and fields.level in rest:
        del rest[fields.level]  # an unknown spelling stays in fields
    safe = json_safe(rest)
    return LogEntry(
        timestamp=timestamp,
        message=message,
        level=level,
        fields=safe if isinstance(safe, dict) else {},
    )


def _compact(value: object) -> str:
    return json.dumps(json_safe(value), separators=(",", ":"), ensure_ascii=False)


__all__ = ["DEFAULT_BASE_URL", "REGION_URLS", "LogzioLogs", "base_url_for"]
