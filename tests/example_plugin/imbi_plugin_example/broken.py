"""Deliberately fails to import: the registry records the reason and carries on."""

import imbi_plugin_example_dependency_that_is_not_installed  # noqa: F401
