"""A local emulator of the Logz.io Search API (``POST /v1/search``) for the plugin tests.

It runs on a real HTTP server (pytest-httpserver on 127.0.0.1) and checks every request
the plugin makes: method, path, the ``X-API-TOKEN`` header, the JSON body shape. It
evaluates the Elasticsearch clauses the plugin emits against a fixture set of documents
(refusing any clause it does not know with HTTP 400), sorts by ``@timestamp`` then
``_id`` descending, honors ``size`` and ``search_after``, and answers like Logz.io:
``{"hits": {"total": {...}, "hits": [{"_id", "_source", "sort"}]}}``.

Anything the plugin does that Logz.io would not accept is also recorded in
``violations``; the fixture fails the test at teardown if any were recorded.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from imbi_plugin_logzio.search import LogzioLogs
from imbi_plugin_sdk import Credentials
from imbi_plugin_sdk.testkit import make_context
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

TOKEN = "lz-token-9f8e7d6c5b4a39281706f5e4d3c2b1a0"
ALLOWED_SORTS = (
    [{"@timestamp": "desc"}, {"_id": "desc"}],
    [{"@timestamp": "desc"}],
)


class BadQuery(Exception):
    """A clause or body the emulator (like Logz.io) refuses: HTTP 400."""


@dataclass
class Doc:
    id: str
    timestamp: datetime
    source: dict[str, Any]

    @property
    def millis(self) -> int:
        return int(self.timestamp.timestamp() * 1000)


def _lookup(source: dict[str, Any], name: str) -> tuple[bool, Any]:
    if name in source:
        return True, source[name]
    node: Any = source
    for part in name.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+", text.lower())


def _phrase(actual: str, phrase: str) -> bool:
    """match_phrase as the standard analyzer would do it: consecutive lowercase tokens."""
    want, have = _tokens(phrase), _tokens(actual)
    if not want:
        return actual == phrase
    return any(have[i : i + len(want)] == want for i in range(len(have) - len(want) + 1))


def _wildcard_regex(pattern: str) -> str:
    out, index = [], 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            out.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        out.append(".*" if char == "*" else "." if char == "?" else re.escape(char))
        index += 1
    return "".join(out)


def _parse_time(text: object) -> datetime:
    if not isinstance(text, str) or not re.fullmatch(
        r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text
    ):
        raise BadQuery(f"range bound {text!r} is not strict_date_optional_time with millis")
    return datetime.fromisoformat(text)


_LUCENE_TERM = re.compile(r'\s*([A-Za-z_@][\w.@-]*):("(?:[^"\\]|\\.)*"|[^\s"()]+)\s*')


def _lucene(query: str) -> list[tuple[str, str]]:
    """The tiny Lucene subset the tests use: ``field:value`` terms joined by AND/space."""
    terms, rest = [], query.strip()
    while rest:
        match = _LUCENE_TERM.match(rest)
        if match is None:
            raise BadQuery(f"query_string: cannot parse {rest!r}")
        value = match[2]
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        terms.append((match[1], value))
        rest = rest[match.end() :]
        if rest.startswith("AND "):
            rest = rest[4:]
    return terms


@dataclass
class LogzioEmulator:
    token: str = TOKEN
    docs: list[Doc] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    violations: list[str] = field(default_factory=list)
    delay: float = 0.0
    forced: tuple[int, dict[str, str], dict[str, Any]] | None = None
    url: str = ""

    def add(self, doc_id: str, timestamp: datetime, **source: Any) -> Doc:
        stamp = timestamp.astimezone(UTC)
        stamp = stamp.replace(microsecond=stamp.microsecond // 1000 * 1000)
        iso = stamp.strftime("%Y-%m-%dT%H:%M:%S.") + f"{stamp.microsecond // 1000:03d}Z"
        doc = Doc(doc_id, stamp, {"@timestamp": iso, **source})
        self.docs.append(doc)
        return doc

    # ----------------------------------------------------------------- http

    def __call__(self, request: Request) -> Response:
        deadline = time.monotonic() + self.delay
        while self.delay and time.monotonic() < deadline:  # teardown sets delay to 0
            time.sleep(0.02)
        if request.path != "/v1/search":
            self.violations.append(f"unexpected path {request.path}")
            return _json(404, {"message": "Not Found"})
        if request.method != "POST":
            self.violations.append(f"unexpected method {request.method}")
            return _json(405, {"message": "Method Not Allowed"})
        if "authorization" in request.headers:
            self.violations.append("sent an Authorization header; Logz.io uses X-API-TOKEN")
        if request.headers.get("X-API-TOKEN") != self.token:
            return _json(401, {"message": "Unauthorized: invalid API token"})
        if request.mimetype != "application/json":
            self.violations.append(f"content type {request.mimetype!r}")
            return _json(415, {"message": "Unsupported Media Type"})
        try:
            body = json.loads(request.get_data())
        except ValueError:
            self.violations.append("body is not JSON")
            return _json(400, {"message": "body is not JSON"})
        self.bodies.append(body)
        if self.forced is not None:
            status, headers, payload = self.forced
            return _json(status, payload, headers)
        try:
            return _json(200, self.search(body))
        except BadQuery as exc:
            self.violations.append(str(exc))
            return _json(400, {"message": f"Bad request: {exc}"})

    # ----------------------------------------------------------------- search

    def search(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise BadQuery("body must be an object")
        unknown = set(body) - {"query", "size", "sort", "search_after"}
        if unknown:
            raise BadQuery(f"unsupported body keys {sorted(unknown)}")
        size = body.get("size")
        if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= 1000:
            raise BadQuery(f"size {size!r} must be 1..1000")
        sort = body.get("sort")
        if sort not in ALLOWED_SORTS:
            raise BadQuery(f"unsupported sort {sort!r}")
        query = body.get("query")
        if not isinstance(query, dict) or set(query) != {"bool"}:
            raise BadQuery("query must be {'bool': ...}")
        clauses = query["bool"]
        if not isinstance(clauses, dict) or set(clauses) - {"must", "must_not", "filter"}:
            raise BadQuery("bool may hold must, must_not and filter only")
        positive = [*clauses.get("must", []), *clauses.get("filter", [])]
        negative = clauses.get("must_not", [])
        if not any("range" in clause for clause in clauses.get("filter", [])):
            raise BadQuery("no @timestamp range filter")
        matched = [
            doc
            for doc in self.docs
            if all(self.matches(c, doc) for c in positive)
            and not any(self.matches(c, doc) for c in negative)
        ]
        matched.sort(key=lambda doc: (doc.millis, doc.id), reverse=True)
        page = matched
        if "search_after" in body:
            after = body["search_after"]
            if not isinstance(after, list) or len(after) != len(sort):
                raise BadQuery("search_after must have one value per sort field")
            if not isinstance(after[0], int) or not isinstance(after[1], str):
                raise BadQuery("search_after must be [epoch_millis, _id]")
            page = [doc for doc in matched if (doc.millis, doc.id) < (after[0], after[1])]
        return {
            "hits": {
                "total": {"value": len(matched), "relation": "eq"},
                "max_score": None,
                "hits": [
                    {
                        "_index": "logzioCustomerIndex260101_v1",
                        "_type": "doc",
                        "_id": doc.id,
                        "_score": None,
                        "_source": doc.source,
                        "sort": [doc.millis, doc.id][: len(sort)],
                    }
                    for doc in page[:size]
                ],
            }
        }

    def matches(self, clause: Any, doc: Doc) -> bool:
        if not isinstance(clause, dict) or len(clause) != 1:
            raise BadQuery(f"malformed clause {clause!r}")
        ((kind, spec),) = clause.items()
        if kind == "range":
            bounds = spec.get("@timestamp")
            if not isinstance(bounds, dict) or set(bounds) != {"gte", "lte"}:
                raise BadQuery(f"range must be on @timestamp with gte/lte: {spec!r}")
            return _parse_time(bounds["gte"]) <= doc.timestamp <= _parse_time(bounds["lte"])
        if kind == "exists":
            found, value = _lookup(doc.source, spec["field"])
            return found and value is not None
        if kind == "query_string":
            if not isinstance(spec.get("query"), str):
                raise BadQuery("query_string needs a query")
            return all(
                (found := _lookup(doc.source, name))[0] and _phrase(str(found[1]), value)
                for name, value in _lucene(spec["query"])
            )
        if kind == "simple_query_string":
            if spec.get("default_operator") != "and" or not isinstance(spec.get("fields"), list):
                raise BadQuery(f"simple_query_string as the tests expect it: {spec!r}")
            words = [
                re.sub(r"\\(.)", r"\1", word)
                for word in re.split(r"(?<!\\)\s+", spec["query"].strip())
            ]
            texts = [str(_lookup(doc.source, name)[1] or "").lower() for name in spec["fields"]]
            return all(any(word.lower() in text for text in texts) for word in words)
        if not isinstance(spec, dict) or len(spec) != 1:
            raise BadQuery(f"malformed {kind} clause {spec!r}")
        ((name, want),) = spec.items()
        found, value = _lookup(doc.source, name)
        if kind == "terms":
            if not isinstance(want, list):
                raise BadQuery("terms needs a list")
            return found and value in want
        if kind == "match_phrase":
            if not isinstance(want, str):
                raise BadQuery("match_phrase value must be a string")
            return found and _phrase(str(value), want)
        if not isinstance(want, dict) or set(want) != {"value"}:
            raise BadQuery(f"{kind} must be {{field: {{'value': ...}}}}")
        if not found:
            return False
        text = str(value)
        if kind == "wildcard":
            return re.fullmatch(_wildcard_regex(want["value"]), text) is not None
        if kind == "prefix":
            return text.startswith(want["value"])
        if kind == "regexp":
            return re.fullmatch(want["value"], text) is not None
        raise BadQuery(f"unsupported clause {kind!r}")


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(payload), status=status, headers=headers, content_type="application/json"
    )


BASE_TIME = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=30)

LEVELS = ("info", "WARN", "error", "DEBUG", "Info", "warning", "FATAL")


def populate(emulator: LogzioEmulator, count: int = 25) -> None:
    """``count`` documents, one every 30 s from BASE_TIME; docs 10-12 share a timestamp."""
    for index in range(count):
        offset = 300 if index in (10, 11, 12) else index * 30
        source: dict[str, Any] = {
            "message": f"request {index} path=/v1/items/{index % 5}",
            "level": LEVELS[index % len(LEVELS)],
            "project": "billing" if index % 2 == 0 else "payments",
            "url": f"http://svc:8080/v1/items/{index % 5}",
            "seq": index,
            "kubernetes": {"pod": f"web-{index % 3}"},
        }
        if index % 4 == 0:
            source["note"] = 'user said "hello: world"' if index % 8 == 0 else "hello world"
        if index in (3, 4):
            source["discount"] = "50*off" if index == 3 else "50%off"
        emulator.add(f"doc-{index:03d}", BASE_TIME + timedelta(seconds=offset), **source)


@pytest.fixture(scope="module")
def logzio_server() -> Iterator[HTTPServer]:
    """One real HTTP server on 127.0.0.1 per test module (stopping one takes 0.5 s)."""
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    try:
        yield server
    finally:
        if server.is_running():
            server.stop()


@pytest.fixture
def logzio(logzio_server: HTTPServer) -> Iterator[LogzioEmulator]:
    """A fresh emulator with the fixture documents, serving every path of the server."""
    logzio_server.clear()
    emulator = LogzioEmulator(url=logzio_server.url_for("").rstrip("/"))
    populate(emulator)
    logzio_server.expect_request(re.compile(r"^/.*$")).respond_with_handler(emulator)
    yield emulator
    emulator.delay = 0
    logzio_server.clear()
    assert not emulator.violations, f"plugin requests Logz.io would refuse: {emulator.violations}"


@pytest.fixture(params=["in_process", "isolated"])
def runner_mode(request: Any) -> str:
    """Every test runs in-process and in a sandboxed runner (network: the emulator only)."""
    return str(request.param)


@pytest.fixture
def make_plugin(logzio: LogzioEmulator, runner_mode: str, run_isolated: Any) -> Any:
    """A factory of handlers pointed at the emulator (keyword overrides for the context)."""

    def make(
        *,
        token: str | None = TOKEN,
        options: dict[str, Any] | None = None,
        template: str = "",
        timeout: float = 5.0,
        settings: dict[str, Any] | None = None,
    ) -> LogzioLogs:
        context = make_context(
            service_settings={"base_url": logzio.url} if settings is None else settings,
            options=options or {},
            search_template=template,
            timeout=timeout,
        )
        credentials = Credentials(api_token=token) if token is not None else Credentials()
        handler = LogzioLogs(context, credentials)
        if runner_mode == "isolated":
            port = urlsplit(logzio.url).port
            return run_isolated(handler, network_hosts=(f"127.0.0.1:{port}",))
        return handler

    return make
