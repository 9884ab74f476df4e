"""A circuit breaker per installed plugin, in memory or shared through Redis.

``before(key)`` raises ``PluginCircuitOpen`` (503, ``Retry-After``) while the circuit is
open, without calling the plugin. After ``reset_timeout`` seconds one caller is let through
(half-open): its success closes the circuit, its failure opens it again for another
``reset_timeout``. ``failure(key)`` counts consecutive failures (timeouts, crashes,
``plugin_failed``); at ``fail_max`` the circuit opens. ``success(key)`` resets the count.

``MemoryBreaker`` is per process (the embedded default); ``RedisBreaker`` keeps the state in
one Redis hash per key so every worker and node sees the same circuit, and uses ``SET NX``
so only one caller anywhere makes the half-open trial.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import PluginCircuitOpen

__all__ = ["Breaker", "BreakerState", "MemoryBreaker", "RedisBreaker"]


@dataclass(frozen=True)
class BreakerState:
    state: str  # "closed", "open" or "half_open"
    failures: int
    retry_after: float  # seconds until a trial is allowed (0 unless open)


class Breaker(Protocol):
    fail_max: int
    reset_timeout: float

    def before(self, key: str, name: str) -> None: ...

    def success(self, key: str) -> None: ...

    def failure(self, key: str) -> None: ...

    def state(self, key: str) -> BreakerState: ...

    def reset(self, key: str) -> None: ...


def _open_error(name: str, wait: float) -> PluginCircuitOpen:
    seconds = max(1, math.ceil(wait))
    return PluginCircuitOpen(
        f"plugin '{name}' failed repeatedly; calls are paused for {seconds}s",
        retry_after=seconds,
    )


class MemoryBreaker:
    def __init__(self, *, fail_max: int = 5, reset_timeout: float = 30.0) -> None:
        self.fail_max = fail_max
        self.reset_timeout = reset_timeout
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._opened: dict[str, float] = {}
        self._trial: dict[str, float] = {}

    def before(self, key: str, name: str) -> None:
        with self._lock:
            opened = self._opened.get(key)
            if opened is None:
                return
            wait = opened + self.reset_timeout - time.monotonic()
            trial = self._trial.get(key)
            if wait > 0 or (trial is not None and time.monotonic() - trial < self.reset_timeout):
                raise _open_error(name, max(wait, 1.0))
            self._trial[key] = time.monotonic()  # this caller makes the half-open trial

    def success(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)
            self._opened.pop(key, None)
            self._trial.pop(key, None)

    def failure(self, key: str) -> None:
        with self._lock:
            count = self._failures.get(key, 0) + 1
            self._failures[key] = count
            if count >= self.fail_max or key in self._trial:
                self._opened[key] = time.monotonic()
                self._trial.pop(key, None)

    def state(self, key: str) -> BreakerState:
        with self._lock:
            failures = self._failures.get(key, 0)
            opened = self._opened.get(key)
            if opened is None:
                return BreakerState("closed", failures, 0.0)
            wait = opened + self.reset_timeout - time.monotonic()
            if wait > 0:
                return BreakerState("open", failures, wait)
            return BreakerState("half_open", failures, 0.0)

    def reset(self, key: str) -> None:
        self.success(key)


class RedisBreaker:
    """The same rules with the state in Redis (``imbi:breaker:<key>``)."""

    def __init__(self, client: Any, *, fail_max: int = 5, reset_timeout: float = 30.0) -> None:
        self.client = client
        self.fail_max = fail_max
        self.reset_timeout = reset_timeout

    def _key(self, key: str) -> str:
        return f"imbi:breaker:{key}"

    def before(self, key: str, name: str) -> None:
        opened = self.client.hget(self._key(key), "opened")
        if opened is None:
            return
        wait = float(opened) + self.reset_timeout - time.time()
        if wait > 0:
            raise _open_error(name, wait)
        ttl = max(1, math.ceil(self.reset_timeout))
        if not self.client.set(self._key(key) + ":trial", "1", nx=True, ex=ttl):
            raise _open_error(name, 1.0)  # another caller is making the trial

    def success(self, key: str) -> None:
        self.client.delete(self._key(key), self._key(key) + ":trial")

    def failure(self, key: str) -> None:
        name = self._key(key)
        pipe = self.client.pipeline()
        pipe.hincrby(name, "failures", 1)
        pipe.exists(name + ":trial")
        count, trial = pipe.execute()
        if int(count) >= self.fail_max or trial:
            pipe = self.client.pipeline()
            pipe.hset(name, "opened", repr(time.time()))
            pipe.delete(name + ":trial")
            pipe.expire(name, int(self.reset_timeout * 10) + 60)
            pipe.execute()

    def state(self, key: str) -> BreakerState:
        data = self.client.hgetall(self._key(key))
        failures = int(data.get(b"failures", data.get("failures", 0)) or 0)
        opened = data.get(b"opened", data.get("opened"))
        if opened is None:
            return BreakerState("closed", failures, 0.0)
        wait = float(opened) + self.reset_timeout - time.time()
        return (
            BreakerState("open", failures, wait)
            if wait > 0
            else BreakerState("half_open", failures, 0.0)
        )

    def reset(self, key: str) -> None:
        self.success(key)
