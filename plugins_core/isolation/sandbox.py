"""The runner sandbox: ``imbi_plugin_sdk.sandbox``, re-exported for the platform's runners.

One implementation serves both sides: each runner applies it to itself before importing
plugin code (``child.py``), and the SDK's ``imbi-plugin check --isolated`` applies the very
same policy on an author's machine. See that module for what it enforces and in which order.
"""

from imbi_plugin_sdk.sandbox import (
    Policy,
    SandboxError,
    _landlock,
    apply,
    landlock_abi,
    seccomp_program,
)

__all__ = ["Policy", "SandboxError", "_landlock", "apply", "landlock_abi", "seccomp_program"]
