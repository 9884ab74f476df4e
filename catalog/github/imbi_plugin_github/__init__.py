"""Imbi configuration plugin for GitHub Actions.

``actions.GitHubActionsConfiguration`` serves a project's Configuration tab from one
repository's Actions variables (read/write) and Actions secrets (write-only, sealed with
the repository's public key); ``_http`` is the REST client and maps GitHub's answers to
SDK errors.
"""

__version__ = "0.1.0"
