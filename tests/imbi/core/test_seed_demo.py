"""`make run`'s seed: demo data, and admin and owner logins printed once that work."""

from __future__ import annotations

import re
from io import StringIO
from typing import Any

from django.core.management import call_command
from django.test import Client

from imbi.core.models import Organization, Project, ProjectType


def test_seed_demo_prints_a_working_login_once(db: Any, client: Client) -> None:
    out = StringIO()
    call_command("seed_demo", stdout=out)
    match = re.search(r"username 'admin' password '([^']+)'", out.getvalue())
    assert match, out.getvalue()
    org = Organization.objects.get(slug="demo")
    assert ProjectType.objects.filter(organization=org).count() == 3
    assert Project.objects.filter(organization=org).count() == 4
    assert client.login(username="admin", password=match.group(1))
    assert client.get("/admin/").status_code == 200

    owner = re.search(r"username 'owner' password '([^']+)'", out.getvalue())
    assert owner, out.getvalue()
    assert client.login(username="owner", password=owner.group(1))
    assert client.get("/projects/").status_code == 200

    again = StringIO()
    call_command("seed_demo", stdout=again)
    assert re.findall(r"password '", again.getvalue()) == []
    assert "reset: .venv/bin/python manage.py changepassword owner" in again.getvalue()
    assert Project.objects.filter(organization=org).count() == 4
