"""Fault 3 of issue 21: a PostgreSQL outage is a 503 with Retry-After, never a 500, and
service resumes by itself when the database is back.

A real gunicorn (production settings, persistent connections: ``CONN_MAX_AGE=60``) serves
the suite's test database; the suite's PostgreSQL is stopped as a crash would stop it
(``pg_ctl -m immediate``) and started again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from rest_framework.authtoken.models import Token

from imbi.testing.outages import postgres_down

from .conftest import Web

TOKEN = "fault-test-token-0123456789abcdef012345"


def test_api_and_pages_answer_503_and_recover(
    web_server: Callable[..., Web], django_user_model: Any
) -> None:
    user = django_user_model.objects.create_user("alice", password="pw-for-tests")
    Token.objects.create(user=user, key=TOKEN)
    web = web_server(CONN_MAX_AGE="60")
    auth = {"Authorization": f"Token {TOKEN}"}
    assert web.get("/api/whoami", headers=auth).status_code == 200
    with postgres_down():
        api = web.get("/api/whoami", headers=auth)
        page = web.get("/admin/", headers={"Cookie": "sessionid=abcdefghijklmnopqrstuvwxyz012345"})
        live = web.get("/livez")
    assert api.status_code == 503, api.text
    assert api.headers["Content-Type"] == "application/problem+json"
    assert api.headers["Retry-After"] == "5"
    body = api.json()
    assert body["code"] == "database_unavailable"
    assert body["detail"] == "The database is unavailable; try again shortly."
    assert page.status_code == 503, page.text[:500]
    assert page.headers["Retry-After"] == "5"
    assert page.headers["Content-Type"].startswith("text/html")
    assert "try again in a few seconds" in page.text
    assert "Traceback" not in page.text and "OperationalError" not in page.text
    assert live.status_code == 200
    # the first request after the restart is served (a broken pooled connection is replaced)
    deadline = time.monotonic() + 15
    answers = []
    while True:
        answers.append(web.get("/api/whoami", headers=auth).status_code)
        if answers[-1] == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert answers == [200], (answers, web.logs())
    assert "Internal Server Error" not in web.logs()
