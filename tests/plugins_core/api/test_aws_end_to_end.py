"""End to end on PostgreSQL against moto's standalone server over real HTTP:

install aws from its template, add credentials, bind aws-ssm with `/${org}/${project}/`,
read that project's parameters (SecureString hidden unless revealed by a reader of secrets),
and page CloudWatch events with the cursor.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from imbi.core.models import AuditEvent, Organization, Project, ProjectType, Role
from plugins_core.models import Plugin, ServiceApplication
from plugins_core.provisioning.install import install_from_template

pytestmark = pytest.mark.django_db
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/e2eSecretAccessKey0000"
DB_PASSWORD = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def client(moto_url: str, service: str) -> Any:
    return boto3.client(
        service,
        region_name="us-east-1",
        endpoint_url=moto_url,
        aws_access_key_id="AKIAE2ETESTKEY000001",
        aws_secret_access_key=SECRET_KEY,
    )


def test_install_bind_and_read_aws(
    org: Organization, project: Project, project_type: ProjectType, api: Any, moto_url: str
) -> None:
    ssm = client(moto_url, "ssm")
    prefix = f"/{org.slug}/{project.slug}/"
    ssm.put_parameter(Name=f"{prefix}DB_HOST", Value="db.internal", Type="String", Overwrite=True)
    ssm.put_parameter(
        Name=f"{prefix}DB_PASSWORD", Value=DB_PASSWORD, Type="SecureString", Overwrite=True
    )
    ssm.put_parameter(
        Name=f"/{org.slug}/someone-else/NOT_MINE", Value="x", Type="String", Overwrite=True
    )
    logs = client(moto_url, "logs")
    group = f"/imbi/{org.slug}/{project.slug}"
    logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="web-1")
    now = datetime.now(UTC)
    logs.put_log_events(
        logGroupName=group,
        logStreamName="web-1",
        logEvents=[
            {
                "timestamp": int(
                    (now - timedelta(minutes=20) + timedelta(seconds=i)).timestamp() * 1000
                ),
                "message": json.dumps({"level": "info", "message": f"request {i}", "i": i}),
            }
            for i in range(45)
        ],
    )

    # 1. One-click install from the template; both AWS entry points share one service.
    result = install_from_template(org, "aws-ssm")
    assert sorted(p.handler for p in result.plugins) == ["aws-cloudwatch-logs", "aws-ssm"]
    assert {p.service_id for p in Plugin.objects.filter(organization=org)} == {result.service.pk}
    assert not ServiceApplication.objects.filter(service=result.service).exists()
    service = result.service
    service.settings = {**service.settings, "base_url": moto_url, "region": "us-east-1"}
    service.save()
    ServiceApplication.objects.create(
        service=service,
        credentials={"access_key_id": "AKIAE2ETESTKEY000001", "secret_access_key": SECRET_KEY},
    )

    # 2. Bind aws-ssm (and the logs plugin) to the project type through the API.
    admin = api(Role.ADMIN, username="ops")
    type_url = f"/api/orgs/{org.slug}/project-types/{project_type.slug}/bindings"
    ssm_slug = next(p.slug for p in result.plugins if p.handler == "aws-ssm")
    logs_slug = next(p.slug for p in result.plugins if p.handler == "aws-cloudwatch-logs")
    assert (
        admin.post(
            type_url,
            {"plugin": ssm_slug, "default": True, "search_template": "/${org}/${project}/"},
            format="json",
        ).status_code
        == 201
    )
    assert (
        admin.post(
            type_url,
            {"plugin": logs_slug, "default": True, "search_template": "/imbi/${org}/${project}"},
            format="json",
        ).status_code
        == 201
    )

    # 3. The project's parameters, SecureString masked for a plain viewer.
    base = f"/api/orgs/{org.slug}/projects/{project.pk}"
    viewer = api(Role.VIEWER, username="viewer")
    response = viewer.get(f"{base}/configuration")
    keys = response.json()["keys"]
    assert {(k["key"], k["secret"]) for k in keys} == {("DB_HOST", False), ("DB_PASSWORD", True)}
    values = {v["key"]: v for v in viewer.get(f"{base}/configuration/values").json()["values"]}
    assert values["DB_HOST"]["value"] == "db.internal"
    assert values["DB_PASSWORD"]["value"] is None and values["DB_PASSWORD"]["masked"]
    assert viewer.get(f"{base}/configuration/values?reveal=true").status_code == 403
    reader = api(Role.VIEWER, secrets=True, username="reader")
    revealed = reader.get(f"{base}/configuration/values?keys=DB_PASSWORD&reveal=true").json()
    assert revealed["values"][0]["value"] == DB_PASSWORD
    assert AuditEvent.objects.filter(action="secret.read", key="DB_PASSWORD").count() == 1

    # Writes go to Parameter Store.
    editor = api(Role.EDITOR, username="editor")
    assert (
        editor.put(
            f"{base}/configuration/keys/FEATURE_X",
            {"data_type": "boolean", "value": True},
            format="json",
        ).status_code
        == 200
    )
    stored = ssm.get_parameter(Name=f"{prefix}FEATURE_X")["Parameter"]["Value"]
    assert stored == "true"

    # 4. CloudWatch events, paged with the cursor: every event exactly once.
    first = viewer.get(
        f"{base}/logs?start={(now - timedelta(hours=1)).isoformat().replace('+00:00', 'Z')}"
    ).json()
    # Pin the range the first page used (the end defaults to "now", which moves).
    start, end = first["start"].replace("+00:00", "Z"), first["end"].replace("+00:00", "Z")
    seen: list[str] = []
    cursor = ""
    for _ in range(10):
        page = viewer.get(f"{base}/logs?start={start}&end={end}&limit=20{cursor}").json()
        assert "entries" in page, page
        seen += [e["message"] for e in page["entries"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert sorted(seen) == sorted(f"request {i}" for i in range(45))

    # No credential or secret value in any response body served above.
    for response in (
        viewer.get(f"{base}/tabs"),
        admin.get(f"/api/orgs/{org.slug}/plugins"),
        viewer.get(f"{base}/configuration/values"),
    ):
        assert SECRET_KEY.encode() not in response.content
        assert DB_PASSWORD.encode() not in response.content
