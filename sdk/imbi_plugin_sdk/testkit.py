"""Contract test kit: plugin authors run it against their own handler, without Django.

Owns ``run_contract`` (returns a ``ContractReport`` of every check and failure),
``assert_contract`` (pytest-friendly: raises ``AssertionError``), the fakes (``make_context``
with in-memory storage, in-memory project metadata (``MemoryProjectMetadata``,
``sample_project``, ``sample_projects``) and an optional ``MemoryLogSink``), the sample
builders for every request type (``sample_keys``, ``sample_write``, ``sample_query``,
``sample_call``) and
``call_as_host`` (one call exactly as the host makes it: Call JSON -> ``wire.execute`` ->
Reply JSON -> models).

Contract 1.3: ``sample_identity`` (a ``context.identity`` for plugins with
``requires_identity``: ``make_context(identity=sample_identity())``),
``sample_authorization`` (an ``AuthorizationStart`` and the PKCE pair behind it, as the host
makes them) and ``sample_deployment``; ``run_contract`` checks identity plugins
(``begin_authorization`` always; ``describe``/``refresh`` with ``sample_tokens`` /
``sample_refresh_token``) and deployment plugins (refs, commits, compare, environments,
deployments; a trigger and its status with ``sample_deployment``), and that a plugin with
``requires_identity`` is refused ``identity_required`` without one.

Example::

    def test_contract():
        assert_contract(
            lambda: MyPlugin(make_context(options={...}), Credentials(token="t")),
            sample_write=("contract-test-key", ConfigWrite(data_type="string", value="v")),
        )
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import uuid
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from typing import Any, NoReturn, Protocol

from .context import LogSink, MemoryKeyValueStore, PluginContext, sink_logger
from .deployment import (
    CommitPage,
    CommitQuery,
    Comparison,
    ComparisonStatus,
    Deployment,
    DeploymentQuery,
    DeploymentRequest,
    DeploymentStatus,
    Environment,
    RefPage,
    RefQuery,
)
from .errors import IdentityRequired, RefNotFound
from .identity import (
    AuthorizationRedirect,
    AuthorizationStart,
    CodeExchange,
    DeviceAuthorization,
    DeviceAuthorizationStart,
    IdentityContext,
    IdentityInfo,
    PkcePair,
    TokenRevocation,
    TokenSet,
    new_nonce,
    new_state,
)
from .interfaces import (
    ConfigurationPlugin,
    DeploymentPlugin,
    IdentityPlugin,
    LogsPlugin,
    PluginHandler,
    check_handler_class,
)
from .manifest import PluginManifest
from .projects import MemoryProjectMetadata, ProjectMetadata
from .results import encode_result, result_problem
from .types import (
    ConfigKey,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    DataType,
    FilterOp,
    Histogram,
    JSONValue,
    LogFilter,
    LogLevel,
    LogQuery,
    LogResult,
)
from .wire import METHODS, Call, Reply, WireError, execute

__all__ = [
    "ContractReport",
    "MemoryProjectMetadata",
    "assert_contract",
    "call_as_host",
    "make_context",
    "run_contract",
    "sample_authorization",
    "sample_call",
    "sample_deployment",
    "sample_identity",
    "sample_keys",
    "sample_project",
    "sample_projects",
    "sample_query",
    "sample_write",
]


class _Serializable(Protocol):
    def to_dict(self) -> dict[str, Any]: ...


@dataclasses.dataclass(slots=True)
class ContractReport:
    """The checks run and the failures found, each a short sentence."""

    handler: str = ""
    checks: list[str] = dataclasses.field(default_factory=list)
    failures: list[str] = dataclasses.field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def assert_ok(self) -> None:
        if self.failures:
            lines = "\n".join(f"  - {failure}" for failure in self.failures)
            raise AssertionError(
                f"{self.handler} failed {len(self.failures)} of {len(self.checks)} "
                f"contract checks:\n{lines}"
            )

    @contextlib.contextmanager
    def check(self, name: str) -> Iterator[None]:
        """Run one check; an ``AssertionError`` or any exception is recorded as a failure."""
        self.checks.append(name)
        try:
            yield
        except AssertionError as exc:
            self.failures.append(f"{name}: {exc}")
        except Exception as exc:
            self.failures.append(f"{name}: raised {type(exc).__name__}: {exc}")


def _fail(message: str) -> NoReturn:
    raise AssertionError(message)


def _expect(condition: bool, message: str) -> None:
    if not condition:
        _fail(message)


def _is_list_of(value: object, kind: type[Any], what: str) -> None:
    if not isinstance(value, list):
        _fail(f"{what} returned {type(value).__name__}, not a list")
    for item in value:
        _expect(isinstance(item, kind), f"{what} returned a {type(item).__name__} item")


def _round_trips(obj: _Serializable) -> None:
    """to_dict -> json.dumps -> json.loads -> from_dict gives an equal object."""
    data = json.loads(json.dumps(obj.to_dict()))
    back = type(obj).from_dict(data)  # type: ignore[attr-defined]
    _expect(back == obj, f"{type(obj).__name__} does not round-trip through JSON: {obj!r}")


def _crosses_wire(method: str, result: object) -> None:
    """The host's own checks: the result's type, its JSON Reply, and back to equal models."""
    problem = result_problem(method, result)
    _expect(problem is None, f"the host would refuse this {method} result: {problem}")
    try:
        text = Reply(result=encode_result(method, result)).to_json()
    except WireError as exc:
        _fail(f"the {method} result cannot cross the wire: {exc}")
    back = Reply.from_json(text).unwrap(method)
    _expect(back == result, f"the {method} result changes through the JSON Reply")


def make_context(*, log: LogSink | None = None, **overrides: Any) -> PluginContext:
    """A context for tests: organization ``contract-test``, in-memory storage and project
    metadata (``sample_projects()``: the current project and one other).

    Any ``PluginContext`` field can be overridden (``options``, ``search_template``,
    ``service_settings``, ``timeout``, ``storage``, ``projects``...). With ``log`` (a
    ``MemoryLogSink``), the plugin's log lines are kept there, as the host would receive them.
    """
    if log is not None:
        overrides.setdefault("logger", sink_logger("imbi.plugins.test", log))
    values: dict[str, Any] = {
        "organization": "contract-test",
        "project_id": 1,
        "project_slug": "contract-test-project",
        "project_type": "api",
        "storage": MemoryKeyValueStore(),
        "projects": sample_projects(),
    }
    values.update(overrides)
    return PluginContext(**values)


def sample_project(slug: str = "contract-test-project", **fields: Any) -> ProjectMetadata:
    """``ProjectMetadata`` of organization ``contract-test`` (any field can be overridden)."""
    values: dict[str, Any] = {
        "id": 1,
        "slug": slug,
        "name": slug.replace("-", " ").title(),
        "description": "A project of the contract kit.",
        "project_type": "api",
        "project_type_name": "API",
        "organization": "contract-test",
    }
    values.update(fields)
    return ProjectMetadata(**values)


def sample_projects() -> MemoryProjectMetadata:
    """The kit's project metadata: the current project, a sibling, and a project of another
    organization that ``get`` must not find."""
    return MemoryProjectMetadata(
        [
            sample_project(),
            sample_project("contract-test-sibling", id=2),
            sample_project("contract-test-foreign", id=3, organization="another-org"),
        ],
        current="contract-test-project",
    )


def sample_keys() -> list[str]:
    """Keys for ``get_values``: one likely to exist nowhere, in every backend's key syntax."""
    return [f"contract-test-{uuid.uuid4().hex[:12]}"]


def sample_write(
    data_type: DataType | str = DataType.STRING, value: JSONValue = None, *, secret: bool = False
) -> tuple[str, ConfigWrite]:
    """A ``(key, ConfigWrite)`` for ``set_value``; the value defaults to one of ``data_type``."""
    kind = DataType(data_type)
    defaults: dict[DataType, JSONValue] = {
        DataType.STRING: "contract-test-value",
        DataType.SECRET: "contract-test-secret-value",
        DataType.NUMBER: 42,
        DataType.BOOLEAN: True,
        DataType.JSON: {"contract": ["test", 1]},
    }
    chosen = defaults[kind] if value is None else value
    write = ConfigWrite(data_type=kind, value=chosen, secret=secret)
    return f"contract-test-{kind.value}", write


def sample_query(
    window: timedelta = timedelta(hours=1),
    *,
    text: str = "",
    filters: Mapping[str, str] | None = None,
    levels: tuple[LogLevel | str, ...] = (),
    limit: int = 100,
    cursor: str | None = None,
) -> LogQuery:
    """A ``LogQuery`` ending now; ``filters`` maps a field to a value it must equal."""
    return LogQuery.ending_now(
        window,
        text=text,
        filters=tuple(
            LogFilter(field=name, op=FilterOp.EQ, value=value)
            for name, value in (filters or {}).items()
        ),
        levels=tuple(LogLevel(level) for level in levels),
        limit=limit,
        cursor=cursor,
    )


SAMPLE_REDIRECT_URI = "https://imbi.example.com/identity/callback"
"""The redirect URI the kit's samples use (a host uses its own, from an allowlist)."""


def sample_identity(
    plugin: str = "contract-test-identity",
    *,
    subject: str = "contract-test-user",
    access_token: str = "contract-test-access-token",  # noqa: S107 - a test value
    scopes: tuple[str, ...] = ("openid",),
    claims: Mapping[str, Any] | None = None,
) -> IdentityContext:
    """A ``context.identity`` of one user, as the host hands it to a ``requires_identity``
    plugin (pass ``plugin=`` your manifest's ``requires_identity`` when it names one)."""
    return IdentityContext(
        plugin=plugin,
        subject=subject,
        access_token=access_token,
        scopes=scopes,
        claims=claims or {"sub": subject},
    )


def sample_authorization(
    redirect_uri: str = SAMPLE_REDIRECT_URI, *, scopes: tuple[str, ...] = ()
) -> tuple[AuthorizationStart, PkcePair]:
    """An ``AuthorizationStart`` with fresh state, nonce and PKCE challenge, and the pair
    (the host keeps ``pair.verifier`` for ``CodeExchange``)."""
    pair = PkcePair.generate()
    start = AuthorizationStart(
        redirect_uri=redirect_uri,
        state=new_state(),
        nonce=new_nonce(),
        code_challenge=pair.challenge,
        scopes=scopes,
    )
    return start, pair


def sample_deployment(ref: str = "main", environment: str = "contract-test") -> DeploymentRequest:
    """A ``DeploymentRequest`` of ``ref`` to ``environment``."""
    return DeploymentRequest(ref=ref, environment=environment, description="contract test")


def _sample_exchange() -> tuple[CodeExchange]:
    start, pair = sample_authorization()
    return (
        CodeExchange(
            code="contract-test-code",
            redirect_uri=start.redirect_uri,
            code_verifier=pair.verifier,
            nonce=start.nonce,
        ),
    )


_SAMPLE_ARGUMENTS: dict[str, Callable[[], tuple[Any, ...]]] = {
    "test_connection": lambda: (),
    "list_keys": lambda: (),
    "get_values": lambda: (sample_keys(),),
    "set_value": lambda: sample_write(),
    "delete_key": lambda: (sample_write()[0],),
    "search": lambda: (sample_query(),),
    "histogram": lambda: (sample_query(), 10),
    "begin_authorization": lambda: (sample_authorization()[0],),
    "exchange_code": _sample_exchange,
    "refresh": lambda: ("contract-test-refresh-token",),
    "revoke": lambda: (TokenRevocation(token="contract-test-refresh-token"),),  # noqa: S106
    "describe": lambda: (TokenSet(access_token="contract-test-access-token"),),  # noqa: S106
    "start_device_authorization": lambda: (DeviceAuthorizationStart(),),
    "poll_device_authorization": lambda: ("contract-test-device-code",),
    "list_refs": lambda: (RefQuery(),),
    "list_commits": lambda: (CommitQuery(ref="main"),),
    "compare_refs": lambda: ("main", "main"),
    "list_environments": lambda: (),
    "list_deployments": lambda: (DeploymentQuery(),),
    "trigger_deployment": lambda: (sample_deployment(),),
    "get_deployment": lambda: ("contract-test-deployment",),
}


def sample_call(
    method: str,
    *args: Any,
    entry_point: str = "contract-test",
    context: PluginContext | None = None,
    credentials: Mapping[str, str] | None = None,
) -> Call:
    """A wire ``Call`` of ``method``, with sample arguments unless ``args`` are given."""
    if method not in METHODS:
        raise ValueError(f"{method!r} is not a plugin method")
    arguments = args or _SAMPLE_ARGUMENTS[method]()
    return Call.build(
        entry_point,
        method,
        *arguments,
        context=context or make_context(storage=None),
        credentials=credentials or {},
    )


def call_as_host(
    handler_cls: type[PluginHandler],
    method: str,
    *args: Any,
    context: PluginContext | None = None,
    credentials: Mapping[str, str] | None = None,
    log: LogSink | None = None,
) -> Any:
    """Call ``method`` exactly as the host does: through the JSON Call/Reply contract.

    Returns the result models, or raises the ``PluginError`` the host would map to HTTP
    (``PluginFailed`` for a result the host refuses: wrong type, not JSON, too large).
    """
    context = context or make_context()
    call = sample_call(
        method,
        *args,
        entry_point=handler_cls.manifest.slug,
        context=context,
        credentials=credentials,
    )
    reply = execute(
        Call.from_json(call.to_json()),
        handler_cls,
        storage=context.storage,
        log=log,
        projects=context.projects,
    )
    return Reply.from_json(reply.to_json()).unwrap(method)


def run_contract(
    handler_factory: Callable[[], PluginHandler],
    *,
    sample_write: tuple[str, ConfigWrite] | None = None,
    sample_query: LogQuery | None = None,
    sample_tokens: TokenSet | None = None,
    sample_refresh_token: str | None = None,
    sample_deployment: DeploymentRequest | None = None,
) -> ContractReport:
    """Check a handler against the SDK contract; ``handler_factory`` makes a fresh one.

    ``sample_write`` (configuration) enables the write/delete checks: the key is created,
    read back and deleted, so use a key the backend may safely own. ``sample_tokens`` and
    ``sample_refresh_token`` (identity) enable the ``describe`` and ``refresh`` checks
    (tokens your test provider issued). ``sample_deployment`` (deployment) triggers that
    deployment and reads its status back: use a ref and environment that may be deployed.
    """
    report = ContractReport()
    try:
        handler = handler_factory()
    except Exception as exc:
        report.checks.append("construct")
        report.failures.append(f"construct: handler_factory raised {type(exc).__name__}: {exc}")
        return report
    report.handler = f"{type(handler).__module__}.{type(handler).__qualname__}"

    with report.check("manifest is valid and the class passes check_handler_class"):
        manifest = check_handler_class(type(handler))
        _expect(
            PluginManifest.from_dict(json.loads(json.dumps(manifest.to_dict()))) == manifest,
            "manifest does not round-trip through JSON",
        )
    if not report.passed:
        return report

    with report.check("test_connection returns a ConnectionResult"):
        result = handler.test_connection()
        _expect(isinstance(result, ConnectionResult), f"got {type(result).__name__}")
        _round_trips(result)
        _crosses_wire("test_connection", result)

    if handler.manifest.requires_identity:
        _check_identity_required(report, handler)
    if isinstance(handler, ConfigurationPlugin):
        _check_configuration(report, handler, sample_write)
    elif isinstance(handler, LogsPlugin):
        _check_logs(report, handler, sample_query or LogQuery.ending_now())
    elif isinstance(handler, IdentityPlugin):
        _check_identity(report, handler, sample_tokens, sample_refresh_token)
    elif isinstance(handler, DeploymentPlugin):
        _check_deployment(report, handler, sample_deployment)
    return report


def assert_contract(
    handler_factory: Callable[[], PluginHandler],
    *,
    sample_write: tuple[str, ConfigWrite] | None = None,
    sample_query: LogQuery | None = None,
    sample_tokens: TokenSet | None = None,
    sample_refresh_token: str | None = None,
    sample_deployment: DeploymentRequest | None = None,
) -> ContractReport:
    """``run_contract`` then ``assert_ok``: for use inside a pytest test."""
    report = run_contract(
        handler_factory,
        sample_write=sample_write,
        sample_query=sample_query,
        sample_tokens=sample_tokens,
        sample_refresh_token=sample_refresh_token,
        sample_deployment=sample_deployment,
    )
    report.assert_ok()
    return report


def _check_configuration(
    report: ContractReport,
    handler: ConfigurationPlugin,
    sample_write: tuple[str, ConfigWrite] | None,
) -> None:
    listed: list[str] = []
    missing = f"definitely-missing-key-{uuid.uuid4().hex}"

    with report.check("list_keys returns ConfigKeys, unique, JSON round trip"):
        keys = handler.list_keys()
        _is_list_of(keys, ConfigKey, "list_keys")
        _crosses_wire("list_keys", keys)
        listed = [item.key for item in keys]
        _expect(len(set(listed)) == len(listed), "list_keys returned duplicate keys")
        for item in keys:
            _round_trips(item)

    with report.check("get_values(None) returns ConfigValues for listed keys only"):
        values = handler.get_values(None)
        _is_list_of(values, ConfigValue, "get_values(None)")
        _crosses_wire("get_values", values)
        extra = {value.key for value in values} - set(listed)
        _expect(not extra, f"get_values(None) returned unlisted keys {sorted(extra)}")
        for value in values:
            _round_trips(value)

    with report.check("get_values omits missing keys"):
        got = handler.get_values([missing])
        _expect(got == [], f"get_values([missing key]) returned {len(got)} value(s), not []")

    with report.check("get_values(keys) returns exactly the requested keys that exist"):
        wanted = listed[:2]
        got = handler.get_values([*wanted, missing])
        _is_list_of(got, ConfigValue, "get_values(keys)")
        returned = [value.key for value in got]
        _expect(
            set(returned) <= set(wanted),
            f"returned keys not requested: {sorted(set(returned) - set(wanted))}",
        )
        _expect(set(returned) == set(wanted), f"requested {wanted}, got {returned}")
        _expect(len(returned) == len(set(returned)), "returned a key more than once")

    if sample_write is None:
        return
    key, write = sample_write

    with report.check("set_value then get_values returns the written value"):
        written = handler.set_value(key, write)
        _expect(isinstance(written, ConfigKey), f"set_value returned {type(written).__name__}")
        _expect(written.key == key, f"set_value returned key {written.key!r}, not {key!r}")
        got = handler.get_values([key])
        _expect(len(got) == 1, f"get_values([{key!r}]) returned {len(got)} values, not 1")
        _expect(got[0].value == write.value, "read-back value differs from the written one")
        _expect(got[0].data_type == write.data_type, "read-back data_type differs")
        _expect(key in [k.key for k in handler.list_keys()], "written key is not listed")

    with report.check("delete_key is idempotent and the key disappears"):
        handler.delete_key(key)
        handler.delete_key(key)
        _expect(handler.get_values([key]) == [], "deleted key still has a value")
        _expect(key not in [k.key for k in handler.list_keys()], "deleted key is still listed")


def _check_page(result: object, query: LogQuery, what: str) -> LogResult:
    if not isinstance(result, LogResult):
        _fail(f"{what} returned {type(result).__name__}")
    _expect(
        len(result.entries) <= query.limit,
        f"{what} returned {len(result.entries)} entries, limit is {query.limit}",
    )
    for entry in result.entries:
        _expect(
            query.start <= entry.timestamp <= query.end,
            f"{what} returned an entry at {entry.timestamp.isoformat()} outside "
            f"[{query.start.isoformat()}, {query.end.isoformat()}]",
        )
    _round_trips(result)
    _crosses_wire("search", result)
    return result


MAX_PAGES = 5
"""Pages the kit follows with a moving window."""


def _page_through(handler: LogsPlugin, query: LogQuery, first: LogResult) -> None:
    """Follow ``next_cursor`` as the platform does when "the last N minutes" is recomputed
    for every page: each request's ``start`` and ``end`` move on by a second. A cursor must
    stay valid (no ``CursorExpired``), pages must stay within their own window, and a cursor
    must never repeat (a repeat would page forever)."""
    seen = {first.next_cursor}
    page, cursor = query, first.next_cursor
    for number in range(2, MAX_PAGES + 2):
        if cursor is None:
            return
        page = dataclasses.replace(
            page,
            start=page.start + timedelta(seconds=1),
            end=page.end + timedelta(seconds=1),
            cursor=cursor,
        )
        result = _check_page(handler.search(page), page, f"search(page {number}, moved window)")
        cursor = result.next_cursor
        _expect(cursor not in seen, f"page {number} returned a cursor already used")
        seen.add(cursor)


def _check_logs(report: ContractReport, handler: LogsPlugin, query: LogQuery) -> None:
    first: LogResult | None = None
    with report.check("search returns a LogResult within range and limit, JSON round trip"):
        first = _check_page(handler.search(query), query, "search")

    if first is not None and first.next_cursor is not None:
        with report.check("search with next_cursor returns a LogResult"):
            following = dataclasses.replace(query, cursor=first.next_cursor)
            _check_page(handler.search(following), following, "search(cursor)")
        with report.check(
            "cursors page on while the time window moves (a cursor is not tied to start)"
        ):
            _page_through(handler, query, first)

    if handler.manifest.hints.supports_histogram:
        with report.check("histogram returns a Histogram overlapping the range"):
            histogram = handler.histogram(query, 10)
            _expect(isinstance(histogram, Histogram), f"got {type(histogram).__name__}")
            _expect(len(histogram.buckets) <= 10, "more buckets than bucket_count")
            for bucket in histogram.buckets:
                _expect(
                    bucket.end > query.start and bucket.start < query.end,
                    "a bucket lies outside the query range",
                )
            _round_trips(histogram)
            _crosses_wire("histogram", histogram)


def _check_identity_required(report: ContractReport, handler: PluginHandler) -> None:
    with report.check("a call without the user's identity is refused identity_required"):
        context = dataclasses.replace(handler.context, identity=None)
        try:
            call_as_host(type(handler), "test_connection", context=context)
        except IdentityRequired:
            return
        _fail("test_connection ran without context.identity; the host would refuse it")


def _check_identity(
    report: ContractReport,
    handler: IdentityPlugin,
    tokens: TokenSet | None,
    refresh_token: str | None,
) -> None:
    start, _pair = sample_authorization()
    with report.check("begin_authorization: code flow, S256 PKCE, state, nonce, redirect"):
        redirect = handler.begin_authorization(start)
        _expect(isinstance(redirect, AuthorizationRedirect), f"got {type(redirect).__name__}")
        query = redirect.query()
        expected = {
            "response_type": "code",
            "state": start.state,
            "nonce": start.nonce,
            "code_challenge": start.code_challenge,
            "code_challenge_method": "S256",
            "redirect_uri": start.redirect_uri,
        }
        wrong = sorted(name for name, value in expected.items() if query.get(name) != value)
        _expect(not wrong, f"the URL's {', '.join(wrong)} do not match the AuthorizationStart")
        _expect(bool(query.get("client_id")), "the URL has no client_id")
        _expect("code_verifier" not in query, "the URL carries the PKCE verifier")
        _round_trips(redirect)
        _crosses_wire("begin_authorization", redirect)

    if tokens is not None:
        with report.check("describe returns an IdentityInfo, JSON round trip"):
            info = handler.describe(tokens)
            _expect(isinstance(info, IdentityInfo), f"got {type(info).__name__}")
            text = json.dumps(info.to_dict())
            _expect(
                not any(secret in text for secret in tokens.secret_values()),
                "describe's result carries a token",
            )
            _round_trips(info)
            _crosses_wire("describe", info)

    if refresh_token is not None:
        with report.check("refresh returns a TokenSet that crosses the wire"):
            refreshed = handler.refresh(refresh_token)
            _expect(isinstance(refreshed, TokenSet), f"got {type(refreshed).__name__}")
            _round_trips(refreshed)
            _crosses_wire("refresh", refreshed)

    if handler.manifest.hints.supports_device_flow:
        with report.check("start_device_authorization returns a DeviceAuthorization"):
            device = handler.start_device_authorization(DeviceAuthorizationStart())
            _expect(isinstance(device, DeviceAuthorization), f"got {type(device).__name__}")
            _round_trips(device)
            _crosses_wire("start_device_authorization", device)


def _check_deployment(
    report: ContractReport, handler: DeploymentPlugin, request: DeploymentRequest | None
) -> None:
    refs: RefPage | None = None
    with report.check("list_refs returns a RefPage within the limit, JSON round trip"):
        refs = handler.list_refs(RefQuery())
        _expect(isinstance(refs, RefPage), f"got {type(refs).__name__}")
        _round_trips(refs)
        _crosses_wire("list_refs", refs)
        one = handler.list_refs(RefQuery(limit=1))
        _expect(len(one.refs) <= 1, f"list_refs(limit=1) returned {len(one.refs)} refs")
    first = refs.refs[0].name if refs is not None and refs.refs else None

    if first is not None:
        with report.check("list_commits of a listed ref returns a CommitPage"):
            page = handler.list_commits(CommitQuery(ref=first, limit=5))
            _expect(isinstance(page, CommitPage), f"got {type(page).__name__}")
            _expect(len(page.commits) <= 5, f"{len(page.commits)} commits, limit is 5")
            _round_trips(page)
            _crosses_wire("list_commits", page)

        with report.check("compare_refs of a ref with itself is identical"):
            comparison = handler.compare_refs(first, first)
            _expect(isinstance(comparison, Comparison), f"got {type(comparison).__name__}")
            _expect(
                comparison.status is ComparisonStatus.IDENTICAL
                and comparison.ahead_by == comparison.behind_by == 0,
                f"compare_refs({first!r}, {first!r}) is {comparison.status}",
            )
            _round_trips(comparison)
            _crosses_wire("compare_refs", comparison)

    with report.check("list_commits of a ref that does not exist raises RefNotFound"):
        missing = f"contract-test-missing-{uuid.uuid4().hex[:12]}"
        try:
            handler.list_commits(CommitQuery(ref=missing))
        except RefNotFound:
            pass
        else:
            _fail("list_commits of a missing ref did not raise RefNotFound")

    with report.check("list_environments returns Environments, unique names"):
        environments = handler.list_environments()
        _is_list_of(environments, Environment, "list_environments")
        names = [environment.name for environment in environments]
        _expect(len(set(names)) == len(names), "list_environments returned a name twice")
        _crosses_wire("list_environments", environments)

    with report.check("list_deployments returns Deployments within the limit"):
        deployments = handler.list_deployments(DeploymentQuery(limit=5))
        _is_list_of(deployments, Deployment, "list_deployments")
        _expect(len(deployments) <= 5, f"{len(deployments)} deployments, limit is 5")
        _crosses_wire("list_deployments", deployments)

    if request is None:
        return
    with report.check("trigger_deployment then get_deployment shows the same deployment"):
        started = handler.trigger_deployment(request)
        _expect(isinstance(started, Deployment), f"got {type(started).__name__}")
        _expect(started.ref == request.ref, f"deployed ref {started.ref!r}, not {request.ref!r}")
        _expect(
            started.environment == request.environment,
            f"deployed to {started.environment!r}, not {request.environment!r}",
        )
        _crosses_wire("trigger_deployment", started)
        current = handler.get_deployment(started.id)
        _expect(current.id == started.id, "get_deployment returned another deployment")
        _expect(isinstance(current.status, DeploymentStatus), "status is not a DeploymentStatus")
        _round_trips(current)
        _crosses_wire("get_deployment", current)
