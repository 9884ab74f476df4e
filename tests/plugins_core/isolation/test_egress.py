"""Network egress of isolated plugins: an empty network namespace whose only way out is the
host's egress broker (``plugins_core.isolation.egress``), which checks host and port.

``hostile-egress`` (tests/hostile_plugin) tries one way out per probe and reports what it
got; each test grants it hosts for one call (``permissions=``) or none.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from imbi_plugin_sdk import Credentials, PermissionDenied, Permissions, PluginFailed
from imbi_plugin_sdk.testkit import make_context

from plugins_core import registry
from plugins_core.isolation import capabilities, egress
from plugins_core.isolation.breaker import MemoryBreaker
from plugins_core.isolation.host import call_entry

from .conftest import open_fds


class Echo:
    """A loopback TCP server answering ``pong:<what it read>``; counts connections."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.accepted = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.accepted += 1
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.sendall(b"pong:" + conn.recv(64))

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def echo() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.close()


@pytest.fixture
def other() -> Iterator[Echo]:
    server = Echo()
    yield server
    server.close()


def probe(
    probes: dict[str, str],
    hosts: tuple[str, ...] | None,
    *,
    grant: Permissions | None = None,
    service_settings: dict[str, object] | None = None,
) -> list[str]:
    """Run ``hostile-egress`` isolated with ``probes`` and ``hosts`` granted (``None``: the
    manifest's own, which declares none), or the permissions ``grant``."""
    entry = registry.current().entries["hostile-egress"]
    context = make_context(
        options={"paths": probes}, timeout=5.0, service_settings=service_settings or {}
    )
    permissions = grant or (None if hosts is None else Permissions(network_hosts=hosts))
    keys = call_entry(
        entry,
        context,
        Credentials(),
        "list_keys",
        permissions=permissions,
        circuit=MemoryBreaker(fail_max=1_000_000),
    )
    return [k.key for k in keys]


def test_declared_loopback_port_works_by_address_and_another_is_refused(
    echo: Echo, other: Echo, caplog: Any
) -> None:
    caplog.set_level(logging.WARNING, logger="imbi.plugins.isolation")
    report = probe(
        {
            "DECLARED": f"tcp 127.0.0.1 {echo.port}",
            "UNDECLARED": f"tcp 127.0.0.1 {other.port}",
        },
        (f"127.0.0.1:{echo.port}",),
    )
    assert report == ["DECLARED_CONNECTED_pong:ping", "UNDECLARED_REFUSED_PermissionError_EACCES"]
    assert echo.accepted == 1
    assert other.accepted == 0  # the refused connection never reached the server
    refusals = [r.getMessage() for r in caplog.records if "not among" in r.getMessage()]
    assert refusals == [
        f"plugin hostile-egress: network: 127.0.0.1:{other.port} is not among the plugin's "
        "declared hosts"
    ]


def test_declared_name_works_and_an_undeclared_name_is_refused(echo: Echo) -> None:
    report = probe(
        {
            "NAME": f"tcp localhost {echo.port}",
            "ADDRESS": f"tcp 127.0.0.1 {echo.port}",  # the name was declared, not the address
            "OTHER_NAME": f"tcp localhost.localdomain {echo.port}",
            "ASYNC": f"async localhost {echo.port}",
        },
        (f"localhost:{echo.port}",),
    )
    assert report == [
        "NAME_CONNECTED_pong:ping",
        "ADDRESS_REFUSED_PermissionError_EACCES",
        "OTHER_NAME_REFUSED_PermissionError_EACCES",
        "ASYNC_CONNECTED_pong:ping",
    ]
    assert echo.accepted == 2


def test_a_wildcard_matches_subdomains_on_its_port_only() -> None:
    allow = egress.Allowlist.build(Permissions(network_hosts=("*.example.com", "api.test:8443")))
    assert allow.allows("a.example.com", 443)
    assert allow.allows("a.b.example.com", 443)
    assert not allow.allows("example.com", 443)  # the suffix, not the domain itself
    assert not allow.allows("a.example.com", 80)  # no port: 443
    assert not allow.allows("evilexample.com", 443)
    assert allow.allows("api.test", 8443) and not allow.allows("api.test", 443)
    with pytest.raises(PermissionDenied, match="expected a host name"):
        allow.check({"host": "a.example.com/../x", "port": 443})
    with pytest.raises(PermissionDenied, match="carries only host and port"):
        allow.check({"host": "a.example.com", "port": 443, "scope": "other-org"})


def test_a_wildcard_never_matches_an_ip_literal() -> None:
    """Literals may reach internal addresses, so only an exact literal rule opens one."""
    allow = egress.Allowlist.build(Permissions(network_hosts=("*.169.254:80", "*.0.1:5432")))
    for host, port in (("169.254.169.254", 80), ("127.0.0.1", 5432), ("[::ffff:127.0.0.1]", 5432)):
        with pytest.raises(PermissionDenied, match="not among"):
            allow.check({"host": host, "port": port})
    assert allow.allows("a.169.254", 80)  # a name under that suffix still matches


def test_operator_chosen_host_setting_is_allowed_exactly() -> None:
    permissions = Permissions(
        network_hosts=("api.github.com",), operator_host_settings=("base_url",)
    )
    allow = egress.Allowlist.build(permissions, {"base_url": "https://ghe.corp.test:8443/api/v3"})
    assert allow.allows("ghe.corp.test", 8443)
    assert allow.allows("api.github.com", 443)
    assert not allow.allows("ghe.corp.test", 443)
    assert not allow.allows("other.corp.test", 8443)


def test_operator_chosen_host_is_reachable_from_the_runner(echo: Echo, other: Echo) -> None:
    """A self-hosted server: the operator saved ``base_url``; only its host and port open."""
    grant = Permissions(network_hosts=("api.example.com",), operator_host_settings=("base_url",))
    report = probe(
        {
            "SAVED": f"tcp localhost {echo.port}",
            "OTHER_PORT": f"tcp localhost {other.port}",
        },
        None,
        grant=grant,
        service_settings={"base_url": f"http://localhost:{echo.port}/api"},
    )
    assert report == ["SAVED_CONNECTED_pong:ping", "OTHER_PORT_REFUSED_PermissionError_EACCES"]
    assert (echo.accepted, other.accepted) == (1, 0)


def test_a_declared_name_resolving_to_an_internal_address_is_refused(monkeypatch: Any) -> None:
    """DNS cannot point a declared public name at cloud metadata or the host's loopback."""
    answers = {
        "metadata.example.com": "169.254.169.254",
        "loop.example.com": "127.0.0.1",
        "imds6.example.com": "fd00:ec2::254",  # AWS IMDS over IPv6 (not link-local)
        "alibaba.example.com": "100.100.100.200",
        "wireserver.example.com": "168.63.129.16",  # Azure's host agent
    }

    def fake(host: str, port: int, *args: Any) -> list[tuple[Any, ...]]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]

    monkeypatch.setattr(egress, "_addresses", lambda host, port, *a: fake(host, port))
    allow = egress.Allowlist.build(Permissions(network_hosts=("*.example.com:80",)))
    for name in answers:
        with pytest.raises(PermissionDenied, match=r"internal address|cloud metadata"):
            egress.connect({"host": name, "port": 80}, allow, deadline=1e12)


def test_cloud_metadata_is_refused_even_when_declared_literally() -> None:
    """An approved manifest or an operator's saved URL naming the metadata address literally
    still never reaches it: it hands out the node's own cloud credentials."""
    literals = ("169.254.169.254", "100.100.100.200", "168.63.129.16")
    allow = egress.Allowlist.build(Permissions(network_hosts=tuple(f"{h}:80" for h in literals)))
    for host in literals:
        assert allow.allows(host, 80)  # declared, so only the address rule can refuse it
        with pytest.raises(PermissionDenied, match="cloud metadata or link-local"):
            egress.connect({"host": host, "port": 80}, allow, deadline=1e12)


def test_a_call_holds_at_most_one_unanswered_name_look_up(monkeypatch: Any) -> None:
    """Names that never answer cannot take every resolver thread of the worker: a call whose
    look-up timed out gets EAGAIN for the next until that one finishes."""
    release = threading.Event()
    looked_up: list[str] = []

    def slow(host: str, port: int, *args: Any) -> list[tuple[Any, ...]]:
        looked_up.append(host)
        release.wait(10)
        raise socket.gaierror(socket.EAI_NONAME, "no such name")

    monkeypatch.setattr(egress.socket, "getaddrinfo", slow)
    broker = egress.Broker(
        egress.Allowlist.build(Permissions(network_hosts=("*.example.com:80",))),
        deadline=time.monotonic() + 30,
    )
    first = broker({"host": "a.example.com", "port": 80, "timeout": 0.05})
    assert first["errno"] == errno.ETIMEDOUT
    second = broker({"host": "b.example.com", "port": 80, "timeout": 0.05})
    assert second["errno"] == errno.EAGAIN and "still running" in second["reason"]
    assert looked_up == ["a.example.com"]  # the second never took a resolver thread
    release.set()
    for _ in range(100):
        if not any(not f.done() for f in broker.pending):
            break
        time.sleep(0.02)
    third = broker({"host": "c.example.com", "port": 80, "timeout": 1})
    assert third.get("gaierror") == socket.EAI_NONAME  # resolved (and failed) normally
    assert looked_up == ["a.example.com", "c.example.com"]


def test_http_clients_work_through_the_broker() -> None:
    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        report = probe(
            {
                "URLLIB": f"http localhost {port}",
                "HTTPX": f"httpx localhost {port}",
                "HTTPX_ASYNC": f"httpx_async localhost {port}",
            },
            (f"localhost:{port}",),
        )
    finally:
        server.shutdown()
        server.server_close()
    assert report == ["URLLIB_CONNECTED_204", "HTTPX_CONNECTED_204", "HTTPX_ASYNC_CONNECTED_204"]


def _certificate(tmp_path: Any) -> tuple[str, str, str]:
    """A self-signed certificate for ``localhost``: (PEM, cert file, key file)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM).decode()
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_text(pem)
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return pem, str(cert_file), str(key_file)


def test_tls_verifies_the_declared_name_through_the_broker(tmp_path: Any) -> None:
    import ssl

    pem, cert_file, key_file = _certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    names: list[str | None] = []
    context.sni_callback = lambda conn, name, ctx: names.append(name)  # type: ignore[assignment,misc,func-returns-value]

    def serve() -> None:
        while True:
            try:
                raw, _ = server.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(raw, server_side=True) as conn:
                    conn.sendall(b"pong:" + conn.recv(64))
            except (OSError, ssl.SSLError):
                raw.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        report = probe(
            {
                "__ca__": pem,
                "NAME": f"tls localhost {port}",
                "ADDRESS": f"tls 127.0.0.1 {port}",  # the certificate names localhost only
            },
            (f"localhost:{port}", f"127.0.0.1:{port}"),
        )
    finally:
        server.close()
    assert report[0] == "NAME_CONNECTED_pong:ping"
    assert report[1].startswith("ADDRESS_REFUSED_SSLCertVerificationError")
    assert names[0] == "localhost"  # SNI carried the name, not a synthetic address


@pytest.fixture
def unix_server(tmp_path: Any) -> Iterator[str]:
    """A pathname Unix socket on the host (like a database's) answering ``pong:``."""
    path = str(tmp_path / "service.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.sendall(b"pong:" + conn.recv(64))

    threading.Thread(target=serve, daemon=True).start()
    yield path
    server.close()


def test_skipping_the_shim_finds_no_way_out(echo: Echo, unix_server: str) -> None:
    """Even to the declared port: Landlock refuses every TCP connect the runner makes itself,
    and the network namespace has no route (UDP, the real resolver); seccomp refuses TCP fast
    open (an implicit connect Landlock does not see) and Unix sockets that could reach the
    host's file system."""
    dgram_path = unix_server + ".dgram"
    dgram = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    dgram.bind(dgram_path)
    dgram.setblocking(False)
    report = probe(
        {
            "RAW": f"raw 127.0.0.1 {echo.port}",
            "CTYPES": f"ctypes 127.0.0.1 {echo.port}",
            "FASTOPEN": f"fastopen 127.0.0.1 {echo.port}",
            "UDP_LOOPBACK": "udp 127.0.0.1 53",
            "UDP_PUBLIC": "udp 8.8.8.8 53",
            "RESOLVE": "resolve example.com 443",
            "UNIX": f"unix {unix_server} 0",
            "UNIX_DGRAM": f"unix_dgram {dgram_path} 0",
        },
        (f"127.0.0.1:{echo.port}",),
    )
    with pytest.raises(BlockingIOError):
        dgram.recv(64)  # nothing arrived
    dgram.close()
    # in an empty network namespace a datagram has no route; without one (no root) seccomp
    # refuses creating a datagram socket at all
    udp = "OSError_ENETUNREACH" if capabilities.probe().namespaces else "PermissionError_EPERM"
    assert report == [
        "RAW_REFUSED_PermissionError_EACCES",  # Landlock: no TCP connect right
        "CTYPES_REFUSED_PermissionError_EACCES",
        "FASTOPEN_REFUSED_PermissionError_EPERM",  # seccomp: no MSG_FASTOPEN (no connect())
        f"UDP_LOOPBACK_REFUSED_{udp}",
        f"UDP_PUBLIC_REFUSED_{udp}",
        "RESOLVE_REFUSED_gaierror_-3",  # EAI_AGAIN: no DNS server is reachable
        "UNIX_REFUSED_PermissionError_EPERM",  # seccomp: no new Unix socket
        "UNIX_DGRAM_REFUSED_PermissionError_EPERM",  # seccomp: stream socketpairs only
    ]
    assert echo.accepted == 0


def test_a_broker_socket_cannot_be_pointed_elsewhere(echo: Echo, other: Echo) -> None:
    """A socket from the broker lives in the host's network namespace: disconnected with
    connect(AF_UNSPEC) (Landlock allows it), a TCP fast open ``sendto`` (no connect() for
    Landlock to hook) would reach any host address. seccomp refuses MSG_FASTOPEN."""
    report = probe(
        {"PIVOT": f"pivot 127.0.0.1/{other.port} {echo.port}"},
        (f"127.0.0.1:{echo.port}",),
    )
    assert report == ["PIVOT_REFUSED_PermissionError_EPERM"]
    assert other.accepted == 0


def test_a_broker_socket_cannot_listen_on_the_host(echo: Echo) -> None:
    """Disconnected, a broker socket's listen() would bind every address of the host's
    namespace (Landlock hooks bind, not listen's automatic bind): seccomp refuses listen."""
    report = probe({"LISTEN": f"relisten 127.0.0.1 {echo.port}"}, (f"127.0.0.1:{echo.port}",))
    assert report == ["LISTEN_REFUSED_PermissionError_EPERM"]


def test_a_networked_runner_needs_landlock_tcp_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    """Below Landlock ABI 4 nothing refuses a second connect() on a broker socket."""
    from imbi_plugin_sdk import sandbox  # the implementation plugins_core.isolation re-exports

    monkeypatch.setattr(sandbox, "landlock_abi", lambda: 3)
    with pytest.raises(sandbox.SandboxError, match="needs 4"):
        sandbox._landlock(sandbox.Policy(network=True))


def test_a_huge_connect_timeout_is_no_limit(echo: Echo) -> None:
    allow = egress.Allowlist.build(Permissions(network_hosts=(f"127.0.0.1:{echo.port}",)))
    request = {"host": "127.0.0.1", "port": echo.port, "timeout": 10**400}
    answer = egress.connect(request, allow, deadline=time.monotonic() + 5)
    assert isinstance(answer, egress.Descriptor)
    socket.socket(fileno=answer.fd).close()


def test_a_host_request_the_host_fails_to_answer_is_502_and_retires_the_runner(
    echo: Echo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a raw exception (a 500), and the runner still waiting for the answer is not
    returned to the pool (the next call would find it out of step)."""

    def broken(*args: Any) -> Any:
        raise OverflowError("a host bug")

    monkeypatch.setattr(egress, "connect", broken)
    with pytest.raises(PluginFailed, match=r"could not answer its 'net\.connect' request"):
        probe({"BROKER": f"broker 127.0.0.1 {echo.port}"}, (f"127.0.0.1:{echo.port}",))
    monkeypatch.undo()
    report = probe({"TCP": f"tcp 127.0.0.1 {echo.port}"}, (f"127.0.0.1:{echo.port}",))
    assert report == ["TCP_CONNECTED_pong:ping"]


def test_no_network_permission_means_no_way_out(echo: Echo, unix_server: str) -> None:
    report = probe(
        {
            "TCP": f"tcp 127.0.0.1 {echo.port}",
            "UDP": "udp 127.0.0.1 53",
            "UNIX": f"unix {unix_server} 0",
            "BROKER": f"broker 127.0.0.1 {echo.port}",  # asks the host directly
        },
        None,
    )
    assert report == [
        "TCP_REFUSED_PermissionError_EPERM",  # seccomp: no inet socket at all
        "UDP_REFUSED_PermissionError_EPERM",
        "UNIX_REFUSED_PermissionError_EPERM",
        "BROKER_REFUSED_PermissionError_EACCES",  # the host: no network hosts declared
    ]
    assert echo.accepted == 0


def test_a_connect_past_the_calls_deadline_is_not_attempted(echo: Echo) -> None:
    allow = egress.Allowlist.build(Permissions(network_hosts=(f"127.0.0.1:{echo.port}",)))
    request = {"host": "127.0.0.1", "port": echo.port}
    answer = egress.connect(request, allow, deadline=time.monotonic() - 0.1)
    assert answer == {"errno": errno.ETIMEDOUT, "reason": "the call's deadline has passed"}
    assert echo.accepted == 0


def test_slow_name_resolution_cannot_outlast_the_call(monkeypatch: Any) -> None:
    release = threading.Event()

    def slow(*args: Any) -> list[Any]:
        release.wait(5)
        return []

    monkeypatch.setattr(egress.socket, "getaddrinfo", slow)
    allow = egress.Allowlist.build(Permissions(network_hosts=("*.example.com",)))
    started = time.monotonic()
    try:
        answer = egress.connect(
            {"host": "slow.example.com", "port": 443}, allow, deadline=started + 0.3
        )
    finally:
        release.set()
    assert answer == {"errno": errno.ETIMEDOUT, "reason": "resolving slow.example.com timed out"}
    assert time.monotonic() - started < 1.0


def test_refused_and_failed_connections_leave_no_host_descriptor(echo: Echo) -> None:
    closed = socket.create_server(("127.0.0.1", 0))
    dead_port = closed.getsockname()[1]
    closed.close()
    hosts = (f"127.0.0.1:{echo.port}", f"127.0.0.1:{dead_port}")
    probes = {
        "OK": f"tcp 127.0.0.1 {echo.port}",
        "DEAD": f"tcp 127.0.0.1 {dead_port}",
        "NO": "tcp 127.0.0.1 9",
    }
    assert probe(probes, hosts) == [
        "OK_CONNECTED_pong:ping",
        "DEAD_REFUSED_ConnectionRefusedError_ECONNREFUSED",
        "NO_REFUSED_PermissionError_EACCES",
    ]
    before = open_fds()
    for _ in range(5):
        probe(probes, hosts)
    assert open_fds() <= before + 1
