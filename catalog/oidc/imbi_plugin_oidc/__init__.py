"""Imbi identity plugin for any OpenID Connect provider.

``plugin.OpenIDConnect`` (entry point ``oidc``) connects a person's account: authorization
code with PKCE, refresh, revocation and userinfo; ``provider`` reads discovery and the
provider's keys and verifies ID tokens.
"""

__version__ = "0.1.0"
