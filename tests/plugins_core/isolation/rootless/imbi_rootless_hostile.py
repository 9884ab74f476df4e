"""A hostile plugin for the rootless suite (``test_rootless.py``): each ``list_keys`` call
runs the attack named in the ``attack`` option and reports what happened as key names.

Installed (copied) into a throwaway virtual environment made from Debian's python3.11; it
imports only the standard library and the SDK.
"""

from __future__ import annotations

import _socket
import ctypes
import errno
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

from imbi_plugin_sdk import (
    ConfigKey,
    ConfigurationPlugin,
    ConfigValue,
    ConfigWrite,
    ConnectionResult,
    DataType,
    OptionField,
    OptionType,
    Permissions,
    PluginManifest,
    PluginType,
)


def _manifest(slug: str, **permissions: Any) -> PluginManifest:
    return PluginManifest(
        slug=slug,
        name=slug,
        description="A hostile plugin for the rootless isolation tests.",
        version="0.1.0",
        api_version="1.0",
        plugin_type=PluginType.CONFIGURATION,
        options=(
            OptionField(name="attack", label="Attack", type=OptionType.STRING, default=""),
            OptionField(name="target", label="Target", type=OptionType.MAPPING, default={}),
        ),
        permissions=Permissions(**permissions),
    )


def _outcome(name: str, attempt: Callable[[], Any]) -> str:
    try:
        attempt()
    except OSError as exc:
        code = errno.errorcode.get(exc.errno or 0, str(exc.errno))
        return f"{name}_REFUSED_{code}"
    return f"{name}_ALLOWED"


def _libc_outcome(name: str, result: int) -> str:
    if result == -1:
        return f"{name}_REFUSED_{errno.errorcode.get(ctypes.get_errno(), '?')}"
    return f"{name}_ALLOWED"


class Hostile(ConfigurationPlugin):
    manifest: ClassVar[PluginManifest] = _manifest("rootless-hostile")

    def test_connection(self) -> ConnectionResult:
        return ConnectionResult.success("ok")

    def get_values(self, keys: Sequence[str] | None = None) -> list[ConfigValue]:
        return []

    def set_value(self, key: str, value: ConfigWrite) -> ConfigKey:
        raise NotImplementedError

    def delete_key(self, key: str) -> None:
        return None

    def list_keys(self) -> list[ConfigKey]:
        target = dict(self.context.options.get("target") or {})
        attack = str(self.context.options.get("attack") or "healthy")
        report = getattr(self, f"attack_{attack}")(target)
        return [ConfigKey(key=str(k)[:200], data_type=DataType.STRING) for k in report]

    def attack_healthy(self, target: dict[str, Any]) -> list[str]:
        return ["HEALTHY"]

    def attack_fork_bomb(self, target: dict[str, Any]) -> list[str]:
        started = refused = 0
        for _ in range(300):
            try:
                pid = os.fork()
            except OSError:
                refused += 1
                continue
            if pid == 0:
                time.sleep(3600)
                os._exit(0)
            started += 1
        spawned = _outcome("POSIX_SPAWN", lambda: os.posix_spawn("/bin/true", ["true"], {}))
        return [f"FORKED_{started}", f"REFUSED_{refused}", spawned]

    def attack_thread_bomb(self, target: dict[str, Any]) -> list[str]:
        started = 0
        stop = threading.Event()
        try:
            while started < 5000:
                threading.Thread(target=stop.wait, daemon=True).start()
                started += 1
        except (RuntimeError, MemoryError) as exc:
            return [f"THREADS_{started}", f"STOPPED_{type(exc).__name__}"]
        return [f"THREADS_{started}", "STOPPED_NEVER"]

    def attack_memory(self, target: dict[str, Any]) -> list[str]:
        hog = bytearray(4 * 1024**3)
        return [f"ALLOCATED_{len(hog)}"]

    def attack_web_process(self, target: dict[str, Any]) -> list[str]:
        pid = int(target["web_pid"])
        libc = ctypes.CDLL(None, use_errno=True)

        def read(name: str) -> Callable[[], Any]:
            def attempt() -> None:
                with open(f"/proc/{pid}/{name}", "rb") as handle:
                    handle.read(64)

            return attempt

        return [
            _outcome("ENVIRON", read("environ")),
            _outcome("MEM", read("mem")),
            _outcome("KILL", lambda: os.kill(pid, signal.SIGKILL)),
            _outcome("KILL_ALL", lambda: os.kill(-1, signal.SIGKILL)),
            _outcome("PIDFD", lambda: signal.pidfd_send_signal(os.pidfd_open(pid), 9)),
            _libc_outcome("PTRACE", libc.ptrace(16, pid, 0, 0)),  # PTRACE_ATTACH
            _libc_outcome("VM_READV", libc.syscall(310, pid, 0, 0, 0, 0, 0)),
        ]

    def attack_sockets(self, target: dict[str, Any]) -> list[str]:
        def connect(family: int, kind: int, address: Any) -> Callable[[], None]:
            def attempt() -> None:
                sock = _socket.socket(family, kind)
                try:
                    sock.settimeout(2)
                    sock.connect(tuple(address) if isinstance(address, list) else address)
                finally:
                    sock.close()

            return attempt

        def udp(address: tuple[str, int]) -> Callable[[], None]:
            def attempt() -> None:
                sock = _socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                try:
                    sock.sendto(b"PING\r\n", address)
                finally:
                    sock.close()

            return attempt

        def opens(family: int, kind: int, proto: int = 0) -> Callable[[], None]:
            return lambda: _socket.socket(family, kind, proto).close()

        return [
            _outcome("RAW", opens(socket.AF_INET, socket.SOCK_RAW, 255)),
            _outcome("PACKET", opens(socket.AF_PACKET, socket.SOCK_RAW)),
            _outcome("NETLINK", opens(socket.AF_NETLINK, socket.SOCK_RAW, 0)),
            _outcome("SCTP", opens(socket.AF_INET, socket.SOCK_STREAM, 132)),
            _outcome("MPTCP", opens(socket.AF_INET, socket.SOCK_STREAM, 262)),
            _outcome("POSTGRES_TCP", connect(socket.AF_INET, socket.SOCK_STREAM, target["pg"])),
            _outcome("REDIS_TCP", connect(socket.AF_INET, socket.SOCK_STREAM, target["redis"])),
            _outcome("REDIS_UDP", udp(tuple(target["redis"]))),
            _outcome("UNIX", connect(socket.AF_UNIX, socket.SOCK_STREAM, target["unix"])),
        ]

    def attack_files(self, target: dict[str, Any]) -> list[str]:
        def write(path: str) -> Callable[[], None]:
            def attempt() -> None:
                with open(path, "w") as handle:
                    handle.write("escaped")

            return attempt

        def read(path: str) -> Callable[[], None]:
            def attempt() -> None:
                with open(path, "rb") as handle:
                    handle.read(1)

            return attempt

        own = os.path.join(os.environ["TMPDIR"], "mine.txt")
        return [
            _outcome("WRITE_OWN_TMP", write(own)),
            _outcome("WRITE_TMP", write("/tmp/imbi-rootless-escape.txt")),
            _outcome("WRITE_HOME", write(os.path.join(target["home"], "escape.txt"))),
            _outcome("READ_HOST_SECRET", read(target["secret_file"])),
            _outcome("LIST_ROOT", lambda: os.listdir("/")),
        ]


class Networked(Hostile):
    """Declares one host: may create TCP sockets (for the egress broker's hand-over)."""

    manifest: ClassVar[PluginManifest] = _manifest(
        "rootless-networked", network_hosts=("api.example.com:443",)
    )
