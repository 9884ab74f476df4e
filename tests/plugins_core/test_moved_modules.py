"""The flat module paths of releases before the layout move still import, with a warning
naming the new path, and give the very module that now holds the code (issue 18)."""

from __future__ import annotations

import importlib
import sys

import pytest

import plugins_core
from plugins_core.distributions import desired


@pytest.mark.parametrize(("old", "new"), sorted(plugins_core._MOVED.items()))
def test_an_old_module_path_imports_the_new_module_with_a_warning(old: str, new: str) -> None:
    sys.modules.pop(f"plugins_core.{old}", None)
    with pytest.warns(DeprecationWarning, match=f"plugins_core.{old} moved to {new}"):
        module = importlib.import_module(f"plugins_core.{old}")
    assert module is importlib.import_module(new)
    sys.modules.pop(f"plugins_core.{old}", None)


def test_from_package_import_old_name_warns_too() -> None:
    sys.modules.pop("plugins_core.hosts", None)
    vars(plugins_core).pop("hosts", None)
    with pytest.warns(DeprecationWarning, match="moved to plugins_core.serving.hosts"):
        from plugins_core import hosts
    from plugins_core.serving import hosts as new_hosts

    assert hosts is new_hosts
    sys.modules.pop("plugins_core.hosts", None)
    vars(plugins_core).pop("hosts", None)


def test_the_old_distributions_module_names_are_forwarded() -> None:
    import plugins_core.distributions as package

    with pytest.warns(DeprecationWarning, match="distributions.desired.DistributionError"):
        error = package.DistributionError
    assert error is desired.DistributionError
    with pytest.raises(AttributeError):
        _ = package.no_such_name


def test_a_new_path_is_never_redirected() -> None:
    assert "plugins_core.serving.hosts" not in {
        f"plugins_core.{old}" for old in plugins_core._MOVED
    }
    assert all(new.startswith("plugins_core.") for new in plugins_core._MOVED.values())
