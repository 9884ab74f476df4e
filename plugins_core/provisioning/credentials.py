"""The credential rules shared by every surface that writes a service's credentials.

Owns the non-form logic of write-only credentials: which credential fields a service has
(``credential_fields_for``: the union over the manifests of its plugins) and how entered
changes merge into what is stored (``apply_credentials``: a new value replaces, ``None``
removes). The REST API (``provisioning.services``), the admin and the install wizard
(``pages.forms``) all call these, so a change means the same everywhere.

Imports only the SDK; never reads or logs a credential value beyond merging it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from imbi_plugin_sdk import CredentialField, PluginManifest

__all__ = ["apply_credentials", "credential_fields_for"]


def credential_fields_for(manifests: Iterable[PluginManifest]) -> list[CredentialField]:
    """The union of credential fields of several manifests (one service, several plugins).

    A name declared by several manifests keeps its first declaration, required if any
    manifest requires it and secret if any declares it secret.
    """
    by_name: dict[str, CredentialField] = {}
    for manifest in manifests:
        for cred in manifest.credentials:
            first = by_name.get(cred.name)
            if first is None:
                by_name[cred.name] = cred
            else:
                by_name[cred.name] = CredentialField(
                    name=first.name,
                    label=first.label,
                    secret=first.secret or cred.secret,
                    required=first.required or cred.required,
                    multiline=first.multiline or cred.multiline,
                    help=first.help or cred.help,
                )
    return list(by_name.values())


def apply_credentials(
    stored: Mapping[str, str], changes: Mapping[str, str | None]
) -> dict[str, str]:
    """``stored`` with ``changes`` applied: a value replaces or adds, ``None`` removes."""
    merged = dict(stored)
    for name, value in changes.items():
        if value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged
