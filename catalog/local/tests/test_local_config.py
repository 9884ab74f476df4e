"""LocalConfiguration: the SDK contract, namespacing and the stored record format.

Every test runs in-process and in a sandboxed runner (``config_handler``, conftest.py); the
store the test inspects is the one the host side serves the runner's storage requests from.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from imbi_plugin_local.config import LocalConfiguration
from imbi_plugin_sdk import (
    ConfigWrite,
    Credentials,
    DataType,
    InvalidInput,
    MemoryKeyValueStore,
    UpstreamUnavailable,
)
from imbi_plugin_sdk.testkit import assert_contract, make_context


@pytest.fixture
def handler(config_handler: Any) -> Any:
    return config_handler


def seeded_store() -> MemoryKeyValueStore:
    record = {
        "data_type": "string",
        "value": "v",
        "secret": False,
        "modified": "2025-01-01T00:00:00+00:00",
    }
    return MemoryKeyValueStore(
        {
            "demo/billing/LOG_LEVEL": json.dumps({**record, "value": "info"}),
            "demo/billing/PORT": json.dumps({**record, "data_type": "number", "value": 8080}),
            "demo/billing-v2/OTHER": json.dumps(record),
        }
    )


@pytest.mark.parametrize("template", ["", "demo/billing/", "demo/billing"])
def test_contract(template: str, handler: Any) -> None:
    store = seeded_store()
    assert_contract(
        lambda: handler(
            store, search_template=template, organization="demo", project_slug="billing"
        ),
        sample_write=("CONTRACT_KEY", ConfigWrite(data_type=DataType.JSON, value={"a": [1]})),
    )


def test_keys_are_namespaced_by_the_search_template(handler: Any) -> None:
    store = seeded_store()
    plugin = handler(store, search_template="demo/billing/")
    assert [k.key for k in plugin.list_keys()] == ["LOG_LEVEL", "PORT"]
    # a template without the trailing slash must not see billing-v2's keys
    assert [k.key for k in handler(store, search_template="demo/billing").list_keys()] == [
        "LOG_LEVEL",
        "PORT",
    ]
    values = {v.key: v.value for v in plugin.get_values(["PORT", "MISSING"])}
    assert values == {"PORT": 8080}


def test_default_namespace_is_organization_and_project(handler: Any) -> None:
    store = MemoryKeyValueStore()
    plugin = handler(store, organization="acme", project_slug="shop")
    plugin.set_value("A", ConfigWrite(data_type=DataType.STRING, value="x"))
    assert store.keys() == ["acme/shop/A"]


def test_stored_record_format_and_secrets(handler: Any) -> None:
    store = MemoryKeyValueStore()
    plugin = handler(store, search_template="o/p/")
    written = plugin.set_value("DB_PASSWORD", ConfigWrite(data_type=DataType.SECRET, value="s3"))
    assert written.secret and written.last_modified is not None
    record = json.loads(store.get("o/p/DB_PASSWORD") or "")
    assert set(record) == {"data_type", "value", "secret", "modified"}
    assert record["data_type"] == "secret" and record["secret"] is True
    [value] = plugin.get_values(["DB_PASSWORD"])
    assert value.value == "s3" and value.masked().value is None


def test_every_data_type_round_trips(handler: Any) -> None:
    plugin = handler()
    writes = {
        "S": ConfigWrite(data_type=DataType.STRING, value="a:b"),
        "N": ConfigWrite(data_type=DataType.NUMBER, value=1.5),
        "B": ConfigWrite(data_type=DataType.BOOLEAN, value=False),
        "J": ConfigWrite(data_type=DataType.JSON, value=None),
        "X": ConfigWrite(data_type=DataType.SECRET, value="hush"),
    }
    for key, write in writes.items():
        plugin.set_value(key, write)
    got = {v.key: (v.data_type, v.value) for v in plugin.get_values()}
    assert got == {k: (w.data_type, w.value) for k, w in writes.items()}


def test_unreadable_records_are_skipped(handler: Any) -> None:
    store = MemoryKeyValueStore(
        {
            "o/p/BAD": "not json",
            "o/p/ODD": json.dumps([1]),
            "o/p/NAIVE": json.dumps({"value": "x", "modified": "2025-01-01T00:00:00"}),
        }
    )
    plugin = handler(store, search_template="o/p/")
    plugin.set_value("GOOD", ConfigWrite(data_type=DataType.STRING, value="ok"))
    assert [k.key for k in plugin.list_keys()] == ["GOOD"]


def test_delete_is_idempotent_and_invalid_keys_are_refused(handler: Any) -> None:
    plugin = handler()
    plugin.delete_key("never-there")
    with pytest.raises(InvalidInput):
        plugin.set_value(" padded ", ConfigWrite(data_type=DataType.STRING, value="x"))
    with pytest.raises(InvalidInput):
        handler(search_template="n" * 300).set_value(
            "k" * 250, ConfigWrite(data_type=DataType.STRING, value="x")
        )


def test_without_storage(handler: Any) -> None:
    plugin = handler(storage=None)
    with pytest.raises(UpstreamUnavailable, match="did not provide key-value storage"):
        plugin.list_keys()
    with pytest.raises(UpstreamUnavailable, match="did not provide key-value storage"):
        plugin.set_value("K", ConfigWrite(data_type=DataType.STRING, value="x"))
    assert handler().test_connection().ok is True


# In-process only: in a runner, ``context.storage`` is always the host-backed store of a
# plugin that declares storage; whether the host has one shows only when a request comes
# back (test_without_storage, both modes).
@pytest.mark.parametrize("runner_mode", ["in_process"])
def test_connection_test_without_storage(handler: Any) -> None:
    assert handler(storage=None).test_connection().ok is False


def test_each_mode_runs_where_it_says(handler: Any, runner_mode: str) -> None:
    store = MemoryKeyValueStore()
    plugin = handler(store)
    assert (type(plugin).__name__ == "IsolatedLocalConfiguration") is (runner_mode == "isolated")
    plugin.set_value("K", ConfigWrite(data_type=DataType.STRING, value="v"))
    assert store.keys() == ["contract-test/contract-test-project/K"]  # the host-side store


def test_the_host_side_store_can_be_given_apart_from_the_context(run_isolated: Any) -> None:
    """``isolated(handler, storage=...)``: the host answers the runner's storage requests
    from that store, whatever the handler's context holds."""
    ignored, served = MemoryKeyValueStore(), MemoryKeyValueStore()
    plain = LocalConfiguration(make_context(storage=ignored), Credentials())
    plugin = run_isolated(plain, storage=served)
    plugin.set_value("K", ConfigWrite(data_type=DataType.STRING, value="v"))
    assert served.keys() == ["contract-test/contract-test-project/K"] and ignored.keys() == []
    with pytest.raises(UpstreamUnavailable, match="did not provide key-value storage"):
        run_isolated(plain, storage=None).list_keys()
