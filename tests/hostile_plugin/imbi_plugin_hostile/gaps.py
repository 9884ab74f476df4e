"""Attacks on the supervisor's bookkeeping: trickled frames, threads that outlive a call,
memory and disk kept by an idle runner (docs/security.md, "Plugin isolation").

``hostile-trickle`` finds its protocol socket and writes a frame header announcing 64
bytes, then one byte every half second (for at most 12 s, then it sleeps): a deadline per
``recv`` would never expire. ``trickle_import`` does the same while it is imported (the
handshake); it is no entry point, the tests name it in a runner spec.
"""

from __future__ import annotations

import _thread
import os
import socket
import struct
import time

from .behaviours import Base, _manifest

TRICKLE_SECONDS = 12.0


def protocol_sockets() -> list[socket.socket]:
    """Duplicates of this runner's Unix stream sockets (the protocol socket among them)."""
    found = []
    for fd in range(3, 64):
        try:
            sock = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        if sock.family == socket.AF_UNIX and sock.type == socket.SOCK_STREAM:
            found.append(sock)
        else:
            sock.close()
    return found


def trickle() -> None:
    socks = protocol_sockets()
    for sock in socks:
        sock.sendall(struct.pack(">I", 64))
    stop = time.monotonic() + TRICKLE_SECONDS
    while time.monotonic() < stop:
        time.sleep(0.5)
        for sock in socks:
            sock.sendall(b" ")
    time.sleep(3600)


class Trickle(Base):
    manifest = _manifest("hostile-trickle")

    def attack(self) -> list[str]:
        trickle()
        return []


def _spin() -> None:
    while True:
        pass


class RawThread(Base):
    """Starts a spinning thread with ``_thread`` (invisible to ``threading``) and returns."""

    manifest = _manifest("hostile-raw-thread")

    def attack(self) -> list[str]:
        _thread.start_new_thread(_spin, ())
        return ["STARTED"]


_kept: list[bytearray] = []


class KeepMemory(Base):
    """Touches ``options["port"]`` MiB (default 300) and keeps them after the call."""

    manifest = _manifest("hostile-keep-memory")

    def attack(self) -> list[str]:
        mib = int(self.context.options.get("port") or 300)
        block = bytearray(mib * 1024**2)
        for offset in range(0, len(block), 4096):
            block[offset] = 1
        _kept.append(block)
        return [f"KEPT_{mib}"]


class FillDisk(Base):
    """Writes 1 MiB files into its temp folder until refused or ``options["port"]`` MiB
    (default 1024) are written; each file stays under the per-file size limit."""

    manifest = _manifest("hostile-fill-disk")

    def attack(self) -> list[str]:
        mib = int(self.context.options.get("port") or 1024)
        folder = os.environ.get("TMPDIR", "/tmp")
        chunk = os.urandom(1024**2)
        written = 0
        try:
            for number in range(mib):
                with open(os.path.join(folder, f"fill-{number}"), "wb") as handle:
                    handle.write(chunk)
                    handle.flush()
                    os.fsync(handle.fileno())
                written += 1
        except OSError as exc:
            return [f"WROTE_{written}", f"REFUSED_{type(exc).__name__}"]
        return [f"WROTE_{written}"]


def _spin_on_alarm(signum: int, frame: object) -> None:
    while True:
        pass


class AlarmSpin(Base):
    """Arms a timer whose signal handler spins, and returns: no thread is left, yet the
    runner would spin in the pool once the timer fires."""

    manifest = _manifest("hostile-alarm-spin")

    def attack(self) -> list[str]:
        import signal

        signal.signal(signal.SIGALRM, _spin_on_alarm)
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        return ["ARMED"]
