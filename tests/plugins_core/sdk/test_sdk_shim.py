"""``plugins_core.sdk`` is a deprecated re-export of ``imbi_plugin_sdk``: it works and warns."""

from __future__ import annotations

import subprocess
import sys

import imbi_plugin_sdk
import pytest
from imbi_plugin_sdk import testkit


def test_names_and_submodules_are_the_new_objects_and_warn() -> None:
    with pytest.warns(DeprecationWarning, match=r"import imbi_plugin_sdk instead"):
        from plugins_core.sdk import ConfigKey
    assert ConfigKey is imbi_plugin_sdk.ConfigKey
    with pytest.warns(DeprecationWarning, match=r"import imbi_plugin_sdk\.testkit instead"):
        from plugins_core.sdk.testkit import make_context
    assert make_context is testkit.make_context


def test_first_import_warns_in_a_fresh_process() -> None:
    code = (
        "import warnings; warnings.simplefilter('error', DeprecationWarning)\n"
        "try:\n    import plugins_core.sdk\nexcept DeprecationWarning as w:\n    print(w)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "plugins_core.sdk is deprecated; import imbi_plugin_sdk instead" in out


def test_star_imports_still_bring_every_name() -> None:
    namespace: dict[str, object] = {}
    with pytest.warns(DeprecationWarning):
        exec("from plugins_core.sdk import *", namespace)  # noqa: S102
    assert namespace["PluginManifest"] is imbi_plugin_sdk.PluginManifest
    assert namespace["execute"] is imbi_plugin_sdk.execute
