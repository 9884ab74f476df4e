"""Credentials: the one place a service's shared credentials are decrypted.

Part of step 4 of resolution. A binding carries its service's credentials as ciphertext
(``selection``'s ``credentials_token``); ``credentials_for`` decrypts them only for a plugin
that declares credentials, and hands it only the fields its manifest declares.
"""

from __future__ import annotations

import logging

from imbi_plugin_sdk import Credentials, PluginManifest

from imbi.core import crypto
from plugins_core.serving.errors import CredentialsMissing, CredentialsUnreadable
from plugins_core.serving.selection import EffectiveBinding

logger = logging.getLogger(__name__)


def credentials_for(manifest: PluginManifest, binding: EffectiveBinding) -> Credentials:
    """Decrypt the service's shared credentials. The only place credentials are decrypted.

    A plugin that declares no credentials gets none, and nothing is decrypted for it."""
    plugin = binding.plugin
    stored: dict[str, str] = {}
    if binding.credentials_token and manifest.credentials:
        try:
            stored = dict(
                crypto.decrypt_json(
                    binding.credentials_token, where=f"credentials of {plugin.service.slug}"
                )
            )
        except crypto.DecryptionError as exc:
            logger.error(
                "credentials of service %s cannot be decrypted: %s", plugin.service.slug, exc
            )
            raise CredentialsUnreadable(
                f"the credentials of service '{plugin.service.slug}' cannot be decrypted with "
                "the configured keys; an operator must add the key that encrypted them to "
                "IMBI_ENCRYPTION_KEYS"
            ) from None
    missing = [f.name for f in manifest.credentials if f.required and not stored.get(f.name)]
    if missing:
        raise CredentialsMissing(
            f"service '{plugin.service.slug}' has no {', '.join(missing)} credentials; "
            "an administrator must add them",
            missing=missing,
        )
    known = {f.name for f in manifest.credentials}
    return Credentials({k: v for k, v in stored.items() if k in known})
