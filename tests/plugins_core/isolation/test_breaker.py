"""Circuit breakers: in memory and shared through the test harness's real Redis."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import pytest
import redis

from plugins_core.isolation.breaker import MemoryBreaker, RedisBreaker
from plugins_core.isolation.errors import PluginCircuitOpen


def memory() -> MemoryBreaker:
    return MemoryBreaker(fail_max=3, reset_timeout=0.3)


def shared() -> RedisBreaker:
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    return RedisBreaker(client, fail_max=3, reset_timeout=0.3)


@pytest.fixture(params=["memory", "redis"])
def make(request: Any) -> Any:
    return memory if request.param == "memory" else shared


def test_opens_after_fail_max_consecutive_failures(make: Any) -> None:
    breaker, key = make(), uuid.uuid4().hex
    for _ in range(2):
        breaker.failure(key)
        breaker.before(key, "p")  # still closed
    breaker.failure(key)
    with pytest.raises(PluginCircuitOpen) as info:
        breaker.before(key, "p")
    assert info.value.code == "plugin_circuit_open"
    assert info.value.http_status == 503
    assert info.value.retry_after == 1
    assert breaker.state(key).state == "open"


def test_a_success_resets_the_count(make: Any) -> None:
    breaker, key = make(), uuid.uuid4().hex
    breaker.failure(key)
    breaker.failure(key)
    breaker.success(key)
    breaker.failure(key)
    breaker.before(key, "p")
    assert breaker.state(key).state == "closed"


def test_half_open_lets_one_trial_through(make: Any) -> None:
    breaker, key = make(), uuid.uuid4().hex
    for _ in range(3):
        breaker.failure(key)
    time.sleep(0.35)
    assert breaker.state(key).state == "half_open"
    breaker.before(key, "p")  # the trial
    with pytest.raises(PluginCircuitOpen):
        breaker.before(key, "p")  # everyone else waits for its outcome
    breaker.failure(key)  # the trial failed: open again
    with pytest.raises(PluginCircuitOpen):
        breaker.before(key, "p")
    time.sleep(0.35)
    breaker.before(key, "p")
    breaker.success(key)  # the trial succeeded: closed
    breaker.before(key, "p")
    breaker.before(key, "p")
    assert breaker.state(key).state == "closed"


def test_redis_state_is_shared_between_breakers() -> None:
    key = uuid.uuid4().hex
    one, two = shared(), shared()  # two workers
    for _ in range(3):
        one.failure(key)
    with pytest.raises(PluginCircuitOpen):
        two.before(key, "p")
