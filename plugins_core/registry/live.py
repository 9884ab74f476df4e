"""The process's published snapshot: ``current()`` and the ways it changes.

Imports stay off the request path. ``current()`` builds a process's first snapshot at once:
trusted plugins imported, untrusted ones ``loading``; a background thread of this process
inspects them (each distribution in its sandboxed runner, with the import deadline) and
publishes a new snapshot as each distribution's results arrive. A request for a loading
plugin is answered 503 ``plugin_loading`` (``plugins_core.serving.resolution``). A process forked
while entries are loading (Celery's pool children) inspects them again itself, on its first
``current()``: threads do not survive a fork.

``rebuild()`` re-reads the installed distributions and, by default, waits for the
inspections (the CLI, installs, strict start-up). ``set_managed()`` adds runtime-installed
distributions. All three publish through ``_publish``, the one function that settles names
and slugs (``assemble``) and swaps in a new immutable snapshot with the next generation
number. A request that already holds a snapshot keeps it (in-flight calls finish against
the handlers they started with). ``set_guard`` installs the supply-chain guard ``rebuild``
consults before importing anything.

This module holds all of the registry's mutable state (``_current``, ``_lock``, ``_epoch``,
``_pending``, ``_managed``, ``_inspector_pid``, ...). Imports ``snapshot`` and ``loading``.
"""

from __future__ import annotations

import importlib
import math
import os
import threading
import time
from collections.abc import Iterable, Sequence

from packaging.utils import canonicalize_name

from imbi.core import metrics
from plugins_core.registry import loading
from plugins_core.registry.loading import (
    Untrusted,
    _inspect,
    _isolated_entry,
    _loading,
    _sort_out,
    _summary,
    discover,
    is_trusted,
    settings,
)
from plugins_core.registry.snapshot import (
    Candidate,
    Entry,
    Guard,
    Refusals,
    Snapshot,
    Status,
    assemble,
)

_lock = threading.Lock()
_current: Snapshot | None = None
_guard: Guard | None = None
_examined: tuple[Entry, ...] = ()  # the host environment's entries, as examined
_managed: tuple[
    Entry, ...
] = ()  # runtime-installed distributions (plugins_core.distributions.runtime)
_pending: Untrusted = {}  # untrusted distributions still loading
_epoch = 0  # which rebuild (or fork) the running inspection belongs to
_inspector_pid = 0  # the process whose thread inspects ``_pending``
_inspection_started = 0.0  # time.monotonic() of that inspection's start
_settled = threading.Condition(_lock)


def set_guard(guard: Guard | None) -> None:
    """Install the supply-chain guard ``rebuild`` consults
    (``plugins_core.distributions.integrity``)."""
    global _guard
    _guard = guard


def _refusals(candidates: Sequence[Candidate]) -> Refusals:
    if _guard is None:
        return {}
    try:
        return _guard(candidates)
    except Exception as exc:  # fail closed: an unverifiable distribution does not load
        reason = f"integrity check failed: {_summary(exc)}"
        return {canonicalize_name(c.distribution): (Status.MODIFIED, reason) for c in candidates}


def _publish() -> Snapshot:
    """The one way a process's snapshot changes (called with ``_lock`` held): the host
    environment's entries and the runtime-installed ones, settled by ``assemble``, as a new
    immutable snapshot with the next generation number."""
    global _current
    generation = (_current.generation + 1) if _current else 1
    _current = assemble([*_examined, *_managed], generation=generation)
    metrics.REGISTRY_GENERATION.set(generation)
    _settled.notify_all()
    return _current


def current() -> Snapshot:
    """This process's snapshot, built on first use without waiting for untrusted imports."""
    snapshot = _current
    if snapshot is None:
        return _rebuild(strict=False, wait=False, first=True)
    if _pending and _inspector_pid != os.getpid():
        _resume()  # forked while loading: this process has no inspection thread
    return snapshot


def rebuild(*, strict: bool = False, wait: bool = True) -> Snapshot:
    """Build a new snapshot from the installed distributions and make it current.

    With ``wait`` (the default) the untrusted distributions' inspections finish first; without
    it their entries are ``loading`` and a background thread publishes their results.
    ``strict`` (``IMBI_PLUGINS_STRICT`` at start-up, ``apps.ready``) always waits and raises
    the first failure's named error."""
    return _rebuild(strict=strict, wait=wait, first=False)


def _rebuild(*, strict: bool, wait: bool, first: bool) -> Snapshot:
    global _examined, _pending, _epoch
    with _lock:
        if first and _current is not None:  # another thread built it meanwhile
            return _current
        importlib.invalidate_caches()  # see distributions installed since start
        candidates = discover()
        examined, untrusted = _sort_out(candidates, is_trusted, _refusals(candidates))
        if wait or strict:
            _inspect(untrusted, examined.extend)
            untrusted = {}
        if strict:  # the first failure is fatal, by request: nothing changes
            assemble(examined, generation=0, strict=True)
        _examined = (*examined, *_loading(untrusted))
        _pending = untrusted
        _epoch += 1
        snapshot = _publish()
        if untrusted:
            _start_inspection()
    return snapshot


def _start_inspection() -> None:
    """Inspect ``_pending`` in a daemon thread of this process (called with ``_lock`` held)."""
    global _inspector_pid, _inspection_started
    _inspector_pid = os.getpid()
    _inspection_started = time.monotonic()
    epoch, pending = _epoch, dict(_pending)

    def settle(found: list[Entry]) -> None:
        global _examined
        with _lock:
            if epoch != _epoch:  # a newer rebuild owns the loading entries now
                return
            keys = {(e.name, e.distribution) for e in found}
            _examined = (
                *(e for e in _examined if (e.name, e.distribution) not in keys),
                *found,
            )
            for e in found:
                _pending.pop(e.distribution, None)
            _publish()

    # Daemon threads, not an executor: an executor's threads are joined when the interpreter
    # exits, so a command or a worker shutting down would wait for a hanging import.
    slots = threading.BoundedSemaphore(4)

    def inspect(candidates: list[Candidate]) -> None:
        try:
            with slots:
                found = loading._examine_isolated(candidates)
        except Exception as exc:  # never leave entries loading forever
            reason = f"inspection failed: {_summary(exc)}"
            found = [
                _isolated_entry(
                    c.name, c.target, c.distribution, c.version, Status.IMPORT_FAILED, reason
                )
                for c in candidates
            ]
        settle(found)

    for distribution, candidates in pending.items():
        threading.Thread(
            target=inspect,
            args=(candidates,),
            name=f"imbi-plugin-import-{distribution}"[:60],
            daemon=True,
        ).start()


def _resume() -> None:
    global _epoch
    with _lock:
        if _pending and _inspector_pid != os.getpid():
            _epoch += 1
            _start_inspection()


def wait_loaded(timeout: float | None = None) -> Snapshot:
    """The current snapshot once nothing is loading (or when ``timeout`` passes)."""
    current()
    with _lock:
        _settled.wait_for(lambda: not _pending, timeout)
        assert _current is not None
        return _current


def settled() -> Snapshot:
    """For commands and other batch work: the snapshot once this process's sandboxed imports
    finished. Bounded: each loading entry point by the import deadline, plus a margin."""
    loading = current().loading()
    if not loading:
        return current()
    return wait_loaded(timeout=settings.import_timeout * len(loading) + 30)


def inspecting_here() -> bool:
    """Whether entries are loading and a thread of this process imports them (``False`` in a
    forked child until its first ``current()``)."""
    return bool(_pending) and _inspector_pid == os.getpid()


def retry_after() -> int:
    """Seconds a client should wait before asking again for a loading plugin (at least 1)."""
    left = _inspection_started + settings.import_timeout - time.monotonic()
    return max(1, math.ceil(left))


def set_managed(entries: Iterable[Entry]) -> Snapshot:
    """Swap in a snapshot with ``entries`` (runtime-installed distributions, already
    inspected) beside the host environment's, without importing anything again. A caller
    that already holds the previous snapshot keeps it."""
    global _managed
    if _current is None:
        current()
    with _lock:
        _managed = tuple(entries)
        return _publish()


def _after_fork_in_child() -> None:
    """A forked child has only the forking thread: a lock another thread held stays held,
    and no inspection runs here (``current()`` starts one when entries are loading)."""
    global _lock, _settled
    _lock = threading.Lock()
    _settled = threading.Condition(_lock)


os.register_at_fork(after_in_child=_after_fork_in_child)
