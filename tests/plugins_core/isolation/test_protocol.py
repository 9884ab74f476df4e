"""Frames: length-prefixed JSON objects, capped in both directions, NaN refused."""

from __future__ import annotations

import os
import socket

import pytest

from plugins_core.isolation import protocol


@pytest.fixture
def pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    yield a, b
    a.close()
    b.close()


def test_round_trip(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    protocol.send_frame(a, {"t": "ping", "id": 7, "text": "é"}, 1024)
    assert protocol.recv_frame(b, 1024) == {"t": "ping", "id": 7, "text": "é"}


def test_sender_refuses_an_oversized_frame() -> None:
    with pytest.raises(protocol.FrameTooLarge):
        protocol.encode({"t": "reply", "x": "y" * 2000}, 1024)


def test_receiver_refuses_an_oversized_frame_before_reading_it(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = pair
    a.sendall(protocol.HEADER.pack(50 * 1024 * 1024))  # announces 50 MB, sends nothing more
    with pytest.raises(protocol.FrameTooLarge, match="52428800 bytes exceeds the 1024-byte cap"):
        protocol.recv_frame(b, 1024)


@pytest.mark.parametrize(
    "body", [b"[1, 2]", b"NaN", b'{"t": NaN}', b"\xff\xfe", b'{"no_type": 1}', b"{"]
)
def test_anything_but_a_typed_json_object_is_a_protocol_error(
    body: bytes, pair: tuple[socket.socket, socket.socket]
) -> None:
    a, b = pair
    a.sendall(protocol.HEADER.pack(len(body)) + body)
    with pytest.raises(protocol.ProtocolError):
        protocol.recv_frame(b, 1024)


def test_a_deeply_nested_frame_is_a_protocol_error() -> None:
    """Well under the size cap, but deeper than the JSON decoder recurses: a runner sending
    one answers ``plugin_failed`` (``ProtocolError``), not a raw ``RecursionError`` (a 500)."""
    body = b'{"t":"reply","id":1,"result":' + b"[" * 200_000 + b"]" * 200_000 + b"}"
    with pytest.raises(protocol.ProtocolError, match="RecursionError"):
        protocol.decode(body)


def test_nan_is_never_sent() -> None:
    with pytest.raises(ValueError):
        protocol.encode({"t": "reply", "x": float("nan")})


def test_closed_connection(pair: tuple[socket.socket, socket.socket]) -> None:
    a, b = pair
    a.sendall(protocol.HEADER.pack(10) + b"{")
    a.close()
    with pytest.raises(protocol.ConnectionClosed):
        protocol.recv_frame(b, 1024)


def test_a_descriptor_travels_with_its_frame_and_no_other(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = pair
    read_end, write_end = os.pipe()
    try:
        protocol.send_frame_with_fd(a, {"t": "host_reply", "id": 1, "ok": True}, write_end, 1024)
        protocol.send_frame(a, {"t": "host_reply", "id": 2, "ok": True}, 1024)
        first, fds = protocol.recv_frame_with_fds(b, 1024)
        second, none = protocol.recv_frame_with_fds(b, 1024)
        assert (first["id"], second["id"], none) == (1, 2, [])
        assert len(fds) == 1 and fds[0] != write_end
        os.write(fds[0], b"through")  # the same pipe, received as a new descriptor
        os.close(fds[0])
        assert os.read(read_end, 16) == b"through"
    finally:
        os.close(read_end)
        os.close(write_end)


def test_descriptors_on_a_refused_frame_are_closed(
    pair: tuple[socket.socket, socket.socket],
) -> None:
    a, b = pair
    before = len(os.listdir("/proc/self/fd"))
    read_end, write_end = os.pipe()
    socket.send_fds(a, [protocol.HEADER.pack(5000) + b"{}"], [write_end])
    os.close(write_end)
    with pytest.raises(protocol.FrameTooLarge):
        protocol.recv_frame_with_fds(b, 1024)
    os.close(read_end)
    assert len(os.listdir("/proc/self/fd")) == before
