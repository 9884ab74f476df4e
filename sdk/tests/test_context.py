"""Credentials never show values; the context and the in-memory store behave."""

import copy
import logging
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from imbi_plugin_sdk import Credentials, KeyValueStore, MemoryKeyValueStore, PluginContext

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"


def test_credentials_repr_never_contains_value() -> None:
    creds = Credentials({"access_key_id": "AKIAIOSFODNN7EXAMPLE"}, secret_access_key=SECRET)
    for text in (repr(creds), str(creds), f"{creds}", "%s" % (creds,), str([creds])):  # noqa: UP031
        assert SECRET not in text
        assert "AKIAIOSFODNN7EXAMPLE" not in text
    assert repr(creds) == "Credentials(access_key_id=***, secret_access_key=***)"
    assert creds["secret_access_key"] == SECRET
    assert dict(creds) == {"access_key_id": "AKIAIOSFODNN7EXAMPLE", "secret_access_key": SECRET}


def test_credentials_are_immutable_and_not_picklable() -> None:
    creds = Credentials(token=SECRET)
    with pytest.raises(TypeError):
        creds["token"] = "other"  # type: ignore[index]
    with pytest.raises(AttributeError):
        creds._values = {}
    with pytest.raises(TypeError):
        pickle.dumps(creds)
    assert copy.deepcopy(creds) is creds


def test_credentials_in_log_record(caplog: pytest.LogCaptureFixture) -> None:
    creds = Credentials(token=SECRET)
    with caplog.at_level(logging.INFO, logger="imbi.plugins"):
        logging.getLogger("imbi.plugins").info("calling with %s / %r", creds, creds)
    assert SECRET not in caplog.text
    assert "token=***" in caplog.text


def test_memory_store_is_a_key_value_store() -> None:
    store = MemoryKeyValueStore({"a/1": "x"})
    assert isinstance(store, KeyValueStore)
    store.set("a/2", "y")
    store.set("b", "z")
    assert store.keys("a/") == ["a/1", "a/2"]
    assert store.get("b") == "z"
    store.delete("b")
    store.delete("b")
    assert store.get("b") is None


def test_context_defaults_and_validation() -> None:
    context = PluginContext(organization="acme", options={"region": "us-east-1"})
    assert context.timeout == 10.0
    assert context.logger.name == "imbi.plugins"
    assert context.storage is None
    assert context.options["region"] == "us-east-1"
    with pytest.raises(TypeError):
        context.options["region"] = "x"  # type: ignore[index]
    with pytest.raises(ValueError, match=r"timeout"):
        PluginContext(organization="acme", timeout=0)
    with pytest.raises(ValueError, match=r"organization"):
        PluginContext(organization="")


def test_importing_sdk_imports_only_the_standard_library() -> None:
    """Every SDK module imports with site-packages off the path (``-S``): stdlib only."""
    code = (
        "import sys, pkgutil, importlib, imbi_plugin_sdk\n"
        "for m in pkgutil.iter_modules(imbi_plugin_sdk.__path__, 'imbi_plugin_sdk.'):\n"
        "    if m.name != 'imbi_plugin_sdk.__main__':  # that one runs the CLI\n"
        "        importlib.import_module(m.name)\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "print(sorted(top - set(sys.stdlib_module_names) - {'imbi_plugin_sdk', '__main__'}))\n"
    )
    sdk_root = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-S", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=sdk_root,
        env={"PYTHONPATH": str(sdk_root)},
    )
    assert result.stdout.strip() == "[]"
