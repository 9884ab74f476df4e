"""The SDK's sandbox (``imbi-plugin check --isolated``) is the platform's: one
implementation, which the platform's runners import, so an author's check applies the very
policy the platform applies."""

from __future__ import annotations

import imbi_plugin_sdk.sandbox as sdk_sandbox

from plugins_core.isolation import sandbox as host_sandbox


def test_the_sdk_sandbox_is_the_platform_sandbox() -> None:
    assert host_sandbox.apply is sdk_sandbox.apply
    assert host_sandbox.Policy is sdk_sandbox.Policy
    assert sdk_sandbox.seccomp_program(True) == host_sandbox.seccomp_program(True)
    assert sdk_sandbox.Policy().to_dict() == host_sandbox.Policy().to_dict()
