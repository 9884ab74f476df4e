"""Every supply-chain refusal: its own code, nothing installed, the reason in the CLI and API.

Each scenario starts from a good release of ``imbi-plugin-supply-demo`` in a followed index
and breaks one thing; ``manage.py plugin install`` must fail with a one-line reason starting
with the scenario's code, and ``POST /api/plugin-index/install`` must answer problem+json with
the same code. Nothing lands in the node's plugin root (no environment, no wheel), the desired
state is untouched (no ``InstalledDistribution`` or stored wheel, the generation unchanged), no
install record is written, and the audit trail records no install.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command
from imbi_plugin_sdk import publishing, signing
from rest_framework.test import APIClient

from imbi.core.models import AuditEvent
from plugins_core.models import (
    DistributionArtifact,
    IndexedArtifact,
    InstalledDistribution,
    PluginIndex,
    PluginPolicy,
    RegistryState,
)

from .conftest import NOW, PACKAGE, World, installed_files, rezip

pytestmark = pytest.mark.django_db


def tampered_wheel(world: World) -> str:
    world.release()
    artifact = world.folder / "artifacts" / "imbi_plugin_supply_demo-1.0.0-py3-none-any.whl"
    size = artifact.stat().st_size
    rezip(artifact, {f"{PACKAGE}/handler.py": b"import os; os.system('echo pwned')\n"})
    assert artifact.stat().st_size == size
    return "supply-demo"


def wrong_hash(world: World) -> str:
    wheel = world.wheel()
    entry = world.entry(wheel)
    entry["sha256"] = hashlib.sha256(b"another build").hexdigest()
    entry["signature"] = world.publisher.sign(signing.artifact_message(entry))
    world.publish([entry])
    (world.folder / "artifacts").mkdir()
    (world.folder / entry["url"]).write_bytes(wheel.read_bytes())
    return "supply-demo"


def wrong_size(world: World) -> str:
    wheel = world.wheel()
    entry = world.entry(wheel)
    entry["size"] += 7
    entry["signature"] = world.publisher.sign(signing.artifact_message(entry))
    world.publish([entry])
    (world.folder / "artifacts").mkdir()
    (world.folder / entry["url"]).write_bytes(wheel.read_bytes())
    return "supply-demo"


def bad_publisher_signature(world: World) -> str:
    world.release()
    attacker = world.key("attacker")

    def forge(signed: dict[str, Any]) -> None:
        entry = signed["plugins"]["imbi-plugin-supply-demo"]["versions"]["1.0.0"]["artifacts"][0]
        entry["dependencies"] = ["evil==1.0 --hash=sha256:" + "0" * 64]
        entry["signature"] = attacker.sign(signing.artifact_message(entry))

    world.rewrite(forge)
    return "supply-demo"


def _resign(world: World, certificate: dict[str, Any], signed_at: dt.datetime, **kw: Any) -> str:
    wheel = world.wheel()
    world.publish(
        [world.entry(wheel, signed_at=signed_at)], [wheel], certificates=[certificate], **kw
    )
    return "supply-demo"


def expired_certificate(world: World) -> str:
    certificate = world.certify(
        world.publisher,
        "acme",
        valid_from=NOW - dt.timedelta(days=400),
        valid_until=NOW - dt.timedelta(days=35),
    )
    return _resign(world, certificate, NOW - dt.timedelta(days=1))


def certificate_not_yet_valid(world: World) -> str:
    certificate = world.certify(world.publisher, "acme", valid_from=NOW - dt.timedelta(days=1))
    # the index filed it (its own signed time) three days ago, before the window opened
    moment = NOW - dt.timedelta(days=3)
    return _resign(world, certificate, moment, now=moment)


def unverified_publisher(world: World, settings: Any) -> str:
    settings.IMBI_PLUGINS_VERIFIED_ONLY = True
    certificate = world.certify(world.publisher, "acme", verified=False)
    return _resign(world, certificate, NOW)


def unknown_publisher(world: World) -> str:
    wheel = world.wheel()
    entry = world.entry(wheel, publisher="nobody")
    world.release()

    def add(signed: dict[str, Any]) -> None:
        signed["plugins"]["imbi-plugin-supply-demo"]["versions"]["1.0.0"]["artifacts"] = [entry]

    world.rewrite(add)
    return "supply-demo"


def revoked_certificate(world: World) -> str:
    serial = world.certificate["certificate"]["serial"]
    world.release(revocations=[{"serial": serial, "reason": "key leaked"}])
    return "supply-demo"


def rolled_back_index(world: World) -> str:
    world.release("1.0.0")
    old = (world.folder / "index.json").read_bytes()
    world.release("1.1.0")
    call_command("plugin", "index", "refresh")  # the platform saw version 2
    (world.folder / "index.json").write_bytes(old)
    return "supply-demo"


def expired_index(world: World) -> str:
    world.release(now=NOW - dt.timedelta(days=40))
    return "supply-demo"


def untrusted_index_key(world: World) -> str:
    world.release(index_key=world.key("mirror"))
    return "supply-demo"


def altered_index(world: World) -> str:
    world.release()
    document = world.document()
    document["signed"]["expires"] = signing.format_time(NOW + dt.timedelta(days=3650))
    (world.folder / "index.json").write_text(json.dumps(document))
    return "supply-demo"


def blocklisted_version(world: World) -> str:
    world.release("1.0.0")
    world.release(
        "1.1.0",
        blocklist=[
            {"plugin": "imbi-plugin-supply-demo", "below": "1.1.0", "reason": "leaks credentials"}
        ],
    )
    return "imbi-plugin-supply-demo==1.0.0"


def unsupported_sdk_range(world: World) -> str:
    wheel = world.wheel(sdk_range=">=2.0,<3")
    world.publish([world.entry(wheel)], [wheel])
    return "supply-demo"


SCENARIOS: dict[str, tuple[Callable[..., str], str, str]] = {
    # name: (set-up, code, text the reason must contain)
    "tampered wheel": (tampered_wheel, "artifact_tampered", f"{PACKAGE}/handler.py"),
    "wrong hash": (wrong_hash, "artifact_hash_mismatch", "does not match the signed"),
    "wrong size": (wrong_size, "artifact_size_mismatch", "bytes, the index signed"),
    "bad publisher signature": (
        bad_publisher_signature,
        "publisher_signature_invalid",
        "not 'acme'",
    ),
    "expired certificate": (expired_certificate, "certificate_expired", "after its certificate"),
    "certificate not yet valid": (
        certificate_not_yet_valid,
        "certificate_not_yet_valid",
        "before its certificate",
    ),
    "unverified publisher, verified-only": (
        unverified_publisher,
        "publisher_not_verified",
        "verified publishers only",
    ),
    "unknown publisher": (unknown_publisher, "publisher_unknown", "'nobody'"),
    "revoked certificate": (revoked_certificate, "certificate_revoked", "key leaked"),
    "rolled-back index": (rolled_back_index, "index_rollback", "older than version 2"),
    "expired index": (expired_index, "index_expired", "expired at"),
    "index signed by an untrusted key": (untrusted_index_key, "index_untrusted_key", "trusts"),
    "index altered after signing": (altered_index, "index_signature_invalid", "altered"),
    "blocklisted version": (blocklisted_version, "version_blocked", "leaks credentials"),
    "unsupported SDK range": (unsupported_sdk_range, "sdk_range_unsupported", ">=2.0,<3"),
}


@pytest.fixture
def superuser_client(django_user_model: Any) -> APIClient:
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    client = APIClient()
    client.force_authenticate(user)
    return client


def _setup(scenario: str, world: World, settings: Any) -> tuple[str, str, str]:
    make, code, text = SCENARIOS[scenario]
    world.follow()
    requirement = make(world, settings) if make is unverified_publisher else make(world)
    return requirement, code, text


def _nothing_installed(site: Path, settings: Any) -> None:
    assert installed_files(site) == []
    assert not InstalledDistribution.objects.exists()
    assert not DistributionArtifact.objects.exists()
    assert not RegistryState.objects.exists()  # the generation never moved
    assert not IndexedArtifact.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.PLUGIN_INSTALL).exists()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_cli_refuses_with_the_code_and_installs_nothing(
    scenario: str, world: World, site: Path, settings: Any
) -> None:
    requirement, code, text = _setup(scenario, world, settings)
    with pytest.raises(CommandError) as caught:
        call_command("plugin", "install", requirement)
    message = str(caught.value)
    assert message.startswith(f"{code}: "), message
    assert text in message
    assert "\n" not in message
    _nothing_installed(site, settings)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_api_refuses_with_problem_json(
    scenario: str, world: World, site: Path, settings: Any, superuser_client: APIClient
) -> None:
    requirement, code, text = _setup(scenario, world, settings)
    response = superuser_client.post(
        "/api/plugin-index/install", {"requirement": requirement}, format="json"
    )
    body = response.json()
    assert response["Content-Type"] == "application/problem+json"
    assert body["code"] == code, body
    assert response.status_code == 422
    assert text in body["detail"]
    _nothing_installed(site, settings)


def test_the_organization_policy_refuses_a_community_plugin_too(
    world: World, site: Path, org: Any
) -> None:
    world.follow()
    community = world.certify(world.publisher, "acme", verified=False)
    _resign(world, community, NOW)
    PluginPolicy.objects.create(organization=org, verified_publishers_only=True)
    with pytest.raises(CommandError, match=r"^publisher_not_verified: "):
        call_command("plugin", "install", "supply-demo", "--org", org.slug)
    assert installed_files(site) == []


def test_the_last_error_is_kept_on_the_index_row(world: World, site: Path) -> None:
    untrusted_index_key(world)
    world.follow()
    with pytest.raises(CommandError):
        call_command("plugin", "install", "supply-demo")
    row = PluginIndex.objects.get()
    assert row.last_error_code == "index_untrusted_key"
    assert row.last_version == 0


def test_a_larger_artifact_is_never_read_past_its_signed_size(world: World, site: Path) -> None:
    world.release()
    artifact = world.folder / "artifacts" / "imbi_plugin_supply_demo-1.0.0-py3-none-any.whl"
    artifact.write_bytes(artifact.read_bytes() + b"\0" * 10_000_000)
    world.follow()
    with pytest.raises(CommandError) as caught:
        call_command("plugin", "install", "supply-demo")
    assert str(caught.value).startswith("artifact_size_mismatch: ")
    assert "more than" in str(caught.value)


def test_publish_refuses_an_entry_its_certificate_does_not_sign(world: World) -> None:
    wheel = world.wheel()
    entry = world.entry(wheel, key=world.key("other"))
    with pytest.raises(publishing.PublishError, match="does not verify"):
        world.publish([entry], [wheel])


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_admin_install_form_shows_the_code_and_installs_nothing(
    scenario: str, world: World, site: Path, settings: Any, client: Any, django_user_model: Any
) -> None:
    requirement, code, text = _setup(scenario, world, settings)
    admin = django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(admin)
    response = client.post("/admin/plugins_core/pluginindex/install/", {"requirement": requirement})
    assert response.status_code == 422
    page = response.content.decode()
    assert f'<div class="errornote refusal">{code}: ' in page
    from django.utils.html import escape

    assert escape(text) in page
    _nothing_installed(site, settings)


def test_admin_install_page_needs_a_superuser(client: Any, django_user_model: Any) -> None:
    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get("/admin/plugins_core/pluginindex/install/").status_code == 403


def test_api_install_needs_a_superuser(django_user_model: Any) -> None:
    staff = django_user_model.objects.create_user("staff", password="pw", is_staff=True)
    client = APIClient()
    client.force_authenticate(staff)
    response = client.post("/api/plugin-index/install", {"requirement": "x"}, format="json")
    assert (response.status_code, response.json()["code"]) == (403, "permission_denied")
    response = client.post("/api/plugin-index/install", {}, format="json")
    assert response.status_code == 403  # authorized before anything is parsed


def test_api_install_bad_requirement_is_a_field_error(superuser_client: APIClient) -> None:
    response = superuser_client.post("/api/plugin-index/install", {}, format="json")
    assert (response.status_code, response.json()["code"]) == (400, "invalid_input")
    for text in ("no such thing!", "name==", "name===1", "name>=1", "../../etc/passwd"):
        response = superuser_client.post(
            "/api/plugin-index/install", {"requirement": text}, format="json"
        )
        body = response.json()
        assert (response.status_code, body["code"]) == (400, "invalid_input"), text
        assert "is not NAME or NAME==VERSION" in body["errors"]["requirement"][0]


@pytest.mark.parametrize("text", ["name==", "name===1", "name>=1", "two words"])
def test_cli_install_bad_requirement_is_one_line(text: str) -> None:
    with pytest.raises(CommandError) as refused:
        call_command("plugin", "install", text)
    message = str(refused.value)
    assert message.startswith("invalid_requirement: ") and "\n" not in message


def test_admin_install_bad_requirement_is_a_field_error(
    client: Any, django_user_model: Any
) -> None:
    admin = django_user_model.objects.create_superuser("admin", "admin@example.com", "pw")
    client.force_login(admin)
    response = client.post("/admin/plugins_core/pluginindex/install/", {"requirement": "x>=1"})
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert list(errors) == ["requirement"], errors
    assert "is not NAME or NAME==VERSION" in errors["requirement"][0]


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[" * 100_000, b'{"signed": {}, "signatures": []}', b'{"signed": 1}'],
    ids=["junk", "deeply nested", "empty signed", "no signatures"],
)
def test_a_malformed_index_is_refused_as_such(world: World, site: Path, raw: bytes) -> None:
    world.folder.mkdir()
    (world.folder / "index.json").write_bytes(raw)
    world.follow()
    with pytest.raises(CommandError, match=r"^index_malformed: "):
        call_command("plugin", "install", "supply-demo")
    assert installed_files(site) == []


def test_no_followed_index_is_its_own_code(site: Path, superuser_client: APIClient) -> None:
    with pytest.raises(CommandError, match=r"^no_index_configured: "):
        call_command("plugin", "install", "supply-demo")
    response = superuser_client.post(
        "/api/plugin-index/install", {"requirement": "supply-demo"}, format="json"
    )
    assert (response.status_code, response.json()["code"]) == (409, "no_index_configured")


def test_a_signature_dated_in_the_future_is_refused(world: World, site: Path) -> None:
    """A not-yet-valid certificate cannot be used by claiming a future signing time."""
    certificate = world.certify(
        world.publisher,
        "acme",
        valid_from=NOW + dt.timedelta(days=10),
        valid_until=NOW + dt.timedelta(days=400),
    )
    _resign(world, certificate, NOW + dt.timedelta(days=11))
    world.follow()
    with pytest.raises(CommandError, match=r"^publisher_signature_invalid: .*in the future"):
        call_command("plugin", "install", "supply-demo")
    assert installed_files(site) == []
