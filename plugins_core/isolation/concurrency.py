"""Concurrency limits for isolated plugin calls: one plugin, or one organization, must not
be able to occupy every web worker with calls that hang until their deadline.

A call takes one slot of its plugin and one of its organization before a runner is used,
and gives them back when it ends; with either full it is refused at once with 503
``plugin_busy`` and ``Retry-After`` (``errors.PluginBusy``), never queued.

Slots are ``flock`` locks on small files under ``<temp>/imbi-slots`` (mode 0700), so the
count is shared by every thread *and every process* of the node that uses the same temp
folder: gunicorn's sync workers each serve one request at a time, and a per-process count
could never refuse anything there. The kernel drops a lock when its holder exits, even on
SIGKILL, so a slot is never leaked. Limits: ``IMBI_PLUGIN_CONCURRENCY_PER_PLUGIN`` and
``IMBI_PLUGIN_CONCURRENCY_PER_ORGANIZATION`` (0: unlimited).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import math
import os
import tempfile
from collections.abc import Iterator

from .errors import PluginBusy

__all__ = ["slots", "slots_dir"]


def slots_dir() -> str:
    return os.path.join(tempfile.gettempdir(), "imbi-slots")


def _take(scope: str, kind: str, name: str, limit: int) -> int | None:
    """An open descriptor holding one of ``limit`` slots of ``kind:name``, or ``None``."""
    folder = slots_dir()
    os.makedirs(folder, mode=0o700, exist_ok=True)
    stem = hashlib.sha256(f"{scope}\0{kind}\0{name}".encode()).hexdigest()[:24]
    for number in range(limit):
        fd = os.open(
            os.path.join(folder, f"{stem}-{number}"),
            os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW,
            0o600,
        )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                continue
            raise
        return fd
    return None


def _give_back(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)  # closing the last descriptor of the open file drops the lock


@contextlib.contextmanager
def slots(
    *,
    scope: str,
    plugin: str,
    organization: str,
    slug: str,
    per_plugin: int,
    per_organization: int,
    timeout: float,
) -> Iterator[None]:
    """Hold a slot of ``plugin`` and one of ``organization`` for the ``with`` block, or
    raise ``PluginBusy`` at once (``Retry-After``: the call deadline, when one frees).
    ``scope`` names the deployment (its database), so two platforms sharing a temp folder
    (test sessions side by side) never share counts."""
    held: list[int] = []
    try:
        for kind, name, limit, what in (
            ("plugin", plugin, per_plugin, f"plugin '{slug}'"),
            ("organization", organization, per_organization, "this organization's plugins"),
        ):
            if limit <= 0:
                continue
            fd = _take(scope, kind, name, limit)
            if fd is None:
                raise PluginBusy(
                    f"{what} already ha{'s' if kind == 'plugin' else 've'} {limit} calls in "
                    "progress; try again shortly",
                    retry_after=max(1, math.ceil(timeout)),
                )
            held.append(fd)
        yield
    finally:
        for fd in held:
            _give_back(fd)
