"""``ResilientRedisCache`` against a Redis that is not there: reads miss, fills are skipped,
invalidations raise ``CacheUnavailable``; against a live one it is a plain Redis cache."""

from __future__ import annotations

import logging
import os

import pytest

from imbi.core.cache import CacheUnavailable, ResilientRedisCache
from imbi.testing.services import free_port

PASSWORD = "hunter2-in-the-url"


def down() -> ResilientRedisCache:
    url = f"redis://:{PASSWORD}@127.0.0.1:{free_port()}/0"  # nothing listens there
    return ResilientRedisCache(
        url, {"OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}
    )


def test_reads_miss_and_fills_are_skipped_while_redis_is_down(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cache = down()
    with caplog.at_level(logging.WARNING, logger="imbi.core.cache"):
        assert cache.get("k", "default") == "default"
        assert cache.get_many(["a", "b"]) == {}
        assert cache.has_key("k") is False
        assert cache.get_or_set("k", 5) == 5
        cache.set("k", 1)
        assert cache.add("k", 1) is False
        assert cache.set_many({"a": 1}) == ["a"]
        assert cache.touch("k") is False
    assert "cache get skipped: Redis unavailable (ConnectionError)" in caplog.text
    assert PASSWORD not in caplog.text


@pytest.mark.parametrize(
    "operation",
    [
        lambda c: c.incr("k"),
        lambda c: c.decr("k"),
        lambda c: c.delete("k"),
        lambda c: c.delete_many(["k"]),
        lambda c: c.clear(),
    ],
)
def test_invalidations_raise_while_redis_is_down(operation: object) -> None:
    with pytest.raises(CacheUnavailable) as caught:
        operation(down())  # type: ignore[operator]
    assert PASSWORD not in str(caught.value)


def test_a_live_redis_behaves_as_a_plain_cache() -> None:
    cache = ResilientRedisCache(os.environ["REDIS_URL"], {"KEY_PREFIX": "imbi-cache-test"})
    cache.set("n", 1)
    assert cache.get("n") == 1
    assert cache.incr("n") == 2
    with pytest.raises(ValueError):
        cache.incr("missing")
    assert cache.delete("n") is True
    assert cache.get("n") is None
