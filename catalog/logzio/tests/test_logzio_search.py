"""Searching the Logz.io emulator: contract, paging, typed filters, hits, regions."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from importlib import metadata, resources
from typing import Any

import pytest
from imbi_plugin_logzio.query import escape_simple_query, escape_wildcard, level_terms
from imbi_plugin_logzio.search import REGION_URLS, LogzioLogs, base_url_for
from imbi_plugin_sdk import (
    CursorExpired,
    FilterOp,
    InvalidInput,
    LogFilter,
    LogLevel,
    LogQuery,
    check_handler_class,
)
from imbi_plugin_sdk.testkit import assert_contract


def _query(**kwargs: Any) -> LogQuery:
    return LogQuery.ending_now(timedelta(hours=1), **kwargs)


def _seqs(result: Any) -> list[int]:
    return [entry.fields["seq"] for entry in result.entries]


def _search_all(plugin: LogzioLogs, query: LogQuery) -> tuple[list[int], int]:
    """Every seq over all pages, and how many pages it took."""
    seen: list[int] = []
    pages = 0
    while True:
        result = plugin.search(query)
        pages += 1
        seen.extend(_seqs(result))
        if result.next_cursor is None:
            return seen, pages
        assert len(result.entries) == query.limit, "a cursor only follows a full page"
        query = dataclasses.replace(query, cursor=result.next_cursor)
        assert pages < 50, "paging does not terminate"


# --------------------------------------------------------------------------- contract


def test_contract_with_paging(logzio: Any, make_plugin: Any) -> None:
    assert_contract(lambda: make_plugin(), sample_query=_query(limit=5))
    # the kit ran test_connection, a first page, the page behind next_cursor, then paged on
    # with the window moved a second per page (the cursor contract) until no cursor came back
    assert len(logzio.bodies) > 3
    assert logzio.bodies[0]["size"] == 1
    assert all("search_after" in body for body in logzio.bodies[2:])
    ranges = [body["query"]["bool"]["filter"][0]["range"] for body in logzio.bodies[3:]]
    assert len({json.dumps(r, sort_keys=True) for r in ranges}) == len(ranges)  # moved each time


def test_entry_point_and_manifest() -> None:
    (entry,) = [ep for ep in metadata.entry_points(group="imbi.plugins") if ep.name == "logzio"]
    assert entry.value == "imbi_plugin_logzio.search:LogzioLogs"
    assert entry.load() is LogzioLogs
    manifest = check_handler_class(LogzioLogs)
    assert (manifest.slug, manifest.version, manifest.api_version) == ("logzio", "0.1.0", "1.1")
    assert manifest.permissions.operator_host_settings == ("base_url",)
    assert manifest.publisher == "Imbi"
    assert [c.name for c in manifest.credentials] == ["api_token"]
    assert manifest.credentials[0].secret and manifest.credentials[0].required
    assert {o.name: o.default for o in manifest.options} == {
        "query_prefix": "",
        "level_field": "level",
        "message_field": "message",
    }
    template = manifest.service_template
    assert template is not None
    assert (template.vendor, template.base_url) == ("logzio", "https://api.logz.io")
    for url in REGION_URLS.values():
        assert manifest.permissions.allows_host(url.removeprefix("https://"), 443)
    package, _, name = template.icon.partition(":")
    svg = resources.files(package).joinpath(name).read_text()
    assert svg.startswith("<svg") and "<script" not in svg


# --------------------------------------------------------------------------- paging


@pytest.mark.parametrize("limit", [1, 5, 7, 25, 1000])
def test_paging_returns_every_document_exactly_once(
    logzio: Any, make_plugin: Any, limit: int
) -> None:
    seen, pages = _search_all(make_plugin(), _query(limit=limit))
    assert sorted(seen) == list(range(25)), "every document, none twice"
    assert len(seen) == 25
    # a trailing empty page only when the last one happened to be full
    assert pages == 25 // limit + 1
    # newest first; the three documents sharing a timestamp come in _id order (desc)
    stamp_of = {doc.source["seq"]: doc.timestamp for doc in logzio.docs}
    stamps = [stamp_of[seq] for seq in seen]
    assert stamps == sorted(stamps, reverse=True)
    assert [s for s in seen if s in (10, 11, 12)] == [12, 11, 10]
    assert all(body["size"] == limit for body in logzio.bodies)


def test_cursor_of_another_query_is_expired(logzio: Any, make_plugin: Any) -> None:
    plugin = make_plugin()
    query = _query(limit=5)
    first = plugin.search(query)
    assert first.next_cursor is not None
    requests = len(logzio.bodies)
    others = [
        dataclasses.replace(query, text="request"),
        dataclasses.replace(query, levels=(LogLevel.ERROR,)),
        dataclasses.replace(query, filters=(LogFilter(field="project", value="billing"),)),
    ]
    for other in others:
        with pytest.raises(CursorExpired):
            plugin.search(dataclasses.replace(other, cursor=first.next_cursor))
    # a moved window is the same search ("the last N minutes" recomputed): it pages on
    moved = dataclasses.replace(
        query,
        start=query.start + timedelta(seconds=30),
        end=query.end + timedelta(seconds=30),
        cursor=first.next_cursor,
    )
    for garbage in ("not-a-cursor", "e30", "eyJ2IjoxfQ", ""):
        with pytest.raises(CursorExpired):
            plugin.search(dataclasses.replace(query, cursor=garbage))
    assert len(logzio.bodies) == requests, "a stale cursor never reaches Logz.io"
    assert plugin.search(moved).entries
    # the same query with another page size may continue
    more = plugin.search(dataclasses.replace(query, limit=3, cursor=first.next_cursor))
    assert _seqs(more) and not set(_seqs(more)) & set(_seqs(first))


def test_cursor_tampering_with_the_query_hash_is_refused(make_plugin: Any) -> None:
    import base64

    plugin = make_plugin()
    query = _query(limit=2)
    cursor = plugin.search(query).next_cursor
    assert cursor is not None
    payload = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    payload["q"] = "0" * 24
    forged = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
    with pytest.raises(CursorExpired):
        plugin.search(dataclasses.replace(query, cursor=forged))


# --------------------------------------------------------------------------- body


def test_search_body_shape(logzio: Any, make_plugin: Any) -> None:
    start = datetime(2026, 1, 2, 3, 4, 5, 678_901, tzinfo=UTC)
    end = datetime(2026, 1, 2, 4, 4, 5, 999_999, tzinfo=UTC)
    query = LogQuery(
        start=start,
        end=end,
        limit=50,
        text='timeout "db"',
        levels=(LogLevel.WARNING,),
        filters=(
            LogFilter(field="url", op=FilterOp.EQ, value="http://svc:8080/x"),
            LogFilter(field="project", op=FilterOp.NE, value="payments"),
            LogFilter(field="discount", op=FilterOp.CONTAINS, value="50*?"),
            LogFilter(field="kubernetes.pod", op=FilterOp.STARTS_WITH, value="web-"),
            LogFilter(field="level", op=FilterOp.REGEX, value="(warn|WARN).*"),
            LogFilter(field="note", op=FilterOp.EXISTS),
        ),
    )
    make_plugin(
        template="project:billing", options={"query_prefix": "env:prod", "message_field": "msg"}
    ).search(query)
    (body,) = logzio.bodies
    assert body == {
        "query": {
            "bool": {
                "must": [
                    {"query_string": {"query": "env:prod", "default_operator": "AND"}},
                    {"query_string": {"query": "project:billing", "default_operator": "AND"}},
                    {
                        "simple_query_string": {
                            "query": 'timeout \\"db\\"',
                            "fields": ["msg"],
                            "default_operator": "and",
                        }
                    },
                ],
                "must_not": [{"match_phrase": {"project": "payments"}}],
                "filter": [
                    {
                        "range": {
                            "@timestamp": {
                                # start rounded up, end down: hits are always in range
                                "gte": "2026-01-02T03:04:05.679Z",
                                "lte": "2026-01-02T04:04:05.999Z",
                            }
                        }
                    },
                    {"terms": {"level": ["WARN", "WARNING", "Warn", "Warning", "warn", "warning"]}},
                    {"match_phrase": {"url": "http://svc:8080/x"}},
                    {"wildcard": {"discount": {"value": "*50\\*\\?*"}}},
                    {"prefix": {"kubernetes.pod": {"value": "web-"}}},
                    {"regexp": {"level": {"value": "(warn|WARN).*"}}},
                    {"exists": {"field": "note"}},
                ],
            }
        },
        "size": 50,
        "sort": [{"@timestamp": "desc"}, {"_id": "desc"}],
    }


def test_escaping_helpers() -> None:
    assert escape_wildcard(r"a*b?c\d") == r"a\*b\?c\\d"
    assert escape_wildcard("plain: text") == "plain: text"
    assert escape_simple_query('a+b|c-d "e" (f) ~g* h\\') == r"a\+b\|c\-d \"e\" \(f\) \~g\* h\\"
    assert level_terms((LogLevel.CRITICAL,)) == sorted(
        {"critical", "CRITICAL", "Critical", "fatal", "FATAL", "Fatal", "crit", "CRIT", "Crit"}
    )


# --------------------------------------------------------------------------- filters


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        # a value with colons and slashes: one typed clause, no Lucene escaping needed
        (LogFilter(field="url", value="http://svc:8080/v1/items/3"), {3, 8, 13, 18, 23}),
        # a value with quotes and a colon
        (LogFilter(field="note", value='user said "hello: world"'), {0, 8, 16, 24}),
        (LogFilter(field="project", op=FilterOp.NE, value="billing"), set(range(1, 25, 2))),
        # the * is literal: unescaped, "50*" would also match "50%off"
        (LogFilter(field="discount", op=FilterOp.CONTAINS, value="50*"), {3}),
        (LogFilter(field="discount", op=FilterOp.CONTAINS, value="%o"), {4}),
        (
            LogFilter(field="kubernetes.pod", op=FilterOp.STARTS_WITH, value="web-2"),
            {2, 5, 8, 11, 14, 17, 20, 23},
        ),
        (LogFilter(field="message", op=FilterOp.REGEX, value="request 1[0-2] .*"), {10, 11, 12}),
        (LogFilter(field="discount", op=FilterOp.EXISTS), {3, 4}),
    ],
    ids=["eq-colons", "eq-quotes", "ne", "contains-star", "contains", "prefix", "regex", "exists"],
)
def test_typed_filters_select_the_right_documents(
    logzio: Any, make_plugin: Any, flt: LogFilter, expected: set[int]
) -> None:
    result = make_plugin().search(_query(filters=(flt,), limit=100))
    assert set(_seqs(result)) == expected
    clauses = logzio.bodies[0]["query"]["bool"]
    where = clauses["must_not"] if flt.op is FilterOp.NE else clauses["filter"][1:]
    assert len(where) == 1
    ((kind, spec),) = where[0].items()
    value = spec.get(flt.field) if kind == "match_phrase" else None
    if kind == "match_phrase":
        assert value == flt.value, "the raw value travels as JSON, not as Lucene"


def test_levels_match_every_spelling(make_plugin: Any) -> None:
    plugin = make_plugin()
    warnings = plugin.search(_query(levels=(LogLevel.WARNING,), limit=100))
    assert set(_seqs(warnings)) == {i for i in range(25) if i % 7 in (1, 5)}
    assert {entry.level for entry in warnings.entries} == {LogLevel.WARNING}
    errors = plugin.search(_query(levels=(LogLevel.ERROR, LogLevel.CRITICAL), limit=100))
    assert set(_seqs(errors)) == {i for i in range(25) if i % 7 in (2, 6)}


def test_free_text_searches_the_message_literally(logzio: Any, make_plugin: Any) -> None:
    logzio.add("doc-q", logzio.docs[0].timestamp, message='boom (code "E-1")', seq=99)
    plugin = make_plugin()
    assert _seqs(plugin.search(_query(text='(code "E-1")', limit=100))) == [99]
    found = plugin.search(_query(text="request items/4", limit=100))
    assert set(_seqs(found)) == {4, 9, 14, 19, 24}
    assert _seqs(plugin.search(_query(text="nothing-like-this", limit=100))) == []


def test_search_template_and_query_prefix_narrow_the_search(logzio: Any, make_plugin: Any) -> None:
    billing = make_plugin(template="project:billing").search(_query(limit=100))
    assert set(_seqs(billing)) == set(range(0, 25, 2))
    narrowed = make_plugin(
        template="project:billing", options={"query_prefix": 'url:"http://svc:8080/v1/items/0"'}
    ).search(_query(limit=100))
    assert set(_seqs(narrowed)) == {0, 10, 20}
    everything = make_plugin(template="  ", options={"query_prefix": ""}).search(_query(limit=100))
    assert len(everything.entries) == 25
    assert logzio.bodies[-1]["query"]["bool"]["must"] == []


def test_time_range_is_applied(logzio: Any, make_plugin: Any) -> None:
    first = logzio.docs[0].timestamp
    query = LogQuery(start=first + timedelta(seconds=30), end=first + timedelta(seconds=90))
    assert set(_seqs(make_plugin().search(query))) == {1, 2, 3}


# --------------------------------------------------------------------------- hits


def test_hits_become_entries(logzio: Any, make_plugin: Any) -> None:
    stamp = logzio.docs[0].timestamp
    odd = logzio.add("doc-x", stamp, msg="custom", log={"level": "ERR"}, seq=100, ratio=0.5)
    odd.source["@timestamp"] = (stamp + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S.%f+02:00")
    weird = logzio.add("doc-y", stamp, message={"structured": True}, level="loud", seq=101)
    weird.source["@timestamp"] = odd.millis  # epoch millis
    plain = make_plugin().search(_query(limit=100))
    by_seq = {entry.fields["seq"]: entry for entry in plain.entries}
    entry = by_seq[7]
    assert entry.timestamp == logzio.docs[7].timestamp and entry.timestamp.tzinfo is not None
    assert entry.message == "request 7 path=/v1/items/2"
    assert entry.level is LogLevel.INFO
    assert dict(entry.fields) == {
        "project": "payments",
        "url": "http://svc:8080/v1/items/2",
        "seq": 7,
        "kubernetes": {"pod": "web-1"},
    }
    assert by_seq[100].timestamp == stamp
    assert by_seq[101].timestamp == stamp
    assert by_seq[101].message == '{"structured":true}'
    assert by_seq[101].level is None and by_seq[101].fields["level"] == "loud"
    custom = make_plugin(options={"message_field": "msg", "level_field": "log.level"})
    entry = {e.fields["seq"]: e for e in custom.search(_query(limit=100)).entries}[100]
    assert (entry.message, entry.level) == ("custom", LogLevel.ERROR)
    assert entry.fields["ratio"] == 0.5
    json.dumps(plain.to_dict())


def test_next_cursor_only_after_a_full_page(make_plugin: Any) -> None:
    plugin = make_plugin()
    assert plugin.search(_query(limit=25)).next_cursor is not None
    assert plugin.search(_query(limit=26)).next_cursor is None
    assert plugin.search(_query(limit=5, text="nothing-matches")).next_cursor is None


# --------------------------------------------------------------------------- regions


@pytest.mark.parametrize(
    ("settings", "url"),
    [
        ({}, "https://api.logz.io"),
        ({"region": "us"}, "https://api.logz.io"),
        ({"region": "eu"}, "https://api-eu.logz.io"),
        ({"region": "UK"}, "https://api-uk.logz.io"),
        ({"region": "au"}, "https://api-au.logz.io"),
        ({"region": "ca"}, "https://api-ca.logz.io"),
        ({"region": " wa "}, "https://api-wa.logz.io"),
        ({"region": "eu", "base_url": "https://logz.internal:8443/"}, "https://logz.internal:8443"),
        ({"region": "eu", "base_url": ""}, "https://api-eu.logz.io"),
    ],
)
def test_region_selects_the_base_url(settings: dict[str, Any], url: str) -> None:
    assert base_url_for(settings) == url


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"region": "mars"}, "region"),
        ({"region": 3}, "region"),
        ({"base_url": "ftp://x"}, "base_url"),
    ],
)
def test_bad_region_or_base_url_is_invalid_input(
    make_plugin: Any, settings: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidInput) as caught:
        base_url_for(settings)
    assert field in caught.value.fields
    with pytest.raises(InvalidInput):
        make_plugin(settings=settings).search(_query())
    assert not make_plugin(settings=settings).test_connection().ok


def test_region_setting_reaches_the_emulator_only_through_base_url(
    logzio: Any, make_plugin: Any
) -> None:
    # base_url wins over region, so a region never redirects a configured endpoint
    plugin = make_plugin(settings={"region": "eu", "base_url": logzio.url})
    assert len(plugin.search(_query(limit=100)).entries) == 25
