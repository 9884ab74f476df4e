"""The SDK's sandbox (``imbi-plugin check --isolated``) is the platform's: the same code
below the docstring, so an author's check applies the policy the platform applies."""

from __future__ import annotations

import ast
from pathlib import Path

import imbi_plugin_sdk.sandbox as sdk_sandbox

from plugins_core.isolation import sandbox as host_sandbox


def _code(path: str) -> str:
    tree = ast.parse(Path(path).read_text())
    tree.body = tree.body[1:]  # the docstring differs: the SDK's says where it came from
    return ast.unparse(tree)


def test_the_sdk_sandbox_is_the_platform_sandbox() -> None:
    assert _code(str(sdk_sandbox.__file__)) == _code(str(host_sandbox.__file__))
    assert sdk_sandbox.seccomp_program(True) == host_sandbox.seccomp_program(True)
    assert sdk_sandbox.Policy().to_dict() == host_sandbox.Policy().to_dict()
