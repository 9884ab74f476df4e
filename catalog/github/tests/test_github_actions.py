"""GitHub Actions variables and secrets through the emulator: contract, paging, sealing."""

from __future__ import annotations

import base64
import json
from importlib import metadata, resources
from typing import Any

import pytest
from imbi_plugin_github.actions import (
    GitHubActionsConfiguration,
    base_url_for,
    github_name,
    parse_repository,
)
from imbi_plugin_sdk import (
    ConfigWrite,
    Credentials,
    DataType,
    InvalidInput,
    check_handler_class,
)
from imbi_plugin_sdk.testkit import assert_contract, make_context, run_contract

REPO = "acme/billing"
SECRET_VALUE = "s3cr3t-Value-that-must-never-leak-7f41"


def _dump(items: list[Any]) -> str:
    return json.dumps([item.to_dict() for item in items])


def _fill(github: Any, variables: int = 0, secrets: int = 0) -> None:
    for index in range(variables):
        github.add_variable(REPO, f"VAR_{index:03d}", f"value-{index}")
    for index in range(secrets):
        github.add_secret(REPO, f"SECRET_{index:03d}", f"{SECRET_VALUE}-{index}")


# --------------------------------------------------------------------------- contract


def test_contract_with_paging(github: Any, make_plugin: Any) -> None:
    _fill(github, variables=35, secrets=3)
    assert_contract(
        lambda: make_plugin(),
        sample_write=("IMBI_CONTRACT_KEY", ConfigWrite(data_type="string", value='v 1: "x"')),
    )
    pages = {
        tuple(query["page"])
        for method, path, query, _ in github.log
        if method == "GET" and path.endswith("/variables")
    }
    assert ("2",) in pages, "35 variables need a second page of 30"
    assert "IMBI_CONTRACT_KEY" not in github.repos[REPO].variables


def test_contract_with_a_secret_write_is_masked_on_read(github: Any, make_plugin: Any) -> None:
    """Secrets are write-only: the kit's read-back check must fail for them, by design."""
    report = run_contract(
        lambda: make_plugin(),
        sample_write=("IMBI_CONTRACT_SECRET", ConfigWrite(data_type="secret", value="x")),
    )
    assert [f for f in report.failures if "read-back value differs" in f]
    assert github.repos[REPO].plaintexts == {}  # the kit deleted it again


def test_entry_point_and_manifest() -> None:
    (entry,) = [
        ep for ep in metadata.entry_points(group="imbi.plugins") if ep.name == "github-actions"
    ]
    assert entry.value == "imbi_plugin_github.actions:GitHubActionsConfiguration"
    assert entry.load() is GitHubActionsConfiguration
    manifest = check_handler_class(GitHubActionsConfiguration)
    assert (manifest.slug, manifest.version, manifest.api_version) == (
        "github-actions",
        "0.1.0",
        "1.0",
    )
    assert manifest.publisher == "Imbi"
    assert [(c.name, c.secret, c.required) for c in manifest.credentials] == [("token", True, True)]
    assert [o.name for o in manifest.options] == ["repository"]
    assert manifest.permissions.allows_host("api.github.com", 443)
    template = manifest.service_template
    assert template is not None and template.base_url == "https://api.github.com"
    package, _, name = template.icon.partition(":")
    svg = resources.files(package).joinpath(name).read_text()
    assert svg.startswith("<svg") and "<script" not in svg


# --------------------------------------------------------------------------- listing


def test_list_keys_pages_through_every_variable_and_secret(github: Any, make_plugin: Any) -> None:
    _fill(github, variables=65, secrets=2)
    keys = make_plugin().list_keys()
    variables = [k for k in keys if not k.secret]
    secrets = [k for k in keys if k.secret]
    assert [k.key for k in variables] == [f"VAR_{i:03d}" for i in range(65)]
    assert {k.data_type for k in variables} == {DataType.STRING}
    assert [(k.key, k.data_type) for k in secrets] == [
        ("SECRET_000", DataType.SECRET),
        ("SECRET_001", DataType.SECRET),
    ]
    assert all(k.last_modified is not None and k.last_modified.tzinfo for k in keys)
    pages = [
        (query["per_page"], query["page"])
        for method, path, query, _ in github.log
        if path == f"/repos/{REPO}/actions/variables"
    ]
    assert pages == [(["30"], ["1"]), (["30"], ["2"]), (["30"], ["3"])]


def test_exactly_thirty_variables_take_one_page(github: Any, make_plugin: Any) -> None:
    _fill(github, variables=30)
    assert len(make_plugin().list_keys()) == 30
    assert len([p for m, p in github.calls("GET") if p.endswith("/variables")]) == 1


def test_get_values_returns_variables_and_masked_secrets(github: Any, make_plugin: Any) -> None:
    _fill(github, variables=3, secrets=2)
    plugin = make_plugin()
    values = {value.key: value for value in plugin.get_values()}
    assert set(values) == {"VAR_000", "VAR_001", "VAR_002", "SECRET_000", "SECRET_001"}
    assert values["VAR_001"].value == "value-1" and not values["VAR_001"].secret
    secret = values["SECRET_000"]
    assert (secret.value, secret.secret, secret.data_type) == (None, True, DataType.SECRET)
    some = plugin.get_values(["var_002", "SECRET_001", "MISSING"])
    assert [(v.key, v.value) for v in some] == [("SECRET_001", None), ("VAR_002", "value-2")]
    assert plugin.get_values(["MISSING"]) == []
    calls = len(github.log)
    assert plugin.get_values([]) == []
    assert len(github.log) == calls, "an empty request needs no GitHub call"


def test_a_name_used_by_a_variable_and_a_secret_is_listed_once(
    github: Any, make_plugin: Any
) -> None:
    github.add_variable(REPO, "SHARED", "visible")
    github.add_secret(REPO, "SHARED", SECRET_VALUE)
    plugin = make_plugin()
    assert [(k.key, k.secret) for k in plugin.list_keys()] == [("SHARED", False)]
    assert [(v.key, v.value) for v in plugin.get_values()] == [("SHARED", "visible")]


# --------------------------------------------------------------------------- secrets


def test_secret_is_sealed_for_the_repository_key(github: Any, make_plugin: Any) -> None:
    plugin = make_plugin()
    written = plugin.set_value("DB_PASSWORD", ConfigWrite(data_type="secret", value=SECRET_VALUE))
    assert (written.key, written.secret, written.data_type) == ("DB_PASSWORD", True, "secret")
    # the emulator opened the sealed box with its private key: this is what was encrypted
    assert github.repos[REPO].plaintexts == {"DB_PASSWORD": SECRET_VALUE}
    (put,) = [entry for entry in github.log if entry[0] == "PUT"]
    assert put[1] == f"/repos/{REPO}/actions/secrets/DB_PASSWORD"
    body = put[3]
    assert set(body) == {"encrypted_value", "key_id"} and body["key_id"] == "568250167242549743"
    sealed = base64.b64decode(body["encrypted_value"])
    assert len(sealed) == 48 + len(SECRET_VALUE)  # ephemeral key + MAC + ciphertext
    assert SECRET_VALUE.encode() not in sealed
    assert github.calls()[0] == ("GET", f"/repos/{REPO}/actions/secrets/public-key")


def test_secret_value_never_appears_in_responses_or_outputs(github: Any, make_plugin: Any) -> None:
    plugin = make_plugin()
    plugin.set_value("DB_PASSWORD", ConfigWrite(data_type="secret", value=SECRET_VALUE))
    plugin.set_value("API_KEY", ConfigWrite(data_type="string", value=SECRET_VALUE, secret=True))
    keys = plugin.list_keys()
    values = plugin.get_values()
    assert [(k.key, k.secret) for k in keys] == [("API_KEY", True), ("DB_PASSWORD", True)]
    assert [(v.key, v.value) for v in values] == [("API_KEY", None), ("DB_PASSWORD", None)]
    assert plugin.get_values(["DB_PASSWORD"])[0].value is None
    assert SECRET_VALUE not in _dump(keys) + _dump(values)
    assert github.responses, "the emulator saw traffic"
    for response in github.responses:
        assert SECRET_VALUE.encode() not in response
    for _, _, _, body in github.log:
        assert SECRET_VALUE not in json.dumps(body)
    assert github.repos[REPO].plaintexts == {"DB_PASSWORD": SECRET_VALUE, "API_KEY": SECRET_VALUE}


def test_sealing_is_randomised_and_non_strings_are_stringified(
    github: Any, make_plugin: Any
) -> None:
    plugin = make_plugin()
    plugin.set_value("PIN", ConfigWrite(data_type="number", value=4242, secret=True))
    plugin.set_value("PIN", ConfigWrite(data_type="number", value=4242, secret=True))
    first, second = [body["encrypted_value"] for m, _, _, body in github.log if m == "PUT"]
    assert first != second, "a sealed box uses a fresh ephemeral key every time"
    assert github.repos[REPO].plaintexts == {"PIN": "4242"}


# --------------------------------------------------------------------------- variables


@pytest.mark.parametrize(
    ("write", "stored"),
    [
        (ConfigWrite(data_type="string", value='pg://db:5432/a?x="y"'), 'pg://db:5432/a?x="y"'),
        (ConfigWrite(data_type="number", value=42), "42"),
        (ConfigWrite(data_type="number", value=1.5), "1.5"),
        (ConfigWrite(data_type="boolean", value=True), "true"),
        (ConfigWrite(data_type="boolean", value=False), "false"),
        (ConfigWrite(data_type="json", value={"a": [1, 2], "b": "ü"}), '{"a":[1,2],"b":"ü"}'),
        (ConfigWrite(data_type="json", value=None), "null"),
    ],
    ids=["string", "int", "float", "true", "false", "json", "null"],
)
def test_variable_values_are_stored_as_strings(
    github: Any, make_plugin: Any, write: ConfigWrite, stored: str
) -> None:
    key = make_plugin().set_value("SETTING", write)
    assert (key.key, key.data_type, key.secret) == ("SETTING", DataType.STRING, False)
    assert github.repos[REPO].variables["SETTING"]["value"] == stored
    (post,) = [body for m, _, _, body in github.log if m == "POST"]
    assert post == {"name": "SETTING", "value": stored}


def test_create_uses_post_after_patch_404_and_update_uses_patch(
    github: Any, make_plugin: Any
) -> None:
    plugin = make_plugin()
    plugin.set_value("API_URL", ConfigWrite(data_type="string", value="https://one"))
    assert github.calls() == [
        ("PATCH", f"/repos/{REPO}/actions/variables/API_URL"),
        ("POST", f"/repos/{REPO}/actions/variables"),
        ("DELETE", f"/repos/{REPO}/actions/secrets/API_URL"),
    ]
    github.log.clear()
    plugin.set_value("API_URL", ConfigWrite(data_type="string", value="https://two"))
    assert [m for m, _ in github.calls()] == ["PATCH", "DELETE"]
    assert github.log[0][3] == {"name": "API_URL", "value": "https://two"}
    assert github.repos[REPO].variables["API_URL"]["value"] == "https://two"
    assert plugin.get_values(["API_URL"])[0].value == "https://two"


def test_names_are_upper_cased_like_github_does(github: Any, make_plugin: Any) -> None:
    plugin = make_plugin()
    key = plugin.set_value("db_host", ConfigWrite(data_type="string", value="db"))
    assert key.key == "DB_HOST"
    assert list(github.repos[REPO].variables) == ["DB_HOST"]
    assert [v.key for v in plugin.get_values(["db_host"])] == ["DB_HOST"]
    plugin.delete_key("Db_Host")
    assert github.repos[REPO].variables == {}


@pytest.mark.parametrize(
    "name", ["1ABC", "GITHUB_TOKEN", "github_sha", "has-dash", "with space", "ÜBER", "A.B", ""]
)
def test_invalid_names_are_refused_before_any_request(
    github: Any, make_plugin: Any, name: str
) -> None:
    plugin = make_plugin()
    for write in (
        ConfigWrite(data_type="string", value="v"),
        ConfigWrite(data_type="secret", value=SECRET_VALUE),
    ):
        with pytest.raises(InvalidInput) as caught:
            plugin.set_value(name, write)
        assert "key" in caught.value.fields
        assert SECRET_VALUE not in json.dumps(caught.value.to_dict())
    plugin.delete_key(name)  # cannot exist on GitHub: nothing to delete
    assert github.log == []


def test_github_name_rules() -> None:
    assert github_name("_private") == "_PRIVATE"
    assert github_name("a1_b2") == "A1_B2"
    with pytest.raises(InvalidInput):
        github_name("GitHub_Anything")


def test_flipping_a_key_between_variable_and_secret(github: Any, make_plugin: Any) -> None:
    plugin = make_plugin()
    plugin.set_value("TOKEN_URL", ConfigWrite(data_type="string", value="https://x"))
    plugin.set_value("TOKEN_URL", ConfigWrite(data_type="secret", value=SECRET_VALUE))
    repo = github.repos[REPO]
    assert (list(repo.variables), list(repo.secrets)) == ([], ["TOKEN_URL"])
    assert [(k.key, k.secret) for k in plugin.list_keys()] == [("TOKEN_URL", True)]
    plugin.set_value("TOKEN_URL", ConfigWrite(data_type="string", value="https://y"))
    assert (list(repo.variables), list(repo.secrets)) == (["TOKEN_URL"], [])
    assert [(v.key, v.value) for v in plugin.get_values()] == [("TOKEN_URL", "https://y")]


# --------------------------------------------------------------------------- delete


def test_delete_key_removes_variables_and_secrets_idempotently(
    github: Any, make_plugin: Any
) -> None:
    _fill(github, variables=2, secrets=2)
    github.add_variable(REPO, "BOTH", "v")
    github.add_secret(REPO, "BOTH", SECRET_VALUE)
    plugin = make_plugin()
    for key in ("VAR_000", "SECRET_001", "BOTH", "NEVER_EXISTED"):
        plugin.delete_key(key)
        plugin.delete_key(key)
    repo = github.repos[REPO]
    assert (sorted(repo.variables), sorted(repo.secrets)) == (["VAR_001"], ["SECRET_000"])
    assert [k.key for k in plugin.list_keys()] == ["SECRET_000", "VAR_001"]
    assert ("DELETE", f"/repos/{REPO}/actions/secrets/BOTH") in github.calls()


# --------------------------------------------------------------------------- repository


def test_repository_comes_from_the_template_then_the_option(github: Any, make_plugin: Any) -> None:
    github.add_variable("acme/payments", "ONLY_IN_PAYMENTS", "1")
    github.add_variable(REPO, "ONLY_IN_BILLING", "1")
    by_template = make_plugin(template="acme/payments", options={"repository": REPO})
    assert [k.key for k in by_template.list_keys()] == ["ONLY_IN_PAYMENTS"]
    by_option = make_plugin(template="", options={"repository": "acme/payments"})
    assert [k.key for k in by_option.list_keys()] == ["ONLY_IN_PAYMENTS"]
    by_setting = make_plugin(
        template="", settings={"base_url": github.url, "repository": "acme/payments"}
    )
    assert [k.key for k in by_setting.list_keys()] == ["ONLY_IN_PAYMENTS"]


@pytest.mark.parametrize(
    "repository",
    ["acme", "acme/billing/extra", "-acme/billing", "acme/..", "acme/bil ling", "acme/", "/x"],
)
def test_invalid_repository_is_invalid_input(
    github: Any, make_plugin: Any, repository: str
) -> None:
    plugin = make_plugin(template=repository)
    for call in (
        plugin.list_keys,
        plugin.get_values,
        lambda: plugin.set_value("K", ConfigWrite(data_type="string", value="v")),
        lambda: plugin.delete_key("K"),
    ):
        with pytest.raises(InvalidInput) as caught:
            call()
        assert caught.value.fields == {"repository": "expected owner/repo"}
    assert not plugin.test_connection().ok
    assert github.log == []


def test_no_repository_at_all(github: Any, make_plugin: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        make_plugin(template="  ").list_keys()
    assert caught.value.fields == {"repository": "is required"}


def test_repository_parsing() -> None:
    assert parse_repository(" acme-corp/billing.api_v2 ") == "acme-corp/billing.api_v2"
    assert base_url_for({}) == "https://api.github.com"
    assert base_url_for({"base_url": "https://ghe.example.com/api/v3/"}) == (
        "https://ghe.example.com/api/v3"
    )
    with pytest.raises(InvalidInput):
        base_url_for({"base_url": "ghe.example.com"})


def test_github_enterprise_base_url_with_a_path(github_enterprise: Any) -> None:
    github_enterprise.add_variable(REPO, "ON_PREM", "yes")
    plugin = GitHubActionsConfiguration(
        make_context(service_settings={"base_url": github_enterprise.url}, search_template=REPO),
        Credentials(token=github_enterprise.token),
    )
    assert github_enterprise.url.endswith("/api/v3")
    assert [v.value for v in plugin.get_values(["ON_PREM"])] == ["yes"]
    plugin.set_value("ADDED", ConfigWrite(data_type="secret", value=SECRET_VALUE))
    assert github_enterprise.repos[REPO].plaintexts == {"ADDED": SECRET_VALUE}
    assert all(path.startswith("/api/v3/repos/") for _, path in github_enterprise.calls())
    assert plugin.test_connection().ok
