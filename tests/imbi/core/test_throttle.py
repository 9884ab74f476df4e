"""Throttling (imbi.core.throttle): the login forms and API tokens, on the real Redis cache.

Time passes honestly: the cool-off is configured short and the test waits for the Redis
entries to expire, exactly as production waits for its 15 minutes.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from axes.utils import reset
from django.core.cache import cache
from django.test import Client, override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from imbi.core.models import Organization, Role

pytestmark = pytest.mark.django_db

PASSWORD = "the-right-password-4b1e"
COOL_OFF = timedelta(seconds=2)


def _forget() -> None:
    reset(ip="127.0.0.1")
    for username in ("alice", "bob"):
        reset(username=username)
    cache.delete_many(["imbi:token-failures:127.0.0.1", "imbi:token-lockout:127.0.0.1"])


@pytest.fixture(autouse=True)
def clean_slate() -> Iterator[None]:
    _forget()
    yield
    _forget()


def test_the_cache_is_redis_so_every_process_shares_the_counts() -> None:
    from django.conf import settings
    from django.core.cache import caches
    from django.core.cache.backends.redis import RedisCache

    assert isinstance(caches["default"], RedisCache), settings.CACHES["default"]["BACKEND"]
    assert settings.AXES_HANDLER == "imbi.core.throttle.ResilientAxesHandler"


@pytest.mark.parametrize("login_url", ["/accounts/login/", "/admin/login/"])
def test_thirty_failures_lock_out_the_right_password_until_the_cool_off_ends(
    django_user_model: Any, login_url: str
) -> None:
    django_user_model.objects.create_user("alice", password=PASSWORD, is_staff=True)
    client = Client()
    with override_settings(AXES_COOLOFF_TIME=COOL_OFF):
        statuses = [
            client.post(login_url, {"username": "alice", "password": f"wrong-{i}"}).status_code
            for i in range(30)
        ]
        # the form re-renders (200) until the limit, then every attempt is locked out (429)
        assert statuses == [200] * 9 + [429] * 21
        refused = client.post(login_url, {"username": "alice", "password": PASSWORD})
        assert refused.status_code == 429
        assert refused["Retry-After"] == "2"
        page = refused.content.decode()
        assert "Too many failed log-in attempts" in page and "Try again in 2 seconds" in page
        assert "_auth_user_id" not in client.session
        # another user from the same address is not affected
        django_user_model.objects.create_user("bob", password=PASSWORD, is_staff=True)
        other = Client().post(login_url, {"username": "bob", "password": PASSWORD})
        assert other.status_code == 302
        time.sleep(COOL_OFF.total_seconds() + 0.5)  # the Redis entries expire
        accepted = client.post(login_url, {"username": "alice", "password": PASSWORD})
        assert accepted.status_code == 302
        assert client.session["_auth_user_id"] == str(
            django_user_model.objects.get(username="alice").pk
        )


def test_api_token_failures_lock_out_the_address_with_429_and_retry_after(
    make_member: Any, org: Organization
) -> None:
    user = make_member(org, Role.VIEWER, username="api-user")
    good = Token.objects.create(user=user).key
    client = APIClient()
    with override_settings(AXES_COOLOFF_TIME=COOL_OFF, IMBI_TOKEN_FAILURE_LIMIT=30):
        for i in range(30):
            client.credentials(HTTP_AUTHORIZATION=f"Token wrong-token-{i:02d}")
            response = client.get("/api/whoami")
            assert response.status_code == 401, (i, response.content)
            assert response.json()["code"] == "authentication_failed"
        client.credentials(HTTP_AUTHORIZATION=f"Token {good}")
        refused = client.get("/api/whoami")
        assert refused.status_code == 429
        assert refused["Content-Type"] == "application/problem+json"
        assert refused.json()["code"] == "throttled"
        assert 1 <= int(refused["Retry-After"]) <= 2
        time.sleep(COOL_OFF.total_seconds() + 0.5)
        accepted = client.get("/api/whoami")
        assert accepted.status_code == 200 and accepted.json()["username"] == "api-user"


def test_requests_without_a_token_are_not_counted(make_member: Any, org: Organization) -> None:
    client = APIClient()
    with override_settings(IMBI_TOKEN_FAILURE_LIMIT=3):
        for _ in range(5):
            assert client.get("/api/whoami").status_code == 401
    user = make_member(org, Role.VIEWER, username="api-user")
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    assert client.get("/api/whoami").status_code == 200
