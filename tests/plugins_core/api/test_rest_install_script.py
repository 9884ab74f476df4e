"""A whole install driven by a script through the REST API only, over real HTTP.

The script holds an API token of an organization admin and nothing else: it discovers the
project and the project type, creates the AWS service, sets its credentials (write-only),
installs the template (which attaches both AWS plugins to that service), binds SSM to the
project type, tests the connection, reads the configuration tab and reads the audit events.
AWS is moto's standalone server on 127.0.0.1. Nothing goes through the admin.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from imbi.core.models import Organization, Project, ProjectType, Role

pytestmark = pytest.mark.django_db(transaction=True)

KEY_ID = "AKIASCRIPTTESTKEY001"
SECRET_KEY = "script-secret-access-key-0b7e4d1a9c3f"
DB_PASSWORD = "script-db-password-7731"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def token(org: Organization, project: Project, project_type: ProjectType, make_member: Any) -> str:
    from rest_framework.authtoken.models import Token

    user = make_member(org, Role.ADMIN, username="terraform")
    user.is_staff = True  # an operator (imbi.core.access.is_operator)
    user.save(update_fields=["is_staff"])
    return str(Token.objects.create(user=user).key)


def run_install_script(base: str, token: str, org: str, aws_url: str) -> dict[str, Any]:
    """What an operator's script does; returns what it read at the end."""
    http = httpx.Client(
        base_url=f"{base}/api", headers={"Authorization": f"Token {token}"}, timeout=20
    )

    def call(method: str, path: str, expect: int, **kwargs: Any) -> Any:
        response = http.request(method, path, **kwargs)
        assert response.status_code == expect, (method, path, response.text)
        assert SECRET_KEY not in response.text
        return response.json() if response.content else None

    project = call("GET", f"/orgs/{org}/projects", 200, params={"slug": "billing"})[0]
    project_type = call("GET", f"/orgs/{org}/project-types", 200)[0]["slug"]
    service = call(
        "POST",
        f"/orgs/{org}/services",
        201,
        json={
            "name": "AWS Production",
            "vendor": "aws",
            "slug": "aws-prod",
            "settings": {"region": "us-east-1", "base_url": aws_url},
        },
    )
    assert service["credentials"]["set"] == []
    credentials = call(
        "PATCH",
        f"/orgs/{org}/services/aws-prod/credentials",
        200,
        json={"credentials": {"access_key_id": KEY_ID, "secret_access_key": SECRET_KEY}},
    )
    installed = call("POST", f"/orgs/{org}/plugins/install", 201, json={"entry_point": "aws-ssm"})
    ssm = next(slug for slug in installed["plugins"] if "ssm" in slug)
    # The credentials were set before any plugin declared them: read them back now.
    credentials = call("GET", f"/orgs/{org}/services/aws-prod/credentials", 200)
    call(
        "POST",
        f"/orgs/{org}/project-types/{project_type}/bindings",
        201,
        json={"plugin": ssm, "default": True, "search_template": "/${org}/${project}/"},
    )
    test = call("POST", f"/orgs/{org}/plugins/{ssm}/connection-test", 200)
    plugin = call("GET", f"/orgs/{org}/plugins/{ssm}", 200)
    tabs = call("GET", f"/orgs/{org}/projects/{project['id']}/tabs", 200)
    values = call("GET", f"/orgs/{org}/projects/{project['id']}/configuration/values", 200)
    events = call("GET", f"/orgs/{org}/audit-events", 200, params={"limit": 100})
    return {
        "installed": installed,
        "credentials": credentials,
        "test": test,
        "plugin": plugin,
        "tabs": tabs,
        "values": values,
        "events": events,
    }


def test_a_script_installs_aws_with_the_rest_api_only(
    live_server: Any, token: str, org: Organization, moto_url: str
) -> None:
    ssm = boto3.client(
        "ssm",
        region_name="us-east-1",
        endpoint_url=moto_url,
        aws_access_key_id=KEY_ID,
        aws_secret_access_key=SECRET_KEY,
    )
    ssm.put_parameter(
        Name="/acme/billing/DB_HOST", Value="db.internal", Type="String", Overwrite=True
    )
    ssm.put_parameter(
        Name="/acme/billing/DB_PASSWORD", Value=DB_PASSWORD, Type="SecureString", Overwrite=True
    )

    out = run_install_script(live_server.url, token, org.slug, moto_url)

    assert out["installed"]["service"] == "aws-prod"  # the service the script created
    assert sorted(out["installed"]["plugins"]) == ["aws-cloudwatch-logs", "aws-ssm"]
    assert out["credentials"]["set"] == ["access_key_id", "secret_access_key"]
    assert out["credentials"]["missing"] == []
    assert out["test"]["ok"] is True, out["test"]
    assert out["test"]["trigger"] == "api"
    assert out["plugin"]["health"]["status"] == "ok"
    (tab,) = [t for t in out["tabs"]["tabs"] if t["tab"] == "configuration"]
    assert [(s["slug"], s["status"], s["selected"]) for s in tab["sources"]] == [
        ("aws-ssm", "ok", True)
    ]
    values = {v["key"]: v for v in out["values"]["values"]}
    assert values["DB_HOST"]["value"] == "db.internal"
    assert values["DB_PASSWORD"]["masked"] is True and values["DB_PASSWORD"]["value"] is None
    actions = [(e["action"], e["actor"]) for e in reversed(out["events"]["events"])]
    assert [a for a, _ in actions] == [
        "service.change",
        "credentials.set",
        "plugin.install",
        "plugin.install",
        "binding.change",
        "plugin.test",
    ]
    assert {actor for _, actor in actions} == {"terraform"}
    assert DB_PASSWORD not in str(out["events"])
