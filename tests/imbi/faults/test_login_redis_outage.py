"""Fault 1 of issue 21: log-in during a Redis outage never answers 500, and a frozen Redis
costs a process at most one short timeout per retry interval.

The suite's real Redis is killed (connections refused) or frozen with SIGSTOP (connections
hang); both log-in forms are posted with right and wrong passwords. Throttling then counts
in this process's memory (docs/decisions/0023-production-faults.md): a lockout still
happens, per process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.test import Client, override_settings
from rest_framework.test import APIClient

from imbi.core import throttle
from imbi.testing.outages import clear_latch, redis_frozen, redis_killed

pytestmark = pytest.mark.django_db

PASSWORD = "the-right-password-4b1e"
OUTAGES: dict[str, Callable[[], AbstractContextManager[Any]]] = {
    "killed": redis_killed,
    "frozen": redis_frozen,
}


@pytest.fixture(autouse=True)
def fresh_state() -> Iterator[None]:
    clear_latch()
    throttle._LOCAL.clear()
    yield
    clear_latch()
    throttle._LOCAL.clear()


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


@pytest.mark.parametrize("outage", sorted(OUTAGES))
@pytest.mark.parametrize("login_url", ["/accounts/login/", "/admin/login/"])
def test_log_in_works_during_a_redis_outage(
    django_user_model: Any, login_url: str, outage: str, caplog: pytest.LogCaptureFixture
) -> None:
    django_user_model.objects.create_user("alice", password=PASSWORD, is_staff=True)
    timeout = settings.IMBI_REDIS_TIMEOUT
    client = Client()
    with caplog.at_level(logging.WARNING, logger="imbi.core.cache"), OUTAGES[outage]():
        wrong, first = timed(
            lambda: client.post(login_url, {"username": "alice", "password": "wrong"})
        )
        assert wrong.status_code == 200  # the form again, with its error
        assert "_auth_user_id" not in client.session
        later = []
        for _ in range(3):
            again, seconds = timed(
                lambda: client.post(login_url, {"username": "alice", "password": "wrong"})
            )
            assert again.status_code == 200
            later.append(seconds)
        right, seconds = timed(
            lambda: client.post(login_url, {"username": "alice", "password": PASSWORD})
        )
        later.append(seconds)
        assert right.status_code == 302, right.content[:300]
        assert client.session["_auth_user_id"]
    # Redis was tried once (one short timeout when frozen); the latch answered the rest at once
    attempts = [r for r in caplog.records if "Redis unavailable (" in r.getMessage()]
    assert len(attempts) == 1, [r.getMessage() for r in attempts]
    assert first < timeout + 2.0, first  # one timeout, plus a first request on a busy machine
    assert max(later) < 1.5, later  # no timeout in them: the attempt count is the proof


def test_lockout_still_applies_per_process_during_the_outage(django_user_model: Any) -> None:
    django_user_model.objects.create_user("alice", password=PASSWORD, is_staff=True)
    client = Client()
    with override_settings(AXES_COOLOFF_TIME=timedelta(seconds=60)), redis_killed():
        statuses = [
            client.post(
                "/accounts/login/", {"username": "alice", "password": f"wrong-{i}"}
            ).status_code
            for i in range(12)
        ]
        refused = client.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert statuses == [200] * 9 + [429] * 3
    assert refused.status_code == 429
    assert refused["Retry-After"] == "60"


@pytest.mark.parametrize("outage", sorted(OUTAGES))
def test_wrong_api_tokens_are_401_not_500_during_the_outage(outage: str) -> None:
    client = APIClient()
    with OUTAGES[outage]():
        answers = [client.get("/api/orgs", HTTP_AUTHORIZATION=f"Token wrong-{i}") for i in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 401]
    assert {a["Content-Type"] for a in answers} == {"application/problem+json"}
