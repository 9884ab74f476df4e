"""The runner wire protocol: versioned, length-prefixed JSON frames over a socketpair.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON (one
object with a ``t`` type field). Frames larger than the receiver's cap are refused before
they are read (``FrameTooLarge``); anything that is not a JSON object is ``ProtocolError``.
Floats must be finite (``NaN``/``Infinity`` are not JSON and are refused both ways).

Messages (``id`` ties a reply to its request):

child → host  ``hello``   {protocol, sdk, python, entries: {name: {ok, reason, manifest}}}
host → child  ``call``    {id, entry, method, args, context, credentials}
child → host  ``reply``   {id, ok: true, result} | {id, ok: false, error: {code, detail, ...}}
                          | {id, ok: false, failed: reason}
child → host  ``host``    {id, op, ...}  a request back to the host during call ``id``
host → child  ``host_reply`` {id, ok, value | error}; the reply to ``net.connect`` may carry
                          one connected socket as ``SCM_RIGHTS`` ancillary data on its
                          first byte (``send_frame_with_fd`` / ``recv_frame_with_fds``)
host → child  ``ping`` {id}; child → host ``pong`` {id}

Plugin output never travels here: the child's stdout/stderr are separate pipes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

PROTOCOL_VERSION = 1
HEADER = struct.Struct(">I")
DEFAULT_MAX_FRAME = 8 * 1024 * 1024  # bytes, each direction

__all__ = [
    "DEFAULT_MAX_FRAME",
    "PROTOCOL_VERSION",
    "ConnectionClosed",
    "Descriptor",
    "FrameTooLarge",
    "ProtocolError",
    "check_json",
    "close_fds",
    "decode",
    "encode",
    "recv_frame",
    "recv_frame_with_fds",
    "send_frame",
    "send_frame_with_fd",
]


class ProtocolError(Exception):
    """A frame that is not a JSON object, or a message that breaks the protocol."""


class FrameTooLarge(ProtocolError):
    """A frame over the receiver's (or sender's) size cap."""


class ConnectionClosed(ProtocolError):
    """The other end closed the socket (it exited or was killed)."""


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def check_json(value: Any, depth: int = 0) -> None:
    """Raise ``ValueError`` unless ``value`` is plain JSON data (finite floats, str keys)."""
    if depth > 64:
        raise ValueError("nested too deeply")
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("non-finite number")
        return
    if isinstance(value, list | tuple):
        for item in value:
            check_json(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("object key is not a string")
            check_json(item, depth + 1)
        return
    raise ValueError(f"{type(value).__name__} is not JSON")


def encode(message: dict[str, Any], max_frame: int = DEFAULT_MAX_FRAME) -> bytes:
    """One frame for ``message``; ``ValueError`` if not JSON, ``FrameTooLarge`` if too big."""
    body = json.dumps(message, allow_nan=False, separators=(",", ":")).encode()
    if len(body) > max_frame:
        raise FrameTooLarge(f"frame of {len(body)} bytes exceeds the {max_frame}-byte cap")
    return HEADER.pack(len(body)) + body


def decode(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # "[[[[..." nests deep
        raise ProtocolError(f"frame is not JSON ({type(exc).__name__})") from None
    if not isinstance(message, dict) or not isinstance(message.get("t"), str):
        raise ProtocolError("frame is not a typed JSON object")
    return message


def send_frame(sock: socket.socket, message: dict[str, Any], max_frame: int) -> None:
    sock.sendall(encode(message, max_frame))


def _recv_exact(sock: socket.socket, size: int, deadline: float | None = None) -> bytes:
    chunks = []
    remaining = size
    while remaining:
        if deadline is not None:  # the whole frame, not each recv (a trickle cannot stretch it)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the frame did not arrive in time")
            sock.settimeout(left)
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ConnectionClosed("the other end closed the connection")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def recv_frame(
    sock: socket.socket, max_frame: int, deadline: float | None = None
) -> dict[str, Any]:
    """Read one frame; refuses an oversized one without reading its body. ``deadline``
    (``time.monotonic()``): ``TimeoutError`` unless the whole frame, header and body, has
    arrived by then, however its bytes trickle in; ``None`` keeps the socket's own mode."""
    (size,) = HEADER.unpack(_recv_exact(sock, HEADER.size, deadline))
    if size > max_frame:
        raise FrameTooLarge(f"frame of {size} bytes exceeds the {max_frame}-byte cap")
    return decode(_recv_exact(sock, size, deadline))


# --------------------------------------------------------------------------- descriptors


@dataclass(frozen=True, slots=True)
class Descriptor:
    """A host-request answer that hands the runner an open descriptor with ``value``.

    The sender owns ``fd`` and closes it once sent (or on any error)."""

    value: Any
    fd: int


def send_frame_with_fd(
    sock: socket.socket, message: dict[str, Any], fd: int, max_frame: int
) -> None:
    """One frame whose first byte carries ``fd`` (``SCM_RIGHTS``); the rest follows plainly."""
    data = encode(message, max_frame)
    sent = socket.send_fds(sock, [data], [fd])
    if sent < len(data):
        sock.sendall(data[sent:])


def _recv_exact_fds(sock: socket.socket, size: int, fds: list[int], max_fds: int) -> bytes:
    chunks = []
    remaining = size
    while remaining:
        chunk, received, flags, _ = socket.recv_fds(sock, min(remaining, 1 << 20), max_fds)
        fds.extend(received)
        if flags & socket.MSG_CTRUNC:
            raise ProtocolError("more descriptors than expected on one frame")
        if not chunk:
            raise ConnectionClosed("the other end closed the connection")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def recv_frame_with_fds(
    sock: socket.socket, max_frame: int, max_fds: int = 1
) -> tuple[dict[str, Any], list[int]]:
    """Read exactly one frame and the descriptors that came with it (the caller owns them;
    on any error they are closed here)."""
    fds: list[int] = []
    try:
        (size,) = HEADER.unpack(_recv_exact_fds(sock, HEADER.size, fds, max_fds))
        if size > max_frame:
            raise FrameTooLarge(f"frame of {size} bytes exceeds the {max_frame}-byte cap")
        message = decode(_recv_exact_fds(sock, size, fds, max_fds))
    except BaseException:
        close_fds(fds)
        raise
    return message, fds


def close_fds(fds: Iterable[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)
